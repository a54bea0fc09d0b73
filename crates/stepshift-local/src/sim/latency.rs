//! Latency histograms: log-spaced bins shared by every bucket, so that minutes and
//! versions merge exactly and a window's p99 can be read like CloudWatch computes it.

use rand::Rng;
use rand_distr::{Binomial, Distribution, StandardNormal};

/// Lower edge of the first bin, milliseconds.
const LOW_MS: f64 = 0.1;
/// Each bin is 5% wider than the last: p99 is read to within about 2.5%.
const RATIO: f64 = 1.05;
/// Bins up to Lambda's 15-minute limit.
pub const BINS: usize = 330;

/// Counts of durations per bin.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    counts: Vec<u64>,
}

fn bin_of(ms: f64) -> usize {
    if ms <= LOW_MS { 0 } else { ((ms / LOW_MS).ln() / RATIO.ln()).floor().min((BINS - 1) as f64) as usize }
}

fn edge(bin: usize) -> f64 {
    LOW_MS * RATIO.powi(bin as i32)
}

/// The standard normal CDF. Abramowitz & Stegun 7.1.26 (error below 1.5e-7), written
/// here because the standard library has no erf and the simulation needs nothing more.
pub fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 { 0.5 * (1.0 + erf) } else { 0.5 * (1.0 - erf) }
}

/// A log-normal latency distribution given by its median and p99.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogNormal {
    mu: f64,
    sigma: f64,
}

impl LogNormal {
    /// The distribution with these percentiles (p99 at least the median).
    pub fn from_percentiles(p50_ms: f64, p99_ms: f64) -> Self {
        let p50 = p50_ms.max(LOW_MS);
        let sigma = ((p99_ms.max(p50) / p50).ln() / 2.326_347_874).max(1e-6);
        Self { mu: p50.ln(), sigma }
    }

    /// The share of durations above `ms`.
    pub fn share_above(&self, ms: f64) -> f64 {
        if ms <= 0.0 { 1.0 } else { 1.0 - phi((ms.ln() - self.mu) / self.sigma) }
    }
}

impl Histogram {
    /// Adds `n` durations drawn from `dist`.
    pub fn add(&mut self, n: u64, dist: LogNormal, rng: &mut impl Rng) {
        if n == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BINS];
        }
        if n <= 64 {
            for _ in 0..n {
                let z: f64 = rng.sample(StandardNormal);
                self.counts[bin_of((dist.mu + dist.sigma * z).exp())] += 1;
            }
            return;
        }
        // Many samples: draw the count of each bin from the conditional binomial, over
        // the bins within ±6 sigma (the rest hold less than one in 10^8).
        let lo = bin_of((dist.mu - 6.0 * dist.sigma).exp());
        let hi = bin_of((dist.mu + 6.0 * dist.sigma).exp());
        let mut left = n;
        let mut mass_left = 1.0;
        for b in lo..=hi {
            if left == 0 {
                break;
            }
            let cdf = |x: f64| phi((x.ln() - dist.mu) / dist.sigma);
            let lower = if b == lo { 0.0 } else { cdf(edge(b)) };
            let upper = if b == hi { 1.0 } else { cdf(edge(b + 1)) };
            let p = (upper - lower).max(0.0);
            let k = if b == hi || mass_left <= p {
                left
            } else {
                Binomial::new(left, (p / mass_left).clamp(0.0, 1.0)).map(|d| d.sample(rng)).unwrap_or(0)
            };
            self.counts[b] += k;
            left -= k;
            mass_left -= p;
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BINS];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// How many durations it holds.
    pub fn len(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many durations are above `ms`, as CloudWatch's `TC(ms:)` counts them: the
    /// bins wholly above it, and the share of the bin it falls in that lies above it
    /// (log-linear within the bin), rounded to whole invocations.
    pub fn count_above(&self, ms: f64) -> u64 {
        if self.counts.is_empty() {
            return 0;
        }
        let b = bin_of(ms);
        let whole: u64 = self.counts[b + 1..].iter().sum();
        let (lo, hi) = (edge(b), edge(b + 1));
        let share = if ms <= lo { 1.0 } else { ((hi / ms).ln() / (hi / lo).ln()).clamp(0.0, 1.0) };
        whole + (self.counts[b] as f64 * share).round() as u64
    }

    /// The `q` quantile (0..1) in milliseconds, at the geometric centre of its bin.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(edge(b) * RATIO.sqrt());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn percentiles_come_back_within_bin_precision() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [40, 100_000] {
            let mut h = Histogram::default();
            h.add(n, LogNormal::from_percentiles(100.0, 400.0), &mut rng);
            assert_eq!(h.len(), n);
            if n > 1000 {
                let p50 = h.quantile(0.5).unwrap();
                let p99 = h.quantile(0.99).unwrap();
                assert!((95.0..105.0).contains(&p50), "p50 {p50}");
                assert!((380.0..420.0).contains(&p99), "p99 {p99}");
            }
        }
    }

    #[test]
    fn merging_adds_counts() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        a.add(500, LogNormal::from_percentiles(10.0, 20.0), &mut rng);
        b.add(500, LogNormal::from_percentiles(1000.0, 2000.0), &mut rng);
        a.merge(&b);
        assert_eq!(a.len(), 1000);
        assert!(a.quantile(0.99).unwrap() > 1000.0);
        assert!(Histogram::default().quantile(0.99).is_none());
    }

    #[test]
    fn counts_above_a_threshold_follow_the_distribution() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut h = Histogram::default();
        h.add(100_000, LogNormal::from_percentiles(40.0, 180.0), &mut rng);
        let p99 = h.quantile(0.99).unwrap();
        let above = h.count_above(p99) as f64 / 1000.0;
        assert!((0.85..1.15).contains(&above), "about 1% above the p99: {above}%");
        // 3x slower: P(D > 180) = P(Z > ln(1.5)/σ) = 26.5%.
        let mut slow = Histogram::default();
        slow.add(100_000, LogNormal::from_percentiles(120.0, 540.0), &mut rng);
        let share = slow.count_above(180.0) as f64 / 1000.0;
        assert!((25.0..28.0).contains(&share), "{share}%");
        assert_eq!(h.count_above(0.0), 100_000);
        assert_eq!(Histogram::default().count_above(10.0), 0);
    }

    #[test]
    fn normal_cdf() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(2.326_347_874) - 0.99).abs() < 1e-6);
        assert!((phi(-1.0) - 0.158_655_25).abs() < 1e-6);
    }
}
