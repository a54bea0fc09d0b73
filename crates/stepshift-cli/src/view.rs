//! What a deployment looks like from its execution history: the current state, step and
//! weights, the last verdict with its numbers, a pending approval; and one readable line
//! per event that matters. Works the same on a real Step Functions history and on the
//! local runner's.

use serde_json::Value;
use stepshift_core::Timestamp;
use stepshift_core::deployment::{Decision, Plan, Progress, Traffic};
use stepshift_core::hooks::Point;
use stepshift_core::judge::{Verdict, VerdictStatus};
use stepshift_core::routers::Side;
use stepshift_core::tasks::CaughtError;
use stepshift_core::{ErrorName, State, percent_text};

use crate::hooks::{self, PointTests};

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
    /// The validation hooks' judgements, one per point (and step) judged, in order.
    pub hooks: Vec<PointTests>,
    /// The judging task under way, if any.
    pub judging: Option<Judging>,
    /// The states entered and not yet exited, outermost first: a Parallel's branches
    /// run side by side. Hook iterations' own states are left out; their Map stands
    /// for them.
    pub open: Vec<String>,
    /// The resource of the task scheduled last.
    pub last_task: Option<String>,
}

/// A judging task under way ("Judge the tests ...").
#[derive(Clone, Debug, PartialEq)]
pub struct Judging {
    /// The point it judges.
    pub point: Point,
    /// At a step, the step's index.
    pub step: Option<usize>,
    /// The runs it was given, to report each hook even when the task fails (its error
    /// carries the sentence only).
    pub runs: Option<Vec<stepshift_core::hooks::HookRun>>,
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
        let state = item.name.as_deref().and_then(State::from_name);
        if let Some(tests) = hooks::judged(item, v) {
            v.hooks.push(tests);
            v.judging = None;
        }
        let doc = item.output.as_ref().or(item.input.as_ref());
        if (item.kind.ends_with("StateEntered") || item.kind.ends_with("StateExited"))
            && let Some(doc) = doc
            && !state.is_some_and(hooks::holds_stale_progress)
        {
            v.plan = parse(doc, "plan").or(v.plan.take());
            v.traffic = parse(doc, "traffic").or(v.traffic.take());
            v.progress = parse(doc, "progress").or(v.progress.take());
            // A check in "Test the step" that decided to roll back carried its progress
            // out of the Parallel in the failure's cause, as Record rollback reads it.
            if let Some(f) = parse::<CaughtError>(doc, "failure")
                && let Some(progress) = v.progress.take()
            {
                v.progress = Some(stepshift_core::tasks::record::carried(progress, Some(f)).0);
            }
        }
        if item.kind.ends_with("StateEntered")
            && let Some(name) = &item.name
        {
            match state {
                Some(s) if hooks::in_iteration(s) => {}
                Some(s) if hooks::in_branch(s) => v.open.push(name.clone()),
                _ => v.open = vec![name.clone()],
            }
            if let Some(point) = state.and_then(hooks::judged_point) {
                // The runs it judges name their step; the progress does too.
                let runs = item.input.as_ref().and_then(|i| i.get("tests")).and_then(Value::as_array);
                let step = runs.and_then(|r| r.iter().find_map(|run| run.get("step")?.as_u64()));
                let step = step.map(|s| s as usize).or(v.progress.as_ref().map(|p| p.cursor.index));
                let runs = runs.and_then(|r| serde_json::from_value(Value::Array(r.clone())).ok());
                v.judging = Some(Judging { point, step, runs });
            }
        } else if (item.kind.ends_with("StateExited") || item.kind.ends_with("StateAborted"))
            && let Some(i) = v.open.iter().rposition(|n| Some(n) == item.name.as_ref())
        {
            // A Parallel takes what is left of its branches with it.
            if item.kind.starts_with("Parallel") {
                v.open.truncate(i);
            } else {
                v.open.remove(i);
            }
        }
        v.state = v.open.last().cloned();
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
        if item.kind == "TaskScheduled" {
            v.last_task = item.resource.clone();
        }
    }

    /// Whether a `TaskFailed` or `TaskTimedOut` event is a hook's invocation failing,
    /// which its judge reports.
    fn is_hook_failure(&self, item: &Item) -> bool {
        matches!(item.kind.as_str(), "TaskFailed" | "TaskTimedOut")
            && item.resource.as_ref().or(self.last_task.as_ref()).is_some_and(|r| hooks::is_hook_invocation(r))
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
    // A hook's invocation failing is one of its results, which its judge reports.
    if before.is_hook_failure(item) {
        return None;
    }
    if let Some(tests) = hooks::judged(item, before) {
        return Some(capitalised(&tests.line()));
    }
    match (item.kind.as_str(), state) {
        ("MapStateEntered", Some(map)) if hooks::tested_point(map).is_some() => {
            let point = hooks::tested_point(map)?;
            // The Map's input is the deployment's state: its plan lists the hooks.
            let key = point.field().trim_start_matches("hooks.");
            let listed = item.input.as_ref().and_then(|i| i.get("plan")?.get("hooks")?.get(key)?.as_array().cloned());
            let names: Vec<String> = match listed {
                Some(list) => list.iter().filter_map(|h| h["name"].as_str().map(str::to_owned)).collect(),
                None => plan.map_or(Vec::new(), |p| p.hooks.at(point).iter().map(|h| h.name.clone()).collect()),
            };
            let at = match (point, before.progress.as_ref()) {
                (Point::EachStep, Some(p)) => {
                    format!("at {}", step_label(plan, p.cursor.index, p.cursor.weight_percent))
                }
                _ => point.describe().to_owned(),
            };
            Some(match names.len() {
                0 => format!("Testing {at}"),
                1 => format!("Testing {at}: 1 hook ({})", names[0]),
                n => format!("Testing {at}: {n} hooks ({})", names.join(", ")),
            })
        }
        ("TaskStateExited", Some(State::BeginDeployment)) => {
            let plan: Plan = parse(out?, "plan")?;
            let targets: Vec<String> =
                plan.targets.iter().map(|t| format!("{} {} → {}", t.qualified(), t.stable, t.candidate)).collect();
            let steps: Vec<String> =
                plan.steps.iter().map(|s| format!("{}%", percent_text(s.weight_percent / 100.0))).collect();
            Some(format!("Deploying {} in steps {}", targets.join(", "), steps.join(" → ")))
        }
        ("TaskStateExited", Some(shift @ (State::ShiftTraffic | State::ShiftThenSync | State::ShiftThenTest))) => {
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
        ("TaskStateExited", Some(State::CheckHealth | State::CheckTheStep)) => {
            let p: Progress = parse(out?, "progress")?;
            let line = check_line(&p, before)?;
            // A person's command the check applied, or the pause it holds.
            Some(match (&p.control.note, &p.control.paused) {
                (Some(note), _) => format!("{line} · {note}"),
                (None, Some(pause)) if p.decision == Decision::Wait => format!("{line} (paused until {})", pause.until),
                _ => line,
            })
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
                // `stepshift abort` at the approval pause: the cause is "by ARN: REASON".
                (Some(f), Some(ErrorName::Aborted)) => match f["Cause"].as_str() {
                    Some(cause) => format!("aborted {cause}"),
                    None => "aborted".to_owned(),
                },
                // Its own line said which hooks failed, and why.
                (_, Some(ErrorName::HookFailed)) => match before.hooks.last() {
                    Some(t) if t.point == Point::BeforeTraffic => {
                        // Roll back finds nothing to restore; it releases the lock.
                        return Some(format!("Stopping: the tests {} failed; no traffic had moved", t.label()));
                    }
                    Some(t) => format!("the tests {} failed", t.label()),
                    None => "a validation hook failed".to_owned(),
                },
                // A check in "Test the step" decided it; its line said why.
                (_, Some(ErrorName::RollBackDecided)) => "the candidate did not pass its checks".to_owned(),
                (Some(_), _) => format!("{} failed", error.unwrap_or("a task")),
                (None, _) => commanded(before).unwrap_or_else(|| "the candidate did not pass its checks".to_owned()),
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

/// Why a check decided to roll back, if a person's command decided it
/// ([`stepshift_core::control`]).
fn commanded(before: &View) -> Option<String> {
    let control = &before.progress.as_ref()?.control;
    if let Some(a) = &control.aborted {
        let why = a.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("no reason given");
        return Some(format!("aborted by {} at {}: {why}", a.by, a.at));
    }
    let p = control.pause_expired.as_ref()?;
    Some(format!("the {} ran out at {} without a resume", p.command.describe(), p.until))
}

/// The line of a health check's result, given the view before it.
fn check_line(p: &Progress, before: &View) -> Option<String> {
    let plan = before.plan.as_ref();
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

/// `text` with a capital first letter.
fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
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
    fn commands_are_narrated_with_who_and_why() {
        // `stepshift abort` at an approval pause fails the task: its cause says who and why.
        let mut entered = item("TaskStateEntered", Some(State::RollBack.as_str()));
        entered.input =
            Some(json!({"failure": {"Error": "Aborted", "Cause": "by arn:aws:iam::1:user/ana: bad release"}}));
        let line = |i: &Item, v: &View| narrate(i, v, "arn").unwrap();
        assert_eq!(line(&entered, &View::default()), "Rolling back: aborted by arn:aws:iam::1:user/ana: bad release");
        // At a check: the check's line carries the note, the rollback the abort.
        let abort = json!({"seq": 1, "execution": "arn", "action": {"command": "abort"}, "by": "arn:aws:iam::1:user/ana",
            "reason": "bad release", "at": "2026-11-30T11:00:00Z"});
        let mut progress = hooks::fixtures::progress(0, 0, "roll_back");
        progress["verdict"] = json!({"status": "healthy", "reasons": ["fine"], "checked_at": "2026-11-30T11:01:00Z",
            "window": {"start": "2026-11-30T11:00:00Z", "end": "2026-11-30T11:01:00Z"}, "targets": [], "alarms": [], "notes": []});
        progress["control"] = json!({"applied": 1, "log": [abort], "aborted": abort,
            "note": "abort by arn:aws:iam::1:user/ana (\"bad release\"): rolling back"});
        let mut checked = item("TaskStateExited", Some(State::CheckHealth.as_str()));
        checked.output = Some(json!({"progress": progress}));
        assert_eq!(
            line(&checked, &View::default()),
            "Check at step 1 (50%): healthy: fine → rolling back · abort by arn:aws:iam::1:user/ana (\"bad release\"): rolling back"
        );
        let after = view(&[checked]);
        entered.input = Some(json!({"failure": null}));
        assert_eq!(
            line(&entered, &after),
            "Rolling back: aborted by arn:aws:iam::1:user/ana at 2026-11-30T11:00:00Z: bad release"
        );
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

    /// The narration of `items` and the deployment they leave.
    fn narrated(items: &[Item]) -> (Vec<String>, View) {
        let mut view = View::default();
        let mut lines = Vec::new();
        for item in items {
            lines.extend(narrate(item, &view, "arn"));
            view.apply(item);
        }
        (lines, view)
    }

    #[test]
    fn hooks_before_traffic_read_as_two_lines() {
        let items = hooks::fixtures::passing_before_traffic();
        let (lines, v) = narrated(&items);
        assert_eq!(
            lines,
            [
                "Testing before traffic: 2 hooks (smoke, invoke orders:7)",
                "Tests before traffic: passed (2): smoke, invoke orders:7"
            ]
        );
        assert_eq!(v.hooks.len(), 1);
        assert_eq!(v.hooks[0].line(), "tests before traffic: passed (2): smoke, invoke orders:7");
        // While the hooks run, the deployment is in the Map, not in one of its iterations.
        let during = view(&items[..6]);
        assert_eq!(during.state.as_deref(), Some(State::TestBeforeTraffic.as_str()));
        assert_eq!(v.state, None);
    }

    #[test]
    fn failed_hooks_at_a_step_read_as_their_judges_sentence() {
        let items = hooks::fixtures::failing_at_step_2();
        let (lines, v) = narrated(&items);
        assert_eq!(
            lines,
            [
                "Testing at step 2 (50%): 2 hooks (smoke, load)",
                "Tests at step 2: FAILED: smoke: Error: boom; load: did not answer within 30 s (timeout_seconds)",
                "Rolling back: the tests at step 2 failed",
            ]
        );
        let tests = &v.hooks[..];
        assert_eq!(tests.len(), 1);
        assert_eq!((tests[0].point, tests[0].step, tests[0].passed), (Point::EachStep, Some(1), false));
        assert_eq!(tests[0].sentence, hooks::fixtures::AT_STEP_2);
        assert_eq!(tests[0].results, None);
        assert_eq!(v.state.as_deref(), Some(State::RollBack.as_str()));
    }

    #[test]
    fn the_step_is_in_its_bake_while_its_hooks_branch_carries_an_older_progress() {
        let items = hooks::fixtures::failing_at_step_2();
        let judge = items.iter().position(|i| i.name.as_deref() == Some(State::JudgeTestsAtStep.as_str())).unwrap();
        let before = view(&items[..judge]);
        assert_eq!(before.state.as_deref(), Some(State::BakeTheStep.as_str()));
        let during = view(&items[..=judge]);
        assert_eq!(during.state.as_deref(), Some(State::JudgeTestsAtStep.as_str()));
        assert_eq!(during.judging.map(|j| (j.point, j.step)), Some((Point::EachStep, Some(1))));
        // The check's progress (one extension used), not the judge's input's.
        assert_eq!(during.progress.unwrap().cursor.extensions_used, 1);
    }

    #[test]
    fn a_check_in_the_step_that_rolls_back_carries_its_progress_to_the_view() {
        let mut decided = hooks::fixtures::progress(1, 2, "roll_back");
        decided["steps"] = json!([{"index": 1, "weight_percent": 50.0, "checks": 3, "extensions": 2, "status": "unhealthy", "reason": "5% errors"}]);
        let failure = json!({"Error": "RollBackDecided", "Cause": decided.to_string()});
        let mut entered = item("TaskStateEntered", Some(State::RollBack.as_str()));
        entered.input = Some(json!({"progress": hooks::fixtures::progress(1, 0, "advance"), "failure": failure}));
        let (lines, v) = narrated(&[entered]);
        assert_eq!(lines, ["Rolling back: the candidate did not pass its checks"]);
        let p = v.progress.unwrap();
        assert_eq!((p.cursor.extensions_used, p.steps.len()), (2, 1));
    }
}
