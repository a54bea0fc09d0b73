//! What a deployment looks like from its execution history: the current state, step and
//! weights, the last verdict with its numbers, a pending approval; and one readable line
//! per event that matters. Works the same on a real Step Functions history and on the
//! local runner's.

use serde_json::Value;
use stepshift_core::Timestamp;
use stepshift_core::deployment::{Decision, Plan, Progress, Traffic};
use stepshift_core::judge::{Verdict, VerdictStatus};
use stepshift_core::routers::Side;
use stepshift_core::{ErrorName, State, percent_text};

/// One history event, whichever implementation wrote it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Item {
    /// The event type, e.g. `TaskStateEntered`.
    pub kind: String,
    /// When.
    pub timestamp: Timestamp,
    /// The state, for StateEntered/StateExited events.
    pub name: Option<String>,
    /// A state's input (StateEntered).
    pub input: Option<Value>,
    /// A state's or task's output.
    pub output: Option<Value>,
    /// A task's parameters (TaskScheduled).
    pub parameters: Option<Value>,
    /// A task's resource.
    pub resource: Option<String>,
    /// An error name.
    pub error: Option<String>,
    /// An error cause.
    pub cause: Option<String>,
}

/// A pause waiting for a person.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingApproval {
    /// The task token, if the history holds it.
    pub token: Option<String>,
    /// When the pause began.
    pub since: Timestamp,
}

/// The deployment as its history shows it.
#[derive(Clone, Debug, Default)]
pub struct View {
    /// The state the execution is in (entered, not yet exited).
    pub state: Option<String>,
    /// The plan, once "Begin deployment" succeeded.
    pub plan: Option<Plan>,
    /// Where traffic stands.
    pub traffic: Option<Traffic>,
    /// Progress and the last verdict.
    pub progress: Option<Progress>,
    /// A pause waiting for approval.
    pub pending_approval: Option<PendingApproval>,
}

