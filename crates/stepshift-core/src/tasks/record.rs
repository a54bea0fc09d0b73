//! "record-version": the task that owns the version records and locks. Its actions:
//! `begin` (see [`super::begin`]), `rejected`, `promoted`, `rolled_back`, `confirmed`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::contract::ErrorName;
use crate::deployment::{Plan, PlannedTarget, Progress, StepSummary};
use crate::error::{PortError, TaskError};
use crate::judge::VerdictStatus;
use crate::ports::{ParameterStore, VersionCatalog};
use crate::records::{self, HistoryEntry, HistoryEvent, RecordKeys, VersionRecords, versions_to_prune};
use crate::request::DeploymentRequest;
use crate::routers::{self, Side};
use crate::tasks::begin::BeginInput;
use crate::tasks::traffic::{RollbackAction, RollbackReport};
use crate::tasks::{CaughtError, TaskConfig};
use crate::time::Clock;
use crate::{encode, percent_text, truncate};

/// Input of the record-version task, by `action`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RecordInput {
    /// Validate, lock and plan.
    Begin(BeginInput),
    /// "Begin deployment" failed: release this execution's locks and explain.
    Rejected(RejectedInput),
    /// The candidate took all traffic.
    Promoted(PlanInput),
    /// The deployment rolled back.
    RolledBack(RolledBackInput),
    /// The lock-in passed.
    Confirmed(ConfirmedInput),
}

/// Input of `rejected`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedInput {
    /// The execution input as given (it may be anything).
    pub request: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// What "Begin deployment" failed with.
    pub error: CaughtError,
}

/// Input of `promoted`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    /// `$.plan`.
    pub plan: Plan,
}

/// Input of `rolled_back`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolledBackInput {
    /// `$.plan`.
    pub plan: Plan,
    /// `$.progress`.
    pub progress: Progress,
    /// `$.rollback`: what "Roll back" did, or the error it failed with.
    pub rollback: RollbackResult,
    /// `$.failure`: the caught error that led here, or `null` after an unhealthy verdict.
    pub failure: Option<CaughtError>,
}

/// What "Roll back" left in `$.rollback`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RollbackResult {
    /// It ran: what it did to each alias.
    Done(RollbackReport),
    /// It failed even after its retries.
    Failed(CaughtError),
}

/// Input of `confirmed`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmedInput {
    /// `$.plan`.
    pub plan: Plan,
    /// `$.progress`.
    pub progress: Progress,
}

/// How a failed deployment ended; the state machine's Fail state reads `Error` and `Cause`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FailedOutcome {
    /// A stable name: `InvalidRequest`, `DeploymentInProgress`, `Unhealthy`,
    /// `InsufficientData`, `ApprovalRejected`, `ApprovalTimedOut`, `AliasDrift`, or the
    /// name of the task error that forced the rollback.
    #[serde(rename = "Error")]
    pub error: String,
    /// One sentence a person understands.
    #[serde(rename = "Cause")]
    pub cause: String,
    /// What was done to each alias, for a rollback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<crate::tasks::traffic::RolledBackTarget>,
    /// Per-step summaries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSummary>,
}

/// A released target in the success summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleasedTarget {
    /// The target, by label: `orders:live`.
    pub target: String,
    /// The version now serving all traffic.
    pub version: String,
    /// The version it replaced.
    pub previous: String,
    /// Versions deleted by pruning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pruned: Vec<String>,
}

/// The execution's output when the candidate was promoted and confirmed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Released {
    /// Always `promoted`.
    pub status: String,
    /// One sentence.
    pub summary: String,
    /// The released aliases.
    pub targets: Vec<ReleasedTarget>,
    /// Per-step summaries.
    pub steps: Vec<StepSummary>,
    /// Things that went wrong without stopping the release (such as a version that could not be pruned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The commands people gave the deployment (`stepshift promote`, `pause`, ...), in
    /// order, with who and why ([`crate::control`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<crate::control::Command>,
}

/// Everything "record-version" calls: Begin's reads (aliases, records, versions, alarms,
/// the stable version's history) and the version records.
pub trait RecordPorts:
    routers::MovePorts + routers::ObservePorts + VersionCatalog + crate::ports::AlarmSource + ParameterStore + Clock
{
}

