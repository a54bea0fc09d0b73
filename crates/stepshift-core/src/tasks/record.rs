//! "record-version": the task that owns the version records and locks. Its actions:
//! `begin` (see [`super::begin`]), `rejected`, `promoted`, `rolled_back`, `confirmed`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::deployment::{Plan, PlannedTarget, Progress, StepSummary};
use crate::error::{PortError, TaskError};
use crate::judge::VerdictStatus;
use crate::ports::{ParameterStore, VersionCatalog};
use crate::records::{self, HistoryEntry, HistoryEvent, RecordKeys, VersionRecords, versions_to_prune};
use crate::request::is_resource_name;
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
    /// Function name.
    pub function: String,
    /// Alias name.
    pub alias: String,
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
}

/// Everything "record-version" calls: Begin's reads (aliases, records, versions, alarms,
/// the stable version's history) and the version records.
pub trait RecordPorts:
    crate::ports::AliasRouter
    + crate::route53::RecordRouter
    + VersionCatalog
    + crate::ports::AlarmSource
    + crate::ports::MetricsSource
    + crate::route53::health::DistributionMetricsSource
    + ParameterStore
    + Clock
{
}

impl<T> RecordPorts for T where
    T: crate::ports::AliasRouter
        + crate::route53::RecordRouter
        + VersionCatalog
        + crate::ports::AlarmSource
        + crate::ports::MetricsSource
        + crate::route53::health::DistributionMetricsSource
        + ParameterStore
        + Clock
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
    RecordKeys::new(&config.parameter_prefix, &t.function, &t.alias)
}

