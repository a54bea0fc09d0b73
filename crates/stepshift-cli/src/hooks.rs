//! The validation hooks as a deployment's history shows them. For each point, the
//! judging task ("Judge the tests before traffic", ...) either succeeded, and its
//! output (in `$.tests`) is the [`HookReport`], or failed with `HookFailed`, whose
//! cause (a Lambda error) carries the sentence naming each failed hook.
//! [`crate::view::View`] collects them as [`PointTests`], so that `status`, `watch`,
//! `deploy --wait` and `simulate` show the same lines and the same `hooks` array.

use serde::Serialize;
use stepshift_core::hooks::{HookOutcome, HookReport, HookResult, Point};
use stepshift_core::tasks::CaughtError;
use stepshift_core::{ErrorName, State};

use crate::view::{Item, View};

/// One point's tests, as judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointTests {
    /// When they ran.
    pub point: Point,
    /// At a step: the step's index (0 is the first), as in `progress.cursor.index`.
    pub step: Option<usize>,
    /// Whether every hook passed.
    pub passed: bool,
    /// The judge's sentence: "the tests at step 2 failed: load: ...".
    pub sentence: String,
    /// Each hook's result, in the request's order: from the judge's report, or when the
    /// judge failed, judged again from the runs it was given (`null` if the history
    /// did not show them).
    pub results: Option<Vec<HookResult>>,
}

impl PointTests {
    /// From a judge's report.
    pub fn from_report(report: HookReport) -> Self {
        PointTests {
            point: report.point,
            step: report.step.filter(|_| report.point == Point::EachStep),
            passed: report.passed(),
            sentence: report.sentence(),
            results: Some(report.results),
        }
    }

    /// From the sentence a judge failed with.
    pub fn failed(point: Point, step: Option<usize>, sentence: String) -> Self {
        PointTests { point, step: step.filter(|_| point == Point::EachStep), passed: false, sentence, results: None }
    }

    /// "before traffic", "at step 2", "after promotion".
    pub fn label(&self) -> String {
        match (self.point, self.step) {
            (Point::EachStep, Some(i)) => format!("at step {}", i + 1),
            (p, _) => p.describe().to_owned(),
        }
    }

    /// "passed (2): smoke, invoke orders:7", or "FAILED: load: did not answer within 30 s
    /// (timeout_seconds)".
    pub fn verdict(&self) -> String {
        let results = self.results.as_deref();
        if self.passed {
            let names: Vec<&str> = results.unwrap_or_default().iter().map(|r| r.name.as_str()).collect();
            return match names.len() {
                0 => "passed".to_owned(),
                n => format!("passed ({n}): {}", names.join(", ")),
            };
        }
        let why = match results {
            Some(results) => results
                .iter()
                .filter(|r| r.outcome != HookOutcome::Passed)
                .map(|r| format!("{}: {}", r.name, r.detail))
                .collect::<Vec<_>>()
                .join("; "),
            // "the tests at step 2 failed: load: ..."
            None => self.sentence.split_once(" failed: ").map_or(self.sentence.as_str(), |(_, why)| why).to_owned(),
        };
        format!("FAILED: {why}")
    }

    /// "tests before traffic: passed (2): smoke, invoke orders:7".
    pub fn line(&self) -> String {
        format!("tests {}: {}", self.label(), self.verdict())
    }
}

/// The lines of a summary: one per point judged, except that steps whose tests all
/// passed, one after another with the same hooks, share one ("tests at steps 1 to 9:
/// passed (1): load").
pub fn summary_lines(tests: &[PointTests]) -> Vec<String> {
    let alike = |a: &PointTests, b: &PointTests| {
        let names = |t: &PointTests| t.results.as_ref().map(|r| r.iter().map(|r| r.name.clone()).collect::<Vec<_>>());
        a.point == Point::EachStep && b.point == Point::EachStep && a.passed && b.passed && names(a) == names(b)
    };
    let mut lines = Vec::new();
    let mut i = 0;
    while i < tests.len() {
        let first = &tests[i];
        let mut last = i;
        while let (Some(next), Some(at)) = (tests.get(last + 1), tests[last].step) {
            if !(alike(first, next) && next.step == Some(at + 1)) {
                break;
            }
            last += 1;
        }
        let line = match (last - i, first.step) {
            (0, _) | (_, None) => first.line(),
            (n, Some(s)) => {
                let and = if n == 1 { "and" } else { "to" };
                format!("tests at steps {} {and} {}: {}", s + 1, s + n + 1, first.verdict())
            }
        };
        lines.push(line);
        i = last + 1;
    }
    lines
}

/// The point a judging state judges.
pub fn judged_point(state: State) -> Option<Point> {
    match state {
        State::JudgeTestsBeforeTraffic => Some(Point::BeforeTraffic),
        State::JudgeTestsAtStep => Some(Point::EachStep),
        State::JudgeTestsAfterPromotion => Some(Point::AfterPromotion),
        _ => None,
    }
}