impl<T> RecordPorts for T where
    T: routers::MovePorts + routers::ObservePorts + VersionCatalog + crate::ports::AlarmSource + ParameterStore + Clock
{
}

/// Runs one record-version action.
pub async fn record<P: RecordPorts>(ports: &P, config: &TaskConfig, input: RecordInput) -> Result<Value, TaskError> {
    // Each action's future is boxed: together they nest too deep for the compiler's
    // layout computation, and one allocation per invocation costs nothing here.
    match input {
        RecordInput::Begin(i) => encode(Box::pin(super::begin::begin(ports, config, i)).await?),
        RecordInput::Rejected(i) => encode(Box::pin(rejected(ports, config, i)).await?),
        RecordInput::Promoted(i) => Box::pin(promoted(ports, config, i)).await.map(|()| Value::Null),
        RecordInput::RolledBack(i) => encode(Box::pin(rolled_back(ports, config, i)).await?),
        RecordInput::Confirmed(i) => encode(Box::pin(confirmed(ports, config, i)).await?),
    }
}

fn keys(config: &TaskConfig, t: &PlannedTarget) -> RecordKeys {
    RecordKeys::of(&config.parameter_prefix, &t.identity())
}

/// Releases whatever locks this execution holds on the request's aliases, and turns
/// the error into the outcome the Fail state shows.
pub async fn rejected<P: ParameterStore + Clock>(
    ports: &P,
    config: &TaskConfig,
    input: RejectedInput,
) -> Result<FailedOutcome, TaskError> {
    // Begin takes locks and writes history only after the request validated, so a
    // request that does not validate left nothing behind to clean up.
    let named = DeploymentRequest::from_value(input.request).map(|r| routers::identities(&r.targets));
    for target in named.unwrap_or_default() {
        let keys = RecordKeys::of(&config.parameter_prefix, &target.identity);
        let stored = records::load(ports, &keys).await?;
        // "Begin deployment" may have recorded the start before it failed: close it.
        let mine = |e: &HistoryEntry| e.execution.as_deref() == Some(input.execution.as_str());
        if stored.history.iter().any(|e| mine(e) && e.event == HistoryEvent::Started) {
            let entry = HistoryEntry {
                at: ports.now(),
                event: HistoryEvent::Aborted,
                execution: Some(input.execution.clone()),
                from: None,
                to: None,
                detail: Some(truncate(&format!("{}: {}", input.error.error, input.error.message()), 300)),
            };
            records::append_history(ports, &keys, &stored.history, entry).await?;
        }
        records::release_lock(ports, &keys, &input.execution).await?;
    }
    let cause = match input.error.name() {
        Some(ErrorName::InvalidRequest | ErrorName::DeploymentInProgress) => input.error.message(),
        _ => format!("the deployment could not begin: {}: {}", input.error.error, input.error.message()),
    };
    Ok(FailedOutcome { error: input.error.error, cause, targets: Vec::new(), steps: Vec::new() })
}

/// Records that every target's candidate took all traffic.
pub async fn promoted<P: ParameterStore + Clock>(
    ports: &P,
    config: &TaskConfig,
    input: PlanInput,
) -> Result<(), TaskError> {
    let now = ports.now();
    let plan = &input.plan;
    for t in &plan.targets {
        let keys = keys(config, t);
        let stored = records::load(ports, &keys).await?;
        if let Some(lock) = stored.lock.as_ref().filter(|l| l.execution != plan.execution) {
            return Err(TaskError::LockLost { target: t.qualified(), holder: lock.execution.clone() });
        }
        // A retry after a crash finds the promotion recorded: keep its timestamp.
        let already = stored.records.current.as_deref() == Some(t.candidate.as_str());
        let after = VersionRecords {
            current: Some(t.candidate.clone()),
            previous: Some(t.stable.clone()),
            last_known_good: stored.records.last_known_good.clone(),
            deployed_at: stored.records.deployed_at.filter(|_| already).or(Some(now)),
        };
        records::save(ports, &keys, &stored.records, &after).await?;
        let entry = history(now, HistoryEvent::Promoted, plan, t, None);
        records::append_history(ports, &keys, &stored.history, entry).await?;
        info!(target = %t.qualified(), version = %t.candidate, "promotion recorded");
    }
    Ok(())
}

