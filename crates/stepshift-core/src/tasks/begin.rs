//! "Begin deployment": validate the request against the account, take the locks, and
//! plan the steps. Nothing is written unless the whole request is acceptable.

use serde::Deserialize;
use serde_json::Value;
use tracing::info;

use crate::baseline;
use crate::deployment::{DeploymentState, Plan, PlannedTarget, Traffic};
use crate::error::{FieldError, FieldErrors, TaskError};
use crate::records::{self, HistoryEntry, HistoryEvent, Lock, RecordKeys};
use crate::request::DeploymentRequest;
use crate::routers::{self, Resolved};
use crate::tasks::TaskConfig;
use crate::tasks::record::RecordPorts;
use crate::time::Timestamp;

/// Input of "Begin deployment".
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeginInput {
    /// The execution input, as given.
    pub request: Value,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// `$$.Execution.StartTime`.
    pub started_at: Timestamp,
}

/// Validates, resolves the aliases, takes the locks and returns the initial state.
pub async fn begin<P: RecordPorts>(
    ports: &P,
    config: &TaskConfig,
    input: BeginInput,
) -> Result<DeploymentState, TaskError> {
    let request = DeploymentRequest::from_value(input.request).map_err(TaskError::InvalidRequest)?;
    for w in request.warnings() {
        tracing::warn!(warning = %w, "request warning");
    }
    // A deployment in progress explains a split alias better than "already splits
    // traffic" would: look at the locks (read-only) before anything else.
    for named in routers::identities(&request.targets) {
        let keys = RecordKeys::of(&config.parameter_prefix, &named.identity);
        if let Some(held) = records::load(ports, &keys).await?.lock.filter(|l| l.execution != input.execution) {
            return Err(TaskError::DeploymentInProgress {
                target: named.label,
                holder: held.execution,
                candidate: held.candidate,
                since: held.acquired_at.to_rfc3339(),
            });
        }
    }
    let mut resolved = resolve(ports, config, &request, &input.execution).await?;
    // The stable version's history: read-only, so it is read before any lock is taken.
    let planned: Vec<PlannedTarget> = resolved.iter().map(|r| r.target.clone()).collect();
    let histories = baseline::read(ports, &planned, &request.health, input.started_at).await?;
    for (r, h) in resolved.iter_mut().zip(histories) {
        r.target.history = h;
    }
    // A custom metric the stable version never had is likely a typo: refused with
    // `require_data`, a warning (and a note in every verdict) otherwise.
    let mut no_data = Vec::new();
    for r in &resolved {
        for (i, field, why) in crate::custom::missing_data(&request.health.metrics, &r.target) {
            if request.health.metrics[i].require_data {
                no_data.push(FieldError::new(field, format!("{why} (require_data)")));
            } else {
                tracing::warn!(field, warning = %why, "custom metric without data");
            }
        }
    }
    if !no_data.is_empty() {
        return Err(TaskError::InvalidRequest(FieldErrors(no_data)));
    }
    let now = ports.now();

    // Locks are taken in name order, so two releases over overlapping aliases cannot
    // each hold one lock the other needs.
    let mut order: Vec<&Resolved> = resolved.iter().collect();
    order.sort_by_key(|r| r.target.identity());
    let mut taken: Vec<RecordKeys> = Vec::new();
    for r in order {
        let t = &r.target;
        let keys = RecordKeys::of(&config.parameter_prefix, &t.identity());
        let lock = Lock { execution: input.execution.clone(), candidate: t.candidate.clone(), acquired_at: now };
        if let Err(e) = records::acquire_lock(ports, &keys, &t.qualified(), &lock).await {
            for k in &taken {
                // Best effort: the error we return matters more than a failed release,
                // and "Record rejection" releases this execution's locks again.
                let _ = records::release_lock(ports, k, &input.execution).await;
            }
            return Err(e);
        }
        taken.push(keys);
    }

    let mut targets = Vec::with_capacity(resolved.len());
    let mut revisions = Vec::with_capacity(resolved.len());
    for Resolved { mut target, revision } in resolved {
        let keys = RecordKeys::of(&config.parameter_prefix, &target.identity());
        let stored = records::load(ports, &keys).await?;
        let entry = HistoryEntry {
            at: now,
            event: HistoryEvent::Started,
            execution: Some(input.execution.clone()),
            from: Some(target.stable.clone()),
            to: Some(target.candidate.clone()),
            detail: None,
        };
        records::append_history(ports, &keys, &stored.history, entry).await?;
        target.records_before = stored.records;
        revisions.extend(revision);
        targets.push(target);
    }

    let mut health = request.health.clone();
    // Validation has checked that the interval fits the history limit.
    health.check_interval_seconds = Some(request.check_interval().map_err(|e| TaskError::InvalidRequest(e.into()))?);
    if health.fast_path.enabled {
        health.fast_path.check_interval_seconds =
            Some(request.fast_check_interval().map_err(|e| TaskError::InvalidRequest(e.into()))?);
    }
    let router = routers::kind_of(&request.targets);
    let hooks = crate::hooks::plan(&request.hooks, &targets, &input.execution);
    // The control record lives beside the first target's lock, which this execution holds.
    let control = targets.first().map(|t| RecordKeys::of(&config.parameter_prefix, &t.identity()).control());
    let plan = Plan {
        execution: input.execution,
        started_at: input.started_at,
        router,
        syncs: router.syncs(),
        targets,
        steps: request.steps(),
        health,
        lock_in_seconds: request.lock_in_seconds,
        keep_versions: request.keep_versions,
        approval_timeout_seconds: request.approval_timeout_seconds,
        fast_path: None,
        hooks,
        control,
        pause_timeout: request.pause_timeout,
    };
    info!(execution = %plan.execution, targets = plan.targets.len(), steps = plan.steps.len(), "deployment planned");
    Ok(DeploymentState {
        progress: plan.start(),
        traffic: Traffic { weight_percent: 0.0, step_started_at: None, revisions, pending_changes: Vec::new() },
        plan,
        failure: None,
        rollback: None,
    })
}

