//! A randomized, seeded fault campaign: many deployments with random strategies,
//! random health outcomes, random approvals, occasional drift and random faults in
//! any AWS call of any task. After every deployment it checks the invariants a
//! deployment controller must keep:
//!
//! 1. the execution ended;
//! 2. every alias routes to one version: the candidate if promoted, else the stable
//!    version (or what a person set it to, after drift);
//! 3. the SSM records agree with the alias and the outcome;
//! 4. the lock is released;
//! 5. no version the records name was deleted;
//! 6. the history records how the deployment ended.
//!
//! A violation names the seed that reproduces it.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use stepshift_core::memory::{Call, Fault, MemoryAws};
use stepshift_core::ports::{AlarmValue, AliasRouting};
use stepshift_core::{ErrorName, PortError, State};

use crate::hooks::HookBehaviour;
use crate::runner::{Action, Answer, Outcome, Scenario, Simulation, TaskFault, TimedAction};
use crate::sim::{Behavior, FunctionModel, ScheduledAlarm, VersionModel};

/// AWS calls a fault may strike.
const CALLS: [Call; 11] = [
    Call::GetAlias,
    Call::UpdateAlias,
    Call::ListVersions,
    Call::ListAliases,
    Call::DeleteVersion,
    Call::GetMetricData,
    Call::DescribeAlarms,
    Call::GetParameters,
    Call::PutParameter,
    Call::CreateParameter,
    Call::DeleteParameter,
];

const FUNCTIONS: [&str; 5] = [
    "stepshift-record-version",
    "stepshift-shift-weight",
    "stepshift-check-health",
    "stepshift-promote",
    "stepshift-rollback",
];

/// One invariant broken by one deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// The seed that reproduces it: `campaign::deployment(seed)`.
    pub seed: u64,
    /// What was wrong.
    pub message: String,
}

/// What a campaign found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Deployments run.
    pub deployments: u32,
    /// How they ended: `SUCCEEDED`, or the error name.
    pub outcomes: BTreeMap<String, u32>,
    /// Faults injected, by kind.
    pub faults_injected: BTreeMap<String, u32>,
    /// Faults that struck (the call they targeted happened).
    pub faults_struck: u32,
    /// Broken invariants.
    pub violations: Vec<Violation>,
    /// Lambda control-plane calls (GetAlias, UpdateAlias, ListVersionsByFunction,
    /// ListAliases, DeleteFunction) over all deployments.
    pub control_plane_calls: u64,
    /// Traffic steps (shifts and promotions) over all deployments.
    pub traffic_steps: u64,
    /// The most control-plane calls one traffic step made (retries included).
    pub max_calls_per_step: f64,
}

/// The names one deployment uses: its functions, its alarm, its hook's test function.
#[derive(Clone, Debug, PartialEq)]
pub struct Names {
    /// The function every deployment releases.
    pub main: String,
    /// The second function a fifth of them release too.
    pub second: String,
    /// The alarm on the main function.
    pub alarm: String,
    /// The test function of its validation hooks.
    pub smoke: String,
}

impl Names {
    /// The names of a deployment alone in its account.
    pub fn alone() -> Names {
        Names { main: "orders".into(), second: "billing".into(), alarm: "orders-5xx".into(), smoke: SMOKE.into() }
    }

    /// The names of deployment `i` of many in one account: functions, alarm and test
    /// function of its own, as a monorepo's services have.
    pub fn numbered(i: usize) -> Names {
        Names {
            main: format!("svc{i:02}-orders"),
            second: format!("svc{i:02}-billing"),
            alarm: format!("svc{i:02}-orders-5xx"),
            smoke: format!("svc{i:02}-{SMOKE}"),
        }
    }
}

/// What one deployment was set up with, to check its end against.
pub struct Setup {
    /// The names it uses.
    pub names: Names,
    /// The scenario.
    pub scenario: Scenario,
    /// The request.
    pub request: Value,
    /// Faults on AWS calls: (call, nth call, fault).
    pub faults: Vec<(Call, u64, Fault)>,
    /// Faults on whole task invocations.
    pub task_faults: Vec<TaskFault>,
    /// Whether someone moves an alias by hand during the deployment.
    pub drift: bool,
}

fn fault_name(f: &Fault) -> String {
    match f {
        Fault::Fail(PortError::Throttled { .. }) => "throttled".into(),
        Fault::Fail(PortError::Conflict { .. }) => "conflict".into(),
        Fault::Fail(_) => "unavailable (no effect)".into(),
        Fault::FailAfter(_) => "timeout after effect".into(),
        Fault::Crash { after_effect: false } => "crash before effect".into(),
        Fault::Crash { after_effect: true } => "crash after effect".into(),
    }
}