fn parse<T: serde::de::DeserializeOwned>(doc: &Value, key: &str) -> Option<T> {
    doc.get(key).filter(|v| !v.is_null()).and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Reads the deployment's state out of its history.
#[cfg(any(feature = "aws", test))]
pub fn view(items: &[Item]) -> View {
    let mut v = View::default();
    for item in items {
        v.apply(item);
    }
    v
}

impl View {
    /// Takes one more event into account.
    pub fn apply(&mut self, item: &Item) {
        let v = self;
        let doc = item.output.as_ref().or(item.input.as_ref());
        if (item.kind.ends_with("StateEntered") || item.kind.ends_with("StateExited"))
            && let Some(doc) = doc
        {
            v.plan = parse(doc, "plan").or(v.plan.take());
            v.traffic = parse(doc, "traffic").or(v.traffic.take());
            v.progress = parse(doc, "progress").or(v.progress.take());
        }
        if item.kind.ends_with("StateEntered") {
            v.state = item.name.clone();
        } else if item.kind.ends_with("StateExited") && v.state == item.name {
            v.state = None;
        }
        match item.kind.as_str() {
            "TaskScheduled" if item.resource.as_deref().is_some_and(|r| r.contains("waitForTaskToken")) => {
                let token = item
                    .parameters
                    .as_ref()
                    .and_then(|p| p.pointer("/Entries/0/Detail/task_token"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                v.pending_approval = Some(PendingApproval { token, since: item.timestamp });
            }
            "TaskSucceeded" | "TaskFailed" | "TaskTimedOut" | "TaskStateExited" | "ExecutionFailed"
            | "ExecutionSucceeded" | "ExecutionAborted" | "ExecutionTimedOut" => v.pending_approval = None,
            _ => {}
        }
    }
}

/// "step 2 of 3 (50%)".
pub fn step_label(plan: Option<&Plan>, index: usize, weight_percent: f64) -> String {
    let of = plan.map_or(String::new(), |p| format!(" of {}", p.steps.len()));
    format!("step {}{of} ({}%)", index + 1, percent_text(weight_percent / 100.0))
}

fn verdict_line(v: &Verdict) -> String {
    let status = match v.status {
        VerdictStatus::Healthy => "healthy",
        VerdictStatus::Unhealthy => "UNHEALTHY",
        VerdictStatus::Inconclusive => "not enough data",
    };
    format!("{status}: {}", v.reasons.join("; "))
}

/// A readable line for `item`, given the execution's ARN and the view before it.
pub fn narrate(item: &Item, before: &View, execution: &str) -> Option<String> {
    let plan = before.plan.as_ref();
    let state = item.name.as_deref().and_then(State::from_name);
    let out = item.output.as_ref();
    // A task state left through a Catch carries the error in `failure`; its own line
    // ("A task failed: ...") has been printed already.
    let caught = out.and_then(|o| o.get("failure")).is_some_and(|f| !f.is_null());
    if caught && item.kind == "TaskStateExited" && !matches!(state, Some(State::RollBack | State::RecordRollback)) {
        return None;
    }
    match (item.kind.as_str(), state) {
        ("TaskStateExited", Some(State::BeginDeployment)) => {
            let plan: Plan = parse(out?, "plan")?;
            let targets: Vec<String> =
                plan.targets.iter().map(|t| format!("{} {} → {}", t.qualified(), t.stable, t.candidate)).collect();
            let steps: Vec<String> =
                plan.steps.iter().map(|s| format!("{}%", percent_text(s.weight_percent / 100.0))).collect();
            Some(format!("Deploying {} in steps {}", targets.join(", "), steps.join(" → ")))
        }
        ("TaskStateExited", Some(shift @ (State::ShiftTraffic | State::ShiftThenSync))) => {
            let t: Traffic = parse(out?, "traffic")?;
            let who: Vec<String> = plan.map_or(Vec::new(), |p| {
                p.targets
                    .iter()
                    .map(|t| format!("{} {}", t.qualified(), t.route.name(&t.candidate, Side::Candidate)))
                    .collect()
            });
            // A router whose changes take effect later goes through the sync loop.
            let waiting = if shift == State::ShiftThenSync { "; waiting for the change to take effect" } else { "" };
            Some(format!(
                "Shifted {}% of traffic to {}{waiting}",
                percent_text(t.weight_percent / 100.0),
                who.join(", ")
            ))
        }
        ("TaskStateExited", Some(State::CheckHealth)) => {
            let p: Progress = parse(out?, "progress")?;
            let v = p.verdict.as_ref()?;
            let at = before.progress.as_ref().map_or(&p.cursor, |b| &b.cursor);
            let then = match p.decision {
                Decision::Wait if p.cursor.extensions_used > at.extensions_used => {
                    format!(" → baking {} s more (extension {})", p.cursor.wait_seconds, p.cursor.extensions_used)
                }
                Decision::Wait => {
                    // A check in the middle of a bake: one short line, since there is one a minute.
                    let mut compared: Vec<String> = v
                        .targets
                        .iter()
                        .map(|t| format!("evidence {} against {}", t.evidence_label(), t.baseline_label()))
                        .collect();
                    if compared.is_empty() {
                        // A target judged on its alarms only.
                        compared = v
                            .alarms
                            .iter()
                            .map(|a| {
                                let state = a.state.map_or_else(
                                    || "missing".to_owned(),
                                    |s| {
                                        serde_json::to_value(s)
                                            .ok()
                                            .and_then(|v| v.as_str().map(str::to_owned))
                                            .unwrap_or_default()
                                    },
                                );
                                format!("alarm {} {state}", a.name)
                            })
                            .collect();
                    }
                    let status = match v.status {
                        VerdictStatus::Inconclusive => "not enough data yet",
                        _ => "healthy so far",
                    };
                    return Some(format!(
                        "Check at {}: {status} ({}) → again in {} s",
                        step_label(plan, at.index, at.weight_percent),
                        compared.join("; "),
                        p.cursor.wait_seconds
                    ));
                }
                Decision::RollBack => " → rolling back".to_owned(),
                Decision::Confirm => " → lock-in passed".to_owned(),
                Decision::Advance => String::new(),
            };
            Some(format!("Check at {}: {}{then}", step_label(plan, at.index, at.weight_percent), verdict_line(v)))
        }
        ("TaskStateEntered", Some(State::AwaitApproval)) => {
            let cursor = before.progress.as_ref().map(|p| &p.cursor)?;
            Some(format!(
                "Waiting for approval before {}: stepshift approve {execution}   (or: stepshift reject {execution} --reason ...)",
                step_label(plan, cursor.index, cursor.weight_percent)
            ))
        }
        ("TaskStateExited", Some(State::AwaitApproval)) => Some("Approved".to_owned()),
        ("TaskStateExited", Some(State::Promote)) => {
            let lock_in = plan.map_or(0, |p| p.lock_in_seconds);
            let watch = if lock_in > 0 { format!("; watching it for {lock_in} s") } else { String::new() };
            Some(format!("Promoted: the candidate takes all traffic{watch}"))
        }
        ("TaskStateEntered", Some(State::RollBack)) => {
            let failure = item.input.as_ref().and_then(|i| i.get("failure")).filter(|f| !f.is_null());
            let error = failure.and_then(|f| f["Error"].as_str());
            let why = match (failure, error.and_then(ErrorName::from_name)) {
                (_, Some(ErrorName::ApprovalRejected)) => "the approval was rejected".to_owned(),
                (_, Some(ErrorName::ApprovalTimedOut)) => "nobody answered the approval in time".to_owned(),
                (Some(_), _) => format!("{} failed", error.unwrap_or("a task")),
                (None, _) => "the candidate did not pass its checks".to_owned(),
            };
            Some(format!("Rolling back: {why}"))
        }
        ("LambdaFunctionFailed" | "TaskFailed", _) => Some(format!(
            "A task failed: {} (the state machine retries or rolls back)",
            item.error.as_deref().unwrap_or("error")
        )),
        ("ExecutionSucceeded", _) => {
            let summary = out.and_then(|o| o["summary"].as_str()).unwrap_or("Released.");
            Some(summary.to_owned())
        }
        ("ExecutionFailed", _) => Some(format!(
            "{}: {}",
            item.error.as_deref().unwrap_or("Failed"),
            item.cause.as_deref().unwrap_or("no cause given")
        )),
        ("ExecutionTimedOut", _) => Some("The execution timed out".to_owned()),
        ("ExecutionAborted", _) => {
            Some("The execution was stopped by someone (no rollback ran; check the alias)".to_owned())
        }
        _ => None,
    }
}

/// Items from the local runner's history.
pub fn from_local(events: &[stepshift_local::asl::Event]) -> Vec<Item> {
    events
        .iter()
        .map(|e| {
            let d = &e.details;
            let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_owned);
            Item {
                kind: e.kind.clone(),
                timestamp: e.timestamp,
                name: text("name"),
                input: d.get("input").cloned(),
                output: d.get("output").cloned(),
                parameters: d.get("parameters").cloned(),
                resource: text("resource"),
                error: text("error"),
                cause: text("cause"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(kind: &str, name: Option<&str>) -> Item {
        Item { kind: kind.into(), name: name.map(str::to_owned), ..Item::default() }
    }

    #[test]
    fn a_pending_approval_and_its_token_are_found() {
        let mut scheduled = item("TaskScheduled", None);
        scheduled.resource = Some("putEvents.waitForTaskToken".into());
        scheduled.parameters = Some(json!({"Entries": [{"Detail": {"task_token": "tok-1"}}]}));
        let items = vec![
            item("TaskStateEntered", Some(State::AwaitApproval.as_str())),
            scheduled.clone(),
            item("TaskSubmitted", None),
        ];
        let v = view(&items);
        assert_eq!(v.state.as_deref(), Some(State::AwaitApproval.as_str()));
        assert_eq!(v.pending_approval.unwrap().token.as_deref(), Some("tok-1"));
        let answered = view(&[items, vec![item("TaskSucceeded", None)]].concat());
        assert!(answered.pending_approval.is_none());
    }

    #[test]
    fn a_history_without_parameters_has_no_token() {
        let mut scheduled = item("TaskScheduled", None);
        scheduled.resource = Some("arn:aws:states:::events:putEvents.waitForTaskToken".into());
        let v = view(&[scheduled]);
        assert_eq!(v.pending_approval.unwrap().token, None);
    }

    #[test]
    fn a_rollback_says_why() {
        let mut entered = item("TaskStateEntered", Some(State::RollBack.as_str()));
        entered.input = Some(json!({"failure": {"Error": "ApprovalTimedOut", "Cause": "nobody answered"}}));
        let line = |i: &Item| narrate(i, &View::default(), "arn").unwrap();
        assert_eq!(line(&entered), "Rolling back: nobody answered the approval in time");
        entered.input = Some(json!({"failure": {"Error": "States.Timeout", "Cause": "timed out"}}));
        assert_eq!(line(&entered), "Rolling back: States.Timeout failed");
        entered.input = Some(json!({"failure": null}));
        assert_eq!(line(&entered), "Rolling back: the candidate did not pass its checks");
    }

    #[test]
    fn failures_are_narrated_with_their_cause() {
        let mut failed = item("ExecutionFailed", None);
        failed.error = Some("Unhealthy".into());
        failed.cause = Some("Rolled back orders:live from 42 to 41: ...".into());
        assert_eq!(
            narrate(&failed, &View::default(), "arn").unwrap(),
            "Unhealthy: Rolled back orders:live from 42 to 41: ..."
        );
    }
}
