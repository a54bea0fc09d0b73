//! `tally`'s one entry point: every input, told apart by its shape.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::{Value, json};
use stepshift_core::deployment::Plan;
use stepshift_core::outcomes::{BucketCounts, FilterName, LogSubscriptions, OutcomeSeries, OutcomeSink, Source};
use stepshift_core::request::DeploymentRequest;
use stepshift_core::tasks::{decode, fast};
use stepshift_core::{Clock, TaskError, encode};
use tracing::{error, info};

use crate::aggregate::{Totals, aggregate};
use crate::{destinations, logs};

/// The `detail-type` of Step Functions' execution status change events.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The statuses of an execution that has ended.
const ENDED: [&str; 4] = ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"];

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Start,
    Stop,
}

/// The state machine's input: `{"action": ..., "plan": $.plan}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    action: Action,
    plan: Plan,
}

/// Handles one input. `destination_arn` is `tally`'s own unqualified ARN, which "Start
/// fast path" subscribes to the log groups.
pub async fn handle<P: LogSubscriptions + OutcomeSink + Clock>(
    ports: &P,
    destination_arn: &str,
    input: Value,
) -> Result<Value, TaskError> {
    let Some(object) = input.as_object() else { return Err(unrecognised(&input)) };
    if object.contains_key("awslogs") {
        return count_logs(ports, &input).await;
    }
    if object.contains_key("action") {
        return act(ports, destination_arn, input).await;
    }
    let source = object.get("source").and_then(Value::as_str);
    let detail_type = object.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    if source == Some("aws.states") && detail_type == STATUS_CHANGE {
        return execution_changed(ports, &input).await;
    }
    if detail_type.starts_with(destinations::DETAIL_TYPE_PREFIX) {
        return Ok(count_destination(ports, &input).await);
    }
    Err(unrecognised(&input))
}

