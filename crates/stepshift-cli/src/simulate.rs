//! `simulate`: runs the real state machine locally on simulated traffic and shows the
//! deployment unfold, time-compressed, ending with the verdict and a summary table.
//!
//! Apart: [`setup`] turns the flags into a scenario and a request ([`Router`] and
//! `Scenario::play` hold all that depends on the kind of target); [`play`] steps the
//! execution; [`Pace`] paces a live display; narration is a function of each event
//! ([`narrate`]); the table and the JSON document render the state machine's own
//! per-step summaries ([`StepSummary`]), with each step's last verdict for its numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use stepshift_core::deployment::{Plan, Progress, StepSummary};
use stepshift_core::hooks::{self, Point};
use stepshift_core::judge::{TargetSample, Verdict};
use stepshift_core::ports::AlarmValue;
use stepshift_core::request::DeploymentRequest;
use stepshift_core::routers::route53::CLOUDFRONT_ZONE;
use stepshift_core::{State, Timestamp, percent_text};
use stepshift_local::asl::{Execution, Status};
use stepshift_local::hooks::HookBehaviour;
use stepshift_local::runner::{Action, TimedAction};
use stepshift_local::scenario::Played;
use stepshift_local::scenario::{WEB_ALARM, web_request};
use stepshift_local::sim::{Behavior, Change, ScheduledAlarm, VersionModel};
use stepshift_local::{Answer, Outcome, Scenario, Simulation};

use crate::error::CliError;
use crate::hooks::PointTests;
use crate::output::{Format, Out, bad, dim, good};
use crate::request::RequestArgs;
use crate::timeline::{Recorder, Timeline};
use crate::view::{Item, View, from_local, narrate, step_label};

/// How `--hook`'s hook answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HookMode {
    /// It passes after a second.
    Pass,
    /// It fails after two seconds (a FunctionError, or `{"status": "failed"}`).
    Fail,
    /// It never answers.
    Hang,
}

/// The test function `--hook` adds when the release has no Lambda version to invoke.
const SIMULATED_TEST: &str = "simulated-test";

/// What the simulated candidate does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// It behaves like the stable version.
    #[default]
    Healthy,
    /// It fails 8% of its invocations.
    ErrorSpike,
    /// Its p99 latency is 6 times the stable version's.
    Latency,
    /// A CloudWatch alarm goes off 3 minutes in.
    Alarm,
    /// Almost no traffic: not enough data to judge.
    LowTraffic,
    /// The strategy pauses for approval; the simulated approver says yes after 2 minutes.
    Approval,
    /// Someone points the alias (or the record) elsewhere by hand 3 minutes in.
    Drift,
    /// It answers 8% of its requests with a handled 500: a success to Lambda, so only the
    /// function's own `Http5xx` metric sees it. The request gets that custom rule.
    #[value(name = "handled-5xx")]
    Handled5xx,
}

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    /// What the candidate does.
    #[arg(long, value_enum, default_value_t)]
    pub scenario: Preset,
    /// Release a web front end at the DNS level instead: a Route53 record moves from
    /// the blue CloudFront distribution to the green one (or the route53 targets of
    /// --config), judged on CloudFront's 5xx rates.
    #[arg(long, conflicts_with_all = ["functions", "aliases", "versions", "web_function"])]
    pub frontend: bool,
    /// Release a Lambda Web Function endpoint instead: its revision weights move from
    /// revision rev-41 to rev-42 (or the lambda_web targets of --config), judged on an
    /// alarm on the endpoint's 5xx share (its request metrics are per endpoint, not per
    /// revision).
    #[arg(long, conflicts_with_all = ["functions", "aliases", "versions"])]
    pub web_function: bool,
    /// Requests per second through each alias (or to the front end).
    #[arg(long, value_name = "N")]
    pub rps: Option<f64>,
    /// The stable version's error rate, percent.
    #[arg(long, value_name = "PERCENT")]
    pub baseline_error_rate: Option<f64>,
    /// The candidate's error rate, percent.
    #[arg(long, value_name = "PERCENT")]
    pub candidate_error_rate: Option<f64>,
    /// The candidate's p99 duration, ms.
    #[arg(long, value_name = "MS")]
    pub candidate_p99_ms: Option<f64>,
    /// The candidate starts misbehaving this long into the deployment (default: at once).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub fails_after: Option<Duration>,
    /// How long the stable version has served the alias before the deployment: the
    /// history the judge compares the candidate with at full traffic (0s plays a new
    /// function, judged on the absolute limits alone).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", default_value = "1h")]
    pub history: Duration,
    /// Add a hook before traffic that passes, fails, or never answers (it then fails at
    /// its timeout, 300 s or --hook-timeout): it invokes the candidate version itself
    /// (a Lambda alias release), or a simulated test function `simulated-test`.
    #[arg(long, value_enum, value_name = "OUTCOME")]
    pub hook: Option<HookMode>,
    #[command(flatten)]
    pub commands: CommandArgs,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second in the live display (default: about 5 s per deployment).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
    /// Also draw the deployment's timeline into this SVG file (weights, each version's
    /// error and slow rates minute by minute, the evidence against its threshold), as
    /// `stepshift report` does for a real execution.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
}

