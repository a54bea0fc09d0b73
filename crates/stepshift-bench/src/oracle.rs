//! Reference rows for the judge benchmark: a sequential probability ratio test that
//! *knows* the true regression, computed by direct Monte Carlo, not through the state
//! machine. No judge can know the regression's size in advance, so these are bounds on
//! how fast a detection could be at the same traffic and the same false-alarm level,
//! not competitors.
//!
//! The test is Wald's one-sided SPRT of the simple hypotheses H0 "each candidate
//! invocation fails (or is slow) with probability `p0`" against H1 "with `p1`": it
//! rolls back once the log likelihood ratio reaches `ln(1/α)`, which by Ville's
//! inequality happens under H0 with probability at most `α`, however long it runs.
//!
//! - **No lag**: every candidate invocation's outcome is seen the moment it happens;
//!   the statistic is read at the end of every second.
//! - **CloudWatch lag**: the same test on per-minute counts, each minute delivered
//!   60 to 240 s after it ends (uniform, whole seconds), read after each delivery.
//!
//! The candidate's invocations are Poisson per second at `share × rps`: a 10% share
//! before the promotion, 100% after. Only detections before the deployment would have
//! ended count.
//!
//! The random numbers come from SplitMix64, written here so that the benchmark needs no
//! random-number crate of its own; it is seeded, so every figure is reproducible.

/// A small seeded generator (SplitMix64, Steele, Lea and Flood 2014).
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform on `lo..=hi` (the bias of the multiply-shift is below 2^-50 here).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        let span = hi.saturating_sub(lo) + 1;
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as u64
    }

    /// A Poisson draw with mean `lambda`: Knuth's product of uniforms below 10, and
    /// Hörmann's transformed rejection (PTRS, 1993) from 10 on, as NumPy does.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            return 0;
        }
        if lambda < 10.0 {
            let limit = (-lambda).exp();
            let mut k = 0;
            let mut p = self.uniform();
            while p > limit {
                k += 1;
                p *= self.uniform();
            }
            return k;
        }
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.024_83 * b;
        let invalpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            if v.ln() + invalpha.ln() - (a / (us * us) + b).ln() <= -lambda + k * loglam - ln_factorial(k as u64) {
                return k as u64;
            }
        }
    }
}

/// `ln(k!)`: exact below 20, Stirling's series (error below 1e-13) above.
fn ln_factorial(k: u64) -> f64 {
    if k < 20 {
        return (2..=k).map(|i| (i as f64).ln()).sum();
    }
    let x = (k + 1) as f64;
    (x - 0.5) * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI).ln() + 1.0 / (12.0 * x) - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// The log likelihood ratio of `k` events in `n` invocations, rate `p1` against `p0`.
pub fn log_lr(k: u64, n: u64, p0: f64, p1: f64) -> f64 {
    let (k, n) = (k as f64, n as f64);
    k * (p1 / p0).ln() + (n - k) * ((1.0 - p1) / (1.0 - p0)).ln()
}

/// One oracle cell: the traffic, the deployment's timeline and the two rates.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Requests per second through the alias.
    pub rps: f64,
    /// The candidate's share before `promotion` (after it, 100%).
    pub canary_share: f64,
    /// Seconds from the start to the promotion.
    pub promotion: u64,
    /// Seconds from the start to the regression's onset (a whole minute).
    pub onset: u64,
    /// Seconds from the start to the end of the deployment: later detections do not count.
    pub deadline: u64,
    /// The stable version's true rate.
    pub p0: f64,
    /// The candidate's true rate after the onset.
    pub p1: f64,
    /// The false-alarm level: the threshold is `ln(1/alpha)`.
    pub alpha: f64,
    /// CloudWatch's delivery lag after a minute ends, seconds (inclusive range).
    pub lag: (u64, u64),
}

/// When each oracle detected the regression, in seconds from the onset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Detection {
    /// Seeing every invocation at once.
    pub no_lag: Option<u64>,
    /// Seeing minutes as CloudWatch delivers them.
    pub lagged: Option<u64>,
}

