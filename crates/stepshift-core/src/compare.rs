//! The candidate against its baseline: one sequential test per metric (errors, slow
//! invocations, a front end's 4xx) that stays valid however often it is checked, in
//! every phase of a deployment, and that also catches a regression which begins late.
//!
//! ## One minute's evidence
//!
//! Every minute in which the candidate served traffic contributes a likelihood ratio
//! `L(r₁)` for "the candidate's rate is `r₁` times its baseline's" against "at most
//! `r₀` times" (`r₀` = 1 + the tolerance). Which baseline depends on the minute:
//!
//! - **Concurrent** (traffic split): both versions served the same minute, so they saw
//!   the same conditions. Given the minute's events (errors, or slow invocations), each
//!   one belongs to the candidate with probability `π(r) = n_c·r / (n_c·r + n_s)`, where
//!   `n_c` and `n_s` are the invocations each version actually served. The factor is the
//!   binomial likelihood ratio of the candidate's share at `π(r₁)` against `π(r₀)`.
//! - **History** (the candidate has all traffic: the lock-in, or any 100% step): the
//!   stable version's own minutes from before the deployment, joined by its minutes
//!   during the deployment, give a rate `p̂` over `N` invocations. Its Chernoff upper
//!   bound `b` (the largest `q` with `N·KL(p̂‖q) ≤ ln(1/δ)`) fails with probability at
//!   most `δ`. The null rate is `p₀ = b·r₀·(1 + drift)`: the drift allowance covers
//!   ordinary change between the baseline hour and now (time of day, load). The factor
//!   is the binomial likelihood ratio of the candidate's events at `p₁ = p₀·r₁/r₀`
//!   against `p₀`.
//!
//! Under the null each factor has expectation at most 1 given the past, whichever kind
//! it is, so for each alternative `r₁` the product over minutes is a nonnegative
//! supermartingale.
//!
//! ## Late onsets
//!
//! A plain product piles up evidence *against* a regression while the candidate is
//! healthy, and would then need as long again to climb back when a regression begins
//! late in a long lock-in. So the test mixes over the minute the regression began: the
//! statistic is `M = Σₖ wₖ · mean over r₁ of Πⱼ₌ₖ L_j(r₁)`, the product over the minutes
//! from onset `k` on. Each term is a supermartingale that stays 1 until its onset, and
//! the weights sum to 1, so `M` is one too, and by Ville's inequality
//! `P(M ever ≥ 1/α) ≤ α`. The weights ([`onset_weight_until`]): half on the deployment's
//! first minute (most regressions come with the first shift), a quarter spread evenly
//! over the rest of the planned minutes, and a quarter over every later minute, for
//! approval waits and extensions. A late onset within the plan therefore needs about
//! `ln(4K)` more nats of evidence than one at the start (`K` planned minutes), which a
//! real regression at moderate traffic supplies within a minute of data.
//!
//! ## The false-alarm budget
//!
//! `health.false_alarm_percent` is split evenly over the targets and over each target's
//! tests; within a test, a tenth goes to the history bound and the rest to the
//! sequential test ([`Budget`]). By the union bound, the chance that any test ever
//! rolls back a candidate that is no worse than tolerated stays within the setting,
//! over the whole deployment, however often it is checked.

use serde::{Deserialize, Serialize};

use crate::ports::MinuteCounts;
use crate::time::Timestamp;

/// The rate ratios the test looks for, mixed with equal weights.
pub const ALTERNATIVES: [f64; 5] = [1.5, 2.0, 3.0, 5.0, 10.0];

/// The share of a test's false-alarm budget spent on the history bound.
pub const HISTORY_SHARE: f64 = 0.1;

/// The tests each target's share of the budget is split over: errors and slow
/// invocations for a Lambda alias, 5xx and 4xx for a front end.
pub const TESTS_PER_TARGET: usize = 2;

/// Fewest baseline invocations for a history test: below it the history is too thin
/// to bound the stable version's rate usefully, and the verdict says so.
pub const MIN_HISTORY_INVOCATIONS: u64 = 300;

/// One minute of one metric: the candidate's and the stable version's invocations
/// and events (errors, slow invocations, 4xx responses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MinutePair {
    /// Start of the minute.
    pub start: Timestamp,
    /// Candidate invocations.
    pub candidate_n: u64,
    /// Candidate events.
    pub candidate_k: u64,
    /// Stable invocations (0 once the candidate has all traffic).
    pub stable_n: u64,
    /// Stable events.
    pub stable_k: u64,
}

