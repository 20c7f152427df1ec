//! Unknown is not ok: the health rules for clusters without current data, and for stale ones.

use meshdeck::model::{ClusterInput, ConnState, Level, derive_cluster};

fn demo() -> ClusterInput {
    meshdeck::sim::fixture::demo_input(0, "eu-west", None, 7, chrono::Utc::now())
}

#[test]
fn a_cluster_without_current_data_is_unknown_never_ok() {
    for (state, reason) in [
        (ConnState::Connecting, "no data yet: connecting"),
        (
            ConnState::Syncing {
                synced: 3,
                total: 9,
            },
            "no data yet: syncing (3/9 kinds listed)",
        ),
        (
            ConnState::Unreachable {
                since: "t".into(),
                error: "connection refused".into(),
            },
            "unreachable: connection refused",
        ),
        (
            ConnState::AuthError {
                error: "Unauthorized (401)".into(),
            },
            "auth-error: Unauthorized (401)",
        ),
    ] {
        // nothing listed yet
        let c = derive_cluster(&ClusterInput::default(), state.clone());
        assert_eq!(c.health.level, Level::Unknown, "{state:?}");
        assert_eq!(c.health.reasons.first().map(String::as_str), Some(reason));
        // data from before, but none current: still not ok
        let c = derive_cluster(&demo(), state.clone());
        assert!(
            c.health.level >= Level::Unknown,
            "{state:?}: {:?}",
            c.health
        );
        assert!(c.health.reasons.iter().any(|r| r == reason) || c.health.level > Level::Unknown);
    }
    // synced and empty: nothing is wrong
    let c = derive_cluster(&ClusterInput::default(), ConnState::Synced);
    assert_eq!(c.health.level, Level::Ok);
}

#[test]
fn a_stale_cluster_keeps_its_last_health_marked_stale() {
    let synced = derive_cluster(&demo(), ConnState::Synced);
    let stale = derive_cluster(
        &demo(),
        ConnState::Stale {
            since: "t".into(),
            error: "connection reset".into(),
        },
    );
    assert_eq!(stale.health.level, synced.health.level);
    assert!(stale.health.stale.is_some());
    assert!(stale.workloads.iter().all(|w| w.health.stale.is_some()));
    assert_eq!(
        stale
            .workloads
            .iter()
            .map(|w| w.health.level)
            .collect::<Vec<_>>(),
        synced
            .workloads
            .iter()
            .map(|w| w.health.level)
            .collect::<Vec<_>>()
    );
    // a stale cluster with nothing known is unknown
    let empty = derive_cluster(
        &ClusterInput::default(),
        ConnState::Stale {
            since: "t".into(),
            error: "x".into(),
        },
    );
    assert_eq!(empty.health.level, Level::Unknown);
}
