//! "Shift traffic", "Check sync", "Promote" and "Roll back": the only tasks that move
//! traffic. They know nothing of aliases, records or endpoints: each target's router
//! ([`crate::routers`]) does the reading and writing.
//!
//! Shift and promote guard against drift: a router writes only from the state
//! stepshift last left, and stops with its drift error (`AliasDrift`, `RecordDrift`,
//! `EndpointDrift`) if a target changed behind its back, rather than overwrite a
//! person's change. They are idempotent: a target already in the wanted state counts
//! as done, so a task retried after a crash does no harm.
//!
//! Roll back restores the stable side on every target that still routes only between
//! the stable and the candidate. A target that now routes anywhere else was changed by
//! someone else; it is left as they set it and the report says so.

use serde::{Deserialize, Serialize};

use crate::deployment::{Cursor, PlannedTarget, Traffic};
use crate::error::TaskError;
use crate::routers::{self, MovePorts};

/// Input of "Shift traffic".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftInput {
    /// `$.plan.targets`.
    pub targets: Vec<PlannedTarget>,
    /// `$.traffic`.
    pub traffic: Traffic,
    /// `$.progress.cursor`: the step to shift to.
    pub cursor: Cursor,
    /// `$$.Execution.Id`, for the lifecycle events.
    #[serde(default)]
    pub execution: Option<String>,
    /// How many steps the plan has (`States.ArrayLength($.plan.steps)`), for the
    /// lifecycle events.
    #[serde(default)]
    pub steps: Option<usize>,
}

/// Input of "Promote".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsInput {
    /// `$.plan.targets`.
    pub targets: Vec<PlannedTarget>,
    /// `$.traffic`.
    pub traffic: Traffic,
    /// `$$.Execution.Id`, for the lifecycle events.
    #[serde(default)]
    pub execution: Option<String>,
}

/// Input of "Roll back": the targets and traffic, and what the lifecycle event needs to
/// say why ([`crate::tasks::record::rollback_reason`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackInput {
    /// `$.plan.targets`.
    pub targets: Vec<PlannedTarget>,
    /// `$.traffic`.
    pub traffic: Traffic,
    /// `$$.Execution.Id`.
    #[serde(default)]
    pub execution: Option<String>,
    /// `$.plan`.
    #[serde(default)]
    pub plan: Option<crate::deployment::Plan>,
    /// `$.progress`.
    #[serde(default)]
    pub progress: Option<crate::deployment::Progress>,
    /// `$.failure`: the caught error that led here, if any.
    #[serde(default)]
    pub failure: Option<crate::tasks::CaughtError>,
}

impl RollbackInput {
    /// What the rollback itself needs.
    pub fn targets(&self) -> TargetsInput {
        TargetsInput { targets: self.targets.clone(), traffic: self.traffic.clone(), execution: self.execution.clone() }
    }
}

/// Input of "Check sync".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncInput {
    /// `$.plan.targets`.
    pub targets: Vec<PlannedTarget>,
    /// `$.traffic`, with the changes still pending.
    pub traffic: Traffic,
}

/// How long a change may stay pending before the release stops and rolls back. Route53
/// normally applies a change on all its servers within 60 seconds.
pub const SYNC_LIMIT_SECONDS: i64 = 600;

/// What "Roll back" did to one alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackAction {
    /// The alias was moved back to 100% stable.
    Restored,
    /// It already served 100% stable.
    AlreadyStable,
    /// Someone else changed it to route elsewhere; stepshift did not touch it.
    LeftAlone,
}

/// One target in the rollback report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolledBackTarget {
    /// The target, by label: `orders:live`.
    pub target: String,
    /// The stable side it was restored to.
    pub stable: String,
    /// What was done.
    pub action: RollbackAction,
    /// What it routes now, in words, when the router could tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<String>,
}

/// Output of "Roll back".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// One entry per target.
    pub targets: Vec<RolledBackTarget>,
}

/// Shifts every target to the cursor's weight. Changes that take effect later are left
/// in `pending_changes` for "Check sync".
pub async fn shift<P: MovePorts>(ports: &P, input: ShiftInput) -> Result<Traffic, TaskError> {
    let ShiftInput { targets, mut traffic, cursor, .. } = input;
    let w = cursor.weight_percent;
    if !(w > 0.0 && w < 100.0) {
        return Err(TaskError::InvalidTaskInput(format!(
            "shift-weight: cursor.weight_percent {w} must be above 0 and below 100; the 100% step is a promotion"
        )));
    }
    routers::shift(ports, &targets, &mut traffic, w).await?;
    traffic.weight_percent = w;
    traffic.step_started_at = Some(ports.now());
    Ok(traffic)
}

/// Polls the pending changes. When all are in effect the step starts counting
/// (`step_started_at` is now); while any is pending it stays in `pending_changes`, and
/// after [`SYNC_LIMIT_SECONDS`] the release stops with `NotInSync`.
pub async fn sync<P: MovePorts>(ports: &P, input: SyncInput) -> Result<Traffic, TaskError> {
    let SyncInput { targets, mut traffic } = input;
    let mut pending = Vec::new();
    for change in &traffic.pending_changes {
        let target = targets.iter().find(|t| t.qualified() == change.target).ok_or_else(|| {
            TaskError::InvalidTaskInput(format!("shift-weight (sync): no target {} in the plan", change.target))
        })?;
        if !routers::in_effect(ports, target, change).await? {
            pending.push(change.clone());
        }
    }
    let now = ports.now();
    if pending.is_empty() {
        traffic.step_started_at = Some(now);
    } else if let Some(since) = traffic.step_started_at
        && now.secs_since(since) > SYNC_LIMIT_SECONDS
    {
        let which: Vec<String> = pending.iter().map(|c| format!("{} ({})", c.target, c.id)).collect();
        return Err(TaskError::NotInSync(format!(
            "the change of {} was still not in effect {} s after it was made",
            which.join(", "),
            now.secs_since(since)
        )));
    }
    traffic.pending_changes = pending;
    Ok(traffic)
}

/// Gives every target's candidate all traffic, in its router's final shape (an alias
/// without a routing configuration, a simple record for green, one revision at 100).
pub async fn promote<P: MovePorts>(ports: &P, input: TargetsInput) -> Result<Traffic, TaskError> {
    let TargetsInput { targets, mut traffic, .. } = input;
    routers::promote(ports, &targets, &mut traffic).await?;
    // The lock-in does not wait for a promotion to sync: its first checks read minutes
    // from before it anyway (the metric lag), and a rollback restores from any state.
    traffic.pending_changes.clear();
    traffic.weight_percent = 100.0;
    traffic.step_started_at = Some(ports.now());
    Ok(traffic)
}

/// Restores the stable side on every target that is still ours to restore.
/// Calling it again is harmless.
pub async fn rollback<P: MovePorts>(ports: &P, input: TargetsInput) -> Result<RollbackReport, TaskError> {
    let mut report = Vec::with_capacity(input.targets.len());
    for t in &input.targets {
        report.push(routers::restore(ports, t).await?);
    }
    Ok(RollbackReport { targets: report })
}