/// The minutes of one metric, paired by start: the candidate's, and the stable
/// version's of the same minute (0 if it served none). `count` picks the metric's
/// `(invocations, events)` out of a minute.
pub fn pair_minutes(
    candidate: &[MinuteCounts],
    stable: &[MinuteCounts],
    count: impl Fn(&MinuteCounts) -> (u64, u64),
) -> Vec<MinutePair> {
    // Events never outnumber what they are out of; an emulator's approximate statistic
    // (ministack answers `TC(x:)` with the average) must not make the test's factors
    // meaningless.
    let bounded = |m: &MinuteCounts| {
        let (n, k) = count(m);
        (n, k.min(n))
    };
    candidate
        .iter()
        .map(|c| {
            let (candidate_n, candidate_k) = bounded(c);
            let (stable_n, stable_k) = stable.iter().find(|s| s.start == c.start).map_or((0, 0), &bounded);
            MinutePair { start: c.start, candidate_n, candidate_k, stable_n, stable_k }
        })
        .collect()
}

/// `(invocations, errors)` of a minute.
pub fn errors(m: &MinuteCounts) -> (u64, u64) {
    (m.invocations, m.errors)
}

/// `(Duration samples, slow invocations)` of a minute.
pub fn slow(m: &MinuteCounts) -> (u64, u64) {
    (m.durations, m.slow)
}

/// The stable version's rate of one metric before and during the deployment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BaselineRate {
    /// Invocations.
    pub invocations: u64,
    /// Events among them.
    pub events: u64,
}

impl BaselineRate {
    /// Events per invocation.
    pub fn rate(&self) -> f64 {
        if self.invocations == 0 { 0.0 } else { self.events as f64 / self.invocations as f64 }
    }

    /// Whether there is enough of it to test against.
    pub fn usable(&self) -> bool {
        self.invocations >= MIN_HISTORY_INVOCATIONS
    }

    /// The Chernoff upper bound on the true rate at confidence `1 - delta`: the largest
    /// `q` with `N·KL(p̂‖q) ≤ ln(1/δ)`. Found by bisection: the bound has no closed
    /// form, and the standard library has no inverse Beta to give the exact one.
    pub fn upper_bound(&self, delta: f64) -> f64 {
        let n = self.invocations as f64;
        if n == 0.0 {
            return 1.0;
        }
        let p = self.rate();
        let budget = (1.0 / delta).ln() / n;
        let (mut lo, mut hi) = (p, 1.0f64);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if kl_bernoulli(p, mid) > budget {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        lo
    }

    /// The Chernoff lower bound on the true rate at confidence `1 - delta`: the
    /// smallest `q` with `N·KL(p̂‖q) ≤ ln(1/δ)`, by bisection as [`Self::upper_bound`].
    pub fn lower_bound(&self, delta: f64) -> f64 {
        let n = self.invocations as f64;
        if n == 0.0 {
            return 0.0;
        }
        let p = self.rate();
        let budget = (1.0 / delta).ln() / n;
        let (mut lo, mut hi) = (0.0f64, p);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if kl_bernoulli(p, mid) > budget {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
}

/// KL divergence of Bernoulli(q) from Bernoulli(p), in nats.
fn kl_bernoulli(p: f64, q: f64) -> f64 {
    let term = |a: f64, b: f64| if a <= 0.0 { 0.0 } else { a * (a / b).ln() };
    term(p, q) + term(1.0 - p, 1.0 - q)
}

/// What a comparison was made against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaselineKind {
    /// The stable version over the same minutes.
    Concurrent,
    /// The stable version's history (the candidate had all traffic).
    History,
    /// Both: minutes of each kind so far.
    ConcurrentAndHistory,
    /// Nothing to compare with: only the absolute limits judge.
    None,
}

/// The settings of one test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestSettings {
    /// Relative increase tolerated (0.2 = 20%).
    pub tolerance: f64,
    /// Allowance for drift between the history and now (0.25 = 25%).
    pub drift: f64,
    /// The test's whole false-alarm budget.
    pub alpha: f64,
    /// Where the minute index of onsets starts.
    pub origin: Timestamp,
    /// How many minutes the deployment plans to watch (bakes and lock-in).
    pub planned_minutes: u64,
    /// Whether a drop is the regression, for a rate where higher is better (orders
    /// placed per request): the test then looks for the candidate's rate at `1/r₁` of its
    /// baseline's against "at least `1 - tolerance` of it", and bounds the history's
    /// rate from below. A rise otherwise.
    pub lower_is_worse: bool,
}

/// What a test found for one target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Candidate events in the minutes that carry evidence.
    pub candidate_errors: u64,
    /// Candidate invocations in those minutes.
    pub candidate_invocations: u64,
    /// Stable events in the concurrent minutes.
    pub stable_errors: u64,
    /// Stable invocations in the concurrent minutes.
    pub stable_invocations: u64,
    /// Candidate rate ÷ baseline rate over those minutes, when both are defined and the
    /// baseline's is not 0.
    pub ratio: Option<f64>,
    /// What the candidate was compared with.
    #[serde(default = "default_kind")]
    pub baseline: BaselineKind,
    /// The history the 100% minutes were compared with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<BaselineRate>,
    /// The first and last minute that carried evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<(Timestamp, Timestamp)>,
    /// The onset minute that carries the most evidence, when there is any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The mixture likelihood ratio for "worse than tolerated" (1 = no evidence).
    pub evidence: f64,
    /// Evidence at or above this rolls back.
    pub threshold: f64,
}

