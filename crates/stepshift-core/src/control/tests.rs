use super::*;
use crate::deployment::decide;
use crate::judge::VerdictStatus;
use crate::request::HealthSettings;
use crate::strategy::Step;

use crate::deployment::fixtures::{t, verdict};

/// 10% for 10 minutes, 50% (approval) for 10 minutes, then 100% with a 10-minute
/// lock-in; checks every minute.
fn plan(pause_timeout: PauseTimeout) -> Plan {
    let mut p: Plan = serde_json::from_value(serde_json::json!({
        "execution": "exec-1",
        "started_at": t(0),
        "targets": [],
        "steps": [],
        "health": HealthSettings::default(),
        "lock_in_seconds": 600,
        "keep_versions": null,
        "approval_timeout_seconds": 3600,
        "control": "/stepshift/orders/live/control",
    }))
    .unwrap();
    p.steps = vec![
        Step { weight_percent: 10.0, bake_seconds: 600, approval: false },
        Step { weight_percent: 50.0, bake_seconds: 600, approval: true },
        Step { weight_percent: 100.0, bake_seconds: 0, approval: false },
    ];
    p.pause_timeout = pause_timeout;
    p
}

fn command(seq: u64, action: Action) -> Command {
    Command {
        seq,
        execution: "exec-1".into(),
        action,
        by: "arn:aws:iam::123456789012:user/ana".into(),
        reason: Some("ticket 42".into()),
        at: t(100),
    }
}

/// A check at `at` seconds into step `index` (which began at 0), with `status`, then the
/// command applied.
fn check(p: &Plan, before: &Progress, status: VerdictStatus, at: i64, c: Option<Command>) -> Progress {
    let decided = decide(p, before, t(0), verdict(status, at), t(at));
    apply(p, before, decided, c, t(at))
}

fn at_step(p: &Plan, index: usize) -> Progress {
    Progress { cursor: p.cursor(index), ..p.start() }
}

#[test]
fn an_abort_rolls_back_mid_bake_and_names_who_and_why() {
    let p = plan(PauseTimeout::RollBack);
    let next = check(&p, &p.start(), VerdictStatus::Healthy, 120, Some(command(1, Action::Abort)));
    assert_eq!(next.decision, Decision::RollBack);
    assert_eq!(next.control.applied, 1);
    let (name, sentence) = crate::tasks::record::rollback_reason(&p, &next, None);
    assert_eq!(name, "Aborted");
    assert_eq!(
        sentence,
        "aborted at step 1 of 3 (10%) by arn:aws:iam::123456789012:user/ana at 2023-11-14T22:15:00Z: ticket 42"
    );
}

#[test]
fn a_command_is_applied_once_and_only_for_its_execution() {
    let p = plan(PauseTimeout::RollBack);
    let resumed = check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Resume)));
    assert_eq!(
        resumed.control.note.as_deref(),
        Some("resume by arn:aws:iam::123456789012:user/ana (\"ticket 42\"): nothing was paused")
    );
    // Seen again at the next check: nothing happens, the note clears.
    let again = check(&p, &resumed, VerdictStatus::Healthy, 120, Some(command(1, Action::Abort)));
    assert_eq!(again.decision, Decision::Wait, "seq 1 was applied already");
    assert_eq!(again.control.note, None);
    let other = Command { execution: "exec-0".into(), ..command(2, Action::Abort) };
    assert_eq!(check(&p, &resumed, VerdictStatus::Healthy, 120, Some(other)).decision, Decision::Wait);
}

#[test]
fn a_promotion_jumps_to_the_last_step_without_its_approval() {
    let p = plan(PauseTimeout::RollBack);
    let next =
        check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Promote { skip_lock_in: false })));
    assert_eq!(next.decision, Decision::Advance);
    assert!(next.cursor.promote && !next.cursor.approval);
    assert_eq!(next.cursor.index, 2);
    assert_eq!(next.cursor.wait_seconds, 60, "the lock-in is watched");
    // Skipping the lock-in: the first check after promotion confirms.
    let skip =
        check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Promote { skip_lock_in: true })));
    assert_eq!((skip.cursor.wait_seconds, skip.control.skip_lock_in), (0, true));
}

#[test]
fn health_beats_a_promotion() {
    let p = plan(PauseTimeout::RollBack);
    let next =
        check(&p, &p.start(), VerdictStatus::Unhealthy, 60, Some(command(1, Action::Promote { skip_lock_in: true })));
    assert_eq!(next.decision, Decision::RollBack);
    assert!(next.control.note.as_deref().unwrap().ends_with("not done, the check decided to roll back"));
    assert_eq!(crate::tasks::record::rollback_reason(&p, &next, None).0, "Unhealthy");
}