/// The random setup of deployment `seed`.
pub fn setup(seed: u64) -> Setup {
    setup_named(seed, Names::alone())
}

/// The random setup of deployment `seed`, using `names`. The names change nothing else:
/// the draws are those of [`setup`].
pub fn setup_named(seed: u64, names: Names) -> Setup {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let stable = Behavior::default();
    let two = rng.random_bool(0.2);
    let rps = [2.0, 10.0, 50.0][rng.random_range(0..3)];
    let outcome: u32 = rng.random_range(0..10);
    let bad = match outcome {
        0..=4 => stable.clone(),
        5 | 6 => Behavior { error_rate: 0.05, ..stable.clone() },
        7 => Behavior { latency_p50_ms: 200.0, latency_p99_ms: 2000.0, ..stable.clone() },
        _ => stable.clone(),
    };
    let low_traffic = outcome == 8;
    let alarm = outcome == 9;
    let functions: Vec<&str> = if two { vec![&names.main, &names.second] } else { vec![&names.main] };
    let mut scenario = Scenario {
        functions: vec![FunctionModel::live(&names.main, VersionModel::steady(bad))],
        ..Scenario::default()
    };
    if two {
        scenario.functions.push(FunctionModel::live(&names.second, VersionModel::steady(stable.clone())));
    }
    let mut scenario = scenario.with_seed(seed).with_rps(if low_traffic { 0.01 } else { rps }).with_lag((60, 240));

    let strategy = if rng.random_bool(0.5) {
        json!(["all-at-once", "canary-10-5m", "linear-10-every-1m", "linear-10-every-2m"][rng.random_range(0..4)])
    } else {
        let mut weights: Vec<u32> =
            [5, 10, 20, 25, 40, 50, 60, 75, 90].into_iter().filter(|_| rng.random_bool(0.3)).take(3).collect();
        weights.push(100);
        let steps: Vec<Value> = weights
            .iter()
            .map(|w| {
                let mut s = json!({"weight_percent": w});
                if *w < 100 {
                    s["bake_seconds"] = json!(rng.random_range(60..=300));
                }
                if rng.random_bool(0.2) {
                    s["approval"] = json!(true);
                }
                s
            })
            .collect();
        json!(steps)
    };
    let mut health = json!({});
    if rng.random_bool(0.5) {
        health["check_interval_seconds"] = json!(60);
    }
    if alarm || rng.random_bool(0.2) {
        health["alarms"] = json!([names.alarm]);
    }
    let targets: Vec<Value> =
        functions.iter().map(|f| json!({"function": f, "alias": "live", "version": "42"})).collect();
    let lock_in = [0, 120, 300][rng.random_range(0..3)];
    let mut request = json!({
        "schema": 1,
        "targets": targets,
        "strategy": strategy,
        "health": health,
        "lock_in_seconds": lock_in,
        "approval_timeout_seconds": 600
    });
    if rng.random_bool(0.3) {
        request["keep_versions"] = json!(3);
    }

    let approvals = (0..6)
        .map(|_| match rng.random_range(0..10) {
            0..=6 => Answer::Approve { after_seconds: rng.random_range(10..300) },
            7 | 8 => Answer::Reject { after_seconds: rng.random_range(10..300), reason: "not today".into() },
            _ => Answer::Ignore,
        })
        .collect();
    let drift = rng.random_bool(0.05);
    let actions = if drift {
        vec![TimedAction {
            after_seconds: rng.random_range(30..900),
            action: Action::SetAlias {
                function: names.main.clone(),
                alias: "live".into(),
                routing: AliasRouting::single("40"),
            },
        }]
    } else {
        Vec::new()
    };
    scenario.alarms = vec![ScheduledAlarm {
        name: names.alarm.clone(),
        states: if alarm { vec![(120, AlarmValue::Alarm)] } else { Vec::new() },
    }];
    scenario.actions = actions;
    scenario.approvals = approvals;

    let mut faults = Vec::new();
    for _ in 0..rng.random_range(0..=4) {
        let call = CALLS[rng.random_range(0..CALLS.len())];
        let nth = rng.random_range(1..=5);
        let error = match rng.random_range(0..3) {
            0 => PortError::Throttled { service: call.service(), message: "Rate exceeded (injected)".into() },
            1 => {
                PortError::Conflict { service: call.service(), message: "ResourceConflictException (injected)".into() }
            }
            _ => PortError::Unavailable { service: call.service(), message: "timeout (injected)".into() },
        };
        let fault = match rng.random_range(0..4) {
            0 => Fault::FailAfter(PortError::Unavailable {
                service: call.service(),
                message: "timeout after effect (injected)".into(),
            }),
            1 => Fault::Crash { after_effect: rng.random_bool(0.5) },
            _ => Fault::Fail(error),
        };
        faults.push((call, nth, fault));
    }
    let mut task_faults = Vec::new();
    if rng.random_bool(0.15) {
        task_faults.push(TaskFault {
            function: FUNCTIONS[rng.random_range(0..FUNCTIONS.len())].into(),
            invocation: rng.random_range(0..3),
            after_effect: rng.random_bool(0.5),
            error: if rng.random_bool(0.5) { ErrorName::SandboxTimedout } else { ErrorName::LambdaUnknown }.to_string(),
        });
    }
    add_hooks(seed, &names, &mut scenario, &mut request);
    add_commands(seed, &mut scenario);
    Setup { names, scenario, request, faults, task_faults, drift }
}

