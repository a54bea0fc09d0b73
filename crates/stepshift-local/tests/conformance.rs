//! The ASL conformance suite: small definitions, each exercising one feature, with the
//! expected outcome. The cases are data (tests/conformance/*.json) so that the same
//! cases can be run through other Step Functions implementations for comparison.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};
use stepshift_core::Timestamp;
use stepshift_local::asl::{Environment, Execution, Options, StateMachine, Status, TaskCall, TaskResult};

/// Answers each Task state from its script, in order, and records what it was called with.
#[derive(Default)]
struct Scripted {
    scripts: HashMap<String, VecDeque<Value>>,
    calls: HashMap<String, Vec<Value>>,
}

impl Environment for Scripted {
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult {
        self.calls.entry(call.state.to_owned()).or_default().push(call.input.clone());
        if call.token.is_some() {
            return TaskResult::Pending;
        }
        let Some(next) = self.scripts.get_mut(call.state).and_then(VecDeque::pop_front) else {
            return TaskResult::Error {
                error: "NoScript".into(),
                cause: format!("no scripted answer left for {}", call.state),
            };
        };
        match next.get("error").and_then(Value::as_str) {
            Some(error) => TaskResult::Error {
                error: error.to_owned(),
                cause: next["cause"].as_str().unwrap_or_default().to_owned(),
            },
            None => TaskResult::Output(next["output"].clone()),
        }
    }
}

fn status_name(s: &Status) -> &'static str {
    match s {
        Status::Succeeded(_) => "SUCCEEDED",
        Status::Failed { .. } => "FAILED",
        Status::TimedOut => "TIMED_OUT",
        Status::Running => "RUNNING",
        Status::Waiting { .. } => "WAITING",
    }
}

fn run_case(case: &Value) -> Result<(), String> {
    let machine = StateMachine::load(&case["definition"].to_string(), &HashMap::new())?;
    let mut env = Scripted::default();
    if let Some(tasks) = case["tasks"].as_object() {
        for (state, answers) in tasks {
            env.scripts.insert(state.clone(), answers.as_array().cloned().unwrap_or_default().into());
        }
    }
    let start = case["start"]
        .as_str()
        .map(|s| Timestamp::parse_rfc3339(s).unwrap())
        .unwrap_or(Timestamp::from_secs(1_800_000_000));
    let options = Options {
        name: "case".into(),
        state_machine_arn: "arn:aws:states:us-east-1:000000000000:stateMachine:conformance".into(),
        start,
        seed: 1,
        task_millis: 0,
    };
    let mut exec = Execution::start(std::sync::Arc::new(machine.clone()), case["input"].clone(), options);
    exec.run(&mut env);
    if let Status::Waiting { token, .. } = exec.status().clone() {
        let action = &case["token"];
        match action["action"].as_str() {
            Some("success") => exec.send_task_success(&token, action["output"].clone())?,
            Some("failure") => exec.send_task_failure(
                &token,
                action["error"].as_str().unwrap(),
                action["cause"].as_str().unwrap(),
                &mut env,
            )?,
            Some("timeout") => exec.advance(365 * 24 * 3600, &mut env),
            other => {
                return Err(format!("the execution waits for a token but the case says {other:?}"));
            }
        }
        exec.run(&mut env);
    }
    let expect = &case["expect"];
    let status = exec.status().clone();
    let mut problems = Vec::new();
    let mut check = |what: &str, got: Value, want: &Value| {
        if !want.is_null() && &got != want {
            problems.push(format!("{what}: got {got}, want {want}"));
        }
    };
    check("status", json!(status_name(&status)), &expect["status"]);
    match &status {
        Status::Succeeded(out) => {
            check("output", out.clone(), &expect["output"]);
            check("output_error", out["err"]["Error"].clone(), &expect["output_error"]);
        }
        Status::Failed { error, cause } => {
            check("error", json!(error), &expect["error"]);
            check("cause", json!(cause), &expect["cause"]);
        }
        _ => {}
    }
    check("path", json!(exec.path()), &expect["path"]);
    check("transitions", json!(exec.transitions()), &expect["transitions"]);
    check("elapsed_seconds", json!(exec.now().secs_since(start)), &expect["elapsed_seconds"]);
    if let Some(calls) = expect["calls"].as_object() {
        for (state, want) in calls {
            check(&format!("calls of {state}"), json!(env.calls.get(state).cloned().unwrap_or_default()), want);
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}

#[test]
fn every_conformance_case_behaves_as_specified() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");
    let mut failures = Vec::new();
    let mut count = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for case in &cases {
            count += 1;
            if let Err(e) = run_case(case) {
                failures.push(format!("{} / {}: {e}", file.file_name().unwrap().to_string_lossy(), case["name"]));
            }
        }
    }
    assert!(count >= 20, "only {count} cases found");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn history_is_shaped_like_step_functions() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:f", "End": true}}});
    let machine = StateMachine::load(&def.to_string(), &HashMap::new()).unwrap();
    let mut env = Scripted::default();
    env.scripts.insert("T".into(), VecDeque::from([json!({"output": {"ok": true}})]));
    let mut exec = Execution::start(std::sync::Arc::new(machine.clone()), json!({"in": 1}), Options::default());
    exec.run(&mut env);
    let kinds: Vec<&str> = exec.history().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "LambdaFunctionScheduled",
            "LambdaFunctionStarted",
            "LambdaFunctionSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded"
        ]
    );
    let ids: Vec<u64> = exec.history().iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=7).collect::<Vec<_>>());
    assert_eq!(exec.history()[1].details["name"], "T");
}

#[test]
fn jitter_is_bounded_and_repeatable_for_a_seed() {
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 10, "BackoffRate": 2, "MaxAttempts": 5, "JitterStrategy": "FULL"}], "End": true}}});
    let machine = StateMachine::load(&def.to_string(), &HashMap::new()).unwrap();
    let run = |seed: u64| {
        let mut env = Scripted::default();
        let mut answers: VecDeque<Value> = (0..5).map(|_| json!({"error": "X"})).collect();
        answers.push_back(json!({"output": 1}));
        env.scripts.insert("T".into(), answers);
        let mut exec = Execution::start(
            std::sync::Arc::new(machine.clone()),
            json!({}),
            Options { seed, task_millis: 0, ..Options::default() },
        );
        exec.run(&mut env);
        assert!(matches!(exec.status(), Status::Succeeded(_)));
        exec.now().millis() - exec.started_at().millis()
    };
    let (a, b) = (run(1), run(1));
    assert_eq!(a, b, "same seed, same delays");
    // Without jitter the five delays add up to 10+20+40+80+160 = 310 s; with it, less.
    assert!(a < 310_000, "{a}");
    let spread: Vec<i64> = (2..12).map(run).collect();
    assert!(spread.iter().any(|d| *d != a), "different seeds give different delays: {spread:?}");
}
