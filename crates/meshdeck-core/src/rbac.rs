//! Who may apply what: meshdeck Roles and RoleBindings (Gloo Mesh's enterprise Role API) checked
//! against the policies of a plan (pure), and Kubernetes RBAC asked per planned write with a
//! SelfSubjectAccessReview (a read: it changes nothing on the server).
//!
//! A scope grants only what it names: `"*"` in a list is the wildcard, an empty or omitted list
//! grants nothing. Labels in a scope are a restriction: the policy's selector must require the
//! same labels (`"*"` as a value: any value of that key).

use crate::policy::*;

/// Who is asking.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub user: String,
    pub groups: Vec<String>,
}

/// A policy the roles do not allow, and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Denial {
    pub policy: PolicyId,
    pub reason: String,
}

fn star(list: &[String]) -> bool {
    list.iter().any(|x| x == "*")
}

/// `want` (non-empty) within `granted`; an empty `want` means "any", only `*` covers it.
fn within(want: &[String], granted: &[String]) -> bool {
    star(granted) || (!want.is_empty() && want.iter().all(|w| granted.contains(w)))
}

fn labels_within(want: &Labels, scope: &Labels) -> bool {
    scope
        .iter()
        .all(|(k, v)| want.get(k).is_some_and(|w| v == "*" || w == v))
}

fn matcher_covers(p: &KubeMatcher, s: &KubeMatcher) -> bool {
    within(&p.namespaces, &s.namespaces)
        && within(&p.clusters, &s.clusters)
        && labels_within(&p.labels, &s.labels)
}

fn ref_covered(r: &ClusterObjectRef, scopes: &[DestinationSelector]) -> bool {
    scopes.iter().any(|s| {
        s.kube_service_matcher.as_ref().is_some_and(|m| {
            m.labels.is_empty()
                && (star(&m.namespaces) || m.namespaces.contains(&r.namespace))
                && (star(&m.clusters) || m.clusters.contains(&r.cluster_name))
        }) || s
            .kube_service_refs
            .as_ref()
            .is_some_and(|x| x.services.contains(r))
    })
}

fn dest_covered(p: &DestinationSelector, scopes: &[DestinationSelector]) -> bool {
    if let Some(m) = &p.kube_service_matcher {
        return scopes.iter().any(|s| {
            s.kube_service_matcher
                .as_ref()
                .is_some_and(|sm| matcher_covers(m, sm))
        });
    }
    if let Some(r) = &p.kube_service_refs {
        return !r.services.is_empty() && r.services.iter().all(|x| ref_covered(x, scopes));
    }
    false
}

fn all_dests(scopes: &[DestinationSelector]) -> bool {
    scopes.iter().any(|s| {
        s.kube_service_matcher
            .as_ref()
            .is_some_and(|m| star(&m.namespaces) && star(&m.clusters) && m.labels.is_empty())
    })
}

fn dests_covered(p: &[DestinationSelector], scopes: &[DestinationSelector]) -> Result<(), String> {
    if p.is_empty() {
        return if all_dests(scopes) {
            Ok(())
        } else {
            Err("destinationSelector is empty (every destination) and no scope grants namespaces [\"*\"] and clusters [\"*\"]".into())
        };
    }
    for (i, d) in p.iter().enumerate() {
        if !dest_covered(d, scopes) {
            return Err(format!(
                "destinationSelector[{i}] ({}) is outside the scope's destinations",
                short(d)
            ));
        }
    }
    Ok(())
}