/// The point whose hooks a Map state runs.
pub fn tested_point(state: State) -> Option<Point> {
    match state {
        State::TestBeforeTraffic => Some(Point::BeforeTraffic),
        State::TestAtStep => Some(Point::EachStep),
        State::TestAfterPromotion => Some(Point::AfterPromotion),
        _ => None,
    }
}

/// Whether `state` runs inside a hook Map's iterations: one per hook, in parallel.
pub fn in_iteration(state: State) -> bool {
    matches!(
        state,
        State::BeforeTrafficWhichTest
            | State::BeforeTrafficInvokeCandidate
            | State::BeforeTrafficRunTestFunction
            | State::BeforeTrafficTestDone
            | State::AtStepWhichTest
            | State::AtStepInvokeCandidate
            | State::AtStepRunTestFunction
            | State::AtStepTestDone
            | State::AfterPromotionWhichTest
            | State::AfterPromotionInvokeCandidate
            | State::AfterPromotionRunTestFunction
            | State::AfterPromotionTestDone
    )
}

/// Whether `state` runs in a branch of "Test the step", beside the other branch.
pub fn in_branch(state: State) -> bool {
    matches!(
        state,
        State::TestAtStep
            | State::JudgeTestsAtStep
            | State::BakeTheStep
            | State::CheckTheStep
            | State::StepChecked
            | State::StepRollsBack
            | State::StepBaked
    )
}

/// Whether the state's input and output may hold an older `progress` than the
/// deployment's: the hooks' branch of "Test the step" carries the progress of the
/// step's start while the other branch's checks move it on.
pub fn holds_stale_progress(state: State) -> bool {
    in_iteration(state) || matches!(state, State::TestAtStep | State::JudgeTestsAtStep)
}

/// Whether a task's resource is the Lambda integration the hooks invoke through
/// (`arn:aws:states:::lambda:invoke` locally, `lambda:invoke` in a Step Functions
/// history): its failures are the hooks', which their judge reports.
pub fn is_hook_invocation(resource: &str) -> bool {
    resource.ends_with("lambda:invoke")
}

/// The point a judge's sentence is about, when the history did not say which judge ran.
fn point_of(sentence: &str) -> Point {
    Point::ALL
        .into_iter()
        .find(|p| sentence.starts_with(&format!("the tests {}", p.describe())))
        .unwrap_or(Point::EachStep)
}

/// The tests `item` reports a judgement of, given the deployment before it: a judging
/// task's exit with its report, or its `HookFailed` failure.
pub fn judged(item: &Item, before: &View) -> Option<PointTests> {
    match item.kind.as_str() {
        // A Task in the state machine (a Pass state in a test's stand-in for it).
        kind if kind.ends_with("StateExited") => {
            item.name.as_deref().and_then(State::from_name).and_then(judged_point)?;
            let output = item.output.as_ref()?;
            // Caught: its failure event said it already.
            if output.get("failure").is_some_and(|f| !f.is_null()) {
                return None;
            }
            // The state with its `$.tests`, or (at a step, whose judging task's
            // OutputPath is `$.tests`) the report alone.
            let report = output.get("tests").unwrap_or(output);
            let report: HookReport = serde_json::from_value(report.clone()).ok()?;
            Some(PointTests::from_report(report))
        }
        "LambdaFunctionFailed" | "TaskFailed" if item.error.as_deref() == Some(ErrorName::HookFailed.as_str()) => {
            let sentence =
                CaughtError { error: ErrorName::HookFailed.to_string(), cause: item.cause.clone().unwrap_or_default() }
                    .message();
            let (point, step) = before.judging.as_ref().map_or((point_of(&sentence), None), |j| (j.point, j.step));
            let mut failed = PointTests::failed(point, step, sentence);
            let runs = before.judging.as_ref().and_then(|j| j.runs.as_deref());
            failed.results = runs.map(|runs| stepshift_core::hooks::report(point, runs).results);
            Some(failed)
        }
        _ => None,
    }
}

/// Hand-built histories, as Step Functions writes them.
#[cfg(test)]
pub mod fixtures {
    use serde_json::{Value, json};
    use stepshift_core::State;

    use crate::view::Item;

    /// An event.
    pub fn item(kind: &str, state: Option<State>) -> Item {
        Item { kind: kind.into(), name: state.map(|s| s.as_str().to_owned()), ..Item::default() }
    }

    fn with_input(mut i: Item, input: Value) -> Item {
        i.input = Some(input);
        i
    }

    fn with_output(mut i: Item, output: Value) -> Item {
        i.output = Some(output);
        i
    }

