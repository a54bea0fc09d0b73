//! The Route53 router: the record's identity, Begin's look at it, its moves, and its
//! health from the blue and green distributions' CloudFront metrics.
//!
//! - **Moves** each phase in one atomic change batch ([`super::release`]), drift-aware.
//! - **Syncs**: a change is in effect on every Route53 server once `GetChange` says
//!   INSYNC (normally within 60 seconds); "Check sync" polls it before the bake.
//! - **Observes** CloudFront's per-distribution minutes (requests, 5xx and 4xx rates);
//!   blue's last hour is the history. A record without distribution ids is judged on
//!   its alarms only.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::health::{DistributionMetrics, DistributionMetricsSource};
use super::release::{self, RecordError};
use super::{RecordRouter, RecordSet, RecordTarget};
use crate::baseline::History;
use crate::compare::BaselineRate;
use crate::deployment::{Plan, PlannedTarget, Traffic};
use crate::error::{FieldError, PortError, TaskError};
use crate::ports::VersionMetrics;
use crate::request::Targets;
use crate::routers::{
    Identity, Member, Moves, Named, Observed, Observes, PendingChange, RequestedTarget, Requests, Resolved, Resolves,
    Route, Router, RouterKind, Side,
};
use crate::tasks::traffic::{RollbackAction, RolledBackTarget};
use crate::time::{Clock, Timestamp};

/// A Route53 record as "Begin deployment" found it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedRecord {
    /// The record and its blue and green endpoints, as requested.
    pub target: RecordTarget,
    /// The simple record as it was before the first shift; a rollback restores it exactly.
    pub original: RecordSet,
}

impl Named for PlannedRecord {
    fn identity(&self) -> Identity {
        let (scope, name) = self.target.identity();
        Identity::new(scope, name)
    }

    fn label(&self) -> String {
        self.target.label()
    }

    fn name(&self, endpoint: &str, side: Side) -> String {
        match side {
            Side::Stable => format!("blue {endpoint}"),
            Side::Candidate => format!("green {endpoint}"),
        }
    }

    fn manual_restore(&self, _stable: &str) -> String {
        format!(
            "put {} back to {} in the Route53 console (hosted zone {})",
            self.target.label(),
            super::describe(&self.original),
            self.target.hosted_zone_id
        )
    }
}

impl Router for PlannedRecord {
    const KIND: RouterKind = RouterKind::Route53;
    const SYNCS: bool = true;

    fn of(route: &Route) -> Option<&Self> {
        match route {
            Route::Route53(r) => Some(r.as_ref()),
            _ => None,
        }
    }
}

impl Requests for PlannedRecord {
    type Requested = RecordTarget;

    fn requested(targets: &Targets) -> Vec<(usize, &RecordTarget)> {
        targets.records.iter().enumerate().collect()
    }

    fn identify(r: &RecordTarget) -> RequestedTarget {
        let (scope, name) = r.identity();
        RequestedTarget {
            identity: Identity::new(scope, name),
            label: r.label(),
            short: r.record_name.trim_end_matches('.').to_owned(),
            candidate: r.green.label(),
        }
    }
}

impl<P: RecordRouter> Resolves<P> for PlannedRecord {
    async fn resolve(ports: &P, r: &RecordTarget, at: &str) -> Result<Result<Resolved, Vec<FieldError>>, TaskError> {
        match release::begin(ports, r).await {
            Ok(original) => {
                let planned = PlannedRecord { target: r.clone(), original };
                Ok(Ok(Resolved {
                    target: PlannedTarget::new(Route::Route53(Box::new(planned)), r.blue.label(), r.green.label()),
                    revision: None,
                }))
            }
            Err(RecordError::NotReady(why) | RecordError::Drift(why)) => Ok(Err(vec![FieldError::new(at, why)])),
            Err(RecordError::Port(PortError::NotFound { .. })) => Ok(Err(vec![FieldError::new(
                format!("{at}.hosted_zone_id"),
                format!("no hosted zone {} in this account", r.hosted_zone_id),
            )])),
            Err(RecordError::Port(e)) => Err(e.into()),
        }
    }
}

fn record_error(r: &PlannedRecord, e: RecordError) -> TaskError {
    match e {
        RecordError::Drift(detail) | RecordError::NotReady(detail) => {
            TaskError::RecordDrift { record: r.target.label(), detail }
        }
        RecordError::Port(e) => e.into(),
    }
}

