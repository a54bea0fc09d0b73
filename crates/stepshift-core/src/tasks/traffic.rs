//! "Shift traffic", "Promote" and "Roll back": the only tasks that write alias routing.
//!
//! Shift and promote guard against drift: they write with the RevisionId stepshift last
//! saw, and stop with `AliasDrift` if the alias changed behind their back, rather than
//! overwrite a person's change. They are idempotent: an alias already in the wanted
//! state counts as done, so a task retried after a crash does no harm.
//!
//! Roll back restores the stable version on every alias that still routes only between
//! the stable and the candidate version. An alias that now routes to any other version
//! was changed by someone else; it is left as they set it and the report says so.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::deployment::{Cursor, PlannedTarget, Traffic};
use crate::error::{PortError, Service, TaskError};
use crate::ports::{AliasRouter, AliasRouting};
use crate::route53::RecordRouter;
use crate::route53::release::{self, RecordError};
use crate::time::Clock;

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
}

/// Input of "Promote" and "Roll back".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsInput {
    /// `$.plan.targets`.
    pub targets: Vec<PlannedTarget>,
    /// `$.traffic`.
    pub traffic: Traffic,
}

/// Input of "Check DNS sync".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncInput {
    /// `$.traffic`, with the Route53 changes still pending.
    pub traffic: Traffic,
}

/// How long a Route53 change may stay PENDING before the release stops and rolls
/// back. Route53 normally applies a change on all its servers within 60 seconds.
pub const DNS_SYNC_LIMIT_SECONDS: i64 = 600;

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

/// One alias in the rollback report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolledBackTarget {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
    /// The stable version it was restored to.
    pub stable: String,
    /// What was done.
    pub action: RollbackAction,
    /// The alias's routing after the rollback, if it still exists.
    pub routing: Option<AliasRouting>,
    /// For a Route53 record: what it holds now, when stepshift left it alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Output of "Roll back".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// One entry per target.
    pub targets: Vec<RolledBackTarget>,
}

/// Checks a routing against Lambda's rules, which the emulators do not all enforce.
pub fn check_routing(routing: &AliasRouting) -> Result<(), String> {
    if routing.versions().contains(&"$LATEST") {
        return Err("an alias cannot route to $LATEST".into());
    }
    if let Some((extra, w)) = &routing.additional {
        if extra == &routing.version {
            return Err(format!("version {extra} cannot be both primary and additional"));
        }
        if !w.is_finite() || *w <= 0.0 || *w >= 1.0 {
            return Err(format!("weight {w} must be above 0 and below 1"));
        }
    }
    Ok(())
}

/// The routing stepshift last left `t` in, given where traffic stands.
fn expected(t: &PlannedTarget, traffic: &Traffic) -> AliasRouting {
    if traffic.weight_percent <= 0.0 {
        AliasRouting::single(t.stable.clone())
    } else if traffic.weight_percent >= 100.0 {
        AliasRouting::single(t.candidate.clone())
    } else {
        AliasRouting::split(t.stable.clone(), t.candidate.clone(), traffic.weight_percent / 100.0)
    }
}

fn get_error(t: &PlannedTarget, e: PortError) -> TaskError {
    match e {
        PortError::NotFound { .. } => TaskError::AliasDrift {
            function: t.function.clone(),
            alias: t.alias.clone(),
            detail: "the alias no longer exists".into(),
        },
        e => e.into(),
    }
}