    fn failed(kind: &str, error: &str, cause: &str) -> Item {
        Item { error: Some(error.into()), cause: Some(cause.into()), ..item(kind, None) }
    }

    /// `lambda:invoke` scheduled, as a Step Functions history names the resource.
    fn invoke_scheduled() -> Item {
        Item { resource: Some("lambda:invoke".into()), ..item("TaskScheduled", None) }
    }

    /// One iteration of a hook Map, its invocation ending with `ends`.
    fn iteration(map: State, task: State, done: State, ends: Vec<Item>) -> Vec<Item> {
        let mut items = vec![
            item("MapIterationStarted", Some(map)),
            item("TaskStateEntered", Some(task)),
            invoke_scheduled(),
            item("TaskStarted", None),
        ];
        items.extend(ends);
        items.extend([
            item("TaskStateExited", Some(task)),
            item("SucceedStateEntered", Some(done)),
            item("SucceedStateExited", Some(done)),
            item("MapIterationSucceeded", Some(map)),
        ]);
        items
    }

    /// A progress at `index` (50% at index 1).
    pub fn progress(index: usize, extensions_used: u32, decision: &str) -> Value {
        json!({
            "cursor": {"index": index, "weight_percent": 50.0, "approval": false, "promote": false, "wait_seconds": 300, "extensions_used": extensions_used},
            "decision": decision,
            "verdict": null,
            "steps": [],
        })
    }

    /// The hooks before traffic, both passing: `smoke` and `invoke orders:7`.
    pub fn passing_before_traffic() -> Vec<Item> {
        let (map, judge) = (State::TestBeforeTraffic, State::JudgeTestsBeforeTraffic);
        let plan = json!({"hooks": {"before_traffic": [{"name": "smoke"}, {"name": "invoke orders:7"}], "each_step": [], "after_promotion": []}});
        let mut items =
            vec![with_input(item("MapStateEntered", Some(map)), json!({"plan": plan})), item("MapStateStarted", None)];
        items.extend(iteration(
            map,
            State::BeforeTrafficRunTestFunction,
            State::BeforeTrafficTestDone,
            vec![item("TaskSucceeded", None)],
        ));
        items.extend(iteration(
            map,
            State::BeforeTrafficInvokeCandidate,
            State::BeforeTrafficTestDone,
            vec![item("TaskSucceeded", None)],
        ));
        let report = json!({
            "point": "before_traffic",
            "step": null,
            "results": [
                {"name": "smoke", "function": "orders-smoke", "outcome": "passed", "detail": "passed"},
                {"name": "invoke orders:7", "function": "orders:7", "outcome": "passed", "detail": "passed"},
            ],
        });
        items.extend([
            item("MapStateSucceeded", None),
            item("MapStateExited", Some(map)),
            with_input(item("TaskStateEntered", Some(judge)), json!({"tests": [{"step": null}, {"step": null}]})),
            item("LambdaFunctionScheduled", None),
            item("LambdaFunctionStarted", None),
            with_output(item("LambdaFunctionSucceeded", None), report.clone()),
            with_output(item("TaskStateExited", Some(judge)), json!({"plan": plan, "tests": report})),
        ]);
        items
    }

    /// The sentence the judge at step 2 fails with.
    pub const AT_STEP_2: &str =
        "the tests at step 2 failed: smoke: Error: boom; load: did not answer within 30 s (timeout_seconds)";