impl<P: RecordRouter + Clock> Moves<P> for PlannedRecord {
    async fn shift(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic, to: f64) -> Result<(), TaskError> {
        let from = (traffic.weight_percent > 0.0).then_some(traffic.weight_percent);
        for (_, r) in members {
            let moved = Box::pin(release::shift(ports, &r.target, &r.original, from, to))
                .await
                .map_err(|e| record_error(r, e))?;
            info!(record = %r.label(), blue = moved.blue_weight, green = moved.green_weight, change = ?moved.change_id, "record weights set");
            if let Some(id) = moved.change_id {
                traffic.pending_changes.push(PendingChange { target: r.label(), id });
            }
        }
        Ok(())
    }

    async fn promote(ports: &P, members: &[Member<'_, Self>], traffic: &mut Traffic) -> Result<(), TaskError> {
        for (_, r) in members {
            let change = Box::pin(release::promote(ports, &r.target, traffic.weight_percent))
                .await
                .map_err(|e| record_error(r, e))?;
            info!(record = %r.label(), change = ?change, "record promoted to green");
        }
        Ok(())
    }

    /// Puts a record back exactly as it was found; a record someone else changed is
    /// left as they set it.
    async fn restore(ports: &P, (t, r): Member<'_, Self>) -> Result<RolledBackTarget, TaskError> {
        let entry = |action, now| RolledBackTarget { target: r.label(), stable: t.stable.clone(), action, now };
        match release::restore(ports, &r.target, &r.original).await {
            Ok(None) => Ok(entry(RollbackAction::AlreadyStable, None)),
            Ok(Some(change)) => {
                info!(record = %r.label(), change = %change, "record restored");
                Ok(entry(RollbackAction::Restored, None))
            }
            Err(RecordError::Drift(d) | RecordError::NotReady(d)) => {
                warn!(record = %r.label(), drift = %d, "record changed by someone else; left alone");
                Ok(entry(RollbackAction::LeftAlone, Some(d)))
            }
            Err(RecordError::Port(e)) => Err(e.into()),
        }
    }

    async fn in_effect(ports: &P, _: Member<'_, Self>, change: &PendingChange) -> Result<bool, TaskError> {
        Ok(release::in_sync(ports, &change.id).await?)
    }
}

fn as_version(minutes: Vec<crate::ports::MinuteCounts>) -> VersionMetrics {
    VersionMetrics { minutes, p99_duration_ms: None, custom: Vec::new() }
}

impl<P: DistributionMetricsSource> Observes<P> for PlannedRecord {
    /// Blue's CloudFront minutes (requests, 5xx and 4xx), every record in one call.
    async fn history(
        ports: &P,
        members: &[Member<'_, Self>],
        _: &[crate::custom::MetricRule],
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Option<History>>, PortError> {
        let blues: Vec<Option<String>> = members.iter().map(|(_, r)| r.target.blue.distribution_id.clone()).collect();
        let ids: Vec<String> = blues.iter().flatten().cloned().collect();
        if ids.is_empty() {
            return Ok(vec![None; members.len()]);
        }
        let mut found = ports.distribution_metrics(&ids, start, end).await?.into_iter();
        Ok(blues
            .iter()
            .map(|blue| {
                blue.as_ref()?;
                let d = found.next().unwrap_or_default();
                let mut h = History::from_metrics(start, end, &as_version(d.minutes_5xx()), None);
                let four = as_version(d.minutes_4xx()).totals();
                h.client_errors = Some(BaselineRate { invocations: four.invocations, events: four.errors });
                Some(h)
            })
            .collect())
    }

    /// Green's and blue's minutes, one call per record: requests count as invocations,
    /// 5xx responses as errors, 4xx responses as client errors. CloudFront has no
    /// duration to judge.
    async fn observe(
        ports: &P,
        _plan: &Plan,
        members: &[Member<'_, Self>],
        since: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<Option<Observed>>, PortError> {
        let mut out = Vec::with_capacity(members.len());
        for (_, r) in members {
            let (Some(green), Some(blue)) = (&r.target.green.distribution_id, &r.target.blue.distribution_id) else {
                out.push(None); // Judged on its alarms only; validation asked for some.
                continue;
            };
            let found = ports.distribution_metrics(&[green.clone(), blue.clone()], since, end).await?;
            let none = DistributionMetrics::default();
            let (g, b) = (found.first().unwrap_or(&none), found.get(1).unwrap_or(&none));
            out.push(Some(Observed {
                candidate: as_version(g.minutes_5xx()),
                stable: as_version(b.minutes_5xx()),
                client_errors: Some((g.minutes_4xx(), b.minutes_4xx())),
            }));
        }
        Ok(out)
    }
}
