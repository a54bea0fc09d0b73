//! Consistency between statemachine/deployment.asl.json, template.yaml and the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Value, json};
use stepshift_core::hooks::{self, HookCandidate, HookEvent, Point};
use stepshift_core::{ErrorName, State, TaskError};
use stepshift_local::asl::model::placeholders;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn asl_text() -> String {
    std::fs::read_to_string(root().join("statemachine/deployment.asl.json")).unwrap()
}

fn asl() -> Value {
    serde_json::from_str(&asl_text()).unwrap()
}

/// Every state of `states` (a `States` object) with its name, and every state of the
/// Parallel branches and Map processors among them, nested ones included.
fn every_state(states: &Value) -> Vec<(&str, &Value)> {
    let mut out = Vec::new();
    for (name, state) in states.as_object().unwrap() {
        out.push((name.as_str(), state));
        let branches = state.get("Branches").and_then(Value::as_array).into_iter().flatten();
        for machine in branches.chain(state.get("ItemProcessor")) {
            out.extend(every_state(&machine["States"]));
        }
    }
    out
}

/// The whole definition's states by name, nested ones included.
fn states_by_name(asl: &Value) -> BTreeMap<&str, &Value> {
    every_state(&asl["States"]).into_iter().collect()
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn resources() -> Vec<(String, Yaml)> {
    let t = template();
    t["Resources"].as_hash().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone())).collect()
}