#[test]
fn promote_in_the_lock_in_ends_it_only_when_asked() {
    let p = plan(PauseTimeout::RollBack);
    let lock_in = at_step(&p, 2);
    let kept =
        check(&p, &lock_in, VerdictStatus::Healthy, 60, Some(command(1, Action::Promote { skip_lock_in: false })));
    assert_eq!(kept.decision, Decision::Wait);
    let ended =
        check(&p, &lock_in, VerdictStatus::Healthy, 60, Some(command(1, Action::Promote { skip_lock_in: true })));
    assert_eq!(ended.decision, Decision::Confirm);
}

#[test]
fn a_pause_holds_the_step_and_the_checks_go_on() {
    let p = plan(PauseTimeout::RollBack);
    let paused = check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Pause { until: t(900) })));
    assert_eq!(paused.decision, Decision::Wait);
    // The bake is over at 600 s, but the step holds.
    let held = check(&p, &paused, VerdictStatus::Healthy, 660, None);
    assert_eq!((held.decision, held.cursor.index, held.cursor.wait_seconds), (Decision::Wait, 0, 60));
    // Near the end, the wait is cut to the pause's end.
    let near = check(&p, &held, VerdictStatus::Healthy, 870, None);
    assert_eq!(near.cursor.wait_seconds, 30);
    // An unhealthy check still rolls back.
    assert_eq!(check(&p, &held, VerdictStatus::Unhealthy, 700, None).decision, Decision::RollBack);
    // A resume lets the step end.
    let resumed = check(&p, &held, VerdictStatus::Healthy, 720, Some(command(2, Action::Resume)));
    assert_eq!((resumed.decision, resumed.cursor.index), (Decision::Advance, 1));
    assert_eq!(resumed.control.paused, None);
}

#[test]
fn a_pause_that_runs_out_rolls_back_or_goes_on() {
    let p = plan(PauseTimeout::RollBack);
    let paused = check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Pause { until: t(900) })));
    let out = check(&p, &paused, VerdictStatus::Healthy, 900, None);
    assert_eq!(out.decision, Decision::RollBack);
    let (name, sentence) = crate::tasks::record::rollback_reason(&p, &out, None);
    assert_eq!(name, "PauseTimedOut");
    assert!(sentence.contains("was not resumed by 2023-11-14T22:28:20Z (pause_timeout: roll_back)"), "{sentence}");

    let p = plan(PauseTimeout::Resume);
    let paused = check(&p, &p.start(), VerdictStatus::Healthy, 60, Some(command(1, Action::Pause { until: t(900) })));
    let out = check(&p, &paused, VerdictStatus::Healthy, 900, None);
    assert_eq!((out.decision, out.cursor.index), (Decision::Advance, 1));
}

#[test]
fn a_pause_in_the_lock_in_delays_the_confirmation() {
    let p = plan(PauseTimeout::RollBack);
    let lock_in = at_step(&p, 2);
    let paused = check(&p, &lock_in, VerdictStatus::Healthy, 600, Some(command(1, Action::Pause { until: t(1200) })));
    assert_eq!((paused.decision, paused.cursor.promote), (Decision::Wait, true));
}

#[test]
fn pending_aborts_and_promotions_stand() {
    let pause = Action::Pause { until: t(1) };
    let promote = Action::Promote { skip_lock_in: false };
    assert!(!Action::Abort.replaceable_by(&promote));
    assert!(promote.replaceable_by(&Action::Abort) && !promote.replaceable_by(&pause));
    assert!(pause.replaceable_by(&Action::Resume) && Action::Resume.replaceable_by(&Action::Abort));
}

#[test]
fn the_record_is_json_with_the_command_named() {
    let c = command(3, Action::Promote { skip_lock_in: true });
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["action"], serde_json::json!({"command": "promote", "skip_lock_in": true}));
    assert_eq!(serde_json::from_value::<Command>(v).unwrap(), c);
    assert!(serde_json::from_str::<Action>(r#"{"command": "explode"}"#).is_err());
}

#[tokio::test]
async fn read_ignores_other_executions_and_broken_records() {
    let store = crate::memory::MemoryAws::default();
    let name = "/stepshift/orders/live/control";
    assert_eq!(read(&store, name, "exec-1").await.unwrap(), None);
    store.put(name, &serde_json::to_string(&command(1, Action::Abort)).unwrap()).await.unwrap();
    assert_eq!(read(&store, name, "exec-1").await.unwrap(), Some(command(1, Action::Abort)));
    assert_eq!(read(&store, name, "exec-2").await.unwrap(), None);
    store.put(name, "not json").await.unwrap();
    assert_eq!(read(&store, name, "exec-1").await.unwrap(), None);
}
