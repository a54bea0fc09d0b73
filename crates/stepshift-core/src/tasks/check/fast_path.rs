//! The fast path's side of a check: `tally`'s 10-second counts of every live target,
//! read with one GetMetricData call, and what the verdict should say about them.

use crate::compare::MinutePair;
use crate::deployment::{Plan, Traffic};
use crate::outcomes::{BucketCounts, FAST_PATH_HORIZON_SECONDS, NAMESPACE, OutcomeSeries, OutcomeSource, bucket_of};
use crate::ports::VersionMetrics;
use crate::time::Timestamp;

/// The fast path's tests per target: failures and slow invocations.
pub const TESTS: usize = 2;

/// One target's buckets.
#[derive(Clone, Debug, Default)]
pub struct Buckets {
    /// The candidate's buckets with data.
    pub candidate: Vec<BucketCounts>,
    /// The stable version's.
    pub stable: Vec<BucketCounts>,
    /// From when the candidate had all traffic, if it has.
    pub full_from: Option<Timestamp>,
}

impl Buckets {
    /// The candidate's buckets paired with the stable version's of the same 10 seconds.
    ///
    /// While traffic is split, a candidate bucket waits until the stable version's
    /// counts of the same seconds have arrived: `tally` publishes each version's counts
    /// as their log batches come, and a bucket compared with nothing would be judged
    /// against the history instead, then again against the stable version once its
    /// counts arrive. Once the candidate has all traffic, its buckets are compared with
    /// the history. Counts are clamped so that failures never exceed invocations (an
    /// error line may arrive before its REPORT line's batch).
    pub fn pairs(&self, count: impl Fn(&BucketCounts) -> (u64, u64)) -> Vec<MinutePair> {
        self.candidate
            .iter()
            .filter_map(|c| {
                let full = self.full_from.is_some_and(|f| c.start >= f);
                let stable = self.stable.iter().find(|s| s.start == c.start && s.invocations > 0);
                let (stable_n, stable_k) = match (full, stable) {
                    (true, _) => (0, 0),
                    (false, Some(s)) => count(s),
                    (false, None) => return None,
                };
                let (candidate_n, candidate_k) = count(c);
                Some(MinutePair {
                    start: c.start,
                    candidate_n,
                    candidate_k: candidate_k.min(candidate_n),
                    stable_n,
                    stable_k: stable_k.min(stable_n),
                })
            })
            .collect()
    }

    /// The candidate's invocations counted so far.
    pub fn candidate_invocations(&self) -> u64 {
        self.candidate.iter().map(|b| b.invocations).sum()
    }
}

/// A note when `tally` counted nothing of a candidate that CloudWatch's minute metrics
/// show serving: the fast path is down (tally failing, or the filter gone), and only the
/// minute checks are judging. Minutes in the first two of the deployment do not count:
/// the subscription takes a moment to deliver.
pub fn silent(label: &str, buckets: &Buckets, minutes: &VersionMetrics, started_at: Timestamp) -> Option<String> {
    let since = started_at.plus_secs(120);
    let seen: u64 = minutes.minutes.iter().filter(|m| m.start >= since).map(|m| m.invocations).sum();
    (seen > 0 && buckets.candidate_invocations() == 0).then(|| {
        format!(
            "fast path: down for {label}: CloudWatch counted {seen} candidate invocations and tally none; judged on \
             the minute metrics alone"
        )
    })
}

/// Reads the buckets of every target whose fast path is live (`None` for the others),
/// and the notes the verdict carries about the fast path. Never fails: when the read
/// fails, the check goes on with the minute metrics alone, and a note says so.
pub async fn read<P: OutcomeSource>(
    ports: &P,
    plan: &Plan,
    traffic: &Traffic,
    step_started: Timestamp,
    now: Timestamp,
) -> (Vec<Option<Buckets>>, Vec<String>) {
    let mut out = vec![None; plan.targets.len()];
    let mut notes = Vec::new();
    if !plan.health.fast_path.enabled {
        return (out, notes);
    }
    let Some(fast) = &plan.fast_path else {
        notes.push(
            "fast path: did not start (the execution history shows why, at \"Start fast path\"); judged on \
             CloudWatch's minute metrics alone"
                .to_owned(),
        );
        return (out, notes);
    };
    if fast.live() && !plan.fast_path_judges(now) {
        notes.push(format!(
            "fast path: over after {} minutes (CloudWatch keeps 10-second data for 3 hours); judged on the minute \
             metrics alone",
            FAST_PATH_HORIZON_SECONDS / 60
        ));
        return (out, notes);
    }
    let mut series = Vec::new();
    let mut read_for = Vec::new();
    for (i, t) in plan.targets.iter().enumerate() {
        let label = t.qualified();
        let Some(f) = fast.targets.iter().find(|f| f.target == label) else { continue };
        let Some(route) = t.route.counted_alias().filter(|_| f.live) else {
            notes.push(format!("fast path: none for {label}: {}", f.note.as_deref().unwrap_or("not available")));
            continue;
        };
        for version in [&t.candidate, &t.stable] {
            series.push(OutcomeSeries {
                function: route.function.clone(),
                alias: route.alias.clone(),
                version: version.clone(),
                source: f.source,
            });
        }
        read_for.push((i, label, f.source));
    }
    if series.is_empty() {
        return (out, notes);
    }
    match ports.outcomes(&series, bucket_of(plan.started_at), now).await {
        Err(e) => notes.push(format!(
            "fast path: down, reading {NAMESPACE} failed ({e}); judged on CloudWatch's minute metrics alone"
        )),
        Ok(mut read) => {
            let full_from = (traffic.weight_percent >= 100.0).then_some(step_started);
            for (k, (i, label, source)) in read_for.into_iter().enumerate() {
                let stable = std::mem::take(&mut read[2 * k + 1]);
                let candidate = std::mem::take(&mut read[2 * k]);
                let buckets = Buckets { candidate, stable, full_from };
                notes.push(format!(
                    "fast path: live for {label} ({}), {} candidate invocations counted",
                    source.name(),
                    buckets.candidate_invocations()
                ));
                out[i] = Some(buckets);
            }
        }
    }
    (out, notes)
}