fn history(
    now: crate::Timestamp,
    event: HistoryEvent,
    plan: &Plan,
    t: &PlannedTarget,
    detail: Option<String>,
) -> HistoryEntry {
    let (from, to) = match event {
        HistoryEvent::RolledBack => (t.candidate.clone(), t.stable.clone()),
        _ => (t.stable.clone(), t.candidate.clone()),
    };
    HistoryEntry { at: now, event, execution: Some(plan.execution.clone()), from: Some(from), to: Some(to), detail }
}

/// Why the deployment rolled back: a stable error name and a sentence.
///
/// `ApprovalTimedOut` comes only from the "Approval timed out" state, which the
/// approval's own `States.Timeout` leads to; a task's `States.Timeout` is a task failure
/// like any other, even at a step that needed approval.
pub fn rollback_reason(plan: &Plan, progress: &Progress, failure: Option<&CaughtError>) -> (String, String) {
    let cursor = &progress.cursor;
    let step =
        format!("step {} of {} ({}%)", cursor.index + 1, plan.steps.len(), percent_text(cursor.weight_percent / 100.0));
    if let Some(f) = failure {
        return match f.name() {
            Some(ErrorName::ApprovalRejected) => (
                ErrorName::ApprovalRejected.to_string(),
                format!("the approval for {step} was rejected: {}", f.message()),
            ),
            Some(ErrorName::ApprovalTimedOut) => (
                ErrorName::ApprovalTimedOut.to_string(),
                format!(
                    "nobody approved {step} within {} seconds (approval_timeout_seconds)",
                    plan.approval_timeout_seconds
                ),
            ),
            Some(name @ (ErrorName::AliasDrift | ErrorName::RecordDrift)) => (name.to_string(), f.message()),
            // The hooks' sentence names the point and each failed hook.
            Some(ErrorName::HookFailed) => (ErrorName::HookFailed.to_string(), f.message()),
            // `stepshift abort` at an approval pause fails its task token; during the tests
            // before traffic, their judging task fails.
            Some(ErrorName::Aborted) => {
                let m = f.message();
                let sentence = if m.starts_with(crate::control::DURING_TESTS_BEFORE_TRAFFIC) {
                    format!("aborted {m}")
                } else {
                    format!("aborted at {step} while it waited for approval: {m}")
                };
                (ErrorName::Aborted.to_string(), sentence)
            }
            _ => (f.error.clone(), format!("a task failed at {step}: {}: {}", f.error, f.message())),
        };
    }
    if let Some(commanded) = crate::control::rollback_reason(&progress.control, &step) {
        return commanded;
    }
    match &progress.verdict {
        Some(v) if v.status == VerdictStatus::Unhealthy => (
            ErrorName::Unhealthy.to_string(),
            format!("the candidate was unhealthy at {step}: {}", v.reasons.join("; ")),
        ),
        Some(v) if v.status == VerdictStatus::Inconclusive => (
            ErrorName::InsufficientData.to_string(),
            format!(
                "there was not enough data to judge the candidate at {step} after {} bake extensions: {}; set health.insufficient_data.then to \"proceed\" to continue without data",
                cursor.extensions_used,
                v.reasons.join("; ")
            ),
        ),
        _ => (ErrorName::RolledBack.to_string(), format!("the deployment was rolled back at {step}")),
    }
}

/// The progress a check inside "Test the step" carried out of the Parallel state when it
/// decided to roll back ([`crate::hooks::CARRIED_ROLLBACK`]): the verdict that decided
/// it, as if the check had run outside. Any other failure is left as it is.
pub fn carried(progress: Progress, failure: Option<CaughtError>) -> (Progress, Option<CaughtError>) {
    match failure {
        Some(f) if f.error == crate::hooks::CARRIED_ROLLBACK.as_str() => match serde_json::from_str(&f.cause) {
            Ok(carried) => (carried, None),
            Err(_) => (progress, Some(f)),
        },
        other => (progress, other),
    }
}

