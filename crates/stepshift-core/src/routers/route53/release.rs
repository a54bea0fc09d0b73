//! The record operations of a blue/green release, over a [`RecordRouter`]: what
//! shift-weight, promote and rollback will do for a `route53` target.
//!
//! Each operation reads the record's sets first and writes only if they are what
//! stepshift last wrote, so that:
//! - a retry after a lost answer finds its own change already made and writes nothing;
//! - a change someone else made is reported as drift and never overwritten.

use super::{BLUE_ID, ChangeStatus, GREEN_ID, RecordRouter, RecordSet, RecordTarget, share_of_green, weights};
use crate::error::PortError;

/// Why a record operation stopped.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The record is not in a state this release can start from (it does not exist, or
    /// does not point at blue); nothing was changed.
    #[error("{0}")]
    NotReady(String),
    /// Someone else changed the record during the release; nothing was changed.
    #[error("{0}")]
    Drift(String),
    /// A Route53 call failed.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// What a shift left behind.
#[derive(Clone, Debug, PartialEq)]
pub struct Moved {
    /// The Route53 change to wait for, or `None` when the record already was there.
    pub change_id: Option<String>,
    /// The weights written.
    pub blue_weight: u16,
    /// The weights written.
    pub green_weight: u16,
    /// The share of answers green gets, in percent (after rounding to Route53 weights).
    pub green_percent: f64,
}

async fn found<R: RecordRouter>(router: &R, t: &RecordTarget) -> Result<Vec<RecordSet>, RecordError> {
    Ok(router.list_record_sets(&t.hosted_zone_id, &t.name(), t.record_type.as_str()).await?)
}

/// Before the first shift: the record as it is, to be recorded for the rollback.
pub async fn begin<R: RecordRouter>(router: &R, t: &RecordTarget) -> Result<RecordSet, RecordError> {
    t.original(&found(router, t).await?).map_err(RecordError::NotReady)
}

/// Moves `to` percent of the answers to green. `from` is the share stepshift last wrote
/// (`None` before the first shift, when the record is still `original`).
pub async fn shift<R: RecordRouter>(
    router: &R,
    t: &RecordTarget,
    original: &RecordSet,
    from: Option<f64>,
    to: f64,
) -> Result<Moved, RecordError> {
    let (blue_weight, green_weight) = weights(to);
    let moved = |change_id| Moved {
        change_id,
        blue_weight,
        green_weight,
        green_percent: share_of_green(blue_weight, green_weight),
    };
    let now = found(router, t).await?;
    if t.drift(&now, &t.weighted(to)).is_none() {
        return Ok(moved(None));
    }
    let changes = match from {
        None => match t.drift(&now, std::slice::from_ref(original)) {
            Some(drift) => return Err(RecordError::Drift(drift)),
            None => t.split_batch(original, to),
        },
        Some(p) => match t.drift(&now, &t.weighted(p)) {
            Some(drift) => return Err(RecordError::Drift(drift)),
            None => t.step_batch(to),
        },
    };
    let comment = format!("stepshift: {}% of {} to green", crate::percent_text(to / 100.0), t.label());
    let id = router.change_record_sets(&t.hosted_zone_id, &changes, &comment).await?;
    Ok(moved(Some(id)))
}

/// Ends the release on a simple record for green. `from` is the share stepshift last
/// wrote (100 after the last step).
pub async fn promote<R: RecordRouter>(router: &R, t: &RecordTarget, from: f64) -> Result<Option<String>, RecordError> {
    let now = found(router, t).await?;
    if now == [t.promoted()] {
        return Ok(None);
    }
    if let Some(drift) = t.drift(&now, &t.weighted(from)) {
        return Err(RecordError::Drift(drift));
    }
    let comment = format!("stepshift: {} promoted to green", t.label());
    Ok(Some(router.change_record_sets(&t.hosted_zone_id, &t.promote_batch(&now), &comment).await?))
}

/// Puts the original record back exactly, from any state stepshift could have left:
/// the original, its two weighted records at any weights, or the promoted record. Any
/// other state is someone else's change, reported and left alone.
pub async fn restore<R: RecordRouter>(
    router: &R,
    t: &RecordTarget,
    original: &RecordSet,
) -> Result<Option<String>, RecordError> {
    let now = found(router, t).await?;
    if now == std::slice::from_ref(original) {
        return Ok(None);
    }
    let [blue, green] = t.weighted(0.0);
    let ours = |r: &RecordSet| {
        let like = |w: &RecordSet| RecordSet { weight: r.weight, ..w.clone() } == *r;
        match r.set_identifier.as_deref() {
            Some(BLUE_ID) => like(&blue),
            Some(GREEN_ID) => like(&green),
            _ => false,
        }
    };
    let weighted_by_us = !now.is_empty() && now.len() <= 2 && now.iter().all(ours);
    if !weighted_by_us && now != [t.promoted()] {
        let mut expected = t.weighted(0.0).to_vec();
        expected.push(original.clone());
        return Err(RecordError::Drift(t.drift(&now, &expected).unwrap_or_default()));
    }
    let comment = format!("stepshift: {} rolled back to blue", t.label());
    Ok(Some(router.change_record_sets(&t.hosted_zone_id, &t.restore_batch(&now, original), &comment).await?))
}

