//! Run-time control ([`stepshift_core::control`]) on the real ASL: a person's abort,
//! promotion, pause and resume, given at every kind of point of a simulated deployment
//! (mid-bake, at every second around a check, at an approval pause, during a step's
//! tests, during the lock-in), racing a rollback, and what is left at the end.

use serde_json::json;
use stepshift_core::State;
use stepshift_core::control::Action as Command;
use stepshift_core::ports::AliasRouting;
use stepshift_local::asl::Event;
use stepshift_local::runner::{Action, SIMULATED_OPERATOR, TimedAction};
use stepshift_local::sim::{Behavior, Change, VersionModel};
use stepshift_local::{Answer, Outcome, Scenario, Simulation};
use stepshift_tests::*;

const CONTROL: &str = "/stepshift/orders/live/control";

fn command(after_seconds: u64, command: Command, reason: &str) -> TimedAction {
    TimedAction { after_seconds, action: Action::Command { command, reason: Some(reason.into()) } }
}

fn given(mut s: Scenario, commands: Vec<TimedAction>) -> Scenario {
    s.actions.extend(commands);
    s
}

fn run(s: Scenario, request: serde_json::Value) -> Outcome {
    Simulation::new(s).unwrap().run(request)
}

/// Seconds from the start to the first time `state` was entered.
fn entered(o: &Outcome, state: State) -> Option<i64> {
    let start = o.history.first()?.timestamp;
    o.history
        .iter()
        .find(|e| e.kind.ends_with("StateEntered") && e.details["name"] == state.as_str())
        .map(|e| e.timestamp.secs_since(start))
}

fn count(o: &Outcome, state: State) -> usize {
    o.path.iter().filter(|s| **s == state).count()
}

/// The check outputs' `control.note`s, in order.
fn notes(o: &Outcome) -> Vec<String> {
    o.history
        .iter()
        .filter(|e: &&Event| e.kind == "LambdaFunctionSucceeded")
        .filter_map(|e| e.details["output"]["control"]["note"].as_str().map(str::to_owned))
        .collect()
}

/// Every deployment ends clean: the alias on one version, no lock, no control record.
fn assert_clean(o: &Outcome, version: &str) {
    assert_settled(o, "orders", version);
    assert_eq!(o.parameter("/stepshift/orders/live/lock"), None, "the lock is released");
    assert_eq!(o.parameter(CONTROL), None, "the control record is deleted at the end");
}

#[test]
fn an_abort_mid_bake_rolls_back_at_the_next_check_and_names_who_and_why() {
    let s = given(scenario(steady(stable())), vec![command(4 * 60 + 10, Command::Abort, "ticket 42: checkout errors")]);
    let o = run(s, request(json!("canary-10-15m")));
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(
        cause.starts_with("Rolled back orders:live from 42 to 41: aborted at step 1 of 2 (10%) by ")
            && cause.contains(SIMULATED_OPERATOR)
            && cause.ends_with(": ticket 42: checkout errors."),
        "{cause}"
    );
    let rolled_back = entered(&o, State::RollBack).unwrap();
    assert!((250..=250 + 61).contains(&rolled_back), "applied at the next check: {rolled_back} s");
    assert_clean(&o, "41");
    let history: Vec<String> = history(&o, "orders").iter().map(|h| h["event"].as_str().unwrap().to_owned()).collect();
    assert_eq!(history, ["started", "rolled_back"]);
    assert!(notes(&o)[0].starts_with("abort by arn:"), "the check's output records it: {:?}", notes(&o));
}

#[test]
fn an_abort_at_any_second_around_a_check_is_applied_within_one_interval() {
    // Checks run every 60 s, each task takes 2 s of virtual time here; a command given
    // at any second of a minute (before, during or after a check) rolls back within one
    // interval and the check's own time (a check reads the record when it starts).
    for second in 120..=181 {
        let mut s = given(scenario(steady(stable())), vec![command(second, Command::Abort, "now")]);
        s.task_millis = 2_000;
        let o = run(s, request(json!("canary-10-15m")));
        assert_eq!(o.error.as_deref(), Some("Aborted"), "at {second} s: {:?}", o.cause);
        let delay = entered(&o, State::RollBack).unwrap() - second as i64;
        assert!((0..=64).contains(&delay), "an abort at {second} s rolled back {delay} s later");
        assert_clean(&o, "41");
    }
}

