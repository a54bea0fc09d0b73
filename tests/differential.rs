//! Differential fidelity: the same definitions, inputs and task results run through
//! stepshift-local and through moto's Step Functions interpreter (a port of
//! LocalStack's). The state paths, statuses and outputs must agree, except for the
//! differences listed in `KNOWN`, each of which says which side is wrong against the
//! Amazon States Language specification.
//!
//! moto's Lambda (without Docker) answers every invocation from one queue of canned
//! results and never fails, and its Wait states take real time. So the cases here are
//! the ones whose task results are all successes and whose waits are short; task
//! failures are covered by `.waitForTaskToken` tasks answered with SendTaskFailure.
//!
//! The same holds for the validation hooks' `arn:aws:states:::lambda:invoke` tasks: moto
//! answers them from the queue too (the canned result is the function's `Payload`), so
//! only passing hooks are compared, one hook per point, since the queue hands its
//! results out in the order the calls arrive and a Map's iterations or a Parallel's
//! branches call at the same time. A hook that fails (a FunctionError, a timeout) or a
//! judgement that fails (HookFailed) cannot be played in moto; `tests/scenarios.rs`
//! covers those on the local runner, and `tests/e2e_ministack.rs` in ministack.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepshift_local::asl::{Environment, Execution, Options, StateMachine, Status, TaskCall, TaskResult};
use stepshift_local::hooks::LAMBDA_INVOKE;
use stepshift_local::runner::{DEPLOYMENT_ASL, substitutions};
use stepshift_testkit::Emulator;

/// How a `.waitForTaskToken` pause is answered.
#[derive(Clone, Debug)]
enum Answer {
    Success(Value),
    Failure(String, String),
}

/// One run to compare.
struct Case {
    name: String,
    definition: String,
    input: Value,
    /// Task results in invocation order.
    results: Vec<Value>,
    answers: Vec<Answer>,
}

/// What a run ended with.
#[derive(Clone, Debug, PartialEq)]
struct Ending {
    status: String,
    path: Vec<String>,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
}

/// Hands out the results in order, whatever the state, like moto's queue.
struct Queue(VecDeque<Value>);

impl Environment for Queue {
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult {
        if call.token.is_some() {
            return TaskResult::Pending;
        }
        match self.0.pop_front() {
            // A canned result is what the function returned; the lambda:invoke
            // integration wraps it, as moto's does (StatusCode, ExecutedVersion, Payload).
            Some(v) if call.resource == LAMBDA_INVOKE => {
                TaskResult::Output(json!({"ExecutedVersion": "$LATEST", "Payload": v, "StatusCode": 200}))
            }
            Some(v) => TaskResult::Output(v),
            None => TaskResult::Error { error: "NoResult".into(), cause: "the queue is empty".into() },
        }
    }
}

fn local(case: &Case) -> Ending {
    let machine = Arc::new(StateMachine::load(&case.definition, &HashMap::new()).unwrap());
    let mut env = Queue(case.results.clone().into());
    let options = Options { task_millis: 0, ..Options::default() };
    let arn = options.state_machine_arn.replacen(":stateMachine:", ":execution:", 1) + ":" + &options.name;
    let mut exec = Execution::start(machine, case.input.clone(), options);
    let mut answers = case.answers.clone().into_iter();
    loop {
        exec.run(&mut env);
        let Status::Waiting { token, .. } = exec.status().clone() else { break };
        match answers.next() {
            Some(Answer::Success(v)) => exec.send_task_success(&token, v).unwrap(),
            Some(Answer::Failure(e, c)) => exec.send_task_failure(&token, &e, &c, &mut env).unwrap(),
            None => panic!("{}: no answer left for a pause", case.name),
        }
    }
    let (status, output, error, cause) = match exec.status() {
        Status::Succeeded(v) => ("SUCCEEDED", Some(v.clone()), None, None),
        Status::Failed { error, cause } => ("FAILED", None, Some(error.clone()), Some(cause.clone())),
        Status::TimedOut => ("TIMED_OUT", None, None, None),
        other => panic!("{other:?}"),
    };
    Ending {
        status: status.into(),
        path: exec.path(),
        output: output.map(|v| own_arn(v, &arn)),
        error,
        cause: cause.map(|c| c.replace(&arn, OWN_ARN)),
    }
}

