use proptest::prelude::*;

use super::*;

fn at(i: i64) -> Timestamp {
    Timestamp::from_secs(60 * i)
}

fn split(i: i64, candidate: (u64, u64), stable: (u64, u64)) -> MinutePair {
    MinutePair {
        start: at(i),
        candidate_n: candidate.0,
        candidate_k: candidate.1,
        stable_n: stable.0,
        stable_k: stable.1,
    }
}

fn full(i: i64, n: u64, k: u64) -> MinutePair {
    split(i, (n, k), (0, 0))
}

fn settings(tolerance: f64) -> TestSettings {
    TestSettings { tolerance, drift: 0.25, alpha: 0.01, origin: at(0), planned_minutes: 20, lower_is_worse: false }
}

/// The plain likelihood-ratio product for one alternative of one concurrent minute.
fn concurrent_lr(nc: f64, kc: f64, ns: f64, ks: f64, r0: f64, r1: f64) -> f64 {
    let pi = |r: f64| nc * r / (nc * r + ns);
    (kc * (pi(r1) / pi(r0)).ln() + ks * ((1.0 - pi(r1)) / (1.0 - pi(r0))).ln()).exp()
}

#[test]
fn one_concurrent_minute_by_hand() {
    // n_c = 100, n_s = 900, tolerance 0 (r0 = 1): π0 = 0.1. For r1 = 2: π1 = 200/1100.
    // log LR = 5 ln(0.1818/0.1) + 5 ln(0.8182/0.9) = 5(0.5978) + 5(-0.0953) = 2.5126.
    assert!((concurrent_lr(100.0, 5.0, 900.0, 5.0, 1.0, 2.0) - 2.5126f64.exp()).abs() < 1e-3);
    let c = compare(&[split(0, (100, 5), (900, 5))], None, &settings(0.0));
    // The only data minute is the first: it carries the onset weight 1/2, and the
    // onsets after it (weight 1/2) have seen nothing (factor 1).
    let mean = ALTERNATIVES.iter().map(|r| concurrent_lr(100.0, 5.0, 900.0, 5.0, 1.0, *r)).sum::<f64>() / 5.0;
    let expected = 0.5 * mean + 0.5;
    assert!((c.evidence - expected).abs() / expected < 1e-9, "{} vs {expected}", c.evidence);
    assert_eq!(c.ratio, Some(9.0), "5% against 0.56%");
    assert_eq!(c.threshold, 100.0, "no history: the whole budget is the test's");
    assert_eq!(c.baseline, BaselineKind::Concurrent);
    assert_eq!(c.minutes, Some((at(0), at(0))));
}

#[test]
fn the_chernoff_bound_by_hand() {
    // No errors in 1000 invocations: KL(0‖q) = -ln(1-q) = ln(1/δ)/n, so q = 1 - δ^(1/n).
    let none = BaselineRate { invocations: 1000, events: 0 };
    let expected = 1.0 - 0.001f64.powf(1.0 / 1000.0);
    assert!((none.upper_bound(0.001) - expected).abs() < 1e-9, "{}", none.upper_bound(0.001));
    // 100 errors in 10,000: the bound sits where N·KL(0.01‖b) = ln(1000) = 6.9078.
    let some = BaselineRate { invocations: 10_000, events: 100 };
    let b = some.upper_bound(0.001);
    let kl = 0.01 * (0.01 / b).ln() + 0.99 * (0.99 / (1.0 - b)).ln();
    assert!((10_000.0 * kl - 1000f64.ln()).abs() < 1e-6);
    assert!((0.0140..0.0143).contains(&b), "about 1.4% for 1% over 10,000 at 99.9%: {b}");
    assert_eq!(BaselineRate::default().upper_bound(0.01), 1.0);
}

#[test]
fn one_minute_against_history_by_hand() {
    let history = BaselineRate { invocations: 36_000, events: 360 };
    let s = settings(0.0);
    let b = history.upper_bound(0.01 * HISTORY_SHARE);
    let p0 = b * 1.25; // r0 = 1, drift 25%
    // 600 invocations, 30 errors (5%): each alternative's binomial ratio against p0.
    let lr = |r1: f64| {
        let p1 = p0 * r1;
        (30.0 * (p1 / p0).ln() + 570.0 * ((1.0 - p1) / (1.0 - p0)).ln()).exp()
    };
    let mean = ALTERNATIVES.iter().map(|r| lr(*r)).sum::<f64>() / 5.0;
    let c = compare(&[full(0, 600, 30)], Some(history), &s);
    let expected = 0.5 * mean + 0.5;
    assert!((c.evidence - expected).abs() / expected < 1e-9, "{} vs {expected}", c.evidence);
    assert_eq!(c.baseline, BaselineKind::History);
    assert!((c.threshold - 1.0 / (0.01 * 0.9)).abs() < 1e-9, "a tenth of the budget went to the bound");
    assert_eq!(c.ratio, Some(5.0));
    assert!(c.regressed(), "5% against a 1% history in one minute of 600: {}", c.evidence);
}

