//! The fast path's side of a check: `tally`'s 10-second counts of every live target,
//! read with one GetMetricData call, and what the verdict should say about them.

use crate::compare::MinutePair;
use crate::deployment::{Plan, Traffic};
use crate::outcomes::{
    BucketCounts, FAST_PATH_HORIZON_SECONDS, NAMESPACE, OutcomeSeries, OutcomeSource, Source, bucket_of,
};
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
    /// The input they came from.
    pub source: Source,
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

/// What the verdict says about one target's fast path: live, with what it counted; or
/// down, when `tally` counted nothing in the newest minute in which CloudWatch's minute
/// metrics show the candidate serving (tally failing, or the filter removed), so that
/// only the minute checks are judging. CloudWatch delivers a minute 1-4 minutes late,
/// long after `tally`'s counts of it. Minutes in the first two of the deployment do not
/// count: the subscription takes a moment to deliver.
pub fn note(label: &str, buckets: &Buckets, minutes: &VersionMetrics, started_at: Timestamp) -> String {
    let since = started_at.plus_secs(120);
    let newest = minutes.minutes.iter().filter(|m| m.start >= since && m.invocations > 0).max_by_key(|m| m.start);
    let counted_in = |m: &crate::ports::MinuteCounts| -> u64 {
        let end = m.start.plus_secs(60);
        buckets.candidate.iter().filter(|b| b.start >= m.start && b.start < end).map(|b| b.invocations).sum()
    };
    match newest {
        Some(m) if counted_in(m) == 0 => format!(
            "fast path: down for {label}: CloudWatch counted {} candidate invocations in the minute from {} and tally \
             none; judged on the minute metrics alone",
            m.invocations,
            m.start.to_rfc3339()
        ),
        _ => format!(
            "fast path: live for {label} ({}), {} candidate invocations counted",
            buckets.source.name(),
            buckets.candidate_invocations()
        ),
    }
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
        read_for.push((i, f.source));
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
            for (k, (i, source)) in read_for.into_iter().enumerate() {
                let stable = std::mem::take(&mut read[2 * k + 1]);
                let candidate = std::mem::take(&mut read[2 * k]);
                out[i] = Some(Buckets { candidate, stable, full_from, source });
            }
        }
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(secs: i64, invocations: u64, failures: u64) -> BucketCounts {
        BucketCounts { start: Timestamp::from_secs(secs), invocations, failures, slow: 0 }
    }

    fn failures(b: &BucketCounts) -> (u64, u64) {
        (b.invocations, b.failures)
    }

    #[test]
    fn while_split_a_candidate_bucket_waits_for_the_stable_one() {
        let buckets = Buckets {
            candidate: vec![b(0, 10, 1), b(10, 12, 2), b(20, 3, 9)],
            stable: vec![b(0, 90, 1), b(20, 80, 0)],
            full_from: None,
            source: Source::Logs,
        };
        let pairs = buckets.pairs(failures);
        let starts: Vec<i64> = pairs.iter().map(|p| p.start.secs()).collect();
        assert_eq!(starts, [0, 20], "the bucket at 10 s waits for the stable version's counts");
        assert_eq!((pairs[0].stable_n, pairs[0].stable_k), (90, 1));
        assert_eq!((pairs[1].candidate_n, pairs[1].candidate_k), (3, 3), "failures clamped to invocations");
    }

    #[test]
    fn at_full_traffic_buckets_are_judged_against_the_history() {
        let buckets = Buckets {
            candidate: vec![b(0, 10, 1), b(60, 100, 2)],
            stable: vec![b(0, 90, 1), b(60, 4, 0)],
            full_from: Some(Timestamp::from_secs(60)),
            source: Source::Logs,
        };
        let pairs = buckets.pairs(failures);
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[0].stable_n, 90, "before the promotion: the stable version of the same seconds");
        assert_eq!((pairs[1].stable_n, pairs[1].stable_k), (0, 0), "after it: none, so the history is the baseline");
    }

    #[test]
    fn the_note_says_down_when_cloudwatch_saw_what_tally_did_not() {
        let minutes = VersionMetrics {
            minutes: vec![crate::ports::MinuteCounts {
                start: Timestamp::from_secs(180),
                invocations: 40,
                ..Default::default()
            }],
            p99_duration_ms: None,
            custom: Vec::new(),
        };
        let silent = Buckets::default();
        assert!(note("orders:live", &silent, &minutes, Timestamp::from_secs(0)).starts_with("fast path: down"));
        let counting = Buckets { candidate: vec![b(180, 35, 0)], ..Buckets::default() };
        assert!(note("orders:live", &counting, &minutes, Timestamp::from_secs(0)).starts_with("fast path: live"));
        // The first two minutes: the subscription may not have delivered yet.
        assert!(note("orders:live", &silent, &minutes, Timestamp::from_secs(120)).starts_with("fast path: live"));
    }
}
