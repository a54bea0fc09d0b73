//! `simulate`: runs the real state machine locally on simulated traffic and shows the
//! deployment unfold, time-compressed, ending with the verdict and a summary table.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use stepshift_core::ports::{AlarmValue, AliasRouting};
use stepshift_core::request::DeploymentRequest;
use stepshift_core::route53::CLOUDFRONT_ZONE;
use stepshift_core::{Timestamp, percent_text};
use stepshift_local::asl::Status;
use stepshift_local::runner::{Action, TimedAction};
use stepshift_local::sim::{Behavior, Change, FunctionModel, ScheduledAlarm, SiteModel, VersionModel};
use stepshift_local::{Answer, Scenario, Simulation};

use crate::error::CliError;
use crate::output::{Format, Out, bad, dim, good};
use crate::request::RequestArgs;
use crate::view::{View, from_local, narrate, step_label};

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
}

/// The front end `simulate --frontend` releases when no --config names one: the record
/// www.example.com moving from the blue CloudFront distribution to the green one.
fn demo_frontend() -> Value {
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
    #[arg(long, conflicts_with_all = ["functions", "aliases", "versions"])]
    pub frontend: bool,
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
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second in the live display (default: about 5 s per deployment).
    #[arg(long)]
    pub speed: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// The scenario and request the flags describe.
pub fn setup(args: &SimulateArgs) -> Result<(Scenario, Value, DeploymentRequest), CliError> {
    let mut request_args = args.request.clone();
    if request_args.functions.is_empty() && request_args.config.is_none() && !args.frontend {
        request_args.functions = vec!["orders-api".into()];
        request_args.aliases = vec!["live".into()];
        request_args.versions = vec!["42".into()];
    }
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
        request_args.alarms = vec![if args.frontend { "www-5xx" } else { "orders-api-errors" }.into()];
    }
    if args.frontend && args.scenario == Preset::Latency {
        return Err(CliError::Invalid(
            "--scenario latency: a front end is judged on CloudFront's error rates, not on latency".into(),
        ));
    }
    let mut value = crate::request::build(&request_args)?;
    if args.frontend && value.get("targets").is_none() {
        value["targets"] = json!([demo_frontend()]);
    }
    let (mut value, request) = crate::request::parse(&request_args, value)?;
    if value.get("lock_in_seconds").is_none() {
        value["lock_in_seconds"] = json!(request.lock_in_seconds);
    }

    let stable = Behavior {
        error_rate: args.baseline_error_rate.unwrap_or(0.1) / 100.0,
        latency_p50_ms: 40.0,
        latency_p99_ms: 180.0,
        throttle_rate: 0.0,
    };
    let mut bad_candidate = stable.clone();
    match args.scenario {
        Preset::ErrorSpike => bad_candidate.error_rate = 0.08,
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
    let rps = args.rps.unwrap_or(if args.scenario == Preset::LowTraffic { 0.01 } else { 20.0 });
    if !(rps.is_finite() && rps >= 0.0) {
        return Err(CliError::Invalid("--rps: must be a number of requests per second, 0 or more".into()));
    }
    let mut functions = Vec::new();
    for t in &request.targets.aliases {
        let n: u64 = t.version.parse().unwrap_or(0);
        if n < 2 {
            return Err(CliError::Invalid(format!(
                "--version: simulate needs a candidate above 1 (version {} plays the stable one)",
                n.saturating_sub(1)
            )));
        }
        if functions.iter().any(|f: &FunctionModel| f.function == t.function) {
            return Err(CliError::Invalid(format!(
                "--function: simulate plays one alias per function ({} is listed twice)",
                t.function
            )));
        }
        functions.push(FunctionModel {
            function: t.function.clone(),
            alias: t.alias.clone(),
            versions: n,
            serving: (n - 1).to_string(),
            requests_per_second: rps,
            behaviors: BTreeMap::from([(t.version.clone(), candidate.clone())]),
            default_behavior: stable.clone(),
        });
    }
    let sites: Vec<SiteModel> = request
        .targets
        .records
        .iter()
        .map(|r| SiteModel {
            record: r.clone(),
            requests_per_second: rps,
            behaviors: BTreeMap::from([(r.green.distribution_id.clone().unwrap_or_default(), candidate.clone())]),
            default_behavior: stable.clone(),
        })
        .collect();
    let drift = match (request.targets.aliases.first(), sites.first()) {
        (Some(first), _) => Action::SetAlias {
            function: first.function.clone(),
            alias: first.alias.clone(),
            routing: AliasRouting::single((first.version.parse::<u64>().unwrap_or(2) - 1).to_string()),
        },
        // Someone points the record back at blue by hand.
        (None, Some(site)) => Action::SetRecords {
            hosted_zone_id: site.record.hosted_zone_id.clone(),
            records: vec![site.record.before_release()],
        },
        (None, None) => return Err(CliError::Invalid("the request has no targets".into())),
    };
    let scenario = Scenario {
        sites,
        seed: args.seed,
        start: Timestamp::parse_rfc3339("2026-11-24T09:00:00Z").unwrap_or_default(),
        functions,
        metric_lag_seconds: (60, 180),
        alarms: request
            .health
            .alarms
            .iter()
            .map(|name| ScheduledAlarm {
                name: name.clone(),
                states: if args.scenario == Preset::Alarm { vec![(180, AlarmValue::Alarm)] } else { Vec::new() },
            })
            .collect(),
        actions: if args.scenario == Preset::Drift {
            vec![TimedAction { after_seconds: 180, action: drift }]
        } else {
            Vec::new()
        },
        approvals: vec![Answer::Approve { after_seconds: 120 }; 8],
        task_millis: 250,
        history_seconds: args.history.as_secs(),
    };
    Ok((scenario, value, request))
}

fn clock(secs: i64) -> String {
    format!("+{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// One row of the summary table.
struct Row {
    index: usize,
    weight: f64,
    verdict: Option<stepshift_core::judge::Verdict>,
    checks: u32,
}

/// `simulate`: runs, prints, and exits 0 if the candidate was promoted.
pub fn simulate(args: SimulateArgs) -> Result<(), CliError> {
    let (scenario, value, request) = setup(&args)?;
    let json = args.output == Format::Json;
    let mut sim = Simulation::new(scenario).map_err(CliError::Failed)?;
    let mut exec = sim.start(value);
    let start = exec.started_at();
    let expected: u64 = request.steps().iter().map(|s| s.bake_seconds).sum::<u64>() + request.lock_in_seconds;
    let speed = args.speed.unwrap_or_else(|| (expected as f64 / 5.0).max(60.0));
    let out = Out::with_progress(args.output, Some(expected));
    let print = |line: String| out.line(&line);
    if !json {
        print(format!(
            "Simulating {} with {} ({}; {} requests/s, seed {})",
            request
                .targets
                .aliases
                .iter()
                .map(|t| format!("{} → {}", t.qualified(), t.version))
                .chain(request.targets.records.iter().map(|r| format!("{} → green {}", r.label(), r.green.label())))
                .collect::<Vec<_>>()
                .join(", "),
            match &request.strategy {
                stepshift_core::request::Strategy::Preset(p) => p.clone(),
                stepshift_core::request::Strategy::Steps(_) => "custom steps".into(),
            },
            clap::ValueEnum::to_possible_value(&args.scenario).map_or_else(String::new, |v| v.get_name().to_owned()),
            args.rps.unwrap_or(if args.scenario == Preset::LowTraffic { 0.01 } else { 20.0 }),
            args.seed
        ));
    }
    let mut view = View::default();
    let mut seen = 0;
    let mut rows: Vec<Row> = Vec::new();
    let mut checking: Option<usize> = None;
    let mut shown = 0i64;
    loop {
        match exec.status() {
            Status::Running => {
                exec.step_once(&mut sim.env);
            }
            Status::Waiting { .. } => sim.answer(&mut exec),
            _ => break,
        }
        let items = from_local(exec.history());
        for item in items.iter().skip(seen) {
            let at = item.timestamp.secs_since(start);
            if out.is_live() {
                // Let simulated time pass visibly, compressed by `speed`.
                let gap = (at - shown).max(0) as f64 / speed;
                let ticks = (gap * 20.0).ceil().clamp(0.0, 40.0) as i64;
                for i in 1..=ticks {
                    std::thread::sleep(Duration::from_secs_f64(gap / ticks as f64));
                    out.set_position((shown + (at - shown) * i / ticks).max(0) as u64);
                }
                shown = at;
            }
            if item.kind == "TaskStateEntered" && item.name.as_deref() == Some("Check health") {
                checking = view.progress.as_ref().map(|p| p.cursor.index);
            }
            if let Some(line) = narrate(item, &view, &exec.arn) {
                print(format!("{} {line}", dim(&clock(at))));
            }
            view.apply(item);
            if item.kind == "TaskStateExited"
                && item.name.as_deref() == Some("Check health")
                && let (Some(index), Some(p)) = (checking.take(), view.progress.as_ref())
            {
                let weight =
                    view.plan.as_ref().and_then(|plan| plan.steps.get(index)).map_or(0.0, |s| s.weight_percent);
                match rows.iter_mut().find(|r| r.index == index) {
                    Some(r) => {
                        r.verdict = p.verdict.clone();
                        r.checks += 1;
                    }
                    None => rows.push(Row { index, weight, verdict: p.verdict.clone(), checks: 1 }),
                }
            }
        }
        seen = items.len();
        let state = view.state.clone().unwrap_or_default();
        let weight = view.traffic.as_ref().map_or(0.0, |t| t.weight_percent);
        out.status(&format!(
            "{} simulated · {state} · candidate at {}%",
            clock(exec.now().secs_since(start)),
            percent_text(weight / 100.0)
        ));
    }
    out.finish();
    let outcome = sim.outcome(&exec);
    let promoted = outcome.status == "SUCCEEDED";
    if json {
        let steps: Vec<Value> = rows
            .iter()
            .map(|r| {
                let v = r.verdict.as_ref();
                json!({
                    "step": r.index + 1,
                    "weight_percent": r.weight,
                    "checks": r.checks,
                    "verdict": v.map(|v| v.status),
                    "reasons": v.map(|v| v.reasons.clone()),
                    "targets": v.map(|v| v.targets.clone()),
                })
            })
            .collect();
        let doc = json!({
            "status": outcome.status,
            "verdict": if promoted { "promoted" } else { "rolled_back" },
            "error": outcome.error,
            "cause": outcome.cause,
            "output": outcome.output,
            "steps": steps,
            "duration_seconds": outcome.duration_seconds,
            "transitions": outcome.transitions,
        });
        out.document(&doc);
    } else {
        println!();
        print_table(&rows, &view);
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

fn print_table(rows: &[Row], view: &View) {
    println!(
        "{:<16} {:>7}  {:>22}  {:>22}  {:<30} {:>16}  {:>6}  {:<13} reason",
        "step", "weight", "candidate inv / err", "stable inv / err", "baseline", "evidence", "checks", "verdict"
    );
    for r in rows {
        let label = step_label(view.plan.as_ref(), r.index, r.weight);
        let label = label.split(" (").next().unwrap_or_default().to_owned();
        let Some(v) = &r.verdict else { continue };
        let sum = |pick: &dyn Fn(&stepshift_core::judge::TargetSample) -> Option<(u64, u64)>| {
            let (inv, err) = v.targets.iter().filter_map(pick).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            format!("{inv} / {err}")
        };
        let candidate = sum(&|t| Some((t.candidate.invocations, t.candidate.errors)));
        let stable = if v.targets.iter().all(|t| t.baseline.is_none()) {
            "-".to_owned()
        } else {
            sum(&|t| t.baseline.as_ref().map(|b| (b.invocations, b.errors)))
        };
        let status = format!("{:?}", v.status).to_lowercase();
        let reason = v.reasons.first().cloned().unwrap_or_default();
        let baseline = v.targets.first().map_or_else(|| "-".to_owned(), |t| t.baseline_label());
        let evidence = v.targets.first().map_or_else(|| "-".to_owned(), |t| t.evidence_label());
        println!(
            "{label:<16} {:>6}%  {candidate:>22}  {stable:>22}  {baseline:<30} {evidence:>16}  {:>6}  {status:<13} {reason}",
            percent_text(r.weight / 100.0),
            r.checks
        );
    }
}