fn default_kind() -> BaselineKind {
    BaselineKind::Concurrent
}

impl Comparison {
    /// Whether the candidate is worse than tolerated, with the stated confidence.
    pub fn regressed(&self) -> bool {
        self.evidence >= self.threshold
    }
}

/// How a target's share of `health.false_alarm_percent` splits over its tests.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    /// Each test's whole budget.
    pub per_test: f64,
}

impl Budget {
    /// `alpha` (a fraction) over `targets` targets with `tests` tests each.
    pub fn new(alpha: f64, targets: usize, tests: usize) -> Self {
        Self { per_test: alpha / (targets.max(1) * tests.max(1)) as f64 }
    }
}

/// The total onset weight of the minutes `0..=index` (see the module docs).
pub fn onset_weight_until(index: u64, planned_minutes: u64) -> f64 {
    let k = planned_minutes.max(2) as f64;
    let i = index as f64;
    let spread = 0.25 * i.min(k - 1.0) / (k - 1.0);
    let tail = if i >= k { 0.25 * (1.0 - k / (i + 1.0)) } else { 0.0 };
    0.5 + spread + tail
}

/// One candidate minute as the test saw it.
struct Row {
    /// Minutes since the origin: the onset index.
    index: u64,
    start: Timestamp,
    kind: BaselineKind,
    pair: MinutePair,
    /// Log likelihood ratio per alternative (0 for a minute with nothing to compare).
    logs: Vec<f64>,
}