impl Spec {
    /// Candidate invocations expected from second `a` to second `b` after the start.
    fn expected(&self, a: u64, b: u64) -> f64 {
        let canary = b.min(self.promotion).saturating_sub(a);
        let full = b.saturating_sub(a.max(self.promotion));
        self.rps * (self.canary_share * canary as f64 + full as f64)
    }
}

/// One simulated deployment, both oracles on the same invocations.
pub fn detect(spec: &Spec, rng: &mut Rng) -> Detection {
    let threshold = (1.0 / spec.alpha).ln();
    let (hit, miss) = ((spec.p1 / spec.p0).ln(), ((1.0 - spec.p1) / (1.0 - spec.p0)).ln());
    let minute_of = |sec: u64| ((sec - spec.onset) / 60) as usize;
    // Per minute from the onset: (events, other invocations).
    let mut minutes: Vec<(u64, u64)> = vec![(0, 0); minute_of(spec.deadline.max(spec.onset + 1) - 1) + 1];
    // Second by second until the no-lag test decides. Events and the other invocations
    // are independent Poisson streams (thinning).
    let mut llr = 0.0;
    let mut no_lag = None;
    let mut sec = spec.onset;
    while sec < spec.deadline && no_lag.is_none() {
        let lambda = spec.expected(sec, sec + 1);
        let k = rng.poisson(lambda * spec.p1);
        let m = rng.poisson(lambda * (1.0 - spec.p1));
        llr += k as f64 * hit + m as f64 * miss;
        if llr >= threshold {
            no_lag = Some(sec + 1 - spec.onset);
        }
        let i = minute_of(sec);
        minutes[i].0 += k;
        minutes[i].1 += m;
        sec += 1;
    }
    // Then a minute at a time (the rest of the current one first): a sum of independent
    // Poisson draws is one Poisson draw of the summed mean.
    while sec < spec.deadline {
        let i = minute_of(sec);
        let end = (spec.onset + 60 * (i as u64 + 1)).min(spec.deadline);
        let lambda = spec.expected(sec, end);
        minutes[i].0 += rng.poisson(lambda * spec.p1);
        minutes[i].1 += rng.poisson(lambda * (1.0 - spec.p1));
        sec = end;
    }
    // Deliveries, in the order they arrive (ties: the earlier minute first). Only whole
    // minutes are delivered.
    let whole = ((spec.deadline - spec.onset) / 60) as usize;
    let mut arrivals: Vec<(u64, usize)> = (0..whole.min(minutes.len()))
        .map(|i| (spec.onset + 60 * (i as u64 + 1) + rng.range(spec.lag.0, spec.lag.1), i))
        .collect();
    arrivals.sort_unstable();
    let mut llr = 0.0;
    let mut lagged = None;
    for (at, i) in arrivals {
        if at > spec.deadline {
            break;
        }
        let (k, m) = minutes[i];
        llr += log_lr(k, k + m, spec.p0, spec.p1);
        if llr >= threshold {
            lagged = Some(at - spec.onset);
            break;
        }
    }
    Detection { no_lag, lagged }
}