fn unrecognised(input: &Value) -> TaskError {
    let shape = match input.as_object() {
        Some(o) => format!("an object with keys [{}]", o.keys().cloned().collect::<Vec<_>>().join(", ")),
        None => format!("a JSON {}", kind(input)),
    };
    TaskError::InvalidTaskInput(format!(
        "tally: unrecognised input ({shape}); expected a CloudWatch Logs subscription batch \
         ({{\"awslogs\": {{\"data\": ...}}}}), a Lambda Destinations event (detail-type \"{}\" or \"{}\"), \
         a \"{STATUS_CHANGE}\" event from aws.states, or {{\"action\": \"start\" or \"stop\", \"plan\": ...}}",
        destinations::SUCCESS,
        destinations::FAILURE,
    ))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// "Start fast path" and "Stop fast path".
async fn act<P: LogSubscriptions + OutcomeSink + Clock>(
    ports: &P,
    destination_arn: &str,
    input: Value,
) -> Result<Value, TaskError> {
    let ActionInput { action, plan } = decode("tally", input)?;
    match action {
        Action::Start => {
            if destination_arn.is_empty() {
                return Err(TaskError::InvalidTaskInput(
                    "tally: its own ARN is unknown, so it cannot subscribe itself (set STEPSHIFT_TALLY_ARN)".into(),
                ));
            }
            encode(fast::start(ports, &plan, destination_arn).await?)
        }
        Action::Stop => encode(fast::stop(ports, &plan.execution, &fast::alias_functions(&plan)).await?),
    }
}

fn skipped(mut summary: Value, why: &str) -> Value {
    info!(reason = why, "nothing counted");
    summary["skipped"] = why.into();
    summary
}

/// Publishes `counts` in one call, and says what happened. A failure is logged, never
/// returned: the sender would deliver the input again, and what may already have been
/// published would count twice.
async fn publish<P: OutcomeSink>(ports: &P, counts: Vec<(OutcomeSeries, BucketCounts)>, mut summary: Value) -> Value {
    let totals = Totals::of(&counts);
    summary["invocations"] = totals.invocations.into();
    summary["failures"] = totals.failures.into();
    summary["slow"] = totals.slow.into();
    summary["buckets"] = counts.len().into();
    if counts.is_empty() {
        summary["published"] = false.into();
        return summary;
    }
    match ports.publish(&counts).await {
        Ok(()) => {
            summary["published"] = true.into();
            info!(invocations = totals.invocations, failures = totals.failures, slow = totals.slow, "counted");
        }
        Err(e) => {
            error!(error = %e, "the counts were not published; they are dropped rather than risk counting them twice");
            summary["published"] = false.into();
            summary["error"] = e.to_string().into();
        }
    }
    summary
}

/// A CloudWatch Logs subscription batch.
async fn count_logs<P: OutcomeSink>(ports: &P, input: &Value) -> Result<Value, TaskError> {
    let batch = logs::decode_payload(input)
        .map_err(|e| TaskError::InvalidTaskInput(format!("tally: a CloudWatch Logs batch that cannot be read: {e}")))?;
    let summary = json!({"input": "logs", "log_group": batch.log_group, "log_stream": batch.log_stream});
    if batch.message_type == logs::CONTROL_MESSAGE {
        return Ok(skipped(summary, "a control message"));
    }
    let Some(stream) = logs::stream_name(&batch.log_stream) else {
        return Ok(skipped(
            summary,
            "the log stream is not a published version's ($LATEST, or a name tally does not know)",
        ));
    };
    let mut seen = BTreeSet::new();
    let filters: Vec<FilterName> = batch
        .subscription_filters
        .iter()
        .filter_map(|name| FilterName::parse(name))
        .filter(|f| stream.function.is_none_or(|function| function == f.function))
        .filter(|f| seen.insert((f.function.clone(), f.alias.clone())))
        .collect();
    if filters.is_empty() {
        return Ok(skipped(summary, "no stepshift subscription filter for this stream's function sent the batch"));
    }
    let outcomes = logs::outcomes(stream.version, &batch.log_events);
    let counts = filters
        .iter()
        .flat_map(|f| aggregate(&f.function, &f.alias, Source::Logs, f.slow_above_ms, &outcomes))
        .collect();
    let mut summary = summary;
    summary["version"] = stream.version.into();
    Ok(publish(ports, counts, summary).await)
}

/// A Lambda Destinations event.
async fn count_destination<P: OutcomeSink>(ports: &P, input: &Value) -> Value {
    let summary = json!({"input": "destinations"});
    match destinations::parse(input) {
        Ok(d) => {
            let counts = aggregate(&d.function, &d.alias, Source::Destinations, None, std::slice::from_ref(&d.outcome));
            let mut summary = summary;
            summary["target"] = format!("{}:{}", d.function, d.alias).into();
            summary["version"] = d.outcome.version.clone().into();
            publish(ports, counts, summary).await
        }
        Err(why) => skipped(summary, &why),
    }
}

/// The functions of the alias targets of an execution's input (a deployment request).
fn request_functions(input: &str) -> Vec<String> {
    if let Ok(request) = DeploymentRequest::from_json(input) {
        return request.targets.aliases.iter().map(|t| t.function.clone()).collect();
    }
    // A request this version refuses started no fast path; read what it names anyway,
    // since removing only this execution's filters cannot harm.
    let value: Value = serde_json::from_str(input).unwrap_or_default();
    let targets = value.get("targets").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    targets
        .iter()
        .filter(|t| t.get("kind").is_none_or(|k| k == "alias"))
        .filter_map(|t| t.get("function").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// A Step Functions execution status change: an ended execution's filters go.
async fn execution_changed<P: LogSubscriptions>(ports: &P, input: &Value) -> Result<Value, TaskError> {
    let detail = input.get("detail").unwrap_or(&Value::Null);
    let arn = detail.get("executionArn").and_then(Value::as_str).ok_or_else(|| {
        TaskError::InvalidTaskInput("tally: an execution status change without detail.executionArn".into())
    })?;
    let status = detail.get("status").and_then(Value::as_str).unwrap_or_default();
    let summary = json!({"input": "execution_status_change", "execution": arn, "status": status});
    if !ENDED.contains(&status) {
        return Ok(skipped(summary, "the execution has not ended"));
    }
    let functions = match detail.get("input") {
        Some(Value::String(text)) => request_functions(text),
        Some(v @ Value::Object(_)) => request_functions(&v.to_string()),
        _ => Vec::new(),
    };
    if functions.is_empty() {
        return Ok(skipped(summary, "the event carries no input naming Lambda alias targets"));
    }
    let stopped = fast::stop(ports, arn, &functions).await?;
    let mut summary = summary;
    summary["functions"] = functions.into();
    summary["removed"] = stopped.removed.into();
    if !stopped.notes.is_empty() {
        summary["notes"] = stopped.notes.into();
    }
    info!(execution = %arn, status, "fast path stopped");
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_of_a_request() {
        let request = r#"{"targets": [{"function": "orders", "alias": "live", "version": "42"},
                                       {"function": "billing", "alias": "live", "version": 7}],
                          "strategy": "canary-10-5m"}"#;
        assert_eq!(request_functions(request), ["orders", "billing"]);
        let refused = r#"{"targets": [{"function": "orders", "alias": "live"}, {"kind": "route53", "function": "x"}], "bogus": 1}"#;
        assert_eq!(request_functions(refused), ["orders"]);
        assert!(request_functions("not json").is_empty());
    }
}