/// Runs the test over `minutes` (any order; one entry per minute) against `history`.
///
/// The counts, the ratio and the kind of baseline in the result describe the minutes
/// from the onset the evidence points to (`since`), or every compared minute when there
/// is no evidence; `baseline` is what the newest of them was compared with.
pub fn compare(minutes: &[MinutePair], history: Option<BaselineRate>, s: &TestSettings) -> Comparison {
    let (r0, alternatives): (f64, Vec<f64>) = if s.lower_is_worse {
        let r0 = (1.0 - s.tolerance.max(0.0)).max(0.0);
        (r0, ALTERNATIVES.iter().map(|r| 1.0 / r).filter(|r| *r < r0).collect())
    } else {
        let r0 = 1.0 + s.tolerance.max(0.0);
        (r0, ALTERNATIVES.iter().copied().filter(|r| *r > r0).collect())
    };
    let history = history.filter(BaselineRate::usable);
    let test_alpha = if history.is_some() { s.alpha * (1.0 - HISTORY_SHARE) } else { s.alpha };
    let delta = s.alpha * HISTORY_SHARE;
    let drift = 1.0 + s.drift.max(0.0);
    let p0 = history
        .map(|h| {
            if s.lower_is_worse {
                (h.lower_bound(delta) * r0 / drift).min(0.999)
            } else {
                (h.upper_bound(delta) * r0 * drift).min(0.5)
            }
        })
        .filter(|p| *p > 0.0);

    let mut sorted: Vec<&MinutePair> = minutes.iter().filter(|m| m.candidate_n > 0).collect();
    sorted.sort_by_key(|m| m.start);
    let rows: Vec<Row> = sorted
        .into_iter()
        .map(|m| {
            let (kind, logs) = if m.stable_n > 0 {
                let (nc, ns) = (m.candidate_n as f64, m.stable_n as f64);
                let pi = |r: f64| nc * r / (nc * r + ns);
                let q0 = pi(r0);
                let logs = alternatives
                    .iter()
                    .map(|r1| {
                        if m.candidate_k + m.stable_k == 0 {
                            return 0.0;
                        }
                        let q1 = pi(*r1);
                        m.candidate_k as f64 * (q1 / q0).ln() + m.stable_k as f64 * ((1.0 - q1) / (1.0 - q0)).ln()
                    })
                    .collect();
                (BaselineKind::Concurrent, logs)
            } else if let Some(p0) = p0 {
                let (k, n) = (m.candidate_k as f64, m.candidate_n as f64);
                let logs = alternatives
                    .iter()
                    .map(|r1| {
                        let p1 = (p0 * r1 / r0).min(0.999_999);
                        k * (p1 / p0).ln() + (n - k) * ((1.0 - p1) / (1.0 - p0)).ln()
                    })
                    .collect();
                (BaselineKind::History, logs)
            } else {
                (BaselineKind::None, vec![0.0; alternatives.len()])
            };
            let index = u64::try_from(m.start.secs_since(s.origin).max(0) / 60).unwrap_or(0);
            Row { index, start: m.start, kind, pair: *m, logs }
        })
        .collect();

    // log M = log Σ_onset w · mean_a exp(S_a(end) - S_a(before onset)), by log-sum-exp.
    // `terms[i]` is the onset at rows[i] (carrying the weight of the minutes since the
    // row before it).
    let mut terms: Vec<f64> = vec![f64::NEG_INFINITY; rows.len()];
    if !alternatives.is_empty() {
        let a = alternatives.len() as f64;
        let mut suffix = vec![0.0f64; alternatives.len()];
        for pos in (0..rows.len()).rev() {
            for (acc, l) in suffix.iter_mut().zip(&rows[pos].logs) {
                *acc += l;
            }
            let before = pos.checked_sub(1).map(|b| rows[b].index);
            let mass = onset_weight_until(rows[pos].index, s.planned_minutes)
                - before.map_or(0.0, |b| onset_weight_until(b, s.planned_minutes));
            if mass > 0.0 {
                let top = suffix.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                terms[pos] = mass.ln() + top + (suffix.iter().map(|l| (l - top).exp()).sum::<f64>() / a).ln();
            }
        }
    }
    let best =
        terms.iter().enumerate().filter(|(_, t)| t.is_finite()).max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
    let (evidence, onset) = match best {
        None => (1.0, None),
        Some(best) => {
            // Onsets after the last data minute carry their weight at factor 1.
            let covered = rows.last().map_or(0.0, |r| onset_weight_until(r.index, s.planned_minutes));
            let mut all: Vec<f64> = terms.iter().copied().filter(|t| t.is_finite()).collect();
            all.push((1.0 - covered).max(1e-300).ln());
            let top = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let log_m = top + all.iter().map(|l| (l - top).exp()).sum::<f64>().ln();
            (log_m.exp().min(1e300), (log_m > 0.0).then_some(best))
        }
    };

    // Describe the minutes the evidence is about.
    let described: Vec<&Row> = rows[onset.unwrap_or(0)..].iter().filter(|r| r.kind != BaselineKind::None).collect();
    let sum = |f: &dyn Fn(&Row) -> u64| described.iter().map(|r| f(r)).sum::<u64>();
    let ce = sum(&|r| r.pair.candidate_k);
    let ci = sum(&|r| r.pair.candidate_n);
    let se = sum(&|r| r.pair.stable_k);
    let si = sum(&|r| r.pair.stable_n);
    let concurrent_n = sum(&|r| if r.kind == BaselineKind::Concurrent { r.pair.candidate_n } else { 0 });
    // What the baseline predicts for those minutes: the stable rate of the same minutes
    // for the concurrent ones, the history's for the rest.
    let expected = concurrent_n as f64 * if si > 0 { se as f64 / si as f64 } else { 0.0 }
        + (ci - concurrent_n) as f64 * history.map_or(0.0, |h| h.rate());
    let ratio = (ce > 0 || ci > 0).then(|| ce as f64 / expected).filter(|r| r.is_finite() && expected > 0.0);
    let baseline = match rows.last().map(|r| r.kind) {
        _ if described.is_empty() => rows.last().map_or(BaselineKind::None, |r| r.kind),
        Some(BaselineKind::None) | None => BaselineKind::None,
        Some(_) => {
            let has = |k: BaselineKind| described.iter().any(|r| r.kind == k);
            match (has(BaselineKind::Concurrent), has(BaselineKind::History)) {
                (true, true) if onset.is_some() => BaselineKind::ConcurrentAndHistory,
                _ => described.last().map_or(BaselineKind::None, |r| r.kind),
            }
        }
    };
    Comparison {
        candidate_errors: ce,
        candidate_invocations: ci,
        stable_errors: se,
        stable_invocations: si,
        ratio,
        baseline,
        history,
        minutes: described.first().zip(described.last()).map(|(a, b)| (a.start, b.start)),
        since: onset.map(|i| rows[i].start),
        evidence,
        threshold: 1.0 / test_alpha,
    }
}

#[cfg(test)]
mod tests;
