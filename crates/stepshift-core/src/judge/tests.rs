use super::*;
use crate::ports::{AlarmStatus, AlarmValue};
use crate::request::HealthSettings;

fn sample(version: &str, invocations: u64, errors: u64) -> VersionSample {
    VersionSample {
        version: version.into(),
        invocations,
        errors,
        throttles: 0,
        error_rate_percent: (invocations > 0).then(|| 100.0 * errors as f64 / invocations as f64),
        p99_duration_ms: Some(120.0),
    }
}

fn target(candidate: VersionSample) -> TargetSample {
    TargetSample { function: "orders".into(), alias: "live".into(), candidate, baseline: Some(sample("41", 900, 1)) }
}

fn run(settings: &HealthSettings, targets: Vec<TargetSample>, alarms: Vec<AlarmStatus>) -> Verdict {
    let window = Window { start: Timestamp::from_secs(0), end: Timestamp::from_secs(300) };
    judge(settings, targets, alarms, window, Timestamp::from_secs(300))
}

#[test]
fn seeds_rule_error_rate_above_threshold_with_enough_invocations() {
    let h = HealthSettings::default(); // 5%, at least 5 invocations
    let v = run(&h, vec![target(sample("42", 100, 6))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["orders:live version 42 error rate 6% is above 5% (6 errors in 100 invocations)"]);
    assert_eq!(v.targets[0].candidate.errors, 6, "the verdict carries its numbers");

    let at_limit = run(&h, vec![target(sample("42", 100, 5))], vec![]);
    assert_eq!(at_limit.status, VerdictStatus::Healthy, "5% is not above 5%");
}

#[test]
fn too_few_invocations_is_inconclusive_even_with_errors() {
    let h = HealthSettings::default();
    let v = run(&h, vec![target(sample("42", 4, 4))], vec![]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert_eq!(
        v.reasons,
        ["orders:live version 42 served 4 invocations; 5 needed to judge it (health.min_invocations)"]
    );
    let none = run(&h, vec![target(sample("42", 0, 0))], vec![]);
    assert_eq!(none.status, VerdictStatus::Inconclusive);
}

#[test]
fn p99_limit() {
    let mut h = HealthSettings::default();
    h.p99_duration.max_ms = Some(100.0);
    let v = run(&h, vec![target(sample("42", 100, 0))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["orders:live version 42 p99 duration 120 ms is above 100 ms"]);
}

#[test]
fn throttles_need_no_minimum() {
    let mut h = HealthSettings::default();
    h.throttles.max_count = Some(2);
    let mut c = sample("42", 0, 0);
    c.throttles = 3;
    let v = run(&h, vec![target(c)], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(v.reasons[0].contains("throttled 3 times"), "{:?}", v.reasons);
}

#[test]
fn an_alarm_in_alarm_is_unhealthy_and_a_missing_one_inconclusive() {
    let h = HealthSettings::default();
    let alarm = |state| AlarmStatus { name: "orders-5xx".into(), state, reason: None };
    let v = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(Some(AlarmValue::Alarm))]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons, ["alarm orders-5xx is in ALARM"]);
    let ok = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(Some(AlarmValue::InsufficientData))]);
    assert_eq!(ok.status, VerdictStatus::Healthy);
    let gone = run(&h, vec![target(sample("42", 100, 0))], vec![alarm(None)]);
    assert_eq!(gone.status, VerdictStatus::Inconclusive);
}

#[test]
fn failures_outrank_gaps_and_every_target_counts() {
    let h = HealthSettings::default();
    let thin = TargetSample { function: "billing".into(), ..target(sample("7", 1, 0)) };
    let bad = target(sample("42", 100, 50));
    let v = run(&h, vec![thin.clone(), bad], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons.len(), 1);
    let v = run(&h, vec![thin, target(sample("42", 100, 0))], vec![]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(v.reasons[0].starts_with("billing:live version 7 served 1 invocations"));
}

#[test]
fn healthy_verdict_summarizes_both_versions() {
    let v = run(&HealthSettings::default(), vec![target(sample("42", 200, 1))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(
        v.reasons,
        [
            "orders:live version 42 healthy: 0.5% errors (1 in 200 invocations), p99 120 ms; stable version 41: 0.11% errors (1 in 900)"
        ]
    );
}

#[test]
fn disabled_rules_do_not_judge() {
    let mut h = HealthSettings::default();
    h.error_rate.max_percent = None;
    let v = run(&h, vec![target(sample("42", 100, 100))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
}