/// Checks every target and alarm against the account; read-only. Reports every problem.
async fn resolve<P: RecordPorts>(
    ports: &P,
    config: &TaskConfig,
    request: &DeploymentRequest,
    execution: &str,
) -> Result<Vec<Resolved>, TaskError> {
    let (resolved, mut errors) = match routers::resolve(ports, request).await? {
        Ok(resolved) => (resolved, Vec::new()),
        Err(errors) => (Vec::new(), errors),
    };
    if !request.health.alarms.is_empty() {
        let states = ports.alarm_states(&request.health.alarms).await?;
        for (i, s) in states.iter().enumerate() {
            if s.state.is_none() {
                errors.push(FieldError::new(
                    format!("health.alarms[{i}]"),
                    format!("no CloudWatch alarm named {} in this account and region", s.name),
                ));
            }
        }
    }
    test_function_problems(ports, config, request, execution, &mut errors).await?;
    if errors.is_empty() { Ok(resolved) } else { Err(TaskError::InvalidRequest(FieldErrors(errors))) }
}

/// Every hook's test function must be one the stack may run (its region, account and
/// `HookFunctionPattern`) and must exist: found here, with nothing changed, not at the
/// first step. Read-only (ListVersionsByFunction, on allowed functions only).
async fn test_function_problems<P: RecordPorts>(
    ports: &P,
    config: &TaskConfig,
    request: &DeploymentRequest,
    execution: &str,
    errors: &mut Vec<FieldError>,
) -> Result<(), TaskError> {
    use crate::PortError;
    // What looking a function up found: None when it exists, else why it cannot be used.
    let mut seen: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
    for point in crate::hooks::Point::ALL {
        for (i, hook) in request.hooks.at(point).iter().enumerate() {
            let Some(function) = &hook.function else { continue };
            let field = format!("{}[{i}].function", point.field());
            let pattern = config.hook_function_pattern.as_deref();
            if let Some(why) = crate::hooks::test_function_refused(function, execution, pattern) {
                errors.push(FieldError::new(field, why));
                continue;
            }
            let name = crate::hooks::function_name(function).to_owned();
            if !seen.contains_key(&name) {
                let problem = match ports.list_versions(&name).await {
                    Ok(_) => None,
                    Err(PortError::NotFound { .. }) => {
                        Some(format!("no Lambda function named {name} in this account and region"))
                    }
                    // Retryable errors are the state machine's to retry.
                    Err(
                        e @ (PortError::Throttled { .. } | PortError::Conflict { .. } | PortError::Unavailable { .. }),
                    ) => {
                        return Err(e.into());
                    }
                    // Most likely AccessDenied: the stack may not touch this function.
                    Err(e) => Some(format!(
                        "stepshift cannot use {name} as a test function ({e}); the stack's HookFunctionPattern must \
                         match its name"
                    )),
                };
                seen.insert(name.clone(), problem);
            }
            if let Some(Some(problem)) = seen.get(&name) {
                errors.push(FieldError::new(field, problem.clone()));
            }
        }
    }
    Ok(())
}
