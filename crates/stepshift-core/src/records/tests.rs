use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::memory::{Call, MemoryAws};

fn keys() -> RecordKeys {
    RecordKeys::new(DEFAULT_PREFIX, "orders", "live")
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_secs(1_700_000_000 + secs)
}

fn lock(execution: &str) -> Lock {
    Lock { execution: execution.into(), candidate: "42".into(), acquired_at: at(0) }
}

fn entry(execution: &str, event: HistoryEvent) -> HistoryEntry {
    HistoryEntry {
        at: at(1),
        event,
        execution: Some(execution.into()),
        from: Some("41".into()),
        to: Some("42".into()),
        detail: None,
    }
}

#[test]
fn names_are_documented_paths() {
    assert_eq!(keys().name("current-version"), "/stepshift/orders/live/current-version");
    assert_eq!(keys().lock(), "/stepshift/orders/live/lock");
    assert!(validate_prefix("/stepshift").is_ok());
    assert!(validate_prefix("/teams/payments/stepshift").is_ok());
    for bad in ["stepshift", "/stepshift/", "/a//b", "/with space", ""] {
        assert!(validate_prefix(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn records_round_trip_and_only_changes_are_written() {
    let aws = MemoryAws::new(at(0));
    let empty = load(&aws, &keys()).await.unwrap();
    assert_eq!(empty, AliasRecords::default());

    let first = VersionRecords {
        current: Some("42".into()),
        previous: Some("41".into()),
        last_known_good: None,
        deployed_at: Some(at(5)),
    };
    save(&aws, &keys(), &empty.records, &first).await.unwrap();
    assert_eq!(
        aws.parameter("/stepshift/orders/live/deployment-timestamp").as_deref(),
        Some(at(5).to_rfc3339().as_str())
    );
    assert_eq!(load(&aws, &keys()).await.unwrap().records, first);

    let puts = aws.calls()[&Call::PutParameter];
    let second = VersionRecords { last_known_good: Some("42".into()), ..first.clone() };
    save(&aws, &keys(), &first, &second).await.unwrap();
    assert_eq!(aws.calls()[&Call::PutParameter], puts + 1, "only last-known-good changed");

    let cleared = VersionRecords { previous: None, ..second.clone() };
    save(&aws, &keys(), &second, &cleared).await.unwrap();
    assert_eq!(aws.parameter("/stepshift/orders/live/previous-version"), None);
}

#[tokio::test]
async fn history_is_idempotent_per_execution_and_event() {
    let aws = MemoryAws::new(at(0));
    let h = append_history(&aws, &keys(), &[], entry("exec-1", HistoryEvent::Started)).await.unwrap();
    let h = append_history(&aws, &keys(), &h, entry("exec-1", HistoryEvent::Started)).await.unwrap();
    assert_eq!(h.len(), 1);
    let h = append_history(&aws, &keys(), &h, entry("exec-1", HistoryEvent::Promoted)).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(load(&aws, &keys()).await.unwrap().history, h);
}

#[tokio::test]
async fn history_is_bounded_by_count_and_size() {
    let aws = MemoryAws::new(at(0));
    let mut h = Vec::new();
    for i in 0..30 {
        h = append_history(&aws, &keys(), &h, entry(&format!("exec-{i}"), HistoryEvent::Started)).await.unwrap();
    }
    assert_eq!(h.len(), HISTORY_ENTRIES);
    assert_eq!(h.last().unwrap().execution.as_deref(), Some("exec-29"), "the newest entries are kept");

    let big = HistoryEntry { detail: Some("x".repeat(1500)), ..entry("exec-big", HistoryEvent::RolledBack) };
    let h = append_history(&aws, &keys(), &h, big).await.unwrap();
    let stored = aws.parameter("/stepshift/orders/live/history").unwrap();
    assert!(stored.len() <= HISTORY_BYTES, "{} bytes", stored.len());
    assert_eq!(h.last().unwrap().execution.as_deref(), Some("exec-big"));
}

#[tokio::test]
async fn lock_is_exclusive_but_reentrant_for_its_holder() {
    let aws = MemoryAws::new(at(0));
    acquire_lock(&aws, &keys(), "orders:live", &lock("exec-1")).await.unwrap();
    acquire_lock(&aws, &keys(), "orders:live", &lock("exec-1")).await.unwrap();
    let err = acquire_lock(&aws, &keys(), "orders:live", &lock("exec-2")).await.unwrap_err();
    match &err {
        TaskError::DeploymentInProgress { holder, candidate, .. } => {
            assert_eq!(holder, "exec-1");
            assert_eq!(candidate, "42");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("orders:live is already being deployed by exec-1"), "{err}");

    assert!(!release_lock(&aws, &keys(), "exec-2").await.unwrap(), "a non-holder cannot release");
    assert!(aws.parameter(&keys().lock()).is_some());
    assert!(release_lock(&aws, &keys(), "exec-1").await.unwrap());
    assert!(aws.parameter(&keys().lock()).is_none());
    assert!(!release_lock(&aws, &keys(), "exec-1").await.unwrap(), "releasing twice is harmless");
    acquire_lock(&aws, &keys(), "orders:live", &lock("exec-2")).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_lock_counts_as_held() {
    let aws = MemoryAws::new(at(0));
    aws.put_parameter(&keys().lock(), "not json");
    let err = acquire_lock(&aws, &keys(), "orders:live", &lock("exec-1")).await.unwrap_err();
    assert_eq!(err.name(), "DeploymentInProgress");
    assert!(err.to_string().contains("unreadable lock value"), "{err}");
}

fn strings(v: &[u64]) -> Vec<String> {
    v.iter().map(u64::to_string).collect()
}

#[test]
fn pruning_keeps_the_newest_and_the_protected() {
    let published = strings(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let protected: HashSet<String> = strings(&[2, 8]).into_iter().collect();
    assert_eq!(versions_to_prune(&published, 3, &protected), strings(&[1, 3, 4, 5]));
    assert_eq!(versions_to_prune(&published, 10, &protected), Vec::<String>::new());
    assert_eq!(
        versions_to_prune(&strings(&[10, 9, 2]), 1, &HashSet::new()),
        strings(&[2, 9]),
        "numeric, not text, order"
    );
    let with_latest = vec!["$LATEST".to_owned(), "1".into(), "2".into()];
    assert_eq!(versions_to_prune(&with_latest, 1, &HashSet::new()), strings(&[1]));
}

proptest! {
    #[test]
    fn pruning_never_touches_protected_or_newest(
        versions in proptest::collection::btree_set(1u64..200, 0..40),
        keep in 0usize..10,
        protected in proptest::collection::btree_set(1u64..200, 0..5),
    ) {
        let published: Vec<String> = versions.iter().map(u64::to_string).collect();
        let protected: HashSet<String> = protected.iter().map(u64::to_string).collect();
        let doomed = versions_to_prune(&published, keep, &protected);
        let newest: Vec<u64> = versions.iter().rev().take(keep).copied().collect();
        for d in &doomed {
            prop_assert!(!protected.contains(d));
            prop_assert!(!newest.contains(&d.parse::<u64>().unwrap()));
            prop_assert!(published.contains(d));
        }
        let expected = versions.len().saturating_sub(keep)
            - versions.iter().rev().skip(keep).filter(|v| protected.contains(&v.to_string())).count();
        prop_assert_eq!(doomed.len(), expected);
    }
}

#[tokio::test]
async fn a_retried_release_removes_a_command_given_after_the_lock_was_released() {
    let aws = MemoryAws::new(at(0));
    acquire_lock(&aws, &keys(), "orders:live", &lock("exec-1")).await.unwrap();
    assert!(release_lock(&aws, &keys(), "exec-1").await.unwrap());
    // The task failed after releasing (a later call was throttled); a person aborts the
    // still-running execution before the retry.
    let abort = |execution: &str| crate::control::Command {
        seq: 1,
        execution: execution.into(),
        action: crate::control::Action::Abort,
        by: "arn:aws:iam::000000000000:user/operator".into(),
        reason: None,
        at: at(10),
    };
    aws.put_parameter(&keys().control(), &serde_json::to_string(&abort("exec-1")).unwrap());
    assert!(!release_lock(&aws, &keys(), "exec-1").await.unwrap(), "no lock to release");
    assert!(aws.parameter(&keys().control()).is_none(), "its command went with it");
    // Another deployment's command is not this one's to remove.
    aws.put_parameter(&keys().control(), &serde_json::to_string(&abort("exec-2")).unwrap());
    assert!(!release_lock(&aws, &keys(), "exec-1").await.unwrap());
    assert!(aws.parameter(&keys().control()).is_some());
}