/// A person's commands during the simulated deployment, as `stepshift abort`,
/// `promote`, `pause` and `resume` give them, at times counted from the start.
#[derive(Debug, clap::Args)]
pub struct CommandArgs {
    /// `stepshift abort` this long into the deployment.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub abort_after: Option<Duration>,
    /// `stepshift promote` this long into the deployment.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub promote_after: Option<Duration>,
    /// With --promote-after: `--skip-lock-in` too.
    #[arg(long, requires = "promote_after")]
    pub skip_lock_in: bool,
    /// `stepshift pause` this long into the deployment.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub pause_after: Option<Duration>,
    /// With --pause-after: how long the pause lasts (default: the request's
    /// approval_timeout_seconds); what happens then is the request's pause_timeout.
    #[arg(long = "pause-for", value_parser = humantime::parse_duration, value_name = "DURATION", requires = "pause_after")]
    pub pause_for: Option<Duration>,
    /// `stepshift resume` this long into the deployment.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub resume_after: Option<Duration>,
}

impl CommandArgs {
    /// The scripted commands, for a deployment starting at `start` whose request waits
    /// `approval_timeout` at an approval.
    fn actions(&self, start: Timestamp, approval_timeout: u64) -> Vec<TimedAction> {
        use stepshift_core::control::Action as Command;
        let secs = |d: &Duration| d.as_secs();
        let said = |reason: &str| Some(format!("simulated: {reason}"));
        let mut actions = Vec::new();
        let mut give = |after: &Option<Duration>, command: Command, reason: &str| {
            if let Some(after) = after {
                actions.push(TimedAction {
                    after_seconds: secs(after),
                    action: Action::Command { command, reason: said(reason) },
                });
            }
        };
        give(&self.abort_after, Command::Abort, "--abort-after");
        give(&self.promote_after, Command::Promote { skip_lock_in: self.skip_lock_in }, "--promote-after");
        if let Some(after) = &self.pause_after {
            let lasts = self.pause_for.as_ref().map_or(approval_timeout, secs);
            let until = start.plus_secs((secs(after) + lasts) as i64);
            give(&self.pause_after, Command::Pause { until }, "--pause-after");
        }
        give(&self.resume_after, Command::Resume, "--resume-after");
        actions
    }
}

/// The traffic router a simulated release goes through, as the flags choose it: the one
/// place here that knows the kinds of target (with `stepshift_local::Scenario::play`,
/// which builds each target's simulator model). Another router is a variant here and
/// its arm in each method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Router {
    /// A Lambda alias's weights between two published versions (the default).
    Alias,
    /// A Route53 record's weights between two CloudFront distributions (`--frontend`).
    Route53,
    /// A Lambda Web Function endpoint's weights between two revisions (`--web-function`).
    LambdaWeb,
}

impl Router {
    fn of(args: &SimulateArgs) -> Router {
        if args.frontend {
            Router::Route53
        } else if args.web_function {
            Router::LambdaWeb
        } else {
            Router::Alias
        }
    }