fn workloads_covered(p: &[WorkloadSelector], scopes: &[WorkloadSelector]) -> Result<(), String> {
    let scope_matchers: Vec<&KubeMatcher> = scopes
        .iter()
        .filter_map(|s| s.kube_workload_matcher.as_ref())
        .collect();
    if p.is_empty() {
        return if scope_matchers
            .iter()
            .any(|m| star(&m.namespaces) && star(&m.clusters) && m.labels.is_empty())
        {
            Ok(())
        } else {
            Err(
                "sourceSelector is empty (every workload) and no scope grants every workload"
                    .into(),
            )
        };
    }
    for (i, w) in p.iter().enumerate() {
        let ok = w
            .kube_workload_matcher
            .as_ref()
            .is_some_and(|m| scope_matchers.iter().any(|s| matcher_covers(m, s)));
        if !ok {
            return Err(format!(
                "sourceSelector[{i}] is outside the scope's workloads"
            ));
        }
    }
    Ok(())
}

fn identities_covered(p: &[IdentitySelector], scopes: &[IdentitySelector]) -> Result<(), String> {
    let ids: Vec<&KubeIdentityMatcher> = scopes
        .iter()
        .filter_map(|s| s.kube_identity_matcher.as_ref())
        .collect();
    let sas: Vec<&ClusterObjectRef> = scopes
        .iter()
        .filter_map(|s| s.kube_service_account_refs.as_ref())
        .flat_map(|r| r.service_accounts.iter())
        .collect();
    if p.is_empty() {
        return if ids.iter().any(|m| star(&m.namespaces) && star(&m.clusters)) {
            Ok(())
        } else {
            Err(
                "sourceSelector is empty (every identity) and no scope grants every identity"
                    .into(),
            )
        };
    }
    for (i, s) in p.iter().enumerate() {
        let m_ok = s.kube_identity_matcher.as_ref().is_none_or(|m| {
            ids.iter()
                .any(|g| within(&m.namespaces, &g.namespaces) && within(&m.clusters, &g.clusters))
        });
        let r_ok = s.kube_service_account_refs.as_ref().is_none_or(|r| {
            r.service_accounts.iter().all(|sa| {
                sas.contains(&sa)
                    || ids.iter().any(|g| {
                        (star(&g.namespaces) || g.namespaces.contains(&sa.namespace))
                            && (star(&g.clusters) || g.clusters.contains(&sa.cluster_name))
                    })
            })
        });
        if !(m_ok && r_ok) {
            return Err(format!(
                "sourceSelector[{i}] is outside the scope's identities"
            ));
        }
    }
    Ok(())
}

fn short(d: &DestinationSelector) -> String {
    if let Some(m) = &d.kube_service_matcher {
        format!(
            "namespaces {:?}, clusters {:?}, labels {:?}",
            m.namespaces, m.clusters, m.labels
        )
    } else if let Some(r) = &d.kube_service_refs {
        r.services
            .iter()
            .map(|s| format!("{}/{}/{}", s.cluster_name, s.namespace, s.name))
            .collect::<Vec<_>>()
            .join(", ")
    } else {
        "empty".into()
    }
}

/// The actions a TrafficPolicy takes.
pub(crate) fn traffic_actions(b: &TrafficPolicyBody) -> Vec<TrafficPolicyAction> {
    use TrafficPolicyAction::*;
    let mut v = Vec::new();
    let mut put = |set: bool, a| {
        if set {
            v.push(a)
        }
    };
    put(b.traffic_shift.is_some(), TrafficShift);
    put(b.fault_injection.is_some(), FaultInjection);
    put(b.request_timeout.is_some(), RequestTimeout);
    put(b.retries.is_some(), Retries);
    put(b.cors_policy.is_some(), CorsPolicy);
    put(b.mirror.is_some(), Mirror);
    put(b.header_manipulation.is_some(), HeaderManipulation);
    put(b.outlier_detection.is_some(), OutlierDetection);
    put(b.mtls.is_some(), MtlsConfig);
    v
}

fn mesh_refs_within(want: &[ObjectRef], granted: &[ObjectRef]) -> bool {
    granted.iter().any(|g| g.name == "*")
        || want
            .iter()
            .all(|w| granted.iter().any(|g| g.name == w.name))
}