/// Records the rollback, releases the locks and returns the outcome the Fail state shows.
pub async fn rolled_back<P: ParameterStore + Clock>(
    ports: &P,
    config: &TaskConfig,
    input: RolledBackInput,
) -> Result<FailedOutcome, TaskError> {
    let now = ports.now();
    let RolledBackInput { plan, progress, rollback, failure } = input;
    let (progress, failure) = carried(progress, failure);
    let (error, reason) = rollback_reason(&plan, &progress, failure.as_ref());
    let rollback = match rollback {
        RollbackResult::Done(report) => report,
        RollbackResult::Failed(e) => return rollback_failed(ports, config, &plan, progress, &reason, &e).await,
    };
    let mut moved = Vec::new();
    let mut untouched = Vec::new();
    for t in &plan.targets {
        let keys = keys(config, t);
        let stored = records::load(ports, &keys).await?;
        let action = rollback.targets.iter().find(|r| r.target == t.qualified());
        let left_alone = action.is_some_and(|a| a.action == RollbackAction::LeftAlone);
        let detail = if left_alone {
            let now_routes = action.and_then(|a| a.now.clone()).unwrap_or_else(|| "something else".to_owned());
            untouched.push(format!("{} was left as someone else set it: {now_routes}", t.qualified()));
            format!("left alone (changed outside stepshift); {reason}")
        } else {
            let after = VersionRecords {
                current: Some(t.stable.clone()),
                previous: t.records_before.previous.clone(),
                last_known_good: stored.records.last_known_good.clone(),
                deployed_at: t.records_before.deployed_at,
            };
            records::save(ports, &keys, &stored.records, &after).await?;
            if action.is_some_and(|a| a.action == RollbackAction::AlreadyStable) {
                moved.push(format!("{} (it already served {} again)", t.qualified(), t.stable));
            } else {
                moved.push(format!("{} from {} to {}", t.qualified(), t.candidate, t.stable));
            }
            reason.clone()
        };
        let entry = history(now, HistoryEvent::RolledBack, &plan, t, Some(truncate(&detail, 300)));
        records::append_history(ports, &keys, &stored.history, entry).await?;
        records::release_lock(ports, &keys, &plan.execution).await?;
    }
    let nothing_moved =
        progress.steps.is_empty() && rollback.targets.iter().all(|a| a.action == RollbackAction::AlreadyStable);
    let mut cause = if nothing_moved && untouched.is_empty() {
        format!("Stopped before any traffic moved: {reason}.")
    } else if moved.is_empty() {
        format!("Stopped without moving traffic back: {reason}.")
    } else {
        format!("Rolled back {}: {reason}.", moved.join(" and "))
    };
    for u in &untouched {
        cause.push_str(&format!(" {u}."));
    }
    warn!(error = %error, cause = %cause, "deployment rolled back");
    Ok(FailedOutcome { error, cause, targets: rollback.targets, steps: progress.steps })
}

/// The rollback itself failed: say so loudly and say what to do. The records are left
/// as they are (the aliases' state is unknown); the locks are released so that a person
/// can run `stepshift rollback` at once.
async fn rollback_failed<P: ParameterStore + Clock>(
    ports: &P,
    config: &TaskConfig,
    plan: &Plan,
    progress: Progress,
    reason: &str,
    error: &CaughtError,
) -> Result<FailedOutcome, TaskError> {
    let now = ports.now();
    let mut commands = Vec::new();
    for t in &plan.targets {
        let keys = keys(config, t);
        let stored = records::load(ports, &keys).await?;
        let detail = format!("rollback failed ({}); {reason}", error.error);
        let entry = history(now, HistoryEvent::RolledBack, plan, t, Some(truncate(&detail, 300)));
        records::append_history(ports, &keys, &stored.history, entry).await?;
        records::release_lock(ports, &keys, &plan.execution).await?;
        commands.push(t.route.manual_restore(&t.stable));
    }
    let cause = format!(
        "Rollback FAILED ({}: {}) after: {reason}. The aliases may still send traffic to the candidate; run: {}.",
        error.error,
        error.message(),
        commands.join("; ")
    );
    warn!(cause = %cause, "rollback failed");
    Ok(FailedOutcome {
        error: ErrorName::RollbackFailed.to_string(),
        cause,
        targets: Vec::new(),
        steps: progress.steps,
    })
}

