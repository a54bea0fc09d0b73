//! The candidate against the stable version, over the same minutes: a sequential test
//! of their error rates that stays valid however often it is checked.
//!
//! Both versions serve traffic behind the alias at the same time, so within one minute
//! they see the same conditions. Given the errors of a minute, each one belongs to the
//! candidate with probability
//!
//! ```text
//! π(r) = n_c·r / (n_c·r + n_s)
//! ```
//!
//! where `n_c` and `n_s` are the invocations each version *actually* served that minute
//! (the observed split, not the configured weight) and `r` is the ratio of the
//! candidate's error rate to the stable version's.
//!
//! The test weighs "the candidate fails `r₁` times as often" against "at most `r₀`
//! times" (`r₀` = 1 + the tolerance) with the likelihood ratio of the candidate's share
//! of the errors, minute by minute, over every minute since the deployment began,
//! averaged over several alternatives `r₁`. Under `r ≤ r₀` that average is a
//! nonnegative supermartingale, so by Ville's inequality the chance that it *ever*
//! reaches `1/α` is at most `α`. Checking after every minute or every step does not
//! inflate the false-alarm rate.

use serde::{Deserialize, Serialize};

use crate::ports::MinuteCounts;

/// The error-rate ratios the test looks for, mixed with equal weights.
pub const ALTERNATIVES: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];

/// What the comparison found for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Candidate errors in the minutes both versions served.
    pub candidate_errors: u64,
    /// Candidate invocations in those minutes.
    pub candidate_invocations: u64,
    /// Stable errors in those minutes.
    pub stable_errors: u64,
    /// Stable invocations in those minutes.
    pub stable_invocations: u64,
    /// Candidate error rate ÷ stable error rate, when both are defined and the stable's is not 0.
    pub ratio: Option<f64>,
    /// The likelihood ratio for "worse than tolerated" (1 = no evidence either way).
    pub evidence: f64,
    /// Evidence at or above this rolls back.
    pub threshold: f64,
}

impl Comparison {
    /// Whether the candidate is worse than tolerated, with the stated confidence.
    pub fn regressed(&self) -> bool {
        self.evidence >= self.threshold
    }
}

