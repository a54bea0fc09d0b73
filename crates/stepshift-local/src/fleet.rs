//! Many deployments at once in one simulated account, as a monorepo's release starts
//! them: the fault campaign's random deployments ([`campaign::setup_named`]), each on
//! functions of its own, all started at the same instant and interleaved on one virtual
//! clock, against an account whose Lambda control plane and Parameter Store throttle
//! above their documented rates ([`quota`]), with the campaign's random faults on top.
//!
//! The scheduler is a discrete-event loop: it always takes the one event due first over
//! every execution (a state, a task's answer, a retry, a Wait's end, an approval's
//! answer or timeout, a person's command), so the account's clock, and with it the
//! simulated traffic and the quotas' buckets, only ever moves forward. Each task
//! invocation's AWS calls land at the instant it starts, as one handler's calls do
//! within milliseconds.
//!
//! Retries are the state machine's own: each task's `Retry` (throttling 12 attempts from
//! 1 s, doubling to 30 s, full jitter; the rollback 20). The AWS SDK's own retries, which
//! a real task makes first, are not simulated, so the figures are a pessimistic bound.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use stepshift_core::memory::quota::{self, Quota, QuotaUsage};
use stepshift_core::{Clock, ErrorName, Timestamp};

use crate::asl::{Execution, Options, Status};
use crate::campaign::{self, Names, Setup, Violation};
use crate::runner::{self, Answer, LocalEnvironment, Outcome, PlannedAnswer, Scenario};

/// How a fleet is run.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Deployments started at once.
    pub deployments: usize,
    /// Seed of the first; the others take the next seeds.
    pub seed: u64,
    /// The account's rate quotas ([`ACCOUNT_QUOTAS`], or none).
    pub quotas: Vec<Quota>,
    /// Whether the campaign's random faults are injected too.
    pub faults: bool,
    /// The state machine to run, if not the production one ([`runner::DEPLOYMENT_ASL`]):
    /// a benchmark compares retry policies with it.
    pub asl: Option<String>,
}

/// The quotas of a real account: Lambda's control plane (15/s) and Parameter Store (40/s).
pub const ACCOUNT_QUOTAS: [Quota; 2] = [quota::LAMBDA_CONTROL_PLANE, quota::PARAMETER_STORE];

impl FleetOptions {
    /// `deployments` deployments from `seed`, with the account's quotas and faults.
    pub fn new(deployments: usize, seed: u64) -> Self {
        FleetOptions { deployments, seed, quotas: ACCOUNT_QUOTAS.to_vec(), faults: true, asl: None }
    }
}

/// What a fleet found.
#[derive(Clone, Debug, Default)]
pub struct FleetReport {
    /// Deployments run.
    pub deployments: usize,
    /// How they ended: `SUCCEEDED`, or the error name.
    pub outcomes: BTreeMap<String, u32>,
    /// Broken invariants (the campaign's six), with the seed of the deployment.
    pub violations: Vec<Violation>,
    /// Deployments that failed because a call was throttled: the error, or the cause
    /// of the rollback, is a throttle. The target is none.
    pub failed_for_throttling: Vec<Violation>,
    /// What each quota saw: calls, throttled calls, the largest one-second burst.
    pub quotas: BTreeMap<&'static str, QuotaUsage>,
    /// Task attempts that failed with `Throttled` and were retried by the state machine.
    pub throttled_attempts: u64,
    /// Task attempts that failed with `Throttled` and were not retried (retries ran out).
    pub throttled_finally: u64,
    /// Every traffic step's (shift or promotion) delay: the time from entering the state
    /// to leaving it, less one task invocation, in milliseconds. Retries make it.
    pub step_delays_ms: Vec<i64>,
    /// Events the scheduler found due before the account's clock (the target is none:
    /// the clock never goes back).
    pub clock_went_back: u64,
    /// Faults injected, and how many struck.
    pub faults_injected: u32,
    /// Faults that struck (the call they targeted happened).
    pub faults_struck: u32,
    /// Lambda control-plane calls over all deployments (retries and throttled included).
    pub control_plane_calls: u64,
    /// How each deployment ended, in the order they were set up.
    pub ends: Vec<End>,
}

/// How one deployment of a fleet ended.
#[derive(Clone, Debug, PartialEq)]
pub struct End {
    /// The seed of its setup ([`campaign::setup`]).
    pub seed: u64,
    /// `SUCCEEDED`, `FAILED` or `TIMED_OUT`.
    pub status: String,
    /// The error name, when it failed.
    pub error: Option<String>,
    /// The states it entered, in order.
    pub path: Vec<String>,
    /// Its virtual duration, seconds.
    pub duration_seconds: i64,
}

