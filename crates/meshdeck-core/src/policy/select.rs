//! Selectors matched against plain values (cluster, namespace, name, labels). A list of
//! selectors is OR; an empty list matches everything; inside one matcher every given field must
//! hold and an empty field means "any".

use super::types::*;
use std::collections::BTreeMap;

fn any_or(list: &[String], v: &str) -> bool {
    list.is_empty() || list.iter().any(|x| x == v)
}

/// Whether `have` carries every label of `want` (an empty `want` selects everything).
pub(crate) fn labels_match(want: &Labels, have: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

impl KubeMatcher {
    pub fn matches(
        &self,
        cluster: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        any_or(&self.clusters, cluster)
            && any_or(&self.namespaces, namespace)
            && labels_match(&self.labels, labels)
    }
}

impl DestinationSelector {
    pub fn matches(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        if let Some(m) = &self.kube_service_matcher {
            return m.matches(cluster, namespace, labels);
        }
        if let Some(r) = &self.kube_service_refs {
            return r
                .services
                .iter()
                .any(|s| s.name == name && s.namespace == namespace && s.cluster_name == cluster);
        }
        false
    }
}

/// Whether a workload is selected as a source (empty list: every workload).
pub fn workload_selected(
    sels: &[WorkloadSelector],
    cluster: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    sels.is_empty()
        || sels.iter().any(|s| match &s.kube_workload_matcher {
            Some(m) => m.matches(cluster, namespace, labels),
            None => true,
        })
}

/// Whether any source of these selectors can live in `cluster`.
pub fn sources_admit_cluster(sels: &[WorkloadSelector], cluster: &str) -> bool {
    sels.is_empty()
        || sels.iter().any(|s| match &s.kube_workload_matcher {
            Some(m) => any_or(&m.clusters, cluster),
            None => true,
        })
}

/// Whether an identity (a workload's service account in a namespace and cluster) is selected.
pub fn identity_selected(
    sels: &[IdentitySelector],
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> bool {
    sels.is_empty()
        || sels.iter().any(|s| {
            s.kube_identity_matcher
                .as_ref()
                .is_some_and(|m| any_or(&m.clusters, cluster) && any_or(&m.namespaces, namespace))
                || s.kube_service_account_refs.as_ref().is_some_and(|r| {
                    r.service_accounts.iter().any(|sa| {
                        sa.name == service_account
                            && sa.namespace == namespace
                            && (sa.cluster_name.is_empty() || sa.cluster_name == cluster)
                    })
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn destination_selectors() {
        let m = DestinationSelector {
            kube_service_matcher: Some(KubeMatcher {
                labels: labels(&[("app", "reviews")]),
                namespaces: vec!["bookinfo".into()],
                clusters: vec![],
            }),
            kube_service_refs: None,
        };
        let l = labels(&[("app", "reviews"), ("x", "y")]);
        assert!(m.matches("east", "bookinfo", "reviews", &l));
        assert!(!m.matches("east", "default", "reviews", &l));
        assert!(!m.matches(
            "east",
            "bookinfo",
            "reviews",
            &labels(&[("app", "ratings")])
        ));
        let r = DestinationSelector {
            kube_service_matcher: None,
            kube_service_refs: Some(ServiceRefs {
                services: vec![ClusterObjectRef {
                    name: "reviews".into(),
                    namespace: "bookinfo".into(),
                    cluster_name: "west".into(),
                }],
            }),
        };
        assert!(r.matches("west", "bookinfo", "reviews", &l));
        assert!(!r.matches("east", "bookinfo", "reviews", &l));
        // either selector of a list selects
        let any = |c: &str| {
            [&m, &r]
                .iter()
                .any(|s| s.matches(c, "bookinfo", "reviews", &BTreeMap::new()))
        };
        assert!(any("west"));
        assert!(!any("east"));
    }

    #[test]
    fn workload_and_identity_selectors() {
        let w = WorkloadSelector {
            kube_workload_matcher: Some(KubeMatcher {
                labels: labels(&[("app", "productpage")]),
                namespaces: vec![],
                clusters: vec!["east".into()],
            }),
        };
        let l = labels(&[("app", "productpage")]);
        assert!(workload_selected(
            std::slice::from_ref(&w),
            "east",
            "any",
            &l
        ));
        assert!(!workload_selected(
            std::slice::from_ref(&w),
            "west",
            "any",
            &l
        ));
        assert!(sources_admit_cluster(std::slice::from_ref(&w), "east"));
        assert!(!sources_admit_cluster(&[w], "west"));
        let id = IdentitySelector {
            kube_identity_matcher: None,
            kube_service_account_refs: Some(ServiceAccountRefs {
                service_accounts: vec![ClusterObjectRef {
                    name: "bookinfo-productpage".into(),
                    namespace: "bookinfo".into(),
                    cluster_name: "east".into(),
                }],
            }),
        };
        assert!(identity_selected(
            std::slice::from_ref(&id),
            "east",
            "bookinfo",
            "bookinfo-productpage"
        ));
        assert!(!identity_selected(
            std::slice::from_ref(&id),
            "west",
            "bookinfo",
            "bookinfo-productpage"
        ));
        assert!(!identity_selected(&[id], "east", "bookinfo", "default"));
    }
}
