use super::*;
use crate::ports::{AlarmStatus, AlarmValue};
use crate::request::HealthSettings;

fn sample(version: &str, invocations: u64, errors: u64) -> VersionSample {
    VersionSample {
        version: format!("version {version}"),
        invocations,
        errors,
        throttles: 0,
        error_rate_percent: (invocations > 0).then(|| 100.0 * errors as f64 / invocations as f64),
        p99_duration_ms: Some(120.0),
        durations: invocations,
        over_limit: 0,
    }
}

fn target(candidate: VersionSample) -> TargetSample {
    TargetSample {
        custom: Vec::new(),
        target: "orders:live".into(),
        candidate,
        baseline: Some(sample("41", 900, 1)),
        comparison: None,
        slow: None,
        client_errors: None,
        fast_failures: None,
        fast_slow: None,
        history: None,
        stable_version: "version 41".into(),
        window: None,
    }
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
    let thin = TargetSample { target: "billing:live".into(), ..target(sample("7", 1, 0)) };
    let bad = target(sample("42", 100, 50));
    let v = run(&h, vec![thin.clone(), bad], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert_eq!(v.reasons.len(), 1);
    let v = run(&h, vec![thin, target(sample("42", 100, 0))], vec![]);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(v.reasons[0].starts_with("billing:live version 7 served 1 invocations"));
}

#[test]
fn healthy_verdict_summarizes_both_versions_and_the_baseline() {
    let mut t = target(sample("42", 200, 1));
    t.comparison = Some(concurrent((100, 1), (900, 9), 3));
    let evidence = round2(t.comparison.as_ref().unwrap().evidence);
    let v = run(&HealthSettings::default(), vec![t], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
    assert_eq!(
        v.reasons,
        [format!(
            "orders:live version 42 healthy: 0.5% errors (1 in 200 invocations), p99 120 ms; stable version 41: 0.11% errors (1 in 900); errors against version 41 over the same minutes: evidence {evidence} of 100"
        )]
    );
    let mut alone = target(sample("42", 200, 1));
    alone.baseline = None;
    let v = run(&HealthSettings::default(), vec![alone], vec![]);
    assert!(
        v.reasons[0].ends_with("no baseline (no stable history was read): judged on the absolute limits only"),
        "{:?}",
        v.reasons
    );
}

#[test]
fn disabled_rules_do_not_judge() {
    let mut h = HealthSettings::default();
    h.error_rate.max_percent = None;
    let v = run(&h, vec![target(sample("42", 100, 100))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy);
}

#[test]
fn the_absolute_limit_waits_for_enough_invocations_to_expect_five_errors() {
    let h = HealthSettings::default(); // 5%: 100 invocations
    let v = run(&h, vec![target(sample("42", 30, 2))], vec![]);
    assert_eq!(v.status, VerdictStatus::Healthy, "2 in 30 (6.7%) is chance at these numbers: {:?}", v.reasons);
    let v = run(&h, vec![target(sample("42", 100, 7))], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
}

fn concurrent(c: (u64, u64), s: (u64, u64), minutes: i64) -> Comparison {
    use crate::compare::{MinutePair, TestSettings, compare};
    let pairs: Vec<_> = (0..minutes)
        .map(|i| MinutePair {
            start: Timestamp::from_secs(60 * i),
            candidate_n: c.0,
            candidate_k: c.1,
            stable_n: s.0,
            stable_k: s.1,
        })
        .collect();
    let settings = TestSettings {
        tolerance: 0.2,
        drift: 0.25,
        alpha: 0.01,
        origin: Timestamp::from_secs(0),
        planned_minutes: 20,
        lower_is_worse: false,
    };
    compare(&pairs, None, &settings)
}

#[test]
fn a_confident_error_rate_increase_is_unhealthy_with_its_numbers() {
    let mut t = target(sample("42", 300, 15));
    t.comparison = Some(concurrent((60, 3), (540, 5), 5));
    let v = run(&HealthSettings::default(), vec![t], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    let evidence = round2(v.targets[0].comparison.as_ref().unwrap().evidence);
    assert!(evidence > 100.0, "the verdict carries the evidence: {evidence}");
    assert_eq!(
        v.reasons,
        [format!(
            "orders:live version 42 fails 5.4x as often as version 41 over the same minutes since 00:00 (15 errors in 300 invocations; evidence {evidence} against a threshold of 100): worse, with 99% confidence"
        )]
    );

    let mut off = HealthSettings::default();
    off.error_rate.max_increase_percent = None;
    let mut t = target(sample("42", 300, 18));
    t.comparison = Some(concurrent((60, 3), (540, 5), 5));
    let v = run(&off, vec![t], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy, "the 5% limit still applies");
    assert!(v.reasons[0].contains("error rate 6% is above 5%"), "{:?}", v.reasons);
}

#[test]
fn more_slow_invocations_than_the_baseline_is_unhealthy() {
    let mut t = target(sample("42", 600, 0));
    t.slow = Some(concurrent((60, 12), (540, 5), 5));
    let v = run(&HealthSettings::default(), vec![t.clone()], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(
        v.reasons[0].starts_with(
            "orders:live version 42 is slower than 0 ms (the stable p99) 21.6x as often as version 41 over the same minutes"
        ),
        "{:?}",
        v.reasons
    );
    let mut off = HealthSettings::default();
    off.p99_duration.max_slow_increase_percent = None;
    assert_eq!(run(&off, vec![t], vec![]).status, VerdictStatus::Healthy, "the comparison can be turned off");
}

#[test]
fn the_p99_limit_counts_invocations_over_it_in_the_window() {
    let mut h = HealthSettings::default();
    h.p99_duration.max_ms = Some(800.0);
    let mut slow = sample("42", 600, 0);
    slow.over_limit = 7; // 1.17% of 600 took longer than 800 ms: the p99 is above it
    let v = run(&h, vec![target(slow.clone())], vec![]);
    assert_eq!(
        v.reasons,
        ["orders:live version 42 p99 duration is above 800 ms: 7 of 600 invocations (1.17%) took longer"]
    );
    slow.over_limit = 6; // exactly 1%: the p99 is at the limit, not above it
    assert_eq!(run(&h, vec![target(slow.clone())], vec![]).status, VerdictStatus::Healthy);
    let mut thin = sample("42", 400, 0);
    thin.over_limit = 40;
    assert_eq!(
        run(&h, vec![target(thin)], vec![]).status,
        VerdictStatus::Healthy,
        "fewer than 500 samples: too few to expect 5 over the limit"
    );
}

/// A fast-path comparison with this much evidence against a threshold of 400.
fn fast(evidence: f64) -> Comparison {
    Comparison {
        candidate_errors: 12,
        candidate_invocations: 80,
        stable_errors: 2,
        stable_invocations: 700,
        ratio: Some(52.5),
        baseline: BaselineKind::Concurrent,
        history: None,
        minutes: None,
        since: Some(Timestamp::from_secs(60)),
        evidence,
        threshold: 400.0,
    }
}

#[test]
fn the_fast_path_can_roll_back_but_never_stands_in_for_missing_minutes() {
    let h = HealthSettings::default();
    // No minute metrics yet (CloudWatch's lag), the fast path past its threshold: unhealthy.
    let mut t = target(sample("42", 0, 0));
    t.fast_failures = Some(fast(1e5));
    let v = run(&h, vec![t.clone()], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(v.reasons[0].contains("in the fast path's 10-second counts"), "{:?}", v.reasons);
    assert!(v.reasons[0].contains("over the same seconds"), "{:?}", v.reasons);
    // The fast path clean: still inconclusive, since only the minute metrics promote.
    t.fast_failures = Some(fast(2.0));
    assert_eq!(run(&h, vec![t], vec![]).status, VerdictStatus::Inconclusive);
    // Slow invocations the same way.
    let mut s = target(sample("42", 100, 0));
    s.fast_slow = Some(fast(1e5));
    let v = run(&h, vec![s], vec![]);
    assert_eq!(v.status, VerdictStatus::Unhealthy);
    assert!(v.reasons[0].contains("is slow"), "{:?}", v.reasons);
}