    /// The target released when neither the flags nor a config file name one.
    fn demo_target(self) -> Value {
        match self {
            Router::Alias => json!({"function": "orders-api", "alias": "live", "version": "42"}),
            // The record www.example.com moving from the blue CloudFront distribution to
            // the green one.
            Router::Route53 => {
                let cloudfront = |dns: &str, id: &str| json!({"alias_target": {"dns_name": dns, "hosted_zone_id": CLOUDFRONT_ZONE}, "distribution_id": id});
                json!({
                    "kind": "route53",
                    "hosted_zone_id": "Z0SIMULATED",
                    "record_name": "www.example.com",
                    "record_type": "A",
                    "blue": cloudfront("d111111abcdef8.cloudfront.net", "E1BLUEEXAMPLE"),
                    "green": cloudfront("d222222abcdef8.cloudfront.net", "E2GREENEXAMPLE"),
                })
            }
            Router::LambdaWeb => web_request(json!("canary-10-5m"), 0)["targets"][0].clone(),
        }
    }

    /// The alarm `--scenario alarm` sets off when no --alarm names one.
    fn demo_alarm(self) -> &'static str {
        match self {
            Router::Alias => "orders-api-errors",
            Router::Route53 => "www-5xx",
            Router::LambdaWeb => "orders-web-errors",
        }
    }

    /// The alarms that judge a release through this router, which the simulation
    /// computes from the traffic (a Web Function endpoint's 5xx share).
    fn judging_alarms(self) -> &'static [&'static str] {
        match self {
            Router::Alias | Router::Route53 => &[],
            Router::LambdaWeb => &[WEB_ALARM],
        }
    }

    /// Why a release through this router cannot play `preset`, if it cannot.
    fn refuses(self, preset: Preset) -> Option<&'static str> {
        match (self, preset) {
            (Router::Route53, Preset::Latency) => {
                Some("--scenario latency: a front end is judged on CloudFront's error rates, not on latency")
            }
            (Router::LambdaWeb, Preset::Latency) => {
                Some("--scenario latency: a Web Function endpoint is judged on its alarms, not on latency")
            }
            (Router::Route53 | Router::LambdaWeb, Preset::Handled5xx) => {
                Some("--scenario handled-5xx: custom metrics are judged per Lambda version; use it with alias targets")
            }
            _ => None,
        }
    }
}

/// A simulated release, as the flags describe it.
pub struct Setup {
    /// The simulated account and its traffic.
    pub scenario: Scenario,
    /// The request, as the execution's input.
    pub input: Value,
    /// The request, validated.
    pub request: DeploymentRequest,
    /// The first line of the text output.
    pub headline: String,
}

/// Requests per second through each target.
fn rps(args: &SimulateArgs) -> f64 {
    args.rps.unwrap_or(if args.scenario == Preset::LowTraffic { 0.01 } else { 20.0 })
}

