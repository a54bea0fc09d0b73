//! "Begin deployment": validate the request against the account, take the locks, and
//! plan the steps. Nothing is written unless the whole request is acceptable.

use serde::Deserialize;
use serde_json::Value;
use tracing::info;

use crate::baseline;
use crate::deployment::{DeploymentState, Plan, PlannedRecord, PlannedTarget, Revision, Router, Traffic};
use crate::error::{FieldError, FieldErrors, PortError, TaskError};
use crate::ports::{AlarmSource, AliasRouter, VersionCatalog};
use crate::records::{self, HistoryEntry, HistoryEvent, Lock, RecordKeys};
use crate::request::DeploymentRequest;
use crate::route53::RecordRouter;
use crate::route53::release::{self, RecordError};
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

/// A target whose alias (or record) was found and checked.
struct Resolved {
    target: PlannedTarget,
    /// The alias's RevisionId; records have none.
    revision_id: Option<String>,
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
    let names = request
        .targets
        .aliases
        .iter()
        .map(|t| (t.function.clone(), t.alias.clone()))
        .chain(request.targets.records.iter().map(|r| r.identity()));
    for (function, alias) in names {
        let keys = RecordKeys::new(&config.parameter_prefix, &function, &alias);
        if let Some(held) = records::load(ports, &keys).await?.lock.filter(|l| l.execution != input.execution) {
            return Err(TaskError::DeploymentInProgress {
                function,
                alias,
                holder: held.execution,
                candidate: held.candidate,
                since: held.acquired_at.to_rfc3339(),
            });
        }
    }
    let mut resolved = resolve(ports, &request).await?;
    // The stable version's history: read-only, so it is read before any lock is taken.
    let planned: Vec<PlannedTarget> = resolved.iter().map(|r| r.target.clone()).collect();
    let histories = baseline::read(ports, &planned, &request.health, input.started_at).await?;
    for (r, h) in resolved.iter_mut().zip(histories) {
        r.target.history = h;
    }
    let now = ports.now();

    // Locks are taken in name order, so two releases over overlapping aliases cannot
    // each hold one lock the other needs.
    let mut order: Vec<&Resolved> = resolved.iter().collect();
    order.sort_by(|a, b| (&a.target.function, &a.target.alias).cmp(&(&b.target.function, &b.target.alias)));
    let mut taken: Vec<RecordKeys> = Vec::new();
    for r in order {
        let t = &r.target;
        let keys = RecordKeys::new(&config.parameter_prefix, &t.function, &t.alias);
        let lock = Lock { execution: input.execution.clone(), candidate: t.candidate.clone(), acquired_at: now };
        if let Err(e) = records::acquire_lock(ports, &keys, &t.function, &t.alias, &lock).await {
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
    for Resolved { mut target, revision_id } in resolved {
        let keys = RecordKeys::new(&config.parameter_prefix, &target.function, &target.alias);
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
        if let Some(revision_id) = revision_id {
            revisions.push(Revision { function: target.function.clone(), alias: target.alias.clone(), revision_id });
        }
        targets.push(target);
    }

    let mut health = request.health.clone();
    // Validation has checked that the interval fits the history limit.
    health.check_interval_seconds = Some(request.check_interval().map_err(|e| TaskError::InvalidRequest(e.into()))?);
    let plan = Plan {
        execution: input.execution,
        started_at: input.started_at,
        router: if request.targets.records.is_empty() { Router::Lambda } else { Router::Route53 },
        targets,
        steps: request.steps(),
        health,
        lock_in_seconds: request.lock_in_seconds,
        keep_versions: request.keep_versions,
        approval_timeout_seconds: request.approval_timeout_seconds,
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
async fn resolve<P>(ports: &P, request: &DeploymentRequest) -> Result<Vec<Resolved>, TaskError>
where
    P: AliasRouter + RecordRouter + VersionCatalog + AlarmSource,
{
    let mut errors = Vec::new();
    let mut resolved = Vec::new();
    for (i, r) in request.targets.records.iter().enumerate() {
        match release::begin(ports, r).await {
            Ok(original) => {
                let (function, alias) = r.identity();
                resolved.push(Resolved {
                    target: PlannedTarget {
                        function,
                        alias,
                        stable: r.blue.label(),
                        candidate: r.green.label(),
                        records_before: Default::default(),
                        record: Some(PlannedRecord { target: r.clone(), original }),
                        history: None,
                    },
                    revision_id: None,
                });
            }
            Err(RecordError::NotReady(why) | RecordError::Drift(why)) => {
                errors.push(FieldError::new(format!("targets[{i}]"), why));
            }
            Err(RecordError::Port(PortError::NotFound { .. })) => errors.push(FieldError::new(
                format!("targets[{i}].hosted_zone_id"),
                format!("no hosted zone {} in this account", r.hosted_zone_id),
            )),
            Err(RecordError::Port(e)) => return Err(e.into()),
        }
    }
    for (i, t) in request.targets.aliases.iter().enumerate() {
        let at = |field: &str| format!("targets[{i}].{field}");
        let versions = match ports.list_versions(&t.function).await {
            Ok(v) => v,
            Err(PortError::NotFound { .. }) => {
                errors.push(FieldError::new(
                    at("function"),
                    format!("no function named {} in this account and region", t.function),
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let alias = match ports.get_alias(&t.function, &t.alias).await {
            Ok(a) => a,
            Err(PortError::NotFound { .. }) => {
                errors.push(FieldError::new(
                    at("alias"),
                    format!("{} has no alias {}; create it pointing at the stable version first", t.function, t.alias),
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !versions.contains(&t.version) {
            let mut numbers: Vec<u64> = versions.iter().filter_map(|v| v.parse().ok()).collect();
            numbers.sort_unstable();
            let newest = numbers.last().map_or("none".to_owned(), u64::to_string);
            errors.push(FieldError::new(
                at("version"),
                format!(
                    "version {} of {} is not published (newest published version: {newest})",
                    t.version, t.function
                ),
            ));
        }
        if let Some((_, w)) = &alias.routing.additional
            && *w > 0.0
        {
            errors.push(FieldError::new(
                at("alias"),
                format!(
                    "{} already splits traffic: {}; finish or roll back that release first",
                    t.qualified(),
                    alias.routing.describe()
                ),
            ));
        }
        if alias.routing.version == t.version {
            errors.push(FieldError::new(
                at("version"),
                format!("{} already serves version {}; there is nothing to deploy", t.qualified(), t.version),
            ));
        }
        resolved.push(Resolved {
            target: PlannedTarget {
                function: t.function.clone(),
                alias: t.alias.clone(),
                stable: alias.routing.version.clone(),
                candidate: t.version.clone(),
                records_before: Default::default(),
                record: None,
                history: None,
            },
            revision_id: Some(alias.revision_id),
        });
    }
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
    if errors.is_empty() { Ok(resolved) } else { Err(TaskError::InvalidRequest(FieldErrors(errors))) }
}
