//! Kubernetes RBAC, asked of the clusters: SelfSubjectAccessReviews for planned writes and
//! SelfSubjectReview ("who am I"). The meshdeck Role checks (pure) are `meshdeck_core::rbac`,
//! re-exported here.

pub use meshdeck_core::rbac::*;

use std::collections::BTreeMap;

/// A cluster's answer to one access review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Review {
    Allowed,
    /// The server said no, with why.
    Denied(String),
    /// No answer (timeout, unreachable, error): the cluster cannot be written now.
    Failed(String),
}

/// Ask each cluster, with one SelfSubjectAccessReview per distinct key, whether the planned
/// writes are allowed, every cluster in parallel, each review within `timeout`. A review is a
/// question: the server evaluates it and stores nothing.
pub async fn access_reviews(
    clients: &BTreeMap<String, kube::Client>,
    keys: &[AccessKey],
    timeout: std::time::Duration,
) -> BTreeMap<AccessKey, Review> {
    let mut by: BTreeMap<&str, Vec<&AccessKey>> = BTreeMap::new();
    for k in keys {
        let v = by.entry(k.0.as_str()).or_default();
        if !v.contains(&k) {
            v.push(k);
        }
    }
    let futs: Vec<_> = by
        .into_iter()
        .map(|(cluster, keys)| async move {
            let mut out = Vec::new();
            let Some(client) = clients.get(cluster) else {
                for k in keys {
                    out.push((
                        k.clone(),
                        Review::Failed(format!("no connection to cluster {cluster}")),
                    ));
                }
                return out;
            };
            // a cluster that does not answer one review will not answer the next
            let mut failed: Option<Review> = None;
            for k in keys {
                if let Some(f) = &failed {
                    out.push((k.clone(), f.clone()));
                    continue;
                }
                let r = match tokio::time::timeout(timeout, review(client, k)).await {
                    Ok(r) => r,
                    Err(_) => Review::Failed(format!(
                        "{cluster}: the access review got no answer within {} s",
                        timeout.as_secs()
                    )),
                };
                if matches!(r, Review::Failed(_)) {
                    failed = Some(r.clone());
                }
                out.push((k.clone(), r));
            }
            out
        })
        .collect();
    futures::future::join_all(futs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn review(client: &kube::Client, key: &AccessKey) -> Review {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let (cluster, namespace, group, plural, verb) = key;
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.clone()),
                group: Some(group.clone()),
                resource: Some(plural.clone()),
                verb: Some(verb.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: kube::Api<SelfSubjectAccessReview> = kube::Api::all(client.clone());
    match api.create(&kube::api::PostParams::default(), &review).await {
        Ok(r) => match r.status {
            Some(s) if s.allowed => Review::Allowed,
            Some(s) => Review::Denied(format!(
                "Kubernetes RBAC in {cluster} denies {verb} {plural}.{group} in namespace {namespace}{}",
                s.reason.map(|r| format!(": {r}")).unwrap_or_default()
            )),
            None => Review::Failed(format!("{cluster}: the access review had no answer")),
        },
        Err(kube::Error::Api(e)) if e.code == 403 => Review::Denied(format!(
            "{cluster}: access review refused: {} (403)",
            e.message
        )),
        Err(e) => Review::Failed(format!(
            "{cluster}: access review failed: {}",
            crate::fleet::describe_error(&e)
        )),
    }
}

/// What a server answered to "who am I": the name; that it cannot say (no SelfSubjectReview
/// API, before Kubernetes 1.27, or not allowed to ask), with why; or a failure worth asking
/// again (a timeout, a 5xx).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoAmI {
    Is(String),
    CannotSay(String),
    Failed(String),
}

/// [`whoami`], telling a server that cannot say from one that failed to answer.
pub async fn whoami_answer(client: &kube::Client) -> WhoAmI {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: kube::Api<SelfSubjectReview> = kube::Api::all(client.clone());
    match api
        .create(
            &kube::api::PostParams::default(),
            &SelfSubjectReview::default(),
        )
        .await
    {
        Ok(r) => match r.status.and_then(|s| s.user_info).and_then(|u| u.username) {
            Some(u) if !u.is_empty() => WhoAmI::Is(u),
            _ => WhoAmI::CannotSay("the server did not say who this is".into()),
        },
        Err(kube::Error::Api(s)) if (403..=405).contains(&s.code) => {
            WhoAmI::CannotSay(format!("{} ({})", s.message, s.code))
        }
        Err(e) => WhoAmI::Failed(crate::fleet::describe_error(&e)),
    }
}

/// Who the server says this client is (SelfSubjectReview, as `kubectl auth whoami`): a
/// question, stored nowhere.
pub async fn whoami(client: &kube::Client) -> Result<String, String> {
    match whoami_answer(client).await {
        WhoAmI::Is(u) => Ok(u),
        WhoAmI::CannotSay(e) | WhoAmI::Failed(e) => Err(e),
    }
}