/// The scenario and request the flags describe.
pub fn setup(args: &SimulateArgs) -> Result<Setup, CliError> {
    let router = Router::of(args);
    let mut request_args = args.request.clone();
    if request_args.strategy.is_none() && request_args.steps.is_none() && request_args.config.is_none() {
        if args.scenario == Preset::Approval {
            request_args.steps = Some("10,50,100".into());
            request_args.bake = Some(Duration::from_secs(180));
            request_args.approve_before = vec![50.0];
        } else {
            request_args.strategy = Some("canary-10-5m".into());
        }
    }
    if args.scenario == Preset::Latency && request_args.max_p99_ms.is_none() {
        request_args.max_p99_ms = Some(800.0);
    }
    if args.scenario == Preset::Alarm && request_args.alarms.is_empty() {
        request_args.alarms = vec![router.demo_alarm().into()];
    }
    for alarm in router.judging_alarms() {
        if !request_args.alarms.iter().any(|a| a == alarm) {
            request_args.alarms.push((*alarm).into());
        }
    }
    if let Some(why) = router.refuses(args.scenario) {
        return Err(CliError::Invalid(why.into()));
    }
    // --hook's hook takes --hook-timeout too; alone, the flag would be refused as
    // applying to nothing.
    let hook_timeout = request_args.hook_timeout;
    let other_hooks = !(request_args.test_before.is_empty()
        && request_args.test_each_step.is_empty()
        && request_args.test_after.is_empty()
        && request_args.invoke_candidate.is_empty());
    if args.hook.is_some() && !other_hooks {
        request_args.hook_timeout = None;
    }
    let mut value = crate::request::build(&request_args)?;
    if value.get("targets").is_none() {
        value["targets"] = json!([router.demo_target()]);
    }
    if args.scenario == Preset::Handled5xx && value.pointer("/health/metrics").is_none() {
        value["health"]["metrics"] = json!([stepshift_local::scenario::handled_5xx_rule()]);
    }
    if args.hook.is_some() {
        let mut hook = if router == Router::Alias {
            json!({"name": "simulated hook", "invoke_candidate": {"payload": {}}})
        } else {
            json!({"name": "simulated hook", "function": SIMULATED_TEST})
        };
        if let Some(t) = hook_timeout {
            hook["timeout_seconds"] = json!(t.as_secs());
        }
        let before = &mut value["hooks"]["before_traffic"];
        match before.as_array_mut() {
            Some(list) => list.insert(0, hook),
            None => *before = json!([hook]),
        }
    }
    let (mut value, request) = crate::request::parse(&request_args, value)?;
    if value.get("lock_in_seconds").is_none() {
        value["lock_in_seconds"] = json!(request.lock_in_seconds);
    }

    let mut stable = Behavior { error_rate: args.baseline_error_rate.unwrap_or(0.1) / 100.0, ..Behavior::default() };
    if args.scenario == Preset::Handled5xx {
        stable.handled_error_rate = stepshift_local::scenario::STABLE_HANDLED_RATE;
    }
    let mut bad_candidate = stable.clone();
    match args.scenario {
        Preset::ErrorSpike => bad_candidate.error_rate = 0.08,
        Preset::Handled5xx => bad_candidate.handled_error_rate = 0.08,
        Preset::Latency => {
            bad_candidate.latency_p50_ms = 120.0;
            bad_candidate.latency_p99_ms = 1100.0;
        }
        _ => {}
    }
    if let Some(rate) = args.candidate_error_rate {
        bad_candidate.error_rate = rate / 100.0;
    }
    if let Some(p99) = args.candidate_p99_ms {
        bad_candidate.latency_p99_ms = p99;
        bad_candidate.latency_p50_ms = bad_candidate.latency_p50_ms.min(p99);
    }
    let candidate = match args.fails_after {
        Some(after) => VersionModel {
            behavior: stable.clone(),
            changes: vec![Change { after_seconds: after.as_secs(), behavior: bad_candidate }],
        },
        None => VersionModel::steady(bad_candidate),
    };
    let rps = rps(args);
    if !(rps.is_finite() && rps >= 0.0) {
        return Err(CliError::Invalid("--rps: must be a number of requests per second, 0 or more".into()));
    }
    let mut scenario = Scenario {
        seed: args.seed,
        approvals: vec![Answer::Approve { after_seconds: 120 }; 8],
        history_seconds: args.history.as_secs(),
        ..Scenario::default()
    };
    let Played { labels, drift } = scenario.play(&request.targets, &candidate).map_err(CliError::Invalid)?;
    let mut scenario = scenario.with_rps(rps).with_stable(stable);
    scenario.alarms = request
        .health
        .alarms
        .iter()
        .map(|name| ScheduledAlarm {
            name: name.clone(),
            states: if args.scenario == Preset::Alarm { vec![(180, AlarmValue::Alarm)] } else { Vec::new() },
        })
        .collect();
    if args.scenario == Preset::Drift {
        scenario.actions = vec![TimedAction { after_seconds: 180, action: drift }];
    }
    scenario.actions.extend(args.commands.actions(scenario.start, request.approval_timeout_seconds));
    // The simulated account holds the test functions the hooks name, and they pass
    // (a candidate version invoked by a hook passes unscripted).
    for point in Point::ALL {
        for function in request.hooks.at(point).iter().filter_map(|h| h.function.as_deref()) {
            for name in [function, hooks::function_name(function)] {
                scenario.hooks.entry(name.to_owned()).or_insert_with(|| vec![HookBehaviour::Pass { after_seconds: 1 }]);
            }
        }
    }
    if let Some(mode) = args.hook {
        let behaviour = match mode {
            HookMode::Pass => HookBehaviour::Pass { after_seconds: 1 },
            HookMode::Fail => HookBehaviour::Fail { after_seconds: 2, reason: "the simulated hook failed".into() },
            HookMode::Hang => HookBehaviour::Hang,
        };
        // What the added hook invokes: the candidate versions (which then answer every
        // hook that invokes them this way), or the simulated test function.
        let invoked: Vec<String> = if router == Router::Alias {
            request.targets.aliases.iter().map(|t| format!("{}:{}", t.function, t.version)).collect()
        } else {
            vec![SIMULATED_TEST.to_owned()]
        };
        for name in invoked {
            scenario.hooks.insert(name, vec![behaviour.clone()]);
        }
    }
    let headline = format!(
        "Simulating {} with {} ({}; {rps} requests/s, seed {})",
        labels.join(", "),
        match &request.strategy {
            stepshift_core::request::Strategy::Preset(p) => p.clone(),
            stepshift_core::request::Strategy::Steps(_) => "custom steps".into(),
        },
        clap::ValueEnum::to_possible_value(&args.scenario).map_or_else(String::new, |v| v.get_name().to_owned()),
        args.seed
    );
    let test_functions = Point::ALL.iter().any(|p| request.hooks.at(*p).iter().any(|h| h.function.is_some()));
    let headline = if !test_functions {
        headline
    } else {
        format!(
            "{headline}\nThe hooks' test functions are simulated: each answers {{\"status\": \"passed\"}} after 1 s"
        )
    };
    Ok(Setup { scenario, input: value, request, headline })
}