#[test]
fn a_healthy_candidate_at_full_traffic_gathers_no_evidence() {
    let history = BaselineRate { invocations: 36_000, events: 360 };
    let minutes: Vec<_> = (0..60).map(|i| full(i, 600, 6)).collect();
    let c = compare(&minutes, Some(history), &settings(0.0));
    assert!(c.evidence < 1.0, "{}", c.evidence);
    assert_eq!(c.since, None);
}

#[test]
fn a_regression_that_begins_late_is_caught_within_minutes() {
    // 40 healthy minutes at full traffic, then 5% errors: a plain product would have to
    // climb out of 40 minutes of evidence against a regression first.
    let history = BaselineRate { invocations: 36_000, events: 360 };
    let mut minutes: Vec<_> = (0..40).map(|i| full(i, 600, 6)).collect();
    minutes.push(full(40, 600, 30));
    let s = TestSettings { planned_minutes: 80, ..settings(0.0) };
    let c = compare(&minutes, Some(history), &s);
    assert!(c.regressed(), "one bad minute of 600 after 40 good ones: {}", c.evidence);
    assert_eq!(c.since, Some(at(40)), "the evidence points at the onset");
    let early = compare(&minutes[..40], Some(history), &s);
    assert!(!early.regressed());
}

#[test]
fn thin_history_is_no_baseline() {
    let thin = BaselineRate { invocations: MIN_HISTORY_INVOCATIONS - 1, events: 0 };
    let c = compare(&[full(0, 600, 300)], Some(thin), &settings(0.0));
    assert_eq!(c.baseline, BaselineKind::None);
    assert_eq!(c.evidence, 1.0);
    assert_eq!(c.history, None);
}

#[test]
fn the_observed_split_counts_not_the_configured_weight() {
    // Five errors each mean a 19x worse candidate when it served 50 of 1000
    // invocations, and nothing at all when it served half of them.
    let few = compare(&[split(0, (50, 5), (950, 5))], None, &settings(0.2));
    let half = compare(&[split(0, (500, 5), (500, 5))], None, &settings(0.2));
    assert!(few.evidence > 100.0, "{}", few.evidence);
    assert!(half.evidence < 1.0, "{}", half.evidence);
}

#[test]
fn minutes_without_candidate_traffic_carry_no_weight() {
    let c = compare(&[split(0, (0, 0), (900, 4)), split(1, (100, 0), (900, 0))], None, &settings(0.2));
    assert_eq!(c.evidence, 1.0);
    assert_eq!((c.candidate_invocations, c.stable_invocations), (100, 900), "only the shared minute counts");
    assert_eq!(c.ratio, None, "no stable errors: no ratio");
    assert_eq!(compare(&[], None, &settings(0.2)).evidence, 1.0);
}

#[test]
fn onset_weights_add_up_to_one() {
    for planned in [1, 2, 20, 75, 10_080] {
        assert_eq!(onset_weight_until(0, planned), 0.5);
        let mut last = 0.5;
        for i in 1..(3 * planned + 10) {
            let w = onset_weight_until(i, planned);
            assert!(w >= last && w <= 1.0, "{planned} {i} {w}");
            last = w;
        }
        assert!(onset_weight_until(u64::MAX / 2, planned) > 0.999);
    }
    // Within the plan, each later minute carries a quarter spread evenly.
    assert!((onset_weight_until(19, 20) - 0.75).abs() < 1e-12);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A candidate whose every minute fails no more often than its history never
    /// gathers evidence: each factor is below 1, at every check, whatever the onset.
    #[test]
    fn never_worse_than_history_is_never_evidence(
        counts in prop::collection::vec((1u64..2000, 0u64..1000), 1..90),
        history_errors in 1u64..2000,
    ) {
        let history = BaselineRate { invocations: 100_000, events: history_errors };
        let minutes: Vec<_> = counts
            .iter()
            .enumerate()
            .map(|(i, (n, k))| full(i as i64, *n, (*k).min(n * history_errors / 100_000)))
            .collect();
        let s = TestSettings { planned_minutes: 75, ..settings(0.0) };
        for end in 1..=minutes.len() {
            let c = compare(&minutes[..end], Some(history), &s);
            prop_assert!(c.evidence <= 1.0 + 1e-9, "{} at minute {end}", c.evidence);
        }
    }
}