/// Whether Route53 has applied the change everywhere; bakes start counting then.
pub async fn in_sync<R: RecordRouter>(router: &R, change_id: &str) -> Result<bool, PortError> {
    Ok(router.change_status(change_id).await? == ChangeStatus::Insync)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{Call, Fault, MemoryAws};
    use crate::routers::route53::{Endpoint, RecordType};

    fn cloudfront(dns: &str) -> Endpoint {
        Endpoint::cloudfront(dns, None)
    }

    /// A zone where `www` points at blue, as the simple record a console would create.
    fn setup() -> (MemoryAws, RecordTarget, RecordSet) {
        let t = RecordTarget {
            hosted_zone_id: "ZONE1".into(),
            record_name: "www.example.com".into(),
            record_type: RecordType::A,
            blue: cloudfront("d1.cloudfront.net"),
            green: cloudfront("d2.cloudfront.net"),
        };
        let original = t.before_release();
        let aws = MemoryAws::default();
        aws.add_zone("ZONE1", vec![original.clone()]);
        (aws, t, original)
    }

    #[tokio::test]
    async fn a_healthy_release_ends_on_a_simple_record_for_green() {
        let (aws, t, _) = setup();
        let original = begin(&aws, &t).await.unwrap();
        let mut from = None;
        for to in [10.0, 50.0, 100.0] {
            let moved = shift(&aws, &t, &original, from, to).await.unwrap();
            assert_eq!(moved.green_percent, to);
            let change = moved.change_id.expect("every step writes");
            assert!(in_sync(&aws, &change).await.unwrap());
            from = Some(to);
        }
        promote(&aws, &t, 100.0).await.unwrap();
        assert_eq!(aws.record_sets("ZONE1"), [t.promoted()]);
        assert_eq!(promote(&aws, &t, 100.0).await.unwrap(), None, "promoting twice changes nothing");
        assert_eq!(aws.calls()[&Call::ChangeRecordSets], 4);
    }

    #[tokio::test]
    async fn a_rollback_restores_the_original_exactly_from_any_step() {
        let (aws, t, original) = setup();
        shift(&aws, &t, &original, None, 10.0).await.unwrap();
        shift(&aws, &t, &original, Some(10.0), 25.0).await.unwrap();
        restore(&aws, &t, &original).await.unwrap();
        assert_eq!(aws.record_sets("ZONE1"), std::slice::from_ref(&original));
        assert_eq!(restore(&aws, &t, &original).await.unwrap(), None, "a retried rollback changes nothing");
        // And from a promoted record, during the lock-in watch.
        shift(&aws, &t, &original, None, 100.0).await.unwrap();
        promote(&aws, &t, 100.0).await.unwrap();
        restore(&aws, &t, &original).await.unwrap();
        assert_eq!(aws.record_sets("ZONE1"), [original]);
    }

    #[tokio::test]
    async fn a_retry_after_a_lost_answer_writes_nothing_more() {
        let (aws, t, original) = setup();
        let lost = PortError::Unavailable { service: crate::Service::Route53, message: "timed out".into() };
        aws.inject(Call::ChangeRecordSets, Fault::FailAfter(lost));
        assert!(shift(&aws, &t, &original, None, 10.0).await.is_err());
        let retried = shift(&aws, &t, &original, None, 10.0).await.unwrap();
        assert_eq!(retried.change_id, None);
        assert_eq!(aws.calls()[&Call::ChangeRecordSets], 1);
        assert_eq!(t.drift(&aws.record_sets("ZONE1"), &t.weighted(10.0)), None);
    }

    #[tokio::test]
    async fn someone_elses_change_is_drift_and_is_left_alone() {
        let (aws, t, original) = setup();
        shift(&aws, &t, &original, None, 10.0).await.unwrap();
        // Someone sets the weights by hand in the console.
        aws.put_record_sets("ZONE1", t.weighted(70.0).to_vec());
        let drift = shift(&aws, &t, &original, Some(10.0), 25.0).await.unwrap_err();
        assert!(matches!(&drift, RecordError::Drift(d) if d.contains("found stepshift-blue (30)")), "{drift}");
        // Someone points the record at a third endpoint: the rollback does not touch it.
        let mut theirs = original.clone();
        theirs.alias_target.as_mut().unwrap().dns_name = "d3.cloudfront.net.".into();
        aws.put_record_sets("ZONE1", vec![theirs.clone()]);
        assert!(matches!(restore(&aws, &t, &original).await, Err(RecordError::Drift(_))));
        assert_eq!(aws.record_sets("ZONE1"), [theirs]);
        assert_eq!(aws.calls()[&Call::ChangeRecordSets], 1);
    }

    #[tokio::test]
    async fn a_release_starts_only_from_a_simple_record_on_blue() {
        let (aws, t, _) = setup();
        aws.put_record_sets("ZONE1", vec![t.promoted()]);
        let err = begin(&aws, &t).await.unwrap_err();
        assert!(matches!(&err, RecordError::NotReady(m) if m.contains("not at blue")), "{err}");
        let missing = RecordTarget { hosted_zone_id: "NOPE".into(), ..t };
        assert!(matches!(begin(&aws, &missing).await, Err(RecordError::Port(PortError::NotFound { .. }))));
    }
}