/// What an execution's own ARN reads as in the outputs compared: each side names its
/// executions its own way.
const OWN_ARN: &str = "<the execution's ARN>";

/// `v` with every string that is `arn` replaced by [`OWN_ARN`].
fn own_arn(v: Value, arn: &str) -> Value {
    match v {
        Value::String(s) if s == arn => Value::String(OWN_ARN.to_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| own_arn(v, arn)).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, own_arn(v, arn))).collect()),
        other => other,
    }
}

/// Which sequence each state's entries belong to: the top level (""), or a branch of a
/// Parallel (`"P[0]"`, nested `"P[0]/Q[1]"`); a Map's iteration states belong to the
/// Map's. Branches run at the same time, so the order in which their entries interleave
/// is not defined (moto's threads interleave them as they happen to run); each
/// sequence's own order is.
fn lanes(definition: &Value) -> HashMap<String, String> {
    fn walk(machine: &Value, lane: &str, out: &mut HashMap<String, String>) {
        for (name, state) in machine["States"].as_object().into_iter().flatten() {
            out.insert(name.clone(), lane.to_owned());
            for (i, branch) in state["Branches"].as_array().into_iter().flatten().enumerate() {
                let inner = if lane.is_empty() { format!("{name}[{i}]") } else { format!("{lane}/{name}[{i}]") };
                walk(branch, &inner, out);
            }
            for processor in ["ItemProcessor", "Iterator"].iter().filter_map(|k| state.get(*k)) {
                walk(processor, lane, out);
            }
        }
    }
    let mut out = HashMap::new();
    walk(definition, "", &mut out);
    out
}

/// A path as its sequences (see [`lanes`]).
fn by_lane(path: &[String], lanes: &HashMap<String, String>) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::<String, Vec<String>>::new();
    for state in path {
        out.entry(lanes.get(state).cloned().unwrap_or_default()).or_default().push(state.clone());
    }
    out
}

const MOTO_ACCOUNT: &str = "123456789012";