/// Records last-known-good, prunes old versions, releases the locks, and returns the
/// execution's output.
pub async fn confirmed<P: ParameterStore + VersionCatalog + Clock>(
    ports: &P,
    config: &TaskConfig,
    input: ConfirmedInput,
) -> Result<Released, TaskError> {
    let now = ports.now();
    let ConfirmedInput { plan, progress } = input;
    let mut released = Vec::new();
    let mut warnings = Vec::new();
    for t in &plan.targets {
        let keys = keys(config, t);
        let stored = records::load(ports, &keys).await?;
        let after = VersionRecords {
            current: Some(t.candidate.clone()),
            previous: Some(t.stable.clone()),
            last_known_good: Some(t.candidate.clone()),
            deployed_at: stored.records.deployed_at.or(Some(now)),
        };
        records::save(ports, &keys, &stored.records, &after).await?;
        let pruned = match (plan.keep_versions, t.route.prunable_function()) {
            (Some(keep), Some(function)) => prune(ports, t, function, &after, keep as usize, &mut warnings).await?,
            _ => Vec::new(),
        };
        let detail = (!pruned.is_empty()).then(|| format!("pruned versions {}", pruned.join(", ")));
        let entry = history(now, HistoryEvent::Confirmed, &plan, t, detail);
        records::append_history(ports, &keys, &stored.history, entry).await?;
        records::release_lock(ports, &keys, &plan.execution).await?;
        released.push(ReleasedTarget {
            target: t.qualified(),
            version: t.candidate.clone(),
            previous: t.stable.clone(),
            pruned,
        });
    }
    let names: Vec<String> = plan
        .targets
        .iter()
        .map(|t| {
            let (now, was) = (t.route.name(&t.candidate, Side::Candidate), t.route.name(&t.stable, Side::Stable));
            format!("{} now serves {now} (was {was})", t.qualified())
        })
        .collect();
    Ok(Released {
        status: "promoted".into(),
        summary: format!("Released: {}.", names.join("; ")),
        targets: released,
        steps: progress.steps,
        warnings,
        commands: progress.control.log,
    })
}

/// Most versions one release deletes per function. Lambda's control plane allows 15
/// requests per second per account, shared with everything else; a first release
/// with `keep_versions` on a function with hundreds of versions must not burst.
pub const PRUNE_PER_RELEASE: usize = 20;

/// Deletes old versions of `t`'s function. Protected: every version the records name,
/// before or after this release, and every version any alias routes to. A version that
/// cannot be deleted (provisioned concurrency, say) becomes a warning, not a failure.
///
/// Pruning yields to throttling: it is housekeeping, and the account's control-plane
/// quota (15 requests/s) is shared with every other deployment's shifts and rollbacks. A
/// throttled call stops it with a warning (the next release prunes the rest) rather
/// than fail the release and retry a burst of deletes into the same quota.
async fn prune<P: VersionCatalog>(
    ports: &P,
    t: &PlannedTarget,
    function: &str,
    records: &VersionRecords,
    keep: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, TaskError> {
    let throttled = |warnings: &mut Vec<String>, e: &PortError| {
        warnings.push(format!("pruning {function} stopped, throttled ({e}); the next release prunes the rest"));
    };
    let listed = match ports.list_versions(function).await {
        Ok(versions) => ports.list_aliases(function).await.map(|aliases| (versions, aliases)),
        Err(e) => Err(e),
    };
    let (versions, aliases) = match listed {
        Ok(listed) => listed,
        Err(e @ PortError::Throttled { .. }) => {
            throttled(warnings, &e);
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let mut protected: HashSet<String> =
        records.protected().chain(t.records_before.protected()).map(str::to_owned).collect();
    protected.insert(t.stable.clone());
    protected.insert(t.candidate.clone());
    for (_, routing) in &aliases {
        protected.extend(routing.versions().into_iter().map(str::to_owned));
    }
    let mut pruned = Vec::new();
    let doomed = versions_to_prune(&versions, keep, &protected);
    if doomed.len() > PRUNE_PER_RELEASE {
        warnings.push(format!(
            "{} has {} versions to prune; this release pruned the oldest {PRUNE_PER_RELEASE}, the next ones prune the rest",
            function,
            doomed.len()
        ));
    }
    for v in doomed.into_iter().take(PRUNE_PER_RELEASE) {
        match ports.delete_version(function, &v).await {
            Ok(()) | Err(PortError::NotFound { .. }) => pruned.push(v),
            Err(e @ PortError::Throttled { .. }) => {
                throttled(warnings, &e);
                break;
            }
            Err(e) if e.is_retryable() && !matches!(e, PortError::Conflict { .. }) => {
                return Err(e.into());
            }
            Err(e) => warnings.push(format!("could not prune {function} version {v}: {e}")),
        }
    }
    Ok(pruned)
}