/// The roles bound to `who` (by name; a binding's roleRef namespace, when given, must match).
pub(crate) fn bound_roles<'a>(
    who: &Subject,
    roles: &'a [Role],
    bindings: &[RoleBinding],
) -> Vec<&'a Role> {
    let mut out: Vec<&Role> = Vec::new();
    for b in bindings {
        let applies = b.spec.subjects.iter().any(|s| match s.kind {
            SubjectKind::User => s.name == who.user,
            SubjectKind::Group => who.groups.contains(&s.name),
            SubjectKind::ServiceAccount => {
                who.user
                    == format!(
                        "system:serviceaccount:{}:{}",
                        s.namespace.as_deref().unwrap_or("default"),
                        s.name
                    )
            }
        });
        if !applies {
            continue;
        }
        for r in roles.iter().filter(|r| {
            r.meta.name == b.spec.role_ref.name
                && (b.spec.role_ref.namespace.is_empty()
                    || r.meta.namespace.as_deref().unwrap_or("default")
                        == b.spec.role_ref.namespace)
        }) {
            if !out.iter().any(|x| std::ptr::eq(*x, r)) {
                out.push(r);
            }
        }
    }
    out
}

/// Check each policy against the roles bound to `who`; every policy no scope covers is denied,
/// with the reason of the closest scope.
pub fn check(
    policies: &[&Policy],
    who: &Subject,
    roles: &[Role],
    bindings: &[RoleBinding],
) -> Vec<Denial> {
    let bound = bound_roles(who, roles, bindings);
    let names: Vec<&str> = bound.iter().map(|r| r.meta.name.as_str()).collect();
    let mut out = Vec::new();
    for p in policies {
        let deny = |reason: String| Denial {
            policy: p.id(),
            reason,
        };
        if bound.is_empty() {
            out.push(deny(format!(
                "user {:?} has no meshdeck RoleBinding: nothing may be applied",
                who.user
            )));
            continue;
        }
        let mut reasons: Vec<String> = Vec::new();
        let allowed = match &p.spec {
            Spec::Traffic(t) => {
                let actions = traffic_actions(&t.policy);
                bound
                    .iter()
                    .flat_map(|r| &r.spec.traffic_policy_scopes)
                    .any(|s| {
                        let missing: Vec<&TrafficPolicyAction> = actions
                            .iter()
                            .filter(|a| {
                                !s.traffic_policy_actions.contains(&TrafficPolicyAction::All)
                                    && !s.traffic_policy_actions.contains(a)
                            })
                            .collect();
                        let r = if !missing.is_empty() {
                            Err(format!(
                                "action {} is not in the scope's trafficPolicyActions",
                                serde_json::to_string(missing[0])
                                    .unwrap_or_default()
                                    .trim_matches('"')
                            ))
                        } else {
                            dests_covered(&t.destination_selector, &s.destination_selectors)
                                .and_then(|_| {
                                    workloads_covered(&t.source_selector, &s.workload_selectors)
                                })
                        };
                        r.map_err(|e| reasons.push(e)).is_ok()
                    })
            }
            Spec::Access(a) => bound
                .iter()
                .flat_map(|r| &r.spec.access_policy_scopes)
                .any(|s| {
                    dests_covered(&a.destination_selector, &s.destination_selectors)
                        .and_then(|_| identities_covered(&a.source_selector, &s.identity_selectors))
                        .map_err(|e| reasons.push(e))
                        .is_ok()
                }),
            Spec::VirtualMesh(vm) => {
                let mut actions = Vec::new();
                if vm.mtls_config.is_some() {
                    actions.push(VirtualMeshAction::MtlsConfig);
                }
                if vm.federation.is_some() {
                    actions.push(VirtualMeshAction::Federation);
                }
                if vm.global_access_policy == GlobalAccess::Enabled {
                    actions.push(VirtualMeshAction::GlobalAccessPolicy);
                }
                bound
                    .iter()
                    .flat_map(|r| &r.spec.virtual_mesh_scopes)
                    .any(|s| {
                        let all = s.virtual_mesh_actions.contains(&VirtualMeshAction::All);
                        if let Some(a) = actions
                            .iter()
                            .find(|a| !all && !s.virtual_mesh_actions.contains(a))
                        {
                            reasons.push(format!(
                                "action {} is not in the scope's virtualMeshActions",
                                serde_json::to_string(a)
                                    .unwrap_or_default()
                                    .trim_matches('"')
                            ));
                            false
                        } else if !mesh_refs_within(&vm.meshes, &s.mesh_refs) {
                            reasons.push("a mesh is outside the scope's meshRefs".into());
                            false
                        } else {
                            true
                        }
                    })
            }
            Spec::VirtualDestination(vd) => {
                let dests: Vec<DestinationSelector> = vd
                    .static_
                    .as_ref()
                    .map(|s| {
                        s.destinations
                            .iter()
                            .filter_map(|d| d.kube_service.clone())
                            .map(|k| DestinationSelector {
                                kube_service_matcher: None,
                                kube_service_refs: Some(ServiceRefs { services: vec![k] }),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                bound
                    .iter()
                    .flat_map(|r| &r.spec.virtual_destination_scopes)
                    .any(|s| {
                        dests_covered(&dests, &s.destination_selectors)
                            .map_err(|e| reasons.push(e))
                            .is_ok()
                    })
            }
        };
        if !allowed {
            let why = reasons
                .first()
                .cloned()
                .unwrap_or_else(|| format!("no {} scope in roles {names:?}", p.kind()));
            out.push(deny(format!(
                "not allowed for {:?} by roles {names:?}: {why}",
                who.user
            )));
        }
    }
    out
}

/// Kubernetes RBAC for one planned write: (cluster, namespace, group, plural, verb) → allowed,
/// or the reason the server gave.
pub type AccessKey = (String, String, String, String, String);

/// The access keys a plan needs: create+patch for creates, patch for updates, delete for deletes.
pub fn plan_keys(plan: &crate::plan::Plan) -> Vec<(usize, AccessKey)> {
    use crate::plan::Action;
    let mut out = Vec::new();
    for (i, item) in plan.items.iter().enumerate() {
        let group = item
            .api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
            .to_string();
        let plural = crate::kinds::ISTIO_KINDS
            .iter()
            .chain(crate::kinds::POLICY_KINDS)
            .find(|(g, _, k, _)| *g == group && *k == item.kind)
            .map(|(_, _, _, p)| p.to_string())
            .unwrap_or_else(|| format!("{}s", item.kind.to_ascii_lowercase()));
        let verbs: &[&str] = match item.action {
            Action::Create => &["create", "patch"],
            Action::Update => &["patch"],
            Action::Delete => &["delete"],
            Action::Unchanged | Action::Conflict => &[],
        };
        for v in verbs {
            out.push((
                i,
                (
                    item.cluster.clone(),
                    item.namespace.clone(),
                    group.clone(),
                    plural.clone(),
                    v.to_string(),
                ),
            ));
        }
    }
    out
}

/// Whether a role bound to `who` has a TrafficPolicy scope over this destination (for the
/// per-destination default objects, which no policy owns).
pub fn covers_destination(
    who: &Subject,
    roles: &[Role],
    bindings: &[RoleBinding],
    cluster: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let d = DestinationSelector {
        kube_service_matcher: None,
        kube_service_refs: Some(ServiceRefs {
            services: vec![ClusterObjectRef {
                name: name.into(),
                namespace: namespace.into(),
                cluster_name: cluster.into(),
            }],
        }),
    };
    bound_roles(who, roles, bindings)
        .iter()
        .flat_map(|r| &r.spec.traffic_policy_scopes)
        .any(|s| dest_covered(&d, &s.destination_selectors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(yaml: &str) -> Loaded {
        let l = load_str(yaml, "t.yaml");
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l
    }

    const ROLE: &str = "apiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: Role\nmetadata: {name: team-a, namespace: gloo-mesh}\nspec:\n  trafficPolicyScopes:\n  - trafficPolicyActions: [RETRIES, REQUEST_TIMEOUT]\n    destinationSelectors: [{kubeServiceMatcher: {namespaces: [team-a], clusters: [\"*\"]}}]\n    workloadSelectors: [{kubeWorkloadMatcher: {namespaces: [\"*\"], clusters: [\"*\"]}}]\n---\napiVersion: rbac.enterprise.mesh.gloo.solo.io/v1\nkind: RoleBinding\nmetadata: {name: alice-team-a, namespace: gloo-mesh}\nspec:\n  roleRef: {name: team-a, namespace: gloo-mesh}\n  subjects: [{kind: User, name: alice}]\n";

    fn tp(ns: &str, body: &str) -> String {
        format!(
            "---\napiVersion: networking.mesh.gloo.solo.io/v1\nkind: TrafficPolicy\nmetadata: {{name: p-{ns}, namespace: {ns}}}\nspec:\n  destinationSelector: [{{kubeServiceMatcher: {{namespaces: [{ns}]}}}}]\n  policy:\n{body}"
        )
    }

    #[test]
    fn a_team_role_allows_its_namespace_and_actions_only() {
        let l = loaded(&format!(
            "{ROLE}{}{}{}",
            tp("team-a", "    retries: {attempts: 2}\n"),
            tp("team-b", "    retries: {attempts: 2}\n"),
            tp(
                "team-a",
                "    mirror: {kubeService: {name: x, namespace: team-a, clusterName: c}}\n"
            )
            .replace("p-team-a", "m-team-a")
        ));
        let ps: Vec<&Policy> = l.policies.iter().collect();
        let alice = Subject {
            user: "alice".into(),
            groups: vec![],
        };
        let d = check(&ps, &alice, &l.roles, &l.bindings);
        let denied: Vec<String> = d.iter().map(|d| d.policy.to_string()).collect();
        assert_eq!(
            denied,
            [
                "TrafficPolicy team-b/p-team-b",
                "TrafficPolicy team-a/m-team-a"
            ]
        );
        assert!(
            d[0].reason.contains("destinationSelector[0]") && d[0].reason.contains("team-b"),
            "{}",
            d[0].reason
        );
        assert!(d[1].reason.contains("action MIRROR"), "{}", d[1].reason);
        let bob = Subject {
            user: "bob".into(),
            groups: vec![],
        };
        assert_eq!(
            check(&ps, &bob, &l.roles, &l.bindings).len(),
            3,
            "no binding: nothing"
        );
    }

    #[test]
    fn an_empty_scope_grants_nothing_and_star_grants_all() {
        let role = ROLE.replace("destinationSelectors: [{kubeServiceMatcher: {namespaces: [team-a], clusters: [\"*\"]}}]", "destinationSelectors: [{kubeServiceMatcher: {}}]");
        let l = loaded(&format!(
            "{role}{}",
            tp("team-a", "    retries: {attempts: 2}\n")
        ));
        let ps: Vec<&Policy> = l.policies.iter().collect();
        let alice = Subject {
            user: "alice".into(),
            groups: vec![],
        };
        assert_eq!(check(&ps, &alice, &l.roles, &l.bindings).len(), 1);
        let role = ROLE
            .replace("namespaces: [team-a]", "namespaces: [\"*\"]")
            .replace("[RETRIES, REQUEST_TIMEOUT]", "[ALL]");
        let l = loaded(&format!(
            "{role}{}",
            tp(
                "team-b",
                "    mirror: {kubeService: {name: x, namespace: team-a, clusterName: c}}\n"
            )
        ));
        let ps: Vec<&Policy> = l.policies.iter().collect();
        assert!(check(&ps, &alice, &l.roles, &l.bindings).is_empty());
    }
}