/// Gives a third of the deployments one to three random commands (`stepshift abort`,
/// `promote`, `pause`, `resume`) at random times, from their own stream of draws: some
/// land mid-bake, some at an approval pause, in the lock-in, during a rollback, or
/// after the end (never given, as the CLI refuses them).
fn add_commands(seed: u64, scenario: &mut Scenario) {
    use stepshift_core::control::Action as Command;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636f_6d6d_616e_6473);
    if !rng.random_bool(0.3) {
        return;
    }
    for _ in 0..rng.random_range(1..=3) {
        let after_seconds = rng.random_range(5..1200);
        let command = match rng.random_range(0..4) {
            0 => Command::Abort,
            1 => Command::Promote { skip_lock_in: rng.random_bool(0.5) },
            2 => Command::Pause { until: scenario.start.plus_secs((after_seconds + rng.random_range(30..900)) as i64) },
            _ => Command::Resume,
        };
        let action = Action::Command { command, reason: Some("campaign".into()) };
        scenario.actions.push(TimedAction { after_seconds, action });
    }
    scenario.actions.sort_by_key(|a| a.after_seconds);
}

/// The hook function of the campaign's deployments.
const SMOKE: &str = "campaign-smoke";

/// Adds random validation hooks to a third of the deployments, from their own stream
/// of draws, so that everything else a seed draws stays as it was. The hooks pass
/// mostly, and sometimes fail, hang until their timeout, or are throttled first.
fn add_hooks(seed: u64, names: &Names, scenario: &mut Scenario, request: &mut Value) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x686f_6f6b_7321);
    if !rng.random_bool(0.3) {
        return;
    }
    let traffic_steps = match &request["strategy"] {
        Value::String(preset) => preset != "all-at-once",
        Value::Array(steps) => steps.len() > 1,
        _ => false,
    };
    let mut hooks = json!({});
    for point in ["before_traffic", "each_step", "after_promotion"] {
        if (point == "each_step" && !traffic_steps) || !rng.random_bool(0.5) {
            continue;
        }
        let hook = if rng.random_bool(0.3) {
            json!({"invoke_candidate": {"payload": {"rawPath": "/"}, "expect": {"status_below": 500}}})
        } else {
            json!({"function": names.smoke, "timeout_seconds": rng.random_range(30..=300)})
        };
        hooks[point] = json!([hook]);
    }
    let answers = (0..8)
        .map(|_| match rng.random_range(0..20) {
            0 => HookBehaviour::Fail { after_seconds: rng.random_range(1..60), reason: "smoke failed".into() },
            1 => HookBehaviour::Hang,
            2 => HookBehaviour::Throttle,
            _ => HookBehaviour::Pass { after_seconds: rng.random_range(1..120) },
        })
        .collect::<Vec<_>>();
    scenario.hooks.insert(names.smoke.clone(), answers.clone());
    scenario.hooks.insert(format!("{}:42", names.main), answers.clone());
    scenario.hooks.insert(format!("{}:42", names.second), answers);
    request["hooks"] = hooks;
}

/// Whether entering `state` moves traffic.
pub(crate) fn is_traffic_step(state: &str) -> bool {
    [State::ShiftTraffic, State::ShiftThenTest, State::ShiftThenSync, State::Promote].iter().any(|s| *s == state)
}

/// Runs deployment `seed` and returns its outcome and the invariants it broke.
pub fn deployment(seed: u64) -> (Outcome, Vec<String>, Setup, u64) {
    let setup = setup(seed);
    let mut sim = Simulation::new(setup.scenario.clone()).expect("the state machine loads");
    for (call, nth, fault) in &setup.faults {
        sim.env.aws.aws.inject_at(*call, *nth, fault.clone());
    }
    sim.env.task_faults = setup.task_faults.clone();
    let o = sim.run(setup.request.clone());
    let struck = setup.faults.len() as u64 - sim.env.aws.aws.pending_faults() as u64;
    let mut broken = Vec::new();
    check(&sim.env.aws.aws, &setup, &o, &mut broken);
    (o, broken, setup, struck)
}