#[test]
fn every_placeholder_has_a_substitution_and_every_substitution_a_placeholder() {
    let wanted = placeholders(&asl_text());
    let (_, machine) =
        resources().into_iter().find(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::StateMachine")).unwrap();
    assert_eq!(machine["Properties"]["DefinitionUri"].as_str(), Some("statemachine/deployment.asl.json"));
    let given: BTreeSet<String> = machine["Properties"]["DefinitionSubstitutions"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(wanted, given);
    let local: BTreeSet<String> = stepshift_local::runner::substitutions().into_keys().collect();
    assert_eq!(wanted, local, "the local runner substitutes the same names");
}

#[test]
fn the_state_machine_has_exactly_the_states_the_code_names() {
    let asl = asl();
    let all = every_state(&asl["States"]);
    let in_asl: BTreeSet<&str> = all.iter().map(|(name, _)| *name).collect();
    assert_eq!(in_asl.len(), all.len(), "a state name is unique in the whole definition, branches and Maps included");
    let in_code: BTreeSet<&str> = State::ALL.iter().map(|s| s.as_str()).collect();
    let missing: Vec<_> = in_code.difference(&in_asl).collect();
    assert!(missing.is_empty(), "stepshift_core::State names states the ASL lacks: {missing:?}");
    let unknown: Vec<_> = in_asl.difference(&in_code).collect();
    assert!(unknown.is_empty(), "the ASL has states stepshift_core::State lacks: {unknown:?}");
    assert_eq!(asl["StartAt"], State::BeginDeployment.as_str());
    // Every branch and Map processor starts at one of its own states.
    for (name, state) in &all {
        let branches = state.get("Branches").and_then(Value::as_array).into_iter().flatten();
        for machine in branches.chain(state.get("ItemProcessor")) {
            let start = machine["StartAt"].as_str().unwrap_or_default();
            assert!(machine["States"].get(start).is_some(), "\"{name}\" starts at \"{start}\", not one of its states");
        }
    }
}

/// Every error name the definition mentions, nested states included: those it matches
/// (in `ErrorEquals`), and those a state writes as its `Error` (a Pass state's `Result`, a
/// Fail state's `Error`).
fn error_names(v: &Value, matched: &mut BTreeSet<String>, written: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            if let Some(list) = map.get("ErrorEquals").and_then(Value::as_array) {
                matched.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
            if let Some(name) = map.get("Error").and_then(Value::as_str) {
                written.insert(name.to_owned());
            }
            map.values().for_each(|v| error_names(v, matched, written));
        }
        Value::Array(items) => items.iter().for_each(|v| error_names(v, matched, written)),
        _ => {}
    }
}

#[test]
fn the_state_machine_mentions_exactly_the_error_names_the_code_says_it_does() {
    let (mut matched, mut written) = (BTreeSet::new(), BTreeSet::new());
    error_names(&asl(), &mut matched, &mut written);
    // The state machine itself writes two: nobody answered the approval, and a check
    // inside "Test the step" decided to roll back.
    let own: BTreeSet<String> =
        [ErrorName::ApprovalTimedOut, hooks::CARRIED_ROLLBACK].iter().map(ToString::to_string).collect();
    assert_eq!(written, own, "the errors the state machine's own states write");
    let names: BTreeSet<String> = matched.union(&written).cloned().collect();
    for name in &names {
        let known = ErrorName::from_name(name);
        assert!(known.is_some(), "the state machine mentions `{name}`, which stepshift_core::ErrorName lacks");
        let platform = ["States.", "Lambda.", "Sandbox."].iter().any(|p| name.starts_with(p));
        let emitted = TaskError::NAMES.iter().any(|n| n == name.as_str()) || written.contains(name) || platform;
        assert!(emitted, "the state machine matches `{name}`, which no task or state emits");
    }
    let claimed: BTreeSet<String> = ErrorName::IN_STATE_MACHINE.iter().map(ToString::to_string).collect();
    let unused: Vec<_> = claimed.difference(&names).collect();
    assert!(unused.is_empty(), "ErrorName::IN_STATE_MACHINE claims names the ASL does not mention: {unused:?}");
    assert_eq!(names, claimed);
    for transient in [ErrorName::Throttled, ErrorName::Conflict, ErrorName::AwsUnavailable] {
        assert!(ErrorName::TRANSIENT.contains(&transient), "`{transient}` is retried");
    }
    let split: Vec<ErrorName> = ErrorName::THROTTLING.iter().chain(ErrorName::BUSY).copied().collect();
    assert_eq!(split, ErrorName::TRANSIENT, "the two transient retriers cover TRANSIENT, once each");
}

/// The standard `Retry` block, as data: throttling (the account's control-plane quota
/// shared by every deployment, or Lambda refusing to invoke) `throttled.0` times from
/// 1 s, doubling, capped at `throttled.1` s; the other transient errors (a busy resource,
/// an AWS API or Lambda's service failing) `transient.0` times from 2 s, doubling,
/// capped at `transient.1` s; an interrupted invocation (its process died, or it ran out
/// of time) twice, from 5 s. Full jitter on all three.
fn retry(throttled: (u64, u64), transient: (u64, u64)) -> Value {
    let names = |list: &[ErrorName]| list.iter().map(|e| e.as_str()).collect::<Vec<_>>();
    json!([
        {
            "ErrorEquals": names(ErrorName::THROTTLING),
            "IntervalSeconds": 1,
            "BackoffRate": 2,
            "MaxAttempts": throttled.0,
            "MaxDelaySeconds": throttled.1,
            "JitterStrategy": "FULL"
        },
        {
            "ErrorEquals": names(ErrorName::BUSY),
            "IntervalSeconds": 2,
            "BackoffRate": 2,
            "MaxAttempts": transient.0,
            "MaxDelaySeconds": transient.1,
            "JitterStrategy": "FULL"
        },
        {
            "ErrorEquals": names(ErrorName::INTERRUPTED),
            "IntervalSeconds": 5,
            "BackoffRate": 2,
            "MaxAttempts": 2,
            "JitterStrategy": "FULL"
        }
    ])
}

/// The standard `Retry`: throttling 12 times capped at 30 s (`make bench-scale`: fifty
/// deployments started at once in one account), the rest 6 times capped at 60 s.
fn standard_retry() -> Value {
    retry((12, 30), (6, 60))
}

/// The `Retry` of a hook's invocation: Lambda's own throttling and service errors only,
/// [`hooks::INVOKE_RETRIES`] times from 1 s, doubling, full jitter. Whatever else happens
/// (the test failed, timed out, answered too much) is the hook's verdict, caught and
/// judged, never retried.
fn hook_retry() -> Value {
    let names: Vec<&str> = LAMBDA_SERVICE_ERRORS.iter().map(|e| e.as_str()).collect();
    json!([
        {
            "ErrorEquals": names,
            "IntervalSeconds": 1,
            "BackoffRate": 2,
            "MaxAttempts": hooks::INVOKE_RETRIES,
            "JitterStrategy": "FULL"
        }
    ])
}

/// Lambda's own throttling and service errors: what a hook's invocation retries.
const LAMBDA_SERVICE_ERRORS: [ErrorName; 4] = [
    ErrorName::LambdaTooManyRequestsException,
    ErrorName::LambdaServiceException,
    ErrorName::LambdaAwsLambdaException,
    ErrorName::LambdaSdkClientException,
];

/// One point's hook states: the Map that runs its hooks, the states of the Map's
/// processor (named `"<prefix>: ..."`), and the task that judges the runs.
#[derive(Clone, Copy)]
struct HookStates {
    point: Point,
    map: State,
    prefix: &'static str,
    which: State,
    invoke: State,
    run: State,
    done: State,
    judge: State,
}

fn hook_states() -> [HookStates; 3] {
    [
        HookStates {
            point: Point::BeforeTraffic,
            map: State::TestBeforeTraffic,
            prefix: "Before traffic",
            which: State::BeforeTrafficWhichTest,
            invoke: State::BeforeTrafficInvokeCandidate,
            run: State::BeforeTrafficRunTestFunction,
            done: State::BeforeTrafficTestDone,
            judge: State::JudgeTestsBeforeTraffic,
        },
        HookStates {
            point: Point::EachStep,
            map: State::TestAtStep,
            prefix: "At the step",
            which: State::AtStepWhichTest,
            invoke: State::AtStepInvokeCandidate,
            run: State::AtStepRunTestFunction,
            done: State::AtStepTestDone,
            judge: State::JudgeTestsAtStep,
        },
        HookStates {
            point: Point::AfterPromotion,
            map: State::TestAfterPromotion,
            prefix: "After promotion",
            which: State::AfterPromotionWhichTest,
            invoke: State::AfterPromotionInvokeCandidate,
            run: State::AfterPromotionRunTestFunction,
            done: State::AfterPromotionTestDone,
            judge: State::JudgeTestsAfterPromotion,
        },
    ]
}

/// The Task states that invoke a hook (`arn:aws:states:::lambda:invoke`), at every point.
fn hook_invocations() -> Vec<State> {
    hook_states().iter().flat_map(|h| [h.invoke, h.run]).collect()
}

/// A `Catch` list: `(error, ResultPath, Next)` per catcher, in order.
fn catch(routes: &[(ErrorName, &str, State)]) -> Value {
    routes
        .iter()
        .map(|(error, path, next)| json!({"ErrorEquals": [error.as_str()], "ResultPath": path, "Next": next.as_str()}))
        .collect()
}

/// Every Task state's `Retry` (`null`: none) and `Catch`, as docs/design-notes.md
/// ("Retries and catches") documents them.
fn task_policy() -> Vec<(State, Value, Value)> {
    use ErrorName::{StatesAll, StatesDataLimitExceeded, StatesTimeout};
    let standard = standard_retry();
    let to_roll_back = catch(&[(StatesAll, "$.failure", State::RollBack)]);
    let mut policy = vec![
        // Before anything moved: a failure is a rejection.
        (State::BeginDeployment, standard.clone(), catch(&[(StatesAll, "$", State::RecordRejection)])),
        (State::RecordRejection, standard.clone(), catch(&[(StatesAll, "$", State::DeploymentRejected)])),
        // A lifecycle event is a notification: retried twice, then the deployment goes
        // on without it.
        (
            State::AnnounceTheStart,
            json!([{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 2, "JitterStrategy": "FULL"}]),
            catch(&[(StatesAll, "$.announce_failure", State::TestsBeforeTrafficChoice)]),
        ),
        // A person answers, or the timeout does: nothing to retry.
        (
            State::AwaitApproval,
            Value::Null,
            catch(&[(StatesTimeout, "$.failure", State::ApprovalTimedOut), (StatesAll, "$.failure", State::RollBack)]),
        ),
        // Giving up leaves traffic split: more attempts, longer waits.
        (State::RollBack, retry((20, 60), (10, 120)), catch(&[(StatesAll, "$.rollback", State::RecordRollback)])),
        (State::RecordRollback, standard.clone(), catch(&[(StatesAll, "$.outcome", State::RolledBackWithFastPath)])),
        // The fast path only ever adds rollbacks: when it cannot start, the deployment
        // goes on without it, and stopping it never changes how a deployment ends (the
        // EventBridge rule on the execution's status change removes the filters too).
        (State::StartFastPath, standard.clone(), catch(&[(StatesAll, "$.fast_path_failure", State::ChooseNextStep)])),
        (
            State::StopFastPathReleased,
            standard.clone(),
            catch(&[(StatesAll, "$.fast_path_stopped", State::DeploymentSucceeded)]),
        ),
        (
            State::StopFastPathRolledBack,
            standard.clone(),
            catch(&[(StatesAll, "$.fast_path_stopped", State::DeploymentRolledBack)]),
        ),
    ];
    // Once traffic may have moved, every other task rolls back. So does a failed hook
    // before traffic: Roll back finds nothing to restore, and Record rollback releases
    // the locks.
    for state in [
        State::JudgeTestsBeforeTraffic,
        State::ShiftTraffic,
        State::ShiftThenSync,
        State::ShiftThenTest,
        State::CheckSync,
        State::CheckHealth,
        State::Promote,
        State::RecordPromotion,
        State::ConfirmRelease,
    ] {
        policy.push((state, standard.clone(), to_roll_back.clone()));
    }
    // Inside "Test the step" an error fails the branch, which stops the other one, and
    // the Parallel's Catch rolls back.
    for state in [State::JudgeTestsAtStep, State::JudgeTestsAfterPromotion, State::CheckTheStep] {
        policy.push((state, standard.clone(), Value::Null));
    }
    // A hook's invocation retries only Lambda's own errors, and whatever else happens ends
    // the run with its error, which the judge reads. `States.ALL` does not catch
    // `States.DataLimitExceeded` (an answer larger than 256 KiB), so it is named.
    for h in hook_states() {
        let to_done = catch(&[(StatesDataLimitExceeded, "$.error", h.done), (StatesAll, "$.error", h.done)]);
        for state in [h.invoke, h.run] {
            policy.push((state, hook_retry(), to_done.clone()));
        }
    }
    policy
}

#[test]
fn every_task_retries_and_catches_as_documented() {
    let asl = asl();
    let states = states_by_name(&asl);
    let tasks: BTreeSet<&str> = states.iter().filter(|(_, s)| s["Type"] == "Task").map(|(name, _)| *name).collect();
    let policy = task_policy();
    let documented: BTreeSet<&str> = policy.iter().map(|(state, ..)| state.as_str()).collect();
    assert_eq!(tasks, documented, "every Task state has a documented Retry and Catch");
    for (state, retry, catch) in &policy {
        let s = &states[state.as_str()];
        let (got_retry, got_catch) = (s.get("Retry").unwrap_or(&Value::Null), s.get("Catch").unwrap_or(&Value::Null));
        assert!(got_retry == retry, "\"{state}\": Retry is\n{got_retry:#}\nwhere the policy says\n{retry:#}");
        assert!(got_catch == catch, "\"{state}\": Catch is\n{got_catch:#}\nwhere the policy says\n{catch:#}");
    }
    // The standard Retry everywhere but in the documented exceptions: the approval (a
    // person answers), the rollback (more attempts, longer waits), the hooks'
    // invocations (Lambda's own errors only) and the lifecycle event (best effort).
    let exceptions: BTreeSet<&str> =
        policy.iter().filter(|(_, r, _)| *r != standard_retry()).map(|(state, ..)| state.as_str()).collect();
    let mut documented_exceptions: BTreeSet<&str> =
        [State::AwaitApproval.as_str(), State::RollBack.as_str(), State::AnnounceTheStart.as_str()].into();
    documented_exceptions.extend(hook_invocations().iter().map(|s| s.as_str()));
    assert_eq!(exceptions, documented_exceptions, "every other Task state has the standard Retry");
    // "Test the step" and the Map before traffic retry nothing (their tasks retry) and
    // roll back whatever fails them: a failed hook, a check's error, a check's decision
    // (RollBackDecided), or an output over 256 KiB, which States.ALL does not match. The
    // Map after promotion runs inside "Test the step", whose Catch is its own.
    let inside = &states[State::TestAfterPromotion.as_str()];
    assert_eq!((inside.get("Retry"), inside.get("Catch")), (None, None));
    for state in [State::TestTheStep, State::TestBeforeTraffic] {
        let s = &states[state.as_str()];
        assert_eq!(s.get("Retry"), None, "{state}");
        let rolls_back = catch(&[
            (ErrorName::StatesDataLimitExceeded, "$.failure", State::RollBack),
            (ErrorName::StatesAll, "$.failure", State::RollBack),
        ]);
        assert_eq!(s["Catch"], rolls_back, "{state}");
    }
    // The approval's own timeout, and only it, becomes ApprovalTimedOut.
    let timed_out = &states[State::ApprovalTimedOut.as_str()];
    assert_eq!(timed_out["Type"], "Pass");
    assert_eq!(timed_out["Result"]["Error"], ErrorName::ApprovalTimedOut.as_str());
    assert_eq!(timed_out["ResultPath"], "$.failure");
    assert_eq!(timed_out["Next"], State::RollBack.as_str());
}

/// The value at a simple path (`$.a.b`) of `input`, or at a context path (`$$.Execution.Id`)
/// of `context`: what Step Functions substitutes for a `.$` field.
fn at_path<'a>(path: &str, input: &'a Value, context: &'a Value) -> &'a Value {
    let (root, rest) = match path.strip_prefix("$$") {
        Some(rest) => (context, rest),
        None => (input, path.strip_prefix('$').unwrap_or_else(|| panic!("{path} is not a path"))),
    };
    rest.split('.').filter(|s| !s.is_empty()).fold(root, |v, key| &v[key])
}

fn sample_candidate() -> HookCandidate {
    HookCandidate {
        target: "orders:live".into(),
        version: "7".into(),
        function: Some("orders".into()),
        alias: Some("live".into()),
        qualified_arn: Some("arn:aws:lambda:eu-west-1:123456789012:function:orders:7".into()),
    }
}

#[test]
fn a_test_function_receives_exactly_a_hook_event() {
    let asl = asl();
    let states = states_by_name(&asl);
    let execution = "arn:aws:states:eu-west-1:123456789012:execution:stepshift-deployment:d1";
    let sample = HookEvent {
        stepshift: hooks::EVENT_VERSION,
        execution: execution.into(),
        point: Point::EachStep,
        step: Some(1),
        weight_percent: 10.0,
        candidate: sample_candidate(),
        candidates: vec![sample_candidate()],
        payload: json!({"path": "/health"}),
    };
    let fields: BTreeSet<String> =
        serde_json::to_value(&sample).unwrap().as_object().unwrap().keys().cloned().collect();
    for h in hook_states() {
        let task = states[h.run.as_str()];
        assert_eq!(task["Resource"], "arn:aws:states:::lambda:invoke", "{}", h.run);
        assert_eq!(task["Parameters"]["FunctionName.$"], "$.hook.function", "{}", h.run);
        let payload = task["Parameters"]["Payload"].as_object().unwrap_or_else(|| panic!("\"{}\": no Payload", h.run));
        let keys: BTreeSet<String> = payload.keys().map(|k| k.strip_suffix(".$").unwrap_or(k).to_owned()).collect();
        assert_eq!(keys, fields, "\"{}\" sends the fields of hooks::HookEvent, no more, no fewer", h.run);
        assert_eq!(payload["stepshift"], hooks::EVENT_VERSION, "\"{}\": hooks::EVENT_VERSION", h.run);
        // Built from one iteration's input (the Map's ItemSelector), the event
        // deserializes as a HookEvent: every path names a field of the right type.
        let selector = &states[h.map.as_str()]["ItemSelector"];
        assert_eq!(selector["hook.$"], "$$.Map.Item.Value", "{}", h.map);
        let selected: BTreeSet<&str> = selector.as_object().unwrap().keys().map(|k| k.trim_end_matches(".$")).collect();
        assert_eq!(selected, ["hook", "step", "weight_percent"].into(), "{}", h.map);
        let hook = hooks::PlannedHook {
            name: "smoke".into(),
            kind: hooks::HookKind::Function,
            function: "orders-smoke".into(),
            payload: sample.payload.clone(),
            timeout_seconds: 30,
            expect: None,
            point: h.point,
            candidate: sample_candidate(),
            candidates: vec![sample_candidate()],
        };
        let input = json!({"hook": hook, "step": 1, "weight_percent": 10.0});
        let context = json!({"Execution": {"Id": execution}});
        let event: serde_json::Map<String, Value> = payload
            .iter()
            .map(|(k, v)| match k.strip_suffix(".$") {
                Some(field) => (field.to_owned(), at_path(v.as_str().unwrap(), &input, &context).clone()),
                None => (k.clone(), v.clone()),
            })
            .collect();
        let event: HookEvent = serde_json::from_value(Value::Object(event))
            .unwrap_or_else(|e| panic!("\"{}\" sends no HookEvent: {e}", h.run));
        assert_eq!(event, HookEvent { point: h.point, ..sample.clone() }, "{}", h.run);
    }
}

#[test]
fn the_three_hook_processors_are_the_same_but_for_their_names() {
    let asl = asl();
    let states = states_by_name(&asl);
    let normalized: Vec<Value> = hook_states()
        .iter()
        .map(|h| {
            let map = states[h.map.as_str()];
            assert_eq!(map["Type"], "Map", "{}", h.map);
            let processor = &map["ItemProcessor"];
            assert_eq!(processor["StartAt"], h.which.as_str(), "{}", h.map);
            let names: BTreeSet<&str> = processor["States"].as_object().unwrap().keys().map(String::as_str).collect();
            let expected: BTreeSet<&str> = [h.which, h.invoke, h.run, h.done].map(State::as_str).into();
            assert_eq!(names, expected, "{}", h.map);
            for name in names {
                assert!(name.starts_with(&format!("{}: ", h.prefix)), "\"{name}\" in \"{}\"", h.map);
            }
            // Every string that starts with the prefix (a state's name, a Next, the
            // StartAt, a Default) without it.
            let text = processor.to_string().replace(&format!("\"{}: ", h.prefix), "\"<point>: ");
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    for (h, processor) in hook_states().iter().zip(&normalized).skip(1) {
        assert!(
            *processor == normalized[0],
            "\"{}\" runs its hooks as \"{}\" does, apart from its names:\n{processor:#}\nwhere the first has\n{:#}",
            h.map,
            State::TestBeforeTraffic,
            normalized[0]
        );
    }
}

#[test]
fn hook_invocations_are_bounded_by_their_timeout_and_retry_only_lambdas_own_errors() {
    let asl = asl();
    let states = states_by_name(&asl);
    // Lambda's own errors, which every task retries too; not the tasks' own names.
    for e in LAMBDA_SERVICE_ERRORS {
        assert!(ErrorName::TRANSIENT.contains(&e) && e.as_str().starts_with("Lambda."), "{e}");
    }
    for state in hook_invocations() {
        let task = states[state.as_str()];
        assert_eq!(task["Resource"], "arn:aws:states:::lambda:invoke", "{state}");
        assert_eq!(task["Parameters"]["FunctionName.$"], "$.hook.function", "{state}");
        // The hook's timeout_seconds, and nothing else, bounds it: no hook hangs.
        assert_eq!(task["TimeoutSecondsPath"], "$.hook.timeout_seconds", "{state}");
        assert_eq!(task.get("TimeoutSeconds"), None, "{state}");
        let retry = task["Retry"].as_array().unwrap_or_else(|| panic!("\"{state}\" has no Retry"));
        assert_eq!(retry.len(), 1, "{state}");
        let retried: Vec<&str> = retry[0]["ErrorEquals"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(retried, LAMBDA_SERVICE_ERRORS.map(|e| e.as_str()), "\"{state}\" retries Lambda's errors only");
        assert_eq!(retry[0]["MaxAttempts"], hooks::INVOKE_RETRIES, "{state}: hooks::INVOKE_RETRIES");
        let caught: Vec<&str> = task["Catch"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["ErrorEquals"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(caught, [ErrorName::StatesDataLimitExceeded.as_str(), ErrorName::StatesAll.as_str()], "{state}");
        // Its answer and its error are where hooks::HookRun reads them.
        assert_eq!(task["ResultSelector"], json!({"payload.$": "$.Payload"}), "{state}: hooks::Invocation");
        assert_eq!(task["ResultPath"], "$.invocation", "{state}: HookRun::invocation");
    }
}

#[test]
fn each_judge_judges_its_points_hooks() {
    let asl = asl();
    let states = states_by_name(&asl);
    for h in hook_states() {
        let judge = states[h.judge.as_str()];
        assert_eq!(judge["Resource"], "${CheckHealthFunctionArn}", "{}", h.judge);
        let params = &judge["Parameters"];
        assert_eq!(params["action"], hooks::JUDGE_ACTION, "{}: hooks::JUDGE_ACTION", h.judge);
        let point: Point = serde_json::from_value(params["point"].clone())
            .unwrap_or_else(|e| panic!("\"{}\": point {} is no hooks::Point: {e}", h.judge, params["point"]));
        assert_eq!(point, h.point, "{}", h.judge);
        let map = states[h.map.as_str()];
        let items = format!("$.plan.hooks.{}", params["point"].as_str().unwrap());
        assert_eq!(map["ItemsPath"], items, "\"{}\" runs the hooks \"{}\" judges", h.map, h.judge);
        assert_eq!(items, format!("$.plan.{}", point.field()));
        // It judges what the Map ran, right after it.
        assert_eq!(map["Next"], h.judge.as_str(), "{}", h.map);
        assert_eq!(params["runs.$"], map["ResultPath"], "{}", h.judge);
    }
}

/// The crate `make build-<LogicalId>` builds for `sam build`, from the Makefile's
/// `build-<LogicalId>: CRATE := <crate>` lines.
fn sam_build_crate(makefile: &str, logical_id: &str) -> Option<String> {
    let prefix = format!("build-{logical_id}: CRATE := ");
    makefile.lines().find_map(|l| l.strip_prefix(&prefix)).map(|c| c.trim().to_owned())
}

#[test]
fn the_template_builds_the_six_functions_for_arm64_one_crate_at_a_time() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let crates: BTreeSet<String> = resources()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| {
            // `sam build` runs `make build-<LogicalId>`: SAM's rust-cargolambda builder
            // compiled every binary from the workspace root, where Cargo unifies features
            // and every function linked every SDK.
            assert_eq!(r["Metadata"]["BuildMethod"].as_str(), Some("makefile"), "{id}");
            sam_build_crate(&makefile, id).unwrap_or_else(|| panic!("the Makefile has no build-{id} target"))
        })
        .collect();
    let expected: BTreeSet<String> =
        ["shift-weight", "check-health", "promote", "rollback", "record-version", "tally"].map(String::from).into();
    assert_eq!(crates, expected);
    for name in &crates {
        assert!(root().join("crates").join(name).join("src/main.rs").exists(), "{name} has a binary");
    }
    // The recipe builds that one crate, as `make build` does, into SAM's artifacts.
    let recipe = makefile.split("$(SAM_BUILDS): ").nth(1).expect("the build-<LogicalId> rule");
    let recipe: Vec<&str> = recipe.lines().skip(1).take_while(|l| l.starts_with('\t')).collect();
    assert!(recipe.iter().any(|l| l.contains("cargo lambda build --release --arm64 -p $(CRATE)")), "{recipe:?}");
    assert!(recipe.iter().any(|l| l.contains("$(ARTIFACTS_DIR)/bootstrap")), "{recipe:?}");
    // And in the source tree, so that target/ is shared rather than copied.
    let samconfig = std::fs::read_to_string(root().join("samconfig.toml")).unwrap();
    assert!(samconfig.contains("[default.build.parameters]\nbuild_in_source = true"), "{samconfig}");
}

fn actions(y: &Yaml, out: &mut Vec<String>) {
    match y {
        Yaml::Hash(h) => {
            for (k, v) in h {
                if k.as_str() == Some("Action") {
                    match v {
                        Yaml::String(s) => out.push(s.clone()),
                        Yaml::Array(a) => out.extend(a.iter().filter_map(|s| s.as_str().map(str::to_owned))),
                        _ => {}
                    }
                }
                actions(v, out);
            }
        }
        Yaml::Array(a) => a.iter().for_each(|v| actions(v, out)),
        _ => {}
    }
}

#[test]
fn no_iam_statement_grants_a_wildcard_action() {
    let mut all = Vec::new();
    actions(&template(), &mut all);
    assert!(all.len() > 10, "{all:?}");
    for a in &all {
        assert!(!a.contains('*'), "wildcard action {a}");
    }
    let check_health: Vec<String> = {
        let (_, r) = resources().into_iter().find(|(n, _)| n == "CheckHealthFunction").unwrap();
        let mut v = Vec::new();
        actions(&r, &mut v);
        v
    };
    // Besides the metrics and alarms: the lifecycle events, and the control record
    // (`.../*/control` only).
    assert_eq!(
        check_health,
        ["events:PutEvents", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms", "ssm:GetParameters"]
    );
}

#[test]
fn the_stack_outputs_what_the_cli_reads() {
    let t = template();
    // `!Ref X` loads as the plain string "X": the tag is dropped, the name kept.
    assert_eq!(
        t["Outputs"]["StateMachineArn"]["Value"].as_str(),
        Some("DeploymentStateMachine"),
        "stepshift deploy --stack reads this output"
    );
    assert_eq!(t["Outputs"]["ApprovalEventBusName"]["Value"].as_str(), Some("ApprovalEventBus"));
    let (_, machine) = resources().into_iter().find(|(n, _)| n == "DeploymentStateMachine").unwrap();
    assert_eq!(machine["Properties"]["Type"].as_str(), Some("STANDARD"));
}

/// Every IAM statement of the template, with the resource whose role it belongs to and
/// the condition it depends on (`!If [Condition, statement, !Ref AWS::NoValue]`).
fn conditional_statements() -> Vec<(String, Option<String>, Yaml)> {
    let mut out = Vec::new();
    for (name, r) in resources() {
        for policy in r["Properties"]["Policies"].as_vec().into_iter().flatten() {
            for s in policy["Statement"].as_vec().into_iter().flatten() {
                // `!If [Condition, statement, !Ref AWS::NoValue]` loads as a 3-item list.
                let (condition, s) = match s.as_vec() {
                    Some(v) => (v[0].as_str().map(str::to_owned), v[1].clone()),
                    None => (None, s.clone()),
                };
                out.push((name.clone(), condition, s));
            }
        }
    }
    out
}

/// Every IAM statement of the template, with the resource whose role it belongs to.
fn statements() -> Vec<(String, Yaml)> {
    conditional_statements().into_iter().map(|(name, _, s)| (name, s)).collect()
}

fn strings(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(a) => a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn tally_publishes_only_its_namespace_and_subscribes_only_target_log_groups() {
    let tally: Vec<Yaml> = statements().into_iter().filter(|(n, _)| n == "TallyFunction").map(|(_, s)| s).collect();
    let by_action = |action: &str| {
        tally.iter().find(|s| strings(&s["Action"]).iter().any(|a| a == action)).unwrap_or_else(|| panic!("{action}"))
    };
    let put = by_action("cloudwatch:PutMetricData");
    assert_eq!(
        put["Condition"]["StringEquals"]["cloudwatch:namespace"].as_str(),
        Some(stepshift_core::outcomes::NAMESPACE),
        "PutMetricData only into the outcomes namespace"
    );
    for action in ["logs:PutSubscriptionFilter", "logs:DeleteSubscriptionFilter", "logs:DescribeSubscriptionFilters"] {
        for r in strings(&by_action(action)["Resource"]) {
            assert!(r.contains(":log-group:/aws/lambda/${TargetFunctionPattern}"), "{action} on {r}");
        }
    }
    // Every ending removes the filters, also an execution stopped from outside.
    let (_, rule) = resources().into_iter().find(|(n, _)| n == "FastPathCleanupRule").unwrap();
    let pattern = &rule["Properties"]["EventPattern"];
    assert_eq!(strings(&pattern["detail-type"]), ["Step Functions Execution Status Change"]);
    assert_eq!(strings(&pattern["detail"]["status"]), ["SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"]);
    let (_, f) = resources().into_iter().find(|(n, _)| n == "TallyFunction").unwrap();
    assert_eq!(
        f["Properties"]["EventInvokeConfig"]["MaximumRetryAttempts"].as_i64(),
        Some(0),
        "a retried batch counts twice"
    );
}

#[test]
fn no_role_may_delete_a_whole_function() {
    let deleting: Vec<(String, Yaml)> = statements()
        .into_iter()
        .filter(|(_, s)| strings(&s["Action"]).iter().any(|a| a == "lambda:DeleteFunction"))
        .collect();
    assert_eq!(deleting.len(), 1, "only record-version prunes");
    let (name, s) = &deleting[0];
    assert_eq!(name, "RecordVersionFunction");
    assert_eq!(strings(&s["Action"]), ["lambda:DeleteFunction"], "DeleteFunction stands alone, on its own resources");
    let resources = strings(&s["Resource"]);
    assert!(!resources.is_empty());
    for r in resources {
        // A qualified ARN (function:NAME:VERSION): IAM's `*` needs the second colon, which
        // an unqualified function ARN does not have.
        assert!(r.ends_with(":function:${TargetFunctionPattern}:*"), "unqualified DeleteFunction resource {r}");
    }
}

#[test]
fn with_require_managed_tag_every_function_permission_needs_the_tag() {
    let t = template();
    assert_eq!(t["Conditions"]["ScopeByTag"][0].as_str(), Some("RequireManagedTag"), "{:?}", t["Conditions"]);
    let on_functions: Vec<(String, Yaml)> = statements()
        .into_iter()
        .filter(|(_, s)| strings(&s["Resource"]).iter().any(|r| r.contains(":function:${TargetFunctionPattern}")))
        .collect();
    assert!(on_functions.len() >= 5, "{on_functions:?}");
    for (name, s) in on_functions {
        let c = s["Condition"].as_vec().unwrap_or_else(|| panic!("{name}: {:?} has no tag condition", s["Sid"]));
        assert_eq!(c[0].as_str(), Some("ScopeByTag"), "{name}");
        assert_eq!(c[1]["StringEquals"]["aws:ResourceTag/stepshift:managed"].as_str(), Some("true"), "{name}");
        assert_eq!(c[2].as_str(), Some("AWS::NoValue"), "{name}: no condition when the parameter is false");
    }
}

#[test]
fn the_state_machine_invokes_target_versions_and_only_the_allowed_test_functions() {
    let t = template();
    assert_eq!(
        t["Parameters"]["HookFunctionPattern"]["Default"].as_str(),
        Some(""),
        "no test functions unless the installer names them"
    );
    // `!Not [!Equals [!Ref HookFunctionPattern, ""]]` loads as [["HookFunctionPattern", ""]].
    let has = &t["Conditions"]["HasHookFunctions"][0];
    assert_eq!((has[0].as_str(), has[1].as_str()), (Some("HookFunctionPattern"), Some("")), "{:?}", t["Conditions"]);
    let groups = t["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"].as_vec().unwrap();
    let what =
        groups.iter().map(|g| strings(&g["Parameters"])).find(|p| p.iter().any(|p| p == "TargetFunctionPattern"));
    assert!(what.unwrap().iter().any(|p| p == "HookFunctionPattern"), "{groups:?}");

    // The task functions, as before: SAM's LambdaInvokePolicy for each.
    let (_, machine) = resources().into_iter().find(|(n, _)| n == "DeploymentStateMachine").unwrap();
    let tasks: BTreeSet<String> = machine["Properties"]["Policies"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|p| p["LambdaInvokePolicy"]["FunctionName"].as_str().map(str::to_owned))
        .collect();
    let functions: BTreeSet<String> = resources()
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(tasks, functions, "the state machine invokes every task function");

    // Besides them: the target functions' versions (invoke_candidate names
    // function:version), never an unqualified target function, and test functions only
    // through HookFunctionPattern, only when it is set.
    let invoking: Vec<(String, Option<String>, Yaml)> = conditional_statements()
        .into_iter()
        .filter(|(_, _, s)| strings(&s["Action"]).iter().any(|a| a == "lambda:InvokeFunction"))
        .collect();
    let (mut versions, mut tests) = (0, 0);
    for (name, condition, s) in &invoking {
        assert_eq!(name, "DeploymentStateMachine", "only the state machine invokes functions");
        assert_eq!(strings(&s["Action"]), ["lambda:InvokeFunction"], "{name}: {:?}", s["Sid"]);
        for r in strings(&s["Resource"]) {
            if r.contains("${TargetFunctionPattern}") {
                assert!(r.ends_with(":function:${TargetFunctionPattern}:*"), "unqualified InvokeFunction resource {r}");
                versions += 1;
            } else if r.contains("${HookFunctionPattern}") {
                assert_eq!(condition.as_deref(), Some("HasHookFunctions"), "{r}");
                assert!(
                    r.ends_with(":function:${HookFunctionPattern}")
                        || r.ends_with(":function:${HookFunctionPattern}:*"),
                    "{r}"
                );
                tests += 1;
            } else {
                panic!("{name} may invoke {r}, neither a target function's version nor a test function");
            }
        }
    }
    assert_eq!((versions, tests), (1, 2), "{invoking:?}");

    // Whatever HookFunctionPattern grants disappears without it: the state machine runs
    // the test functions, and record-version checks that they exist. Nothing else.
    let granted: BTreeSet<(String, String)> = conditional_statements()
        .into_iter()
        .filter(|(_, _, s)| strings(&s["Resource"]).iter().any(|r| r.contains("${HookFunctionPattern}")))
        .flat_map(|(name, condition, s)| {
            assert_eq!(condition.as_deref(), Some("HasHookFunctions"), "{name}: {:?}", s["Sid"]);
            strings(&s["Action"]).into_iter().map(move |a| (name.clone(), a))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("DeploymentStateMachine", "lambda:InvokeFunction"),
        ("RecordVersionFunction", "lambda:ListVersionsByFunction"),
    ]
    .map(|(n, a)| (n.to_owned(), a.to_owned()))
    .into();
    assert_eq!(granted, expected);
}