async fn moto(case: &Case) -> Ending {
    let emulator = Emulator::shared_moto();
    let config = emulator.sdk_config().await;
    let sfn = aws_sdk_sfn::Client::new(&config);
    prepare(&config).await;
    let results: Vec<String> = case.results.iter().map(Value::to_string).collect();
    let (status, body) = emulator
        .post_json(
            "/moto-api/static/lambda-simple/response",
            &json!({"results": results, "region": "us-east-1"}).to_string(),
        )
        .unwrap();
    assert!((200..300).contains(&status), "{body}");
    let definition = case.definition.replace(":000000000000:", &format!(":{MOTO_ACCOUNT}:"));
    let sm = sfn
        .create_state_machine()
        .name(format!("diff-{}", Instant::now().elapsed().as_nanos() ^ rand_name(&case.name)))
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{MOTO_ACCOUNT}:role/x"))
        .send()
        .await
        .unwrap();
    let exec = sfn
        .start_execution()
        .state_machine_arn(sm.state_machine_arn())
        .name(format!("diff-{}", rand_name(&case.name) % 1_000_000_007))
        .input(case.input.to_string())
        .send()
        .await
        .unwrap();
    let arn = exec.execution_arn().to_owned();
    let mut answers = case.answers.clone().into_iter();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let out = loop {
        let out = sfn.describe_execution().execution_arn(&arn).send().await.unwrap();
        if out.status().as_str() != "RUNNING" {
            break out;
        }
        let history = sfn.get_execution_history().execution_arn(&arn).max_results(1000).send().await.unwrap();
        let tokens: Vec<String> = history
            .events()
            .iter()
            .filter_map(|e| e.task_scheduled_event_details())
            .filter(|d| d.resource().contains("waitForTaskToken"))
            .filter_map(|d| serde_json::from_str::<Value>(d.parameters()).ok())
            .filter_map(|p| find_token(&p))
            .collect();
        if tokens.len() > answered {
            let token = tokens[answered].clone();
            answered += 1;
            match answers.next() {
                Some(Answer::Success(v)) => {
                    sfn.send_task_success().task_token(token).output(v.to_string()).send().await.unwrap();
                }
                Some(Answer::Failure(e, c)) => {
                    sfn.send_task_failure().task_token(token).error(e).cause(c).send().await.unwrap();
                }
                None => panic!("{}: no answer left for a pause", case.name),
            }
        }
        assert!(Instant::now() < deadline, "{} still running in moto", case.name);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let history = sfn.get_execution_history().execution_arn(&arn).max_results(1000).send().await.unwrap();
    let path =
        history.events().iter().filter_map(|e| e.state_entered_event_details().map(|d| d.name().to_owned())).collect();
    Ending {
        status: out.status().as_str().to_owned(),
        path,
        output: out.output().map(|o| own_arn(serde_json::from_str(o).unwrap(), &arn)),
        error: out.error().map(str::to_owned),
        cause: out.cause().map(|c| c.replace(&arn, OWN_ARN)),
    }
}

/// A clean moto for each case (its queue of canned results is global, so a case that
/// ends early would leave results for the next), with the approval bus the deployment
/// ASL publishes to. This test file is the only user of its moto.
async fn prepare(config: &aws_config::SdkConfig) {
    let (status, body) = Emulator::shared_moto().post_json("/moto-api/reset", "{}").unwrap();
    assert!((200..300).contains(&status), "{body}");
    let events = aws_sdk_eventbridge::Client::new(config);
    events.create_event_bus().name(stepshift_local::runner::APPROVAL_BUS).send().await.expect("create_event_bus");
}

fn rand_name(text: &str) -> u128 {
    text.bytes().fold(0u128, |h, b| h.wrapping_mul(31).wrapping_add(u128::from(b)))
}

fn find_token(v: &Value) -> Option<String> {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("token")
                    && let Some(s) = v.as_str()
                {
                    return Some(s.to_owned());
                }
                if let Some(t) = find_token(v) {
                    return Some(t);
                }
            }
            None
        }
        Value::Array(items) => items.iter().find_map(find_token),
        _ => None,
    }
}