impl FleetReport {
    /// The `p`th percentile (0-100) of the step delays, in seconds (nearest rank).
    pub fn step_delay_percentile(&self, p: f64) -> f64 {
        let mut d = self.step_delays_ms.clone();
        if d.is_empty() {
            return 0.0;
        }
        d.sort_unstable();
        let rank = ((p / 100.0) * d.len() as f64).ceil().max(1.0) as usize;
        d[rank.min(d.len()) - 1] as f64 / 1000.0
    }
}

/// One deployment of the fleet.
struct Lane {
    seed: u64,
    setup: Setup,
    env: LocalEnvironment,
    exec: Execution,
    answers: Vec<Answer>,
    pause: Option<PlannedAnswer>,
}

impl Lane {
    /// When this lane acts next; `None` once its execution ended.
    fn next(&mut self) -> Option<Timestamp> {
        match self.exec.status() {
            Status::Running => {
                self.pause = None;
                self.exec.next_event()
            }
            Status::Waiting { token, .. } => {
                if self.pause.as_ref().is_none_or(|p| p.token() != token) {
                    self.pause = PlannedAnswer::plan(&self.exec, &mut self.answers, &mut self.env);
                }
                self.pause.as_ref().map(PlannedAnswer::at)
            }
            _ => None,
        }
    }

    /// Takes the lane's next event.
    fn act(&mut self) {
        match self.pause.take() {
            Some(p) => self.pause = p.act(&mut self.exec, &mut self.env),
            None => {
                self.exec.step_event(&mut self.env);
            }
        }
    }
}

/// The account all deployments share: every deployment's functions and alarms.
fn shared_account(setups: &[Setup], seed: u64) -> Scenario {
    let first = &setups[0].scenario;
    Scenario {
        seed,
        functions: setups.iter().flat_map(|s| s.scenario.functions.clone()).collect(),
        alarms: setups.iter().flat_map(|s| s.scenario.alarms.clone()).collect(),
        ..first.clone()
    }
}

/// Runs `options.deployments` deployments at once in one account and checks each one.
pub fn run(options: &FleetOptions) -> FleetReport {
    let n = options.deployments.max(1);
    let setups: Vec<Setup> =
        (0..n).map(|i| campaign::setup_named(options.seed.wrapping_add(i as u64), Names::numbered(i))).collect();
    let account = shared_account(&setups, options.seed);
    let aws = Arc::new(runner::account(&account));
    let machine = match &options.asl {
        None => runner::deployment_machine(),
        Some(asl) => crate::asl::StateMachine::load(asl, &runner::substitutions()),
    };
    let machine = Arc::new(machine.expect("the state machine loads"));
    let start = aws.aws.now();

    // The campaign's faults strike the nth call of a kind in the deployment's own account;
    // here calls of all deployments interleave, so each lands on a random one of the
    // calls around n × the deployments' count.
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0xf1ee_7000);
    let mut faults_injected = 0u32;
    if options.faults {
        for s in &setups {
            for (call, nth, fault) in &s.faults {
                let spread = (nth - 1) * n as u64 + 1 + rng.random_range(0..n as u64);
                aws.aws.inject_at(*call, spread, fault.clone());
                faults_injected += 1;
            }
        }
    }
    for q in &options.quotas {
        aws.aws.limit_rate(*q);
    }

    let mut lanes: Vec<Lane> = setups
        .into_iter()
        .enumerate()
        .map(|(i, setup)| {
            let mut env = LocalEnvironment::on(Arc::clone(&aws), &setup.scenario);
            if options.faults {
                env.task_faults = setup.task_faults.clone();
                faults_injected += setup.task_faults.len() as u32;
            }
            let exec_options = Options {
                name: format!("{}-deploy", setup.names.main),
                state_machine_arn: runner::state_machine_arn(),
                start,
                seed: options.seed.wrapping_add(i as u64).wrapping_add(1),
                task_millis: setup.scenario.task_millis,
            };
            let exec = Execution::start(Arc::clone(&machine), setup.request.clone(), exec_options);
            let answers = setup.scenario.approvals.clone();
            Lane { seed: options.seed.wrapping_add(i as u64), setup, env, exec, answers, pause: None }
        })
        .collect();

    let mut report = FleetReport { deployments: n, faults_injected, ..FleetReport::default() };
    let mut clock = start;
    loop {
        let due = lanes.iter_mut().enumerate().filter_map(|(i, l)| l.next().map(|t| (t, i))).min();
        let Some((t, i)) = due else { break };
        if t < clock || aws.aws.now() > t {
            report.clock_went_back += 1;
        }
        clock = clock.max(t);
        lanes[i].act();
    }

    let pending = aws.aws.pending_faults() as u32;
    let task_faults_left: u32 = lanes.iter().map(|l| l.env.task_faults.len() as u32).sum();
    report.faults_struck = faults_injected.saturating_sub(pending + task_faults_left);
    for lane in &lanes {
        let seed = lane.seed;
        let o = runner::outcome_of(&lane.setup.scenario, &lane.env, &lane.exec);
        *report.outcomes.entry(o.error.clone().unwrap_or_else(|| o.status.clone())).or_default() += 1;
        let mut broken = Vec::new();
        campaign::check(&aws.aws, &lane.setup, &o, &mut broken);
        report.violations.extend(broken.into_iter().map(|message| Violation { seed, message }));
        if let Some(message) = throttled_out(&o) {
            report.failed_for_throttling.push(Violation { seed, message });
        }
        tally_steps(&o, lane.setup.scenario.task_millis, &mut report);
        report.ends.push(End {
            seed,
            status: o.status.clone(),
            error: o.error.clone(),
            path: o.path.clone(),
            duration_seconds: o.duration_seconds,
        });
    }
    report.quotas = aws.aws.quota_usage();
    report.control_plane_calls =
        aws.aws.calls().iter().filter(|(c, _)| c.is_lambda_control_plane()).map(|(_, n)| n).sum();
    report
}