/// `+HH:MM:SS` since the start.
fn clock(secs: i64) -> String {
    format!("+{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Runs `exec` to its end one state transition at a time, answering its approval pauses
/// from the scenario. Each new history event goes to `see` with the deployment as it
/// stood before it; after each transition `tick` gets the deployment and the time.
/// Returns the deployment as its history ends.
fn play(
    sim: &mut Simulation,
    exec: &mut Execution,
    recorder: &mut Recorder,
    mut see: impl FnMut(&Item, &View),
    mut tick: impl FnMut(&View, Timestamp),
) -> View {
    let mut view = View::default();
    let mut seen = 0;
    loop {
        match exec.status() {
            Status::Running => {
                exec.step_once(&mut sim.env);
            }
            Status::Waiting { .. } => sim.answer(exec),
            _ => return view,
        }
        let history = exec.history();
        for item in from_local(&history[seen.min(history.len())..]) {
            see(&item, &view);
            view.apply(&item);
            recorder.see(&item, &view);
        }
        seen = history.len();
        tick(&view, exec.now());
    }
}

/// Lets simulated time pass visibly on a live display, `speed` simulated seconds to a
/// real second; without one, it does nothing.
struct Pace<'a> {
    out: &'a Out,
    speed: f64,
    shown: i64,
}

impl Pace<'_> {
    /// Moves the display on to `at` seconds into the simulation.
    fn until(&mut self, at: i64) {
        if !self.out.is_live() {
            return;
        }
        let gap = (at - self.shown).max(0) as f64 / self.speed;
        let ticks = (gap * 20.0).ceil().clamp(0.0, 40.0) as i64;
        for i in 1..=ticks {
            std::thread::sleep(Duration::from_secs_f64(gap / ticks as f64));
            self.out.set_position((self.shown + (at - self.shown) * i / ticks).max(0) as u64);
        }
        self.shown = at;
    }
}

/// The last verdict at each step, by step index: the numbers behind the state machine's
/// own per-step summaries ([`StepSummary`]).
#[derive(Default)]
struct StepVerdicts(BTreeMap<usize, Verdict>);

impl StepVerdicts {
    /// Takes `item` into account, given the deployment before it: a check's verdict
    /// belongs to the step the check began at.
    fn see(&mut self, item: &Item, before: &View) {
        let check = item.name.as_deref().and_then(State::from_name);
        if item.kind != "TaskStateExited" || !matches!(check, Some(State::CheckHealth | State::CheckTheStep)) {
            return;
        }
        let output = item.output.as_ref();
        // A check that failed (and was caught) left the last verdict in place.
        if output.and_then(|o| o.get("failure")).is_some_and(|f| !f.is_null()) {
            return;
        }
        let progress = output.and_then(|o| serde_json::from_value::<Progress>(o.get("progress")?.clone()).ok());
        if let (Some(at), Some(verdict)) =
            (before.progress.as_ref().map(|p| p.cursor.index), progress.and_then(|p| p.verdict))
        {
            self.0.insert(at, verdict);
        }
    }

    fn at(&self, step: &StepSummary) -> Option<&Verdict> {
        self.0.get(&step.index)
    }
}