/// `runs` deployments of one cell, seeded with `seed`.
pub fn run(spec: &Spec, runs: u32, seed: u64) -> Vec<Detection> {
    let mut rng = Rng::new(seed);
    (0..runs).map(|_| detect(spec, &mut rng)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lr_by_hand() {
        // 3 errors in 100 invocations, 5% against 1%:
        // 3·ln 5 + 97·ln(0.95/0.99) = 4.828314 - 4.000567 = 0.827747.
        let l = log_lr(3, 100, 0.01, 0.05);
        assert!((l - 0.827_747).abs() < 1e-5, "{l}");
        // No events: each invocation is evidence for H0.
        assert!((log_lr(0, 10, 0.01, 0.05) - 10.0 * (0.95f64 / 0.99).ln()).abs() < 1e-12);
        // The threshold ln(100) = 4.60517: with p0 = 1%, p1 = 5% and no other
        // invocations, 3 errors (4.83) cross it, 2 (3.22) do not.
        let t = 100f64.ln();
        assert!(log_lr(3, 3, 0.01, 0.05) >= t);
        assert!(log_lr(2, 2, 0.01, 0.05) < t);
    }

    /// A 10% canary for 15 min at 10 req/s, then 100%; errors 1% → 5% from the start.
    fn canary_5x() -> Spec {
        Spec {
            rps: 10.0,
            canary_share: 0.1,
            promotion: 900,
            onset: 0,
            deadline: 1200,
            p0: 0.01,
            p1: 0.05,
            alpha: 0.01,
            lag: (60, 240),
        }
    }

    #[test]
    fn sprt_detects_at_the_right_second() {
        // Every invocation fails (p1 = 1 would be degenerate; 0.999 instead), 1 req/s:
        // each second adds about ln(99.9) = 4.604 < ln 100; the second crosses.
        let spec = Spec {
            rps: 1000.0,
            canary_share: 0.001,
            promotion: 10_000,
            onset: 0,
            deadline: 600,
            p0: 0.01,
            p1: 0.999,
            alpha: 0.01,
            lag: (60, 60),
        };
        let mut rng = Rng::new(7);
        let d = detect(&spec, &mut rng);
        let no_lag = d.no_lag.expect("detected");
        assert!(no_lag <= 10, "{no_lag}");
        // With a fixed 60 s lag the first minute arrives at 120 s, and it crosses.
        assert_eq!(d.lagged, Some(120));
    }

    #[test]
    fn a_healthy_candidate_rarely_alarms() {
        let spec = canary_5x();
        // Under H0 (p1 set to the true rate in the simulation, the test still p0 vs 5x):
        let h0 = Spec { p1: 0.01, ..spec };
        let mut rng = Rng::new(11);
        let (threshold, hit, miss) = (100f64.ln(), 5f64.ln(), (0.95f64 / 0.99).ln());
        let mut alarms = 0;
        for _ in 0..2000 {
            let mut llr = 0.0;
            for sec in 0..h0.deadline {
                let lambda = if sec < 900 { 1.0 } else { 10.0 };
                llr += rng.poisson(lambda * 0.01) as f64 * hit + rng.poisson(lambda * 0.99) as f64 * miss;
                if llr >= threshold {
                    alarms += 1;
                    break;
                }
            }
        }
        assert!(alarms <= 20, "{alarms} of 2000 above the 1% bound");
        // And under H1 it detects nearly always within the deployment.
        let detected = run(&spec, 500, 3).iter().filter(|d| d.lagged.is_some()).count();
        assert!(detected > 400, "{detected}");
    }

    #[test]
    fn expected_invocations_follow_the_share() {
        let spec = canary_5x();
        assert!((spec.expected(0, 60) - 60.0).abs() < 1e-9);
        // 30 s at 1 req/s, then 30 s at 10 req/s.
        assert!((spec.expected(870, 930) - 330.0).abs() < 1e-9);
        assert!((spec.expected(1000, 1060) - 600.0).abs() < 1e-9);
        assert_eq!(spec.expected(5, 5), 0.0);
    }

    #[test]
    fn poisson_moments() {
        let mut rng = Rng::new(5);
        for lambda in [0.05, 3.0, 9.99, 10.0, 97.5, 6000.0] {
            let n = 40_000;
            let draws: Vec<f64> = (0..n).map(|_| rng.poisson(lambda) as f64).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se = (lambda / n as f64).sqrt();
            assert!((mean - lambda).abs() < 5.0 * se, "λ {lambda}: mean {mean}");
            assert!((var / lambda - 1.0).abs() < 0.05, "λ {lambda}: variance {var}");
        }
        assert_eq!(rng.poisson(0.0), 0);
    }

    #[test]
    fn ln_factorial_both_ways() {
        let exact: f64 = (2..=30u64).map(|i| (i as f64).ln()).sum();
        assert!((ln_factorial(30) - exact).abs() < 1e-10);
        assert_eq!(ln_factorial(0), 0.0);
        assert!((ln_factorial(5) - 120f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn range_is_inclusive() {
        let mut rng = Rng::new(1);
        let draws: Vec<u64> = (0..10_000).map(|_| rng.range(60, 240)).collect();
        assert_eq!(draws.iter().min(), Some(&60));
        assert_eq!(draws.iter().max(), Some(&240));
    }
}