    /// The hooks at step 2 (index 1) in "Test the step", beside its bake: `smoke` fails
    /// with an error, `load` times out; the judge fails, the Parallel catches it and
    /// "Roll back" follows. The bake branch's check moves the progress on meanwhile.
    pub fn failing_at_step_2() -> Vec<Item> {
        let (map, judge) = (State::TestAtStep, State::JudgeTestsAtStep);
        let (p0, p1) = (progress(1, 0, "advance"), progress(1, 1, "wait"));
        let plan = json!({"hooks": {"before_traffic": [], "each_step": [{"name": "smoke"}, {"name": "load"}], "after_promotion": []}});
        let cause = json!({"errorType": "HookFailed", "errorMessage": AT_STEP_2}).to_string();
        let failure = json!({"Error": "HookFailed", "Cause": cause});
        let mut items = vec![
            with_output(item("TaskStateExited", Some(State::ShiftThenTest)), json!({"progress": p0})),
            with_input(item("ParallelStateEntered", Some(State::TestTheStep)), json!({"progress": p0})),
            item("ParallelStateStarted", None),
            with_input(item("MapStateEntered", Some(map)), json!({"plan": plan, "progress": p0})),
            with_input(item("WaitStateEntered", Some(State::BakeTheStep)), json!({"progress": p0})),
            item("MapStateStarted", None),
        ];
        let boom = json!({"errorType": "Error", "errorMessage": "boom"}).to_string();
        // The local runner's TaskFailed names no resource; Step Functions' does.
        items.extend(iteration(
            map,
            State::AtStepRunTestFunction,
            State::AtStepTestDone,
            vec![failed("TaskFailed", "Error", &boom)],
        ));
        let mut timed_out = failed("TaskTimedOut", "States.Timeout", "");
        timed_out.resource = Some("lambda:invoke".into());
        items.extend(iteration(map, State::AtStepRunTestFunction, State::AtStepTestDone, vec![timed_out]));
        items.extend([
            with_output(item("WaitStateExited", Some(State::BakeTheStep)), json!({"progress": p0})),
            with_input(item("TaskStateEntered", Some(State::CheckTheStep)), json!({"progress": p0})),
            with_output(item("TaskStateExited", Some(State::CheckTheStep)), json!({"progress": p1})),
            item("ChoiceStateEntered", Some(State::StepChecked)),
            item("ChoiceStateExited", Some(State::StepChecked)),
            with_input(item("WaitStateEntered", Some(State::BakeTheStep)), json!({"progress": p1})),
            item("MapStateSucceeded", None),
            // The hooks' branch carries the progress of the step's start.
            with_output(item("MapStateExited", Some(map)), json!({"progress": p0, "tests": []})),
            with_input(
                item("TaskStateEntered", Some(judge)),
                json!({"progress": p0, "tests": [{"step": 1}, {"step": 1}]}),
            ),
            item("LambdaFunctionScheduled", None),
            item("LambdaFunctionStarted", None),
            failed("LambdaFunctionFailed", "HookFailed", &cause),
            failed("ParallelStateFailed", "HookFailed", &cause),
            item("WaitStateAborted", Some(State::BakeTheStep)),
            with_output(
                item("ParallelStateExited", Some(State::TestTheStep)),
                json!({"progress": p0, "failure": failure}),
            ),
            with_input(item("TaskStateEntered", Some(State::RollBack)), json!({"progress": p0, "failure": failure})),
        ]);
        items
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(name: &str, outcome: HookOutcome, detail: &str) -> HookResult {
        HookResult { name: name.into(), function: format!("{name}-fn"), outcome, detail: detail.into() }
    }

    #[test]
    fn a_report_reads_as_one_line() {
        let passed = PointTests::from_report(HookReport {
            point: Point::BeforeTraffic,
            step: None,
            results: vec![
                result("smoke", HookOutcome::Passed, "passed"),
                result("invoke orders:7", HookOutcome::Passed, "passed"),
            ],
        });
        assert_eq!(passed.line(), "tests before traffic: passed (2): smoke, invoke orders:7");
        let failed = PointTests::from_report(HookReport {
            point: Point::EachStep,
            step: Some(1),
            results: vec![
                result("smoke", HookOutcome::Passed, "passed"),
                result("load", HookOutcome::TimedOut, "did not answer within 30 s (timeout_seconds)"),
            ],
        });
        assert!(!failed.passed);
        assert_eq!(failed.line(), "tests at step 2: FAILED: load: did not answer within 30 s (timeout_seconds)");
        // After promotion the Map passes the last step's index along; it says nothing.
        let after =
            PointTests::from_report(HookReport { point: Point::AfterPromotion, step: Some(2), results: vec![] });
        assert_eq!((after.step, after.line()), (None, "tests after promotion: passed".to_owned()));
    }

    #[test]
    fn a_failed_judge_reads_from_its_sentence() {
        let t = PointTests::failed(Point::EachStep, Some(0), "the tests at step 1 failed: load: HTTP 502".into());
        assert_eq!(t.line(), "tests at step 1: FAILED: load: HTTP 502");
        let doc = serde_json::to_value(&t).unwrap();
        assert_eq!(
            doc,
            json!({"point": "each_step", "step": 0, "passed": false, "sentence": "the tests at step 1 failed: load: HTTP 502", "results": null})
        );
        assert_eq!(point_of("the tests after promotion failed: x: y"), Point::AfterPromotion);
        assert_eq!(point_of("the tests before traffic failed: x: y"), Point::BeforeTraffic);
    }

    #[test]
    fn every_hook_state_is_a_state_machine_state_of_its_kind() {
        for p in Point::ALL {
            let judges: Vec<State> = State::ALL.iter().copied().filter(|s| judged_point(*s) == Some(p)).collect();
            let maps: Vec<State> = State::ALL.iter().copied().filter(|s| tested_point(*s) == Some(p)).collect();
            assert_eq!((judges.len(), maps.len()), (1, 1), "{p:?}");
        }
        assert_eq!(State::ALL.iter().filter(|s| in_iteration(**s)).count(), 12);
        assert!(State::ALL.iter().filter(|s| in_iteration(**s)).all(|s| s.as_str().contains(": ")));
    }
}