/// Checks the six invariants of `o`, a deployment set up as `setup` in `aws`.
pub fn check(aws: &MemoryAws, setup: &Setup, o: &Outcome, broken: &mut Vec<String>) {
    if o.status != "SUCCEEDED" && o.status != "FAILED" {
        broken.push(format!("the execution did not end: {}", o.status));
        return;
    }
    if o.error.as_deref() == Some(ErrorName::RollbackFailed.as_str()) {
        broken.push(format!("the rollback failed: {}", o.cause.as_deref().unwrap_or("")));
    }
    let promoted = o.status == "SUCCEEDED";
    for f in &setup.scenario.functions {
        let name = &f.function;
        let Some(routing) = o.routing(name, "live") else {
            broken.push(format!("{name}:live is gone"));
            continue;
        };
        if routing.additional.is_some() {
            broken.push(format!("{name}:live is left split: {}", routing.describe()));
        }
        let param = |leaf: &str| o.parameter(&format!("/stepshift/{name}/live/{leaf}"));
        let drifted = setup.drift && *name == setup.names.main && routing.version == "40";
        let wanted = if promoted { "42" } else { "41" };
        if !drifted && routing.version != wanted {
            broken.push(format!(
                "{name}:live serves {} after a {} deployment; expected {wanted}",
                routing.version, o.status
            ));
        }
        if promoted {
            for leaf in ["current-version", "last-known-good-version"] {
                if param(leaf) != Some("42") {
                    broken.push(format!("{name}: {leaf} is {:?} after promotion", param(leaf)));
                }
            }
        } else if !drifted && param("current-version").is_some_and(|v| v != routing.version) {
            broken.push(format!(
                "{name}: current-version {:?} but the alias serves {}",
                param("current-version"),
                routing.version
            ));
        }
        if let Some(lock) = param("lock") {
            broken.push(format!("{name}:live is still locked: {lock}"));
        }
        if let Some(command) = param(stepshift_core::control::LEAF) {
            broken.push(format!("{name}:live still has a control record: {command}"));
        }
        let versions = aws.versions(name);
        for leaf in ["current-version", "previous-version", "last-known-good-version"] {
            if let Some(v) = param(leaf).and_then(|v| v.parse::<u64>().ok())
                && !versions.contains(&v)
            {
                broken.push(format!("{name}: {leaf} {v} was deleted"));
            }
        }
        let history: Vec<Value> = param("history").and_then(|h| serde_json::from_str(h).ok()).unwrap_or_default();
        let mine: Vec<&str> = history
            .iter()
            .filter(|h| h["execution"] == o.execution.as_str())
            .filter_map(|h| h["event"].as_str())
            .collect();
        let closed = match mine.last() {
            None => !o.path.iter().any(|p| is_traffic_step(p)),
            Some(&"confirmed") => promoted,
            Some(&"rolled_back") | Some(&"aborted") => !promoted,
            Some(_) => false,
        };
        if !closed {
            broken.push(format!(
                "{name}: the history does not record how the deployment ended ({} ended with {mine:?})",
                o.status
            ));
        }
    }
}

/// Runs `deployments` deployments with seeds `seed`, `seed + 1`, ...
pub fn run(seed: u64, deployments: u32) -> Report {
    let mut report = Report { deployments, ..Report::default() };
    for i in 0..u64::from(deployments) {
        let s = seed.wrapping_add(i);
        let (o, broken, setup, struck) = deployment(s);
        *report.outcomes.entry(o.error.clone().unwrap_or_else(|| o.status.clone())).or_default() += 1;
        for (_, _, f) in &setup.faults {
            *report.faults_injected.entry(fault_name(f)).or_default() += 1;
        }
        for f in &setup.task_faults {
            *report
                .faults_injected
                .entry(format!("task {} ({})", f.error, if f.after_effect { "after effect" } else { "before effect" }))
                .or_default() += 1;
        }
        report.faults_struck += struck as u32;
        let calls: u64 = o.calls.iter().filter(|(c, _)| c.is_lambda_control_plane()).map(|(_, n)| n).sum();
        let steps = o.path.iter().filter(|p| is_traffic_step(p)).count() as u64;
        report.control_plane_calls += calls;
        report.traffic_steps += steps;
        if steps > 0 {
            report.max_calls_per_step = report.max_calls_per_step.max(calls as f64 / steps as f64);
        }
        report.violations.extend(broken.into_iter().map(|message| Violation { seed: s, message }));
    }
    report
}
