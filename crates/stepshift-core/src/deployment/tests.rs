use super::*;
use crate::judge::VerdictStatus;
use crate::request::HealthSettings;
use crate::strategy::Step;

use super::fixtures::{t, verdict};

fn plan(steps: &[(f64, u64, bool)], lock_in: u64, health: HealthSettings) -> Plan {
    Plan {
        execution: "exec".into(),
        started_at: t(0),
        router: Default::default(),
        syncs: false,
        targets: Vec::new(),
        steps: steps
            .iter()
            .map(|&(weight_percent, bake_seconds, approval)| Step { weight_percent, bake_seconds, approval })
            .collect(),
        health,
        lock_in_seconds: lock_in,
        keep_versions: None,
        approval_timeout_seconds: 3600,
        fast_path: None,
        hooks: Default::default(),
        control: None,
        pause_timeout: Default::default(),
    }
}

/// A canary checked once at the end of each bake.
fn canary() -> Plan {
    let once = HealthSettings { check_interval_seconds: Some(crate::request::MAX_WAIT_SECONDS), ..Default::default() };
    plan(&[(10.0, 300, false), (100.0, 0, true)], 600, once)
}

#[test]
fn checks_every_minute_by_default() {
    let p = plan(&[(10.0, 300, false), (100.0, 0, true)], 600, HealthSettings::default());
    assert_eq!(p.start().cursor.wait_seconds, 60);
    assert_eq!(p.cursor(1).wait_seconds, 60, "the lock-in too");
    let first = Progress {
        cursor: p.cursor(0),
        decision: Decision::Advance,
        verdict: None,
        steps: Vec::new(),
        control: Default::default(),
    };
    let next = decide(&p, &first, t(0), verdict(VerdictStatus::Healthy, 60), t(60));
    assert_eq!((next.decision, next.cursor.wait_seconds), (Decision::Wait, 60));
    let last = decide(&p, &first, t(0), verdict(VerdictStatus::Healthy, 270), t(270));
    assert_eq!((last.decision, last.cursor.wait_seconds), (Decision::Wait, 30), "never past the bake's end");
}

#[test]
fn cursors_follow_the_steps() {
    let p = canary();
    let first = p.start();
    assert_eq!(first.decision, Decision::Advance);
    assert_eq!(
        first.cursor,
        Cursor {
            index: 0,
            weight_percent: 10.0,
            approval: false,
            promote: false,
            wait_seconds: 300,
            extensions_used: 0
        }
    );
    let last = p.cursor(1);
    assert!(last.promote && last.approval);
    assert_eq!(last.wait_seconds, 600, "the promotion step is watched for the lock-in");
}

#[test]
fn healthy_after_the_bake_advances() {
    let p = canary();
    let next = decide(&p, &p.start(), t(0), verdict(VerdictStatus::Healthy, 300), t(300));
    assert_eq!(next.decision, Decision::Advance);
    assert_eq!(next.cursor.index, 1);
    assert!(next.cursor.promote);
    assert_eq!(next.steps.len(), 1);
    assert_eq!((next.steps[0].checks, next.steps[0].status), (1, VerdictStatus::Healthy));
    assert_eq!(next.verdict.as_ref().unwrap().status, VerdictStatus::Healthy);
}

#[test]
fn unhealthy_rolls_back_even_mid_bake() {
    let p = canary();
    let next = decide(&p, &p.start(), t(0), verdict(VerdictStatus::Unhealthy, 60), t(60));
    assert_eq!(next.decision, Decision::RollBack);
    assert_eq!(next.cursor.index, 0);
}

#[test]
fn early_checks_wait_out_the_bake_in_intervals() {
    let h = HealthSettings { check_interval_seconds: Some(120), ..HealthSettings::default() };
    let p = plan(&[(10.0, 300, false), (100.0, 0, false)], 0, h);
    assert_eq!(p.start().cursor.wait_seconds, 120);
    let second = decide(&p, &p.start(), t(0), verdict(VerdictStatus::Healthy, 120), t(120));
    assert_eq!((second.decision, second.cursor.wait_seconds), (Decision::Wait, 120));
    let third = decide(&p, &second, t(0), verdict(VerdictStatus::Inconclusive, 240), t(240));
    assert_eq!((third.decision, third.cursor.wait_seconds), (Decision::Wait, 60), "only the rest of the bake");
    assert_eq!(third.cursor.extensions_used, 0, "no extension is spent inside the bake");
    let done = decide(&p, &third, t(0), verdict(VerdictStatus::Healthy, 300), t(300));
    assert_eq!(done.decision, Decision::Advance);
    assert_eq!(done.steps[0].checks, 3);
}

#[test]
fn inconclusive_extends_then_follows_the_policy() {
    let mut h = HealthSettings::default();
    h.insufficient_data.extensions = 2;
    h.insufficient_data.extension_seconds = 90;
    let p = plan(&[(10.0, 300, false), (100.0, 0, false)], 0, h.clone());
    let mut progress = p.start();
    let mut now = 300;
    for used in 1..=2 {
        progress = decide(&p, &progress, t(0), verdict(VerdictStatus::Inconclusive, now), t(now));
        assert_eq!(progress.decision, Decision::Wait);
        assert_eq!((progress.cursor.wait_seconds, progress.cursor.extensions_used), (90, used));
        now += 90;
    }
    let last = decide(&p, &progress, t(0), verdict(VerdictStatus::Inconclusive, now), t(now));
    assert_eq!(last.decision, Decision::RollBack);
    assert_eq!(last.steps[0].extensions, 2);

    h.insufficient_data.then = crate::request::WhenInsufficient::Proceed;
    let lenient = plan(&[(10.0, 300, false), (100.0, 0, false)], 0, h);
    let go = decide(&lenient, &progress, t(0), verdict(VerdictStatus::Inconclusive, now), t(now));
    assert_eq!(go.decision, Decision::Advance);
    assert_eq!(go.cursor.index, 1);
    assert_eq!(go.cursor.extensions_used, 0, "extensions reset at the next step");
}

#[test]
fn lock_in_ends_in_confirm() {
    let p = canary();
    let promoting = Progress {
        cursor: p.cursor(1),
        decision: Decision::Advance,
        verdict: None,
        steps: Vec::new(),
        control: Default::default(),
    };
    let early = decide(&p, &promoting, t(1000), verdict(VerdictStatus::Healthy, 1300), t(1300));
    assert_eq!((early.decision, early.cursor.wait_seconds), (Decision::Wait, 300));
    let done = decide(&p, &early, t(1000), verdict(VerdictStatus::Healthy, 1600), t(1600));
    assert_eq!(done.decision, Decision::Confirm);
    let bad = decide(&p, &early, t(1000), verdict(VerdictStatus::Unhealthy, 1600), t(1600));
    assert_eq!(bad.decision, Decision::RollBack);
}

#[test]
fn traffic_tracks_revisions_per_alias() {
    let mut tr =
        Traffic { weight_percent: 0.0, step_started_at: None, revisions: Vec::new(), pending_changes: Vec::new() };
    tr.set_revision("a", "live", "r1".into());
    tr.set_revision("b", "live", "r2".into());
    tr.set_revision("a", "live", "r3".into());
    assert_eq!(tr.revision("a", "live"), Some("r3"));
    assert_eq!(tr.revision("b", "live"), Some("r2"));
    assert_eq!(tr.revision("c", "live"), None);
    assert_eq!(tr.revisions.len(), 2);
}