/// The simulated deployment's timeline, with its minutes read from the simulated
/// CloudWatch as `stepshift report` reads the real one.
fn timeline_of(sim: &Simulation, exec: &Execution, recorder: Recorder, view: &View) -> Timeline {
    let outcome = sim.outcome(exec);
    let mut t = recorder.finish(&exec.arn, view, &outcome.status, outcome.cause.as_deref(), Some(exec.now()));
    if let Some(plan) = &view.plan {
        // Read as a report would, after the end: once CloudWatch has delivered the last
        // minutes (the simulation is over; its clock only moves forward).
        sim.env.aws.set_now(t.end.plus_secs(REPORT_DELAY_SECONDS));
        t.series = futures_executor::block_on(crate::timeline::minutes(&*sim.env.aws, plan, t.end));
    }
    t
}

/// How long after a simulated deployment's end its picture reads the minutes: longer
/// than the simulated CloudWatch's largest delay.
const REPORT_DELAY_SECONDS: i64 = 600;

/// The timeline of a simulation run with `simulate`'s flags (without the leading
/// `simulate`), for the picture's and the summary's tests.
#[cfg(test)]
pub fn simulated_timeline(flags: &[&str]) -> Timeline {
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        args: SimulateArgs,
    }
    let args = <Flags as clap::Parser>::try_parse_from([&["simulate"], flags].concat()).unwrap().args;
    let Setup { scenario, input, .. } = setup(&args).unwrap();
    let mut sim = Simulation::new(scenario).unwrap();
    let mut exec = sim.start(input);
    let mut recorder = Recorder::default();
    let view = play(&mut sim, &mut exec, &mut recorder, |_, _| {}, |_, _| {});
    timeline_of(&sim, &exec, recorder, &view)
}

/// The status line of the live display.
fn status_line(view: &View, elapsed: i64) -> String {
    let state = view.state.clone().unwrap_or_default();
    let weight = view.traffic.as_ref().map_or(0.0, |t| t.weight_percent);
    format!("{} simulated · {state} · candidate at {}%", clock(elapsed), percent_text(weight / 100.0))
}

/// `simulate`: runs, prints, and exits 0 if the candidate was promoted.
pub fn simulate(args: SimulateArgs) -> Result<(), CliError> {
    let Setup { scenario, input, request, headline } = setup(&args)?;
    let expected: u64 = request.steps().iter().map(|s| s.bake_seconds).sum::<u64>() + request.lock_in_seconds;
    let out = Out::with_progress(args.output, Some(expected));
    out.line(&headline);
    let mut sim = Simulation::new(scenario).map_err(CliError::Failed)?;
    let mut exec = sim.start(input);
    let (start, arn) = (exec.started_at(), exec.arn.clone());
    let mut pace = Pace { out: &out, speed: args.speed.unwrap_or_else(|| (expected as f64 / 5.0).max(60.0)), shown: 0 };
    let mut verdicts = StepVerdicts::default();
    let mut recorder = Recorder::default();
    let view = play(
        &mut sim,
        &mut exec,
        &mut recorder,
        |item, before| {
            let at = item.timestamp.secs_since(start);
            pace.until(at);
            if let Some(line) = narrate(item, before, &arn) {
                out.line(&format!("{} {line}", dim(&clock(at))));
            }
            verdicts.see(item, before);
        },
        |view, now| out.status(&status_line(view, now.secs_since(start))),
    );
    out.finish();
    let outcome = sim.outcome(&exec);
    let promoted = outcome.status == "SUCCEEDED";
    let timeline =
        (args.report.is_some() || args.output == Format::Markdown).then(|| timeline_of(&sim, &exec, recorder, &view));
    if let (Some(path), Some(t)) = (&args.report, &timeline) {
        std::fs::write(path, crate::picture::svg(t))
            .map_err(|e| CliError::Failed(format!("--report {}: {e}", path.display())))?;
        eprintln!("timeline drawn in {}", path.display());
    }
    // The state machine's own summary of each step it checked.
    let steps = view.progress.as_ref().map_or(&[][..], |p| &p.steps[..]);
    if let (Format::Markdown, Some(t)) = (args.output, &timeline) {
        print!("{}", crate::summary::markdown(t, None));
    } else if args.output == Format::Json {
        out.document(&document(&outcome, steps, &verdicts, &view.hooks));
    } else {
        println!();
        for line in table(steps, &verdicts, view.plan.as_ref()) {
            println!("{line}");
        }
        // What the last verdict says besides its findings (the fast path's state), and
        // what the rules in observe mode found.
        if let Some(v) = steps.last().and_then(|s| verdicts.at(s)) {
            for note in &v.notes {
                println!("{}", dim(note));
            }
            for line in &v.observed {
                println!("{line}");
            }
        }
        // The validation hooks' judgements, one line per point.
        for line in crate::hooks::summary_lines(&view.hooks) {
            println!("{line}");
        }
        println!(
            "\nsimulated duration {} · {} state transitions",
            humantime::format_duration(Duration::from_secs(outcome.duration_seconds.max(0) as u64)),
            outcome.transitions
        );
        if promoted {
            println!("{}", good("PROMOTED"));
        } else {
            println!("{} {}", bad("ROLLED BACK"), outcome.error.as_deref().unwrap_or(""));
        }
    }
    if promoted { Ok(()) } else { Err(CliError::Failed(String::new())) }
}