/// Releases whatever locks this execution holds on the request's aliases, and turns
/// the error into the outcome the Fail state shows.
pub async fn rejected<P: ParameterStore + Clock>(
    ports: &P,
    config: &TaskConfig,
    input: RejectedInput,
) -> Result<FailedOutcome, TaskError> {
    // The request may be malformed: take whatever targets can be read from it.
    let targets = input.request.get("targets").and_then(Value::as_array).cloned().unwrap_or_default();
    for mut t in targets {
        let (function, alias) = if t.get("kind").and_then(Value::as_str) == Some(crate::request::ROUTE53_KIND) {
            t.as_object_mut().map(|m| m.remove("kind"));
            match serde_json::from_value::<crate::route53::RecordTarget>(t) {
                Ok(r) if r.problems("").is_empty() => r.identity(),
                _ => continue,
            }
        } else {
            match (t.get("function").and_then(Value::as_str), t.get("alias").and_then(Value::as_str)) {
                (Some(f), Some(a)) if is_resource_name(f, 64) && is_resource_name(a, 128) => {
                    (f.to_owned(), a.to_owned())
                }
                // Only names a request could validly carry reach the parameter store.
                _ => continue,
            }
        };
        let keys = RecordKeys::new(&config.parameter_prefix, &function, &alias);
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
    let cause = match input.error.error.as_str() {
        "InvalidRequest" | "DeploymentInProgress" => input.error.message(),
        other => format!("the deployment could not begin: {other}: {}", input.error.message()),
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
            return Err(TaskError::LockLost {
                function: t.function.clone(),
                alias: t.alias.clone(),
                holder: lock.execution.clone(),
            });
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
        info!(function = %t.function, alias = %t.alias, version = %t.candidate, "promotion recorded");
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
pub fn rollback_reason(plan: &Plan, progress: &Progress, failure: Option<&CaughtError>) -> (String, String) {
    let cursor = &progress.cursor;
    let step =
        format!("step {} of {} ({}%)", cursor.index + 1, plan.steps.len(), percent_text(cursor.weight_percent / 100.0));
    if let Some(f) = failure {
        return match f.error.as_str() {
            "ApprovalRejected" => {
                ("ApprovalRejected".into(), format!("the approval for {step} was rejected: {}", f.message()))
            }
            "States.Timeout" if cursor.approval => (
                "ApprovalTimedOut".into(),
                format!(
                    "nobody approved {step} within {} seconds (approval_timeout_seconds)",
                    plan.approval_timeout_seconds
                ),
            ),
            "AliasDrift" | "RecordDrift" => (f.error.clone(), f.message()),
            other => (other.to_owned(), format!("a task failed at {step}: {other}: {}", f.message())),
        };
    }
    match &progress.verdict {
        Some(v) if v.status == VerdictStatus::Unhealthy => {
            ("Unhealthy".into(), format!("the candidate was unhealthy at {step}: {}", v.reasons.join("; ")))
        }
        Some(v) if v.status == VerdictStatus::Inconclusive => (
            "InsufficientData".into(),
            format!(
                "there was not enough data to judge the candidate at {step} after {} bake extensions: {}; set health.insufficient_data.then to \"proceed\" to continue without data",
                cursor.extensions_used,
                v.reasons.join("; ")
            ),
        ),
        _ => ("RolledBack".into(), format!("the deployment was rolled back at {step}")),
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
        let action = rollback.targets.iter().find(|r| r.function == t.function && r.alias == t.alias);
        let left_alone = action.is_some_and(|a| a.action == RollbackAction::LeftAlone);
        let detail = if left_alone {
            let now_routes = match action.and_then(|a| a.detail.clone()) {
                Some(d) => d,
                None => action
                    .and_then(|a| a.routing.as_ref())
                    .map_or("nothing (the alias is gone)".to_owned(), |r| r.describe()),
            };
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
    let mut cause = if moved.is_empty() {
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
        commands.push(match &t.record {
            Some(r) => format!(
                "put {} back to {} in the Route53 console (hosted zone {})",
                t.qualified(),
                crate::route53::describe(&r.original),
                r.target.hosted_zone_id
            ),
            None => format!("stepshift rollback --function {} --alias {} --to {}", t.function, t.alias, t.stable),
        });
    }
    let cause = format!(
        "Rollback FAILED ({}: {}) after: {reason}. The aliases may still send traffic to the candidate; run: {}.",
        error.error,
        error.message(),
        commands.join("; ")
    );
    warn!(cause = %cause, "rollback failed");
    Ok(FailedOutcome { error: "RollbackFailed".into(), cause, targets: Vec::new(), steps: progress.steps })
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
        let pruned = match plan.keep_versions {
            Some(keep) if t.record.is_none() => prune(ports, t, &after, keep as usize, &mut warnings).await?,
            _ => Vec::new(),
        };
        let detail = (!pruned.is_empty()).then(|| format!("pruned versions {}", pruned.join(", ")));
        let entry = history(now, HistoryEvent::Confirmed, &plan, t, detail);
        records::append_history(ports, &keys, &stored.history, entry).await?;
        records::release_lock(ports, &keys, &plan.execution).await?;
        released.push(ReleasedTarget {
            function: t.function.clone(),
            alias: t.alias.clone(),
            version: t.candidate.clone(),
            previous: t.stable.clone(),
            pruned,
        });
    }
    let names: Vec<String> = plan
        .targets
        .iter()
        .map(|t| match &t.record {
            Some(_) => format!("{} now points at {} (was {})", t.qualified(), t.candidate, t.stable),
            None => format!("{} now serves version {} (was {})", t.qualified(), t.candidate, t.stable),
        })
        .collect();
    Ok(Released {
        status: "promoted".into(),
        summary: format!("Released: {}.", names.join("; ")),
        targets: released,
        steps: progress.steps,
        warnings,
    })
}

/// Most versions one release deletes per function. Lambda's control plane allows 15
/// requests per second per account, shared with everything else; a first release
/// with `keep_versions` on a function with hundreds of versions must not burst.
pub const PRUNE_PER_RELEASE: usize = 20;

/// Deletes old versions of `t`'s function. Protected: every version the records name,
/// before or after this release, and every version any alias routes to. A version that
/// cannot be deleted (provisioned concurrency, say) becomes a warning, not a failure.
async fn prune<P: VersionCatalog>(
    ports: &P,
    t: &PlannedTarget,
    records: &VersionRecords,
    keep: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, TaskError> {
    let versions = ports.list_versions(&t.function).await?;
    let aliases = ports.list_aliases(&t.function).await?;
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
            t.function,
            doomed.len()
        ));
    }
    for v in doomed.into_iter().take(PRUNE_PER_RELEASE) {
        match ports.delete_version(&t.function, &v).await {
            Ok(()) | Err(PortError::NotFound { .. }) => pruned.push(v),
            Err(e) if e.is_retryable() && !matches!(e, PortError::Conflict { .. }) => {
                return Err(e.into());
            }
            Err(e) => warnings.push(format!("could not prune {} version {v}: {e}", t.function)),
        }
    }
    Ok(pruned)
}