/// The conformance cases moto can run: successful task results, short waits.
fn conformance_cases() -> Vec<Case> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/stepshift-local/tests/conformance");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for c in cases {
            let text = c["definition"].to_string();
            let answers_fail = c["tasks"].as_object().is_some_and(|t| {
                t.values().flat_map(|v| v.as_array().cloned().unwrap_or_default()).any(|a| a.get("error").is_some())
            });
            // moto's canned Lambda answers every call at once, in the order the calls
            // arrive: it cannot take time, never answer, or echo its input, and the
            // order in which a Map's iterations or a Parallel's branches take the
            // results depends on those durations.
            let timed = c["tasks"].as_object().is_some_and(|t| {
                t.values()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .any(|a| ["millis", "never", "echo"].iter().any(|k| a.get(*k).is_some()))
            });
            let slow = ["\"Seconds\":10", "\"Seconds\":60", "TimestampPath", "\"TimeoutSeconds\":30", "SecondsPath"]
                .iter()
                .any(|s| text.contains(s))
                || c["token"]["action"] == "timeout";
            if answers_fail || slow || timed {
                continue;
            }
            let invokes = lambda_invoke_states(&c["definition"]);
            let results = c["tasks"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .flat_map(|(state, v)| {
                            let invoke = invokes.contains(state);
                            v.as_array().cloned().unwrap_or_default().into_iter().map(move |a| {
                                // A lambda:invoke state's script gives the integration's
                                // result; moto's queue holds the function's answer.
                                if invoke { a["output"]["Payload"].clone() } else { a["output"].clone() }
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let answers = match c["token"]["action"].as_str() {
                Some("success") => vec![Answer::Success(c["token"]["output"].clone())],
                Some("failure") => vec![Answer::Failure(
                    c["token"]["error"].as_str().unwrap().into(),
                    c["token"]["cause"].as_str().unwrap().into(),
                )],
                _ => Vec::new(),
            };
            out.push(Case {
                name: c["name"].as_str().unwrap().to_owned(),
                definition: text,
                input: c["input"].clone(),
                results,
                answers,
            });
        }
    }
    out
}

/// The names of the states (at any depth) whose resource is `lambda:invoke`.
fn lambda_invoke_states(definition: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![definition];
    while let Some(machine) = stack.pop() {
        for (name, state) in machine["States"].as_object().into_iter().flatten() {
            if state["Resource"] == LAMBDA_INVOKE {
                out.push(name.clone());
            }
            stack.extend(state["Branches"].as_array().into_iter().flatten());
            stack.extend(["ItemProcessor", "Iterator"].iter().filter_map(|k| state.get(*k)));
        }
    }
    out
}

/// How long the bake inside "Test the step" waits in the cases with hooks at each step.
/// Its Parallel's branches call Lambda at the same time, and moto's queue hands out its
/// results in the order the calls arrive: the hooks' branch (an invocation and its
/// judgement, milliseconds in moto) must take its results before the bake's check, as
/// it does on the local runner, where a task with a canned result takes no time.
const STEP_WAIT_SECONDS: u64 = 2;

/// A deployment scenario played on the local runner with the real handlers, turned
/// into a case: its Lambda results in order (waits shortened to 0 s) and its answers.
fn scenario_case(name: &str, scenario: stepshift_local::Scenario, request: Value) -> Case {
    scenario_case_with(name, scenario, request, 0)
}

/// As [`scenario_case`], but every bake that follows "Begin deployment" or "Check the
/// step", and the lock-in's first, waits `step_wait` seconds (see [`STEP_WAIT_SECONDS`]); the hooks' invocations
/// (`lambda:invoke`, which moto answers from the same queue) are in the results too.
fn scenario_case_with(name: &str, scenario: stepshift_local::Scenario, request: Value, step_wait: u64) -> Case {
    let mut sim = stepshift_local::Simulation::new(scenario).unwrap();
    let outcome = sim.run(request.clone());
    assert!(outcome.history.iter().all(|e| e.kind != "LambdaFunctionFailed"), "{name}: moto's Lambda cannot fail");
    let mut results = Vec::new();
    let mut answers = Vec::new();
    let (mut state, mut resource) = (String::new(), String::new());
    for e in &outcome.history {
        match e.kind.as_str() {
            "TaskStateEntered" => state = e.details["name"].as_str().unwrap_or_default().to_owned(),
            "TaskScheduled" | "LambdaFunctionScheduled" => {
                resource = e.details["resource"].as_str().unwrap_or_default().to_owned();
            }
            "LambdaFunctionSucceeded" => {
                let mut v = e.details["output"].clone();
                // The bakes in "Test the step", the promotion's lock-in included.
                let promoting = v.pointer("/cursor/promote") == Some(&json!(true));
                let tested = ["Begin deployment", "Check the step"].contains(&state.as_str()) || promoting;
                let wait = if tested { step_wait } else { 0 };
                if let Some(w) = v.pointer_mut("/cursor/wait_seconds") {
                    *w = json!(wait);
                }
                if let Some(w) = v.pointer_mut("/progress/cursor/wait_seconds") {
                    *w = json!(wait);
                }
                results.push(v);
            }
            "TaskSucceeded" if resource == LAMBDA_INVOKE => results.push(e.details["output"]["Payload"].clone()),
            "TaskFailed" | "TaskTimedOut" if resource == LAMBDA_INVOKE => {
                panic!("{name}: a hook's invocation failed ({}), which moto's Lambda cannot do", e.details)
            }
            "TaskSucceeded" => answers.push(Answer::Success(e.details["output"].clone())),
            "TaskFailed" => answers.push(Answer::Failure(
                e.details["error"].as_str().unwrap_or_default().into(),
                e.details["cause"].as_str().unwrap_or_default().into(),
            )),
            _ => {}
        }
    }
    let definition = stepshift_local::asl::model::substitute(DEPLOYMENT_ASL, &substitutions()).unwrap();
    Case { name: name.into(), definition, input: request, results, answers }
}

fn scenario_cases() -> Vec<Case> {
    use stepshift_local::runner::Answer as Say;
    use stepshift_tests::*;
    let approval = json!([{"weight_percent": 10, "bake_seconds": 60}, {"weight_percent": 50, "bake_seconds": 60, "approval": true}, {"weight_percent": 100}]);
    let mut rejecting = scenario(steady(stable()));
    rejecting.approvals = vec![Say::Reject { after_seconds: 5, reason: "not now".into() }];
    let mut low = scenario(steady(stable()));
    low.functions[0].requests_per_second = 0.005;
    vec![
        scenario_case("deployment: healthy canary", scenario(steady(stable())), request(json!("canary-10-5m"))),
        scenario_case("deployment: healthy linear", scenario(steady(stable())), request(json!("linear-10-every-1m"))),
        scenario_case("deployment: all at once", scenario(steady(stable())), request(json!("all-at-once"))),
        scenario_case("deployment: error regression", scenario(failing(0.2)), request(json!("canary-10-5m"))),
        scenario_case("deployment: low traffic", low, request(json!("canary-10-5m"))),
        scenario_case("deployment: approval approved", scenario(steady(stable())), request(approval.clone())),
        scenario_case("deployment: approval rejected", rejecting, request(approval)),
    ]
}

/// Deployments with validation hooks that pass (see the module's comment): the Map of
/// "Test before traffic", the Parallel of "Test the step" and the Map of "Test after
/// promotion", their `lambda:invoke` tasks with a dynamic `FunctionName` (a test function,
/// and the candidate version `orders:42`) and `TimeoutSecondsPath`.
fn hook_cases() -> Vec<Case> {
    use stepshift_local::hooks::HookBehaviour;
    use stepshift_tests::*;
    let with_smoke = || {
        let mut s = scenario(steady(stable()));
        s.hooks = [("orders-smoke".to_owned(), vec![HookBehaviour::Pass { after_seconds: 1 }])].into();
        s
    };
    let strategy = json!([{"weight_percent": 10, "bake_seconds": 60}, {"weight_percent": 100}]);
    let mut before_and_each_step = request(strategy.clone());
    before_and_each_step["hooks"] = json!({
        "before_traffic": [{"function": "orders-smoke", "payload": {"suite": "smoke"}, "timeout_seconds": 60}],
        "each_step": [{"function": "orders-smoke", "timeout_seconds": 60}]
    });
    let mut candidate_and_after = request(strategy);
    candidate_and_after["hooks"] = json!({
        "before_traffic": [{"invoke_candidate": {"payload": {"rawPath": "/health"}, "expect": {"status_below": 500}}}],
        "after_promotion": [{"function": "orders-smoke", "name": "post-promotion smoke"}]
    });
    vec![
        scenario_case_with(
            "deployment: a passing test function before traffic and at the step",
            with_smoke(),
            before_and_each_step,
            STEP_WAIT_SECONDS,
        ),
        scenario_case_with(
            "deployment: invoke_candidate before traffic and a test function after promotion, passing",
            with_smoke(),
            candidate_and_after,
            // The tests after promotion run in "Test the step", beside the lock-in's bake.
            STEP_WAIT_SECONDS,
        ),
    ]
}

/// Differences found, each with the side that is wrong. A new difference fails the test.
const KNOWN: &[(&str, &str)] = &[
    // The ASL specification names this error States.NoChoiceMatched; moto raises
    // States.Runtime ("No branching option reached"). moto is wrong.
    ("choice: no match and no Default fails with States.NoChoiceMatched", "error"),
    ("choice: no match and no Default fails with States.NoChoiceMatched", "cause"),
    // A Parameters path that does not exist is a runtime error, and "a retry or catch on
    // States.ALL won't catch States.Runtime errors" (Step Functions' error handling
    // guide). moto lets States.ALL catch it as "Exception". moto is wrong.
    (
        "a Parameters path that does not exist fails the execution with States.Runtime, which States.ALL cannot catch",
        "status",
    ),
    (
        "a Parameters path that does not exist fails the execution with States.Runtime, which States.ALL cannot catch",
        "path",
    ),
    (
        "a Parameters path that does not exist fails the execution with States.Runtime, which States.ALL cannot catch",
        "output",
    ),
    (
        "a Parameters path that does not exist fails the execution with States.Runtime, which States.ALL cannot catch",
        "error",
    ),
    (
        "a Parameters path that does not exist fails the execution with States.Runtime, which States.ALL cannot catch",
        "cause",
    ),
    // SendTaskFailure's cause reaches the Catch in Step Functions; moto drops it (its
    // history shows the error but no cause). moto is wrong.
    ("waitForTaskToken: failure goes to Catch with the sender's error and cause", "cause"),
    // An ItemsPath that selects no array: moto raises States.QueryEvaluationError (the
    // error Step Functions documents for JSONata expressions) as an ordinary error, which
    // the Catch on States.ALL catches; the conformance case expects States.Runtime, which
    // fails the execution past any Catch. The Step Functions guide says only that the
    // path "must point to JSON array", so which side is right is not verified against
    // AWS; stepshift's ASL always selects an array (`$.plan.hooks.<point>`).
    ("map: ItemsPath that is not an array fails with States.Runtime", "status"),
    ("map: ItemsPath that is not an array fails with States.Runtime", "path"),
    ("map: ItemsPath that is not an array fails with States.Runtime", "output"),
    ("map: ItemsPath that is not an array fails with States.Runtime", "error"),
    ("map: ItemsPath that is not an array fails with States.Runtime", "cause"),
];

#[tokio::test(flavor = "multi_thread")]
async fn stepshift_local_and_moto_agree() {
    let mut cases = conformance_cases();
    let conformance = cases.len();
    cases.extend(scenario_cases());
    cases.extend(hook_cases());
    let mut differences = Vec::new();
    for case in &cases {
        let (a, b) = (local(case), moto(case).await);
        let lanes = lanes(&serde_json::from_str(&case.definition).unwrap());
        for (field, ours, theirs) in [
            ("status", json!(a.status), json!(b.status)),
            ("path", json!(by_lane(&a.path, &lanes)), json!(by_lane(&b.path, &lanes))),
            ("output", json!(a.output), json!(b.output)),
            ("error", json!(a.error), json!(b.error)),
            ("cause", json!(a.cause), json!(b.cause)),
        ] {
            if ours != theirs {
                differences.push(format!("{} / {field}: stepshift-local {ours} | moto {theirs}", case.name));
            }
        }
    }
    println!(
        "{} cases compared ({conformance} conformance, {} deployment scenarios, with hooks or not)",
        cases.len(),
        cases.len() - conformance
    );
    let unexplained: Vec<&String> = differences
        .iter()
        .filter(|d| !KNOWN.iter().any(|(case, field)| d.starts_with(&format!("{case} / {field}:"))))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences:\n{}",
        unexplained.len(),
        unexplained.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
    let stale: Vec<_> = KNOWN
        .iter()
        .filter(|(case, field)| !differences.iter().any(|d| d.starts_with(&format!("{case} / {field}:"))))
        .collect();
    assert!(stale.is_empty(), "known differences that no longer occur (update KNOWN): {stale:?}");
}