#[test]
fn an_abort_racing_an_unhealthy_verdict_rolls_back_once() {
    for second in [55, 60, 61, 62, 65] {
        let s = given(scenario(failing(0.3)), vec![command(second, Command::Abort, "race")]);
        let o = run(s, request(json!("canary-10-15m")));
        assert_eq!(o.status, "FAILED");
        assert!(matches!(o.error.as_deref(), Some("Unhealthy" | "Aborted")), "{:?}", o.error);
        assert_eq!(count(&o, State::RollBack), 1, "one rollback: {:?}", o.path);
        assert_eq!(count(&o, State::RecordRollback), 1);
        assert_clean(&o, "41");
    }
}

/// When the approval pause of [`approval_request`] begins (after the first step's bake
/// and its extensions), in a run with no command.
fn approval_pause_at() -> u64 {
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Approve { after_seconds: 500 }];
    entered(&run(s, approval_request()), State::AwaitApproval).unwrap() as u64
}

/// An approval that comes 500 s into the pause, and `c` 30 s into it.
fn at_the_approval(c: Command, reason: &str) -> (Scenario, u64) {
    let at = approval_pause_at() + 30;
    let mut s = scenario(steady(stable()));
    s.approvals = vec![Answer::Approve { after_seconds: 500 }];
    s.actions.push(command(at, c, reason));
    (s, at)
}

#[test]
fn an_abort_at_an_approval_pause_fails_the_pause_at_once() {
    let (s, at) = at_the_approval(Command::Abort, "not today");
    let o = run(s, approval_request());
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(cause.contains("aborted at step 2 of 3 (50%) while it waited for approval: by "), "{cause}");
    assert!(cause.ends_with(": not today."), "{cause}");
    let rolled_back = entered(&o, State::RollBack).unwrap();
    assert!((rolled_back - at as i64).abs() <= 1, "at once ({rolled_back} s), not at the approval's answer");
    assert_clean(&o, "41");
}

#[test]
fn a_promotion_at_an_approval_pause_approves_it_and_promotes_at_the_next_check() {
    let (s, at) = at_the_approval(Command::Promote { skip_lock_in: false }, "hotfix");
    let o = run(s, approval_request());
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_clean(&o, "42");
    let promoted = entered(&o, State::Promote).unwrap();
    assert!(promoted <= at as i64 + 61, "promoted at the first check after the approval: {promoted} s");
    assert!(notes(&o).iter().any(|n| n.ends_with(": promoting now")), "{:?}", notes(&o));
}

#[test]
fn pause_and_resume_are_refused_at_an_approval_pause() {
    let (s, _) = at_the_approval(Command::Resume, "go");
    let o = run(s, approval_request());
    assert_eq!(o.status, "SUCCEEDED", "the scripted approval answered: {o:#?}");
    assert!(notes(&o).is_empty(), "nothing was applied: {:?}", notes(&o));
}