/// Compares per-minute counts of the candidate and the stable version, paired by
/// minute. `tolerance` is the relative increase allowed (0.2 = 20%), `alpha` the
/// false-alarm probability.
pub fn compare_error_rates(
    candidate: &[MinuteCounts],
    stable: &[MinuteCounts],
    tolerance: f64,
    alpha: f64,
) -> Comparison {
    let r0 = 1.0 + tolerance.max(0.0);
    let alternatives: Vec<f64> = ALTERNATIVES.iter().copied().filter(|r| *r > r0).collect();
    let mut log_lr = vec![0.0f64; alternatives.len()];
    let (mut ce, mut ci, mut se, mut si) = (0u64, 0u64, 0u64, 0u64);
    for c in candidate {
        let Some(s) = stable.iter().find(|s| s.start == c.start) else { continue };
        if c.invocations == 0 || s.invocations == 0 {
            continue;
        }
        ce += c.errors;
        ci += c.invocations;
        se += s.errors;
        si += s.invocations;
        if c.errors + s.errors == 0 {
            continue;
        }
        let (nc, ns) = (c.invocations as f64, s.invocations as f64);
        let pi = |r: f64| nc * r / (nc * r + ns);
        let p0 = pi(r0);
        for (j, r1) in alternatives.iter().enumerate() {
            let p1 = pi(*r1);
            log_lr[j] += c.errors as f64 * (p1 / p0).ln() + s.errors as f64 * ((1.0 - p1) / (1.0 - p0)).ln();
        }
    }
    // Mean of exp(log_lr) without overflow: log-sum-exp.
    let evidence = if log_lr.is_empty() {
        1.0
    } else {
        let top = log_lr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = log_lr.iter().map(|l| (l - top).exp()).sum();
        (top + (sum / log_lr.len() as f64).ln()).exp().min(1e300)
    };
    let ratio = (ci > 0 && si > 0 && se > 0).then(|| (ce as f64 / ci as f64) / (se as f64 / si as f64));
    Comparison {
        candidate_errors: ce,
        candidate_invocations: ci,
        stable_errors: se,
        stable_invocations: si,
        ratio,
        evidence,
        threshold: 1.0 / alpha,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn minute(i: i64, invocations: u64, errors: u64) -> MinuteCounts {
        MinuteCounts { start: Timestamp::from_secs(60 * i), invocations, errors, throttles: 0 }
    }

    #[test]
    fn one_minute_by_hand() {
        // n_c = 100, n_s = 900, tolerance 0 (r0 = 1): π0 = 0.1.
        // 5 candidate errors, 5 stable errors. For r1 = 2: π1 = 200/1100 = 0.1818...
        // log LR = 5 ln(0.1818/0.1) + 5 ln(0.8182/0.9) = 5(0.5978) + 5(-0.0953) = 2.5126
        let c = compare_error_rates(&[minute(0, 100, 5)], &[minute(0, 900, 5)], 0.0, 0.01);
        let lr = |r: f64| {
            let (p0, p1) = (0.1, 100.0 * r / (100.0 * r + 900.0));
            (5.0 * (p1 / p0).ln() + 5.0 * ((1.0 - p1) / (1.0 - p0)).ln()).exp()
        };
        assert!((lr(2.0) - 2.5126f64.exp()).abs() < 1e-3);
        let expected = ALTERNATIVES.iter().map(|r| lr(*r)).sum::<f64>() / 5.0;
        assert!((c.evidence - expected).abs() / expected < 1e-9, "{} vs {expected}", c.evidence);
        assert_eq!(c.ratio, Some(9.0), "5% against 0.56%");
        assert_eq!(c.threshold, 100.0);
    }

    #[test]
    fn the_observed_split_counts_not_the_configured_weight() {
        // Five errors each mean a 19x worse candidate when it served 50 of 1000
        // invocations, and nothing at all when it served half of them.
        let few = compare_error_rates(&[minute(0, 50, 5)], &[minute(0, 950, 5)], 0.2, 0.01);
        let half = compare_error_rates(&[minute(0, 500, 5)], &[minute(0, 500, 5)], 0.2, 0.01);
        assert!(few.evidence > 100.0, "{}", few.evidence);
        assert!(half.evidence < 1.0, "{}", half.evidence);
    }

    #[test]
    fn a_clear_regression_crosses_the_threshold() {
        let c: Vec<_> = (0..5).map(|i| minute(i, 60, 3)).collect();
        let s: Vec<_> = (0..5).map(|i| minute(i, 540, 5)).collect();
        let r = compare_error_rates(&c, &s, 0.2, 0.01);
        assert!(r.regressed(), "5.0% against 0.93% over 5 minutes: evidence {}", r.evidence);
        let early = compare_error_rates(&c[..1], &s[..1], 0.2, 0.01);
        assert!(!early.regressed(), "one minute is not enough: evidence {}", early.evidence);
    }

    #[test]
    fn equal_rates_give_no_evidence() {
        let c: Vec<_> = (0..30).map(|i| minute(i, 100, 1)).collect();
        let s: Vec<_> = (0..30).map(|i| minute(i, 900, 9)).collect();
        let r = compare_error_rates(&c, &s, 0.2, 0.01);
        // Over 30 minutes the data speaks against every alternative: evidence far below 1.
        assert!(r.evidence < 0.1, "{}", r.evidence);
        assert!(!r.regressed());
    }

    #[test]
    fn minutes_without_both_versions_or_without_errors_carry_no_weight() {
        let r = compare_error_rates(
            &[minute(0, 100, 3), minute(1, 100, 0)],
            &[minute(1, 900, 0), minute(2, 900, 4)],
            0.2,
            0.01,
        );
        assert_eq!(r.evidence, 1.0);
        assert_eq!((r.candidate_invocations, r.stable_invocations), (100, 900), "only the shared minute counts");
        assert_eq!(r.ratio, None, "no stable errors: no ratio");
        let none = compare_error_rates(&[], &[], 0.2, 0.01);
        assert_eq!(none.evidence, 1.0);
    }

    #[test]
    fn a_large_tolerance_drops_the_smaller_alternatives() {
        let c = [minute(0, 100, 10)];
        let s = [minute(0, 900, 30)];
        let loose = compare_error_rates(&c, &s, 4.0, 0.01);
        let tight = compare_error_rates(&c, &s, 0.0, 0.01);
        assert!(loose.evidence < tight.evidence);
    }
}