/// Moves every target to `wanted(t)`. Every alias is read and checked for drift before
/// any is written, so that drift on one stops the step before traffic moves on the others.
async fn apply<P: AliasRouter>(
    ports: &P,
    targets: &[&PlannedTarget],
    traffic: &mut Traffic,
    wanted: impl Fn(&PlannedTarget) -> AliasRouting,
) -> Result<(), TaskError> {
    let mut writes: Vec<(&PlannedTarget, AliasRouting, String)> = Vec::new();
    for &t in targets {
        let now = ports.get_alias(&t.function, &t.alias).await.map_err(|e| get_error(t, e))?;
        let want = wanted(t);
        check_routing(&want).map_err(|reason| TaskError::InvalidTaskInput(format!("{}: {reason}", t.qualified())))?;
        if now.routing.same_as(&want) {
            // Already there: a retry after a write whose answer was lost.
            traffic.set_revision(&t.function, &t.alias, now.revision_id);
        } else if traffic.revision(&t.function, &t.alias) == Some(now.revision_id.as_str()) {
            writes.push((t, want, now.revision_id));
        } else {
            return Err(TaskError::AliasDrift {
                function: t.function.clone(),
                alias: t.alias.clone(),
                detail: format!(
                    "it routes {}, where stepshift left {}",
                    now.routing.describe(),
                    expected(t, traffic).describe()
                ),
            });
        }
    }
    for (t, want, revision) in writes {
        match ports.update_alias(&t.function, &t.alias, &want, Some(&revision)).await {
            Ok(written) => traffic.set_revision(&t.function, &t.alias, written.revision_id),
            Err(PortError::PreconditionFailed { .. }) => {
                return Err(TaskError::AliasDrift {
                    function: t.function.clone(),
                    alias: t.alias.clone(),
                    detail: "it changed while stepshift was updating it".into(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        info!(function = %t.function, alias = %t.alias, routing = %want.describe(), "alias updated");
    }
    Ok(())
}

fn record_error(t: &PlannedTarget, e: RecordError) -> TaskError {
    match e {
        RecordError::Drift(detail) | RecordError::NotReady(detail) => {
            TaskError::RecordDrift { record: t.qualified(), detail }
        }
        RecordError::Port(e) => e.into(),
    }
}

/// Splits the targets into Lambda aliases and Route53 records.
fn by_kind(
    targets: &[PlannedTarget],
) -> (Vec<&PlannedTarget>, Vec<(&PlannedTarget, &crate::deployment::PlannedRecord)>) {
    let aliases = targets.iter().filter(|t| t.record.is_none()).collect();
    let records = targets.iter().filter_map(|t| t.record.as_ref().map(|r| (t, r))).collect();
    (aliases, records)
}

/// Shifts every target to the cursor's weight. Route53 changes are left in
/// `pending_changes` for "Check DNS sync".
pub async fn shift<P: AliasRouter + RecordRouter + Clock>(ports: &P, input: ShiftInput) -> Result<Traffic, TaskError> {
    let ShiftInput { targets, mut traffic, cursor } = input;
    let w = cursor.weight_percent;
    if !(w > 0.0 && w < 100.0) {
        return Err(TaskError::InvalidTaskInput(format!(
            "shift-weight: cursor.weight_percent {w} must be above 0 and below 100; the 100% step is a promotion"
        )));
    }
    let (aliases, records) = by_kind(&targets);
    apply(ports, &aliases, &mut traffic, |t| AliasRouting::split(t.stable.clone(), t.candidate.clone(), w / 100.0))
        .await?;
    let from = (traffic.weight_percent > 0.0).then_some(traffic.weight_percent);
    for (t, r) in records {
        let moved =
            Box::pin(release::shift(ports, &r.target, &r.original, from, w)).await.map_err(|e| record_error(t, e))?;
        info!(record = %t.qualified(), blue = moved.blue_weight, green = moved.green_weight, change = ?moved.change_id, "record weights set");
        traffic.pending_changes.extend(moved.change_id);
    }
    traffic.weight_percent = w;
    traffic.step_started_at = Some(ports.now());
    Ok(traffic)
}

/// Polls the pending Route53 changes. When all are INSYNC the step starts counting
/// (`step_started_at` is now); while any is PENDING it stays in `pending_changes`, and
/// after [`DNS_SYNC_LIMIT_SECONDS`] the release stops with `DnsNotInSync`.
pub async fn sync<P: RecordRouter + Clock>(ports: &P, input: SyncInput) -> Result<Traffic, TaskError> {
    let mut traffic = input.traffic;
    let mut pending = Vec::new();
    for id in &traffic.pending_changes {
        if !release::in_sync(ports, id).await? {
            pending.push(id.clone());
        }
    }
    let now = ports.now();
    if pending.is_empty() {
        traffic.step_started_at = Some(now);
    } else if let Some(since) = traffic.step_started_at
        && now.secs_since(since) > DNS_SYNC_LIMIT_SECONDS
    {
        return Err(TaskError::DnsNotInSync(format!(
            "Route53 change {} was still PENDING {} s after it was made",
            pending.join(", "),
            now.secs_since(since)
        )));
    }
    traffic.pending_changes = pending;
    Ok(traffic)
}

/// Gives every target's candidate all traffic and clears the routing configuration
/// (for a record: a simple record for green).
pub async fn promote<P: AliasRouter + RecordRouter + Clock>(
    ports: &P,
    input: TargetsInput,
) -> Result<Traffic, TaskError> {
    let TargetsInput { targets, mut traffic } = input;
    let (aliases, records) = by_kind(&targets);
    apply(ports, &aliases, &mut traffic, |t| AliasRouting::single(t.candidate.clone())).await?;
    for (t, r) in records {
        let change = Box::pin(release::promote(ports, &r.target, traffic.weight_percent))
            .await
            .map_err(|e| record_error(t, e))?;
        info!(record = %t.qualified(), change = ?change, "record promoted to green");
    }
    traffic.weight_percent = 100.0;
    traffic.step_started_at = Some(ports.now());
    traffic.pending_changes.clear();
    Ok(traffic)
}

/// Restores the stable version on every target that is still ours to restore.
/// Calling it again is harmless.
pub async fn rollback<P: AliasRouter + RecordRouter>(
    ports: &P,
    input: TargetsInput,
) -> Result<RollbackReport, TaskError> {
    let mut report = Vec::with_capacity(input.targets.len());
    for t in &input.targets {
        // Boxed: the record and alias futures side by side nest too deep for the
        // compiler's layout computation; one allocation per target costs nothing here.
        report.push(match &t.record {
            Some(r) => Box::pin(restore_record(ports, t, r)).await?,
            None => Box::pin(rollback_one(ports, t)).await?,
        });
    }
    Ok(RollbackReport { targets: report })
}

/// Puts a record back exactly as it was found; a record someone else changed is left
/// as they set it.
async fn restore_record<P: RecordRouter>(
    ports: &P,
    t: &PlannedTarget,
    r: &crate::deployment::PlannedRecord,
) -> Result<RolledBackTarget, TaskError> {
    let entry = |action, detail| RolledBackTarget {
        function: t.function.clone(),
        alias: t.alias.clone(),
        stable: t.stable.clone(),
        action,
        routing: None,
        detail,
    };
    match release::restore(ports, &r.target, &r.original).await {
        Ok(None) => Ok(entry(RollbackAction::AlreadyStable, None)),
        Ok(Some(change)) => {
            info!(record = %t.qualified(), change = %change, "record restored");
            Ok(entry(RollbackAction::Restored, None))
        }
        Err(RecordError::Drift(d) | RecordError::NotReady(d)) => {
            warn!(record = %t.qualified(), drift = %d, "record changed by someone else; left alone");
            Ok(entry(RollbackAction::LeftAlone, Some(d)))
        }
        Err(RecordError::Port(e)) => Err(e.into()),
    }
}

async fn rollback_one<P: AliasRouter>(ports: &P, t: &PlannedTarget) -> Result<RolledBackTarget, TaskError> {
    let stable = AliasRouting::single(t.stable.clone());
    let entry = |action, routing| RolledBackTarget {
        function: t.function.clone(),
        alias: t.alias.clone(),
        stable: t.stable.clone(),
        action,
        routing,
        detail: None,
    };
    // A person may be changing the alias at the same moment; re-read and re-decide.
    for _ in 0..3 {
        let now = match ports.get_alias(&t.function, &t.alias).await {
            Ok(a) => a,
            Err(PortError::NotFound { .. }) => return Ok(entry(RollbackAction::LeftAlone, None)),
            Err(e) => return Err(e.into()),
        };
        if now.routing.same_as(&stable) {
            return Ok(entry(RollbackAction::AlreadyStable, Some(now.routing)));
        }
        let ours = now.routing.versions().iter().all(|v| *v == t.stable || *v == t.candidate);
        if !ours {
            warn!(function = %t.function, alias = %t.alias, routing = %now.routing.describe(), "alias changed by someone else; left alone");
            return Ok(entry(RollbackAction::LeftAlone, Some(now.routing)));
        }
        match ports.update_alias(&t.function, &t.alias, &stable, Some(&now.revision_id)).await {
            Ok(written) => {
                info!(function = %t.function, alias = %t.alias, stable = %t.stable, "rolled back");
                return Ok(entry(RollbackAction::Restored, Some(written.routing)));
            }
            Err(PortError::PreconditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(TaskError::Conflict(PortError::Conflict {
        service: Service::Lambda,
        message: format!("{} kept changing while stepshift rolled it back", t.qualified()),
    }))
}