#[test]
fn a_promotion_mid_canary_skips_the_remaining_steps_and_still_watches_the_lock_in() {
    let s = given(scenario(steady(stable())), vec![command(150, Command::Promote { skip_lock_in: false }, "hotfix")]);
    let o = run(s, request(json!("linear-10-every-1m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_clean(&o, "42");
    assert!(count(&o, State::ShiftTraffic) <= 4, "three steps at most before the promotion: {:?}", o.path);
    let promoted = entered(&o, State::Promote).unwrap();
    assert!(promoted <= 150 + 61, "{promoted} s");
    // The 5-minute lock-in (the request's default) still ran.
    assert!(o.duration_seconds >= promoted + 300, "{} s", o.duration_seconds);
    let commands = &o.output.as_ref().unwrap()["commands"];
    assert_eq!(commands[0]["action"], json!({"command": "promote", "skip_lock_in": false}), "{commands}");
    assert_eq!(
        (commands[0]["by"].as_str(), commands[0]["reason"].as_str()),
        (Some(SIMULATED_OPERATOR), Some("hotfix"))
    );
}

#[test]
fn a_promotion_can_skip_or_end_the_lock_in() {
    let skip = given(scenario(steady(stable())), vec![command(90, Command::Promote { skip_lock_in: true }, "now")]);
    let o = run(skip, with_lock_in("canary-10-15m", 3600));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_clean(&o, "42");
    assert!(o.duration_seconds < 3 * 60, "no lock-in: {} s", o.duration_seconds);
    // During the lock-in: 20 minutes into an hour's watch, the watch ends.
    let end = given(
        scenario(steady(stable())),
        vec![command(35 * 60, Command::Promote { skip_lock_in: true }, "seen enough")],
    );
    let o = run(end, with_lock_in("canary-10-15m", 3600));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert!((35 * 60..35 * 60 + 62).contains(&o.duration_seconds), "{} s", o.duration_seconds);
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), Some("42"));
}

#[test]
fn an_abort_during_the_lock_in_restores_the_stable_version() {
    let s = given(scenario(steady(stable())), vec![command(25 * 60, Command::Abort, "customer reports")]);
    let o = run(s, with_lock_in("canary-10-15m", 3600));
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    assert!(entered(&o, State::Promote).unwrap() < 25 * 60);
    assert!(o.cause.as_deref().unwrap().contains("aborted at step 2 of 2 (100%)"), "{:?}", o.cause);
    assert_clean(&o, "41");
    assert_eq!(o.parameter("/stepshift/orders/live/last-known-good-version"), None);
}

#[test]
fn a_pause_holds_the_step_with_checks_until_resumed() {
    let until = |secs| scenario_start().plus_secs(secs);
    let s = given(
        scenario(steady(stable())),
        vec![
            command(120, Command::Pause { until: until(3600) }, "investigating"),
            command(12 * 60, Command::Resume, "all clear"),
        ],
    );
    let o = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert_clean(&o, "42");
    let promoted = entered(&o, State::Promote).unwrap();
    assert!((12 * 60..12 * 60 + 62).contains(&promoted), "held until the resume: {promoted} s");
    // The checks went on every minute during the pause.
    let checks_before =
        o.history.iter().filter(|e| e.kind == "TaskStateEntered" && e.details["name"] == "Check health");
    assert!(checks_before.count() >= 11 + 5, "{:?}", o.path);
    let notes = notes(&o);
    assert!(notes[0].starts_with("pause by ") && notes[1].starts_with("resume by "), "{notes:?}");
}

#[test]
fn a_paused_candidate_that_breaks_still_rolls_back() {
    let model = VersionModel {
        behavior: stable(),
        changes: vec![Change { after_seconds: 8 * 60, behavior: Behavior { error_rate: 0.2, ..stable() } }],
    };
    let s =
        given(scenario(model), vec![command(120, Command::Pause { until: scenario_start().plus_secs(3600) }, "hold")]);
    let o = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    assert!(entered(&o, State::RollBack).unwrap() < 8 * 60 + 5 * 60);
    assert_clean(&o, "41");
}

#[test]
fn a_pause_that_runs_out_rolls_back_or_goes_on_as_the_request_says() {
    let pause = || command(120, Command::Pause { until: scenario_start().plus_secs(20 * 60) }, "lunch");
    let o = run(given(scenario(steady(stable())), vec![pause()]), request(json!("canary-10-5m")));
    assert_eq!(o.error.as_deref(), Some("PauseTimedOut"), "{o:#?}");
    assert!(o.cause.as_deref().unwrap().contains("(pause_timeout: roll_back)"), "{:?}", o.cause);
    let rolled_back = entered(&o, State::RollBack).unwrap();
    assert!((20 * 60..20 * 60 + 62).contains(&rolled_back), "{rolled_back} s");
    assert_clean(&o, "41");

    let mut req = request(json!("canary-10-5m"));
    req["pause_timeout"] = json!("resume");
    let o = run(given(scenario(steady(stable())), vec![pause()]), req);
    assert_eq!(o.status, "SUCCEEDED", "{o:#?}");
    assert!((20 * 60..20 * 60 + 62).contains(&entered(&o, State::Promote).unwrap()));
}

#[test]
fn an_abort_during_a_steps_tests_does_not_wait_for_them() {
    let mut s = given(scenario(steady(stable())), vec![command(150, Command::Abort, "stop")]);
    s.hooks = [("orders-load".to_owned(), vec![stepshift_local::hooks::HookBehaviour::Hang])].into();
    let mut req = request(json!("canary-10-15m"));
    req["hooks"] = json!({"each_step": [{"function": "orders-load", "timeout_seconds": 900}]});
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    assert!(entered(&o, State::RollBack).unwrap() <= 150 + 62, "not at the test's 900 s timeout");
    assert_clean(&o, "41");
}

#[test]
fn a_command_after_the_end_changes_nothing() {
    // The deployment ends after about 10 minutes; the simulation stops there, so a
    // command scheduled later is never written (the CLI refuses it: crates/stepshift-cli).
    let s = given(scenario(steady(stable())), vec![command(3600, Command::Abort, "too late")]);
    let o = run(s, request(json!("canary-10-5m")));
    assert_eq!(o.status, "SUCCEEDED");
    assert_clean(&o, "42");
    assert_eq!(o.routing("orders", "live"), Some(&AliasRouting::single("42")));
}

fn scenario_start() -> stepshift_core::Timestamp {
    Scenario::default().start
}

fn tested(
    mut s: Scenario,
    hooks: serde_json::Value,
    script: Vec<stepshift_local::hooks::HookBehaviour>,
) -> (Scenario, serde_json::Value) {
    s.hooks = [("orders-smoke".to_owned(), script)].into();
    let mut req = request(json!("canary-10-5m"));
    req["hooks"] = hooks;
    (s, req)
}

#[test]
fn an_abort_during_the_tests_before_traffic_stops_before_any_traffic_moves() {
    use stepshift_local::hooks::HookBehaviour;
    let (s, req) = tested(
        given(scenario(steady(stable())), vec![command(30, Command::Abort, "wrong build")]),
        json!({"before_traffic": [{"function": "orders-smoke"}]}),
        vec![HookBehaviour::Pass { after_seconds: 120 }],
    );
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    let cause = o.cause.as_deref().unwrap();
    assert!(
        cause.starts_with("Stopped before any traffic moved: aborted during the tests before traffic, by ")
            && cause.ends_with(": wrong build."),
        "{cause}"
    );
    assert_eq!(o.calls.get(&stepshift_core::memory::Call::UpdateAlias), None, "no alias write: {:?}", o.calls);
    assert_clean(&o, "41");
}

/// When a healthy canary-10-5m with a test after promotion is promoted, in a run with
/// no command.
fn promoted_at() -> i64 {
    use stepshift_local::hooks::HookBehaviour;
    let (s, req) = tested(
        scenario(steady(stable())),
        json!({"after_promotion": [{"function": "orders-smoke", "timeout_seconds": 900}]}),
        vec![HookBehaviour::Pass { after_seconds: 1 }],
    );
    entered(&run(s, req), State::Promote).unwrap()
}

#[test]
fn the_lock_in_is_watched_and_commanded_while_the_tests_after_promotion_run() {
    use stepshift_local::hooks::HookBehaviour;
    let promoted = promoted_at();
    // A test that never answers (900 s timeout) after promotion; an abort 90 s in.
    let after = json!({"after_promotion": [{"function": "orders-smoke", "timeout_seconds": 900}]});
    let abort = command(promoted as u64 + 90, Command::Abort, "pager");
    let (s, req) = tested(given(scenario(steady(stable())), vec![abort]), after.clone(), vec![HookBehaviour::Hang]);
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Aborted"), "{o:#?}");
    let rolled_back = entered(&o, State::RollBack).unwrap();
    assert!(rolled_back <= promoted + 90 + 62, "not at the test's timeout: {rolled_back} s");
    assert_clean(&o, "41");
    // The candidate breaking after promotion is caught by the lock-in's checks, while
    // the test still runs.
    let breaks = VersionModel {
        behavior: stable(),
        changes: vec![Change {
            after_seconds: promoted as u64 + 30,
            behavior: Behavior { error_rate: 0.2, ..stable() },
        }],
    };
    let (s, req) = tested(scenario(breaks), after, vec![HookBehaviour::Hang]);
    let o = run(s, req);
    assert_eq!(o.error.as_deref(), Some("Unhealthy"), "{o:#?}");
    assert!(entered(&o, State::RollBack).unwrap() < promoted + 600, "before the test's 900 s timeout");
    assert_clean(&o, "41");
}
