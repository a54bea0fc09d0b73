//! The ASL conformance suite: small definitions, each exercising one feature, with the
//! expected outcome. The cases are data (tests/conformance/*.json) so that the same
//! cases can be run through other Step Functions implementations for comparison.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};
use stepshift_core::Timestamp;
use stepshift_local::asl::{Environment, Execution, Options, StateMachine, Status, TaskCall, TaskResult};

/// Answers each Task state from its script, in order, and records what it was called
/// with and when. A script entry is `{"output": v}`, `{"echo": true}` (the call's input
/// back), or `{"error": e, "cause": c}`, optionally with `"millis": n` (the task takes
/// that long); or `{"never": true}` (the task never ends).
#[derive(Default)]
struct Scripted {
    scripts: HashMap<String, VecDeque<Value>>,
    calls: HashMap<String, Vec<Value>>,
    /// Virtual times of the calls, per state.
    call_times: HashMap<String, Vec<Timestamp>>,
    /// The clock as the environment last saw it (start, then each `time_passes`).
    clock: Option<Timestamp>,
    /// Broken promises of the clock: `time_passes` going back, a call not at the clock.
    clock_problems: Vec<String>,
}

impl Environment for Scripted {
    fn invoke(&mut self, call: TaskCall<'_>) -> TaskResult {
        self.calls.entry(call.state.to_owned()).or_default().push(call.input.clone());
        self.call_times.entry(call.state.to_owned()).or_default().push(call.now);
        if self.clock.is_some_and(|c| c != call.now) {
            self.clock_problems
                .push(format!("{} called at {} but the clock is at {:?}", call.state, call.now, self.clock));
        }
        if call.token.is_some() {
            return TaskResult::Pending;
        }
        let Some(next) = self.scripts.get_mut(call.state).and_then(VecDeque::pop_front) else {
            return TaskResult::Error {
                error: "NoScript".into(),
                cause: format!("no scripted answer left for {}", call.state),
            };
        };
        if next["never"] == json!(true) {
            return TaskResult::Never;
        }
        let result = match next.get("error").and_then(Value::as_str) {
            Some(error) => TaskResult::Error {
                error: error.to_owned(),
                cause: next["cause"].as_str().unwrap_or_default().to_owned(),
            },
            None if next["echo"] == json!(true) => TaskResult::Output(call.input.clone()),
            None => TaskResult::Output(next["output"].clone()),
        };
        match next.get("millis").and_then(Value::as_i64) {
            Some(millis) => TaskResult::took(millis, result),
            None => result,
        }
    }

    fn time_passes(&mut self, now: Timestamp) {
        if self.clock.is_some_and(|c| now <= c) {
            self.clock_problems.push(format!("time_passes({now}) after {:?}", self.clock));
        }
        self.clock = Some(now);
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
    env.clock = Some(start);
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
    if let Some(times) = expect["call_seconds"].as_object() {
        for (state, want) in times {
            let seconds = |t: &Timestamp| {
                let ms = t.millis() - start.millis();
                if ms % 1000 == 0 { json!(ms / 1000) } else { json!(ms as f64 / 1000.0) }
            };
            let got: Vec<Value> =
                env.call_times.get(state).map(|ts| ts.iter().map(seconds).collect()).unwrap_or_default();
            check(&format!("call times (s) of {state}"), json!(got), want);
        }
    }
    let kinds: Vec<&str> = exec.history().iter().map(|e| e.kind.as_str()).collect();
    check("events", json!(kinds), &expect["events"]);
    let ids: Vec<u64> = exec.history().iter().map(|e| e.id).collect();
    if ids != (1..=ids.len() as u64).collect::<Vec<_>>() {
        problems.push(format!("event ids are not 1, 2, 3, ...: {ids:?}"));
    }
    if exec.history().windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        problems.push("history timestamps go back in time".into());
    }
    problems.extend(env.clock_problems.iter().cloned());
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

#[test]
fn the_history_limit_counts_branch_and_iteration_events() {
    // 1,300 iterations of ten Pass states: 22 events each, more than 25,000 in all.
    let mut states = serde_json::Map::new();
    for i in 0..10 {
        let mut s = json!({"Type": "Pass"});
        if i < 9 {
            s["Next"] = json!(format!("P{}", i + 1));
        } else {
            s["End"] = json!(true);
        }
        states.insert(format!("P{i}"), s);
    }
    let def = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "P0", "States": states}}}});
    let machine = StateMachine::load(&def.to_string(), &HashMap::new()).unwrap();
    let items: Vec<Value> = (0..1300).map(|i| json!(i)).collect();
    let mut exec = Execution::start(std::sync::Arc::new(machine), json!(items), Options::default());
    exec.run(&mut Scripted::default());
    let Status::Failed { error, cause } = exec.status() else { panic!("{:?}", exec.status()) };
    assert_eq!(error, "States.Runtime");
    assert!(cause.contains("25000"), "{cause}");
    assert!((25_000..25_010).contains(&exec.history().len()), "{}", exec.history().len());
    // 300 iterations of ten states fit: 1 + 300 * 10 transitions, 2 + 300 * 22 + 4 events.
    let items: Vec<Value> = (0..300).map(|i| json!(i)).collect();
    let machine = StateMachine::load(&def.to_string(), &HashMap::new()).unwrap();
    let mut exec = Execution::start(std::sync::Arc::new(machine), json!(items.clone()), Options::default());
    exec.run(&mut Scripted::default());
    assert_eq!(exec.status(), &Status::Succeeded(json!(items)));
    assert_eq!(exec.transitions(), 3001);
    assert_eq!(exec.history().len(), 2 + 300 * 22 + 4);
}

#[test]
fn step_once_inside_a_parallel_takes_one_branch_step_and_the_clock_follows_the_branches() {
    let f = "arn:aws:lambda:us-east-1:000000000000:function:f";
    let def = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "Next": "After", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": f, "End": true}}},
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": true}}}]},
        "After": {"Type": "Pass", "End": true}}});
    let machine = StateMachine::load(&def.to_string(), &HashMap::new()).unwrap();
    let mut env = Scripted::default();
    env.scripts.insert("A".into(), VecDeque::from([json!({"output": "a", "millis": 10_000})]));
    let mut exec = Execution::start(std::sync::Arc::new(machine), json!({}), Options::default());
    let start = exec.now();
    let mut seen = Vec::new();
    while exec.status() == &Status::Running {
        exec.step_once(&mut env);
        seen.push((exec.current_state().map(str::to_owned), exec.now().secs_since(start), exec.path().len()));
    }
    assert_eq!(exec.status(), &Status::Succeeded(json!(["a", {}])));
    // Enter P; A starts; W starts; A ends at 10 s; W ends at 30 s (and P ends); After.
    assert_eq!(
        seen,
        [
            (Some("P".into()), 0, 1),
            (Some("P".into()), 0, 2),
            (Some("P".into()), 0, 3),
            (Some("P".into()), 10, 3),
            (Some("After".into()), 30, 3),
            (None, 30, 4),
        ]
    );
}