/// `--output json`: the outcome, each step's summary with its last verdict, and the
/// validation hooks' judgements.
fn document(outcome: &Outcome, steps: &[StepSummary], verdicts: &StepVerdicts, hooks: &[PointTests]) -> Value {
    let steps: Vec<Value> = steps
        .iter()
        .map(|s| {
            let v = verdicts.at(s);
            json!({
                "step": s.index + 1,
                "weight_percent": s.weight_percent,
                "checks": s.checks,
                "verdict": s.status,
                "reasons": v.map(|v| v.reasons.clone()),
                "notes": v.map(|v| v.notes.clone()),
                "observed": v.map(|v| v.observed.clone()),
                "targets": v.map(|v| v.targets.clone()),
            })
        })
        .collect();
    json!({
        "status": outcome.status,
        "verdict": if outcome.status == "SUCCEEDED" { "promoted" } else { "rolled_back" },
        "error": outcome.error,
        "cause": outcome.cause,
        "output": outcome.output,
        "steps": steps,
        "hooks": hooks,
        "duration_seconds": outcome.duration_seconds,
        "transitions": outcome.transitions,
    })
}

/// The summary table: a row per step, from its summary and its last verdict's numbers.
fn table(steps: &[StepSummary], verdicts: &StepVerdicts, plan: Option<&Plan>) -> Vec<String> {
    if steps.is_empty() {
        // Stopped before any step (a request refused, a hook failed before traffic).
        return Vec::new();
    }
    let mut lines = vec![format!(
        "{:<16} {:>7}  {:>22}  {:>22}  {:<30} {:>16}  {:>6}  {:<13} reason",
        "step", "weight", "candidate inv / err", "stable inv / err", "baseline", "evidence", "checks", "verdict"
    )];
    for s in steps {
        let label = step_label(plan, s.index, s.weight_percent);
        let label = label.split(" (").next().unwrap_or_default().to_owned();
        let v = verdicts.at(s);
        let targets = v.map_or(&[][..], |v| &v.targets[..]);
        let sum = |pick: &dyn Fn(&TargetSample) -> Option<(u64, u64)>| {
            let (inv, err) = targets.iter().filter_map(pick).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            format!("{inv} / {err}")
        };
        // No verdict, or targets judged on their alarms only: no numbers to show.
        let candidate = if targets.is_empty() {
            "-".to_owned()
        } else {
            sum(&|t| Some((t.candidate.invocations, t.candidate.errors)))
        };
        let stable = if targets.iter().all(|t| t.baseline.is_none()) {
            "-".to_owned()
        } else {
            sum(&|t| t.baseline.as_ref().map(|b| (b.invocations, b.errors)))
        };
        let status = format!("{:?}", s.status).to_lowercase();
        let baseline = match (targets.first(), v) {
            (Some(t), _) => t.baseline_label(),
            (None, Some(v)) if !v.alarms.is_empty() => "alarms only".to_owned(),
            _ => "-".to_owned(),
        };
        let evidence = targets.first().map_or_else(|| "-".to_owned(), |t| t.evidence_label());
        lines.push(format!(
            "{label:<16} {:>6}%  {candidate:>22}  {stable:>22}  {baseline:<30} {evidence:>16}  {:>6}  {status:<13} {}",
            percent_text(s.weight_percent / 100.0),
            s.checks,
            s.reason
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use stepshift_local::hooks::HookBehaviour;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        args: SimulateArgs,
    }

    /// Simulates with these flags, `scripts` answering the hooks: the narration, the
    /// deployment at its end, and the JSON document.
    fn simulated(flags: &[&str], scripts: &[(&str, HookBehaviour)]) -> (Vec<String>, View, Value) {
        let args = Flags::try_parse_from([&["simulate"], flags].concat()).unwrap().args;
        let Setup { mut scenario, input, .. } = setup(&args).unwrap();
        for (function, behaviour) in scripts {
            scenario.hooks.insert((*function).to_owned(), vec![behaviour.clone()]);
        }
        let mut sim = Simulation::new(scenario).unwrap();
        let mut exec = sim.start(input);
        let arn = exec.arn.clone();
        let (mut lines, mut verdicts) = (Vec::new(), StepVerdicts::default());
        let view = play(
            &mut sim,
            &mut exec,
            &mut Recorder::default(),
            |item, before| {
                lines.extend(narrate(item, before, &arn));
                verdicts.see(item, before);
            },
            |_, _| {},
        );
        let outcome = sim.outcome(&exec);
        let steps = view.progress.as_ref().map_or(&[][..], |p| &p.steps[..]);
        let doc = document(&outcome, steps, &verdicts, &view.hooks);
        (lines, view, doc)
    }

    #[test]
    fn passing_hooks_at_every_point_are_reported() {
        let flags = ["--test-before", "orders-smoke", "--test-each-step", "orders-load", "--test-after", "orders-e2e"];
        let (lines, view, doc) = simulated(&flags, &[]);
        assert_eq!(doc["verdict"], "promoted", "{lines:#?}");
        let summary = crate::hooks::summary_lines(&view.hooks);
        assert_eq!(
            summary,
            [
                "tests before traffic: passed (1): orders-smoke",
                "tests at step 1: passed (1): orders-load",
                "tests after promotion: passed (1): orders-e2e",
            ]
        );
        assert!(lines.contains(&"Testing at step 1 of 2 (10%): 1 hook (orders-load)".to_owned()), "{lines:#?}");
        assert_eq!(doc["hooks"].as_array().map(Vec::len), Some(3));
        assert_eq!(doc["hooks"][1]["results"][0]["outcome"], "passed");
        // The check inside "Test the step" still gives the step its numbers.
        assert_eq!(doc["steps"][0]["verdict"], "healthy", "{:#}", doc["steps"]);
        assert!(doc["steps"][0]["targets"].as_array().is_some_and(|t| !t.is_empty()), "{:#}", doc["steps"]);
    }

    #[test]
    fn a_failing_hook_at_a_step_rolls_back_and_says_which() {
        let fail = HookBehaviour::Fail { after_seconds: 2, reason: "checkout returned 502".into() };
        let (lines, view, doc) = simulated(&["--test-each-step", "orders-load"], &[("orders-load", fail)]);
        assert_eq!(doc["verdict"], "rolled_back", "{lines:#?}");
        let sentence = "the tests at step 1 failed: orders-load: checkout returned 502";
        assert_eq!(view.hooks.len(), 1);
        assert_eq!(view.hooks[0].sentence, sentence);
        assert_eq!(doc["hooks"][0]["sentence"], sentence);
        assert_eq!(doc["hooks"][0]["passed"], false);
        for line in
            ["Tests at step 1: FAILED: orders-load: checkout returned 502", "Rolling back: the tests at step 1 failed"]
        {
            assert!(lines.contains(&line.to_owned()), "{line}: {lines:#?}");
        }
        assert!(!lines.iter().any(|l| l.starts_with("A task failed")), "{lines:#?}");
    }

    #[test]
    fn a_hung_hook_before_traffic_ends_the_deployment_with_nothing_moved() {
        let flags = ["--test-before", "orders-smoke", "--hook-timeout", "20s"];
        let (lines, view, doc) = simulated(&flags, &[("orders-smoke", HookBehaviour::Hang)]);
        assert_eq!(doc["verdict"], "rolled_back", "{lines:#?}");
        assert_eq!(
            view.hooks[0].line(),
            "tests before traffic: FAILED: orders-smoke: did not answer within 20 s (timeout_seconds)"
        );
        assert!(lines.contains(&"Stopping: the tests before traffic failed; no traffic had moved".to_owned()));
        assert!(!lines.iter().any(|l| l.starts_with("Shifted")), "{lines:#?}");
    }
}