/// Why the deployment failed for throttling, if it did: a throttle is its error, or the
/// cause its rollback records.
fn throttled_out(o: &Outcome) -> Option<String> {
    let throttle = |text: &str| text.contains(ErrorName::Throttled.as_str()) || text.contains("Rate exceeded");
    let error = o.error.as_deref().unwrap_or_default();
    let cause = o.cause.as_deref().unwrap_or_default();
    (o.status != "SUCCEEDED" && (throttle(error) || throttle(cause)))
        .then(|| format!("{} ended {error}: {cause}", o.execution))
}

/// Adds `o`'s throttled task attempts and its traffic steps' delays to the report.
fn tally_steps(o: &Outcome, task_millis: i64, report: &mut FleetReport) {
    let mut entered: Option<Timestamp> = None;
    for (k, e) in o.history.iter().enumerate() {
        if e.kind == "LambdaFunctionFailed" && e.details["error"] == ErrorName::Throttled.as_str() {
            // Retried if the state is entered again or scheduled again before it exits.
            let retried = o.history[k + 1..]
                .iter()
                .take_while(|n| !n.kind.ends_with("StateExited") && !n.kind.ends_with("StateEntered"))
                .any(|n| n.kind == "LambdaFunctionScheduled");
            if retried {
                report.throttled_attempts += 1;
            } else {
                report.throttled_finally += 1;
            }
        }
        let name = e.details["name"].as_str().unwrap_or_default();
        if e.kind == "TaskStateEntered" && campaign::is_traffic_step(name) {
            entered = Some(e.timestamp);
        } else if (e.kind.ends_with("StateEntered") || e.kind.ends_with("StateExited"))
            && let Some(at) = entered.take()
        {
            report.step_delays_ms.push((e.timestamp.millis() - at.millis() - task_millis).max(0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_of_one_is_the_campaigns_deployment() {
        // The scheduler, one event at a time, plays a deployment exactly as the runner's
        // own loop does: same states, same ending, same duration.
        for seed in 1..=60 {
            let (alone, ..) = campaign::deployment(seed);
            let fleet = run(&FleetOptions { quotas: Vec::new(), ..FleetOptions::new(1, seed) });
            let end = &fleet.ends[0];
            assert_eq!(end.path, alone.path, "seed {seed}");
            assert_eq!((&end.status, &end.error), (&alone.status, &alone.error), "seed {seed}");
            assert_eq!(end.duration_seconds, alone.duration_seconds, "seed {seed}");
            assert_eq!(fleet.clock_went_back, 0);
        }
    }

    #[test]
    fn quotas_throttle_a_fleet_and_its_clock_never_goes_back() {
        let r = run(&FleetOptions::new(20, 7));
        assert_eq!(r.ends.len(), 20);
        assert_eq!(r.clock_went_back, 0);
        let lambda = &r.quotas[quota::LAMBDA_CONTROL_PLANE.name];
        assert!(lambda.throttled > 0 && r.throttled_attempts > 0, "{lambda:?}, {} retried", r.throttled_attempts);
        assert!(lambda.largest_burst > lambda.largest_admitted, "{lambda:?}");
        assert!(r.step_delays_ms.iter().any(|d| *d > 0), "throttling delayed some step");
        let unlimited = run(&FleetOptions { quotas: Vec::new(), faults: false, ..FleetOptions::new(20, 7) });
        assert!(unlimited.quotas.is_empty() && unlimited.throttled_attempts == 0);
        assert!(unlimited.step_delays_ms.iter().all(|d| *d == 0), "alone and unfaulted, no step waits");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let r = FleetReport { step_delays_ms: vec![4000, 1000, 3000, 2000], ..FleetReport::default() };
        assert_eq!(
            (r.step_delay_percentile(50.0), r.step_delay_percentile(95.0), r.step_delay_percentile(100.0)),
            (2.0, 4.0, 4.0)
        );
        assert_eq!(FleetReport::default().step_delay_percentile(95.0), 0.0);
    }
}
