//! `stepshift-bench judge`: every judge on the same simulated deployments.
//!
//! Two deployment shapes, both checked every minute, with CloudWatch delivering each
//! minute's metrics 60 to 240 s after the minute ends:
//!
//! - **canary**: a 10% canary for 15 minutes, then 100% with a 5-minute lock-in. A
//!   faulty candidate is faulty from its first invocation (more errors, or slower
//!   only), so "time to rollback" counts from the first shift.
//! - **lock-in onset**: the same canary, then 100% with a 60-minute lock-in. The
//!   candidate behaves like the stable version until 20 minutes into the lock-in, and
//!   times count from that onset. Its A/A cells are the long lock-in with no fault.
//! - **handled 5xx x5**: the canary shape, with a candidate that answers five times the
//!   stable version's share of handled HTTP 500s (successes to Lambda), judged by
//!   stepshift with and without a custom rule on the function's own metrics
//!   ([`Family::Handled5xx`]).
//!
//! Each fault cell also gets two reference rows from [`crate::oracle`]: a sequential
//! test that knows the true regression, with and without CloudWatch's lag.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_local::scenario::handled_5xx_rule;
use stepshift_local::sim::latency::phi;
use stepshift_local::sim::{Behavior, Change, VersionModel};
use stepshift_local::{Outcome, Scenario, Simulation};

use crate::judges::{ALL, Judge};
use crate::oracle;

/// Flags of `judge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Deployments per A/A cell (the candidate as good as the stable version).
    #[arg(long, default_value_t = 1000)]
    pub runs_aa: u32,
    /// Deployments per cell with a regression.
    #[arg(long, default_value_t = 200)]
    pub runs: u32,
    /// At most this many deployments per A/A cell of the lock-in shape for the four
    /// other judges (stepshift's own always runs `--runs-aa`): their 75-minute
    /// deployments are what makes the benchmark long.
    #[arg(long, default_value_t = 200)]
    pub peer_runs_aa_lock_in: u32,
    /// At most this many deployments per fault cell of the lock-in shape for the four
    /// other judges (stepshift's own always runs `--runs`).
    #[arg(long, default_value_t = 100)]
    pub peer_runs_lock_in: u32,
    /// Monte Carlo runs per oracle cell.
    #[arg(long, default_value_t = 1000)]
    pub oracle_runs: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Also write the table into this Markdown file, between its judge markers (only
    /// for the whole benchmark: it replaces the section).
    #[arg(long, conflicts_with = "family")]
    pub write: Option<PathBuf>,
    /// Run only these families of cells (repeatable); every family by default. A cell's
    /// seeds do not depend on the filter, so its figures are those of the whole run.
    #[arg(long, value_enum)]
    pub family: Vec<Family>,
    /// Seed of the whole benchmark.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// Seconds from the start to the promotion (the end of the 10% canary).
const PROMOTION: u64 = 900;
/// The canary's share of traffic.
const CANARY_SHARE: f64 = 0.1;
/// CloudWatch's delivery lag after a minute ends, seconds.
const LAG: (u64, u64) = (60, 240);
/// The stable version's latency, ms.
const STABLE_P50: f64 = 40.0;
const STABLE_P99: f64 = 180.0;
/// The oracles' false-alarm level.
const ORACLE_ALPHA: f64 = 0.01;
/// The oracle-ratio target.
const RATIO_TARGET: f64 = 1.25;

/// The stable version's share of handled 500s in the handled-5xx family's cells.
/// [`stepshift_local::scenario::STABLE_HANDLED_RATE`] (0.1%) is typical; 0.5% is a
/// noisier API whose 5x (2.5%) also crosses the rule's 2% limit. Not 2%: a stable
/// version already at the rule's limit has that limit (a plain threshold, outside the
/// false-alarm budget) roll back most healthy candidates (91-98% of A/A runs in a trial),
/// which measures a misconfigured rule, not the judge.
const HANDLED_BASELINES: [f64; 2] = [0.001, 0.005];
/// The handled-5xx family's traffic, requests/s.
const HANDLED_RPS: [f64; 2] = [10.0, 100.0];
/// How much more often the handled-5xx family's candidate answers a handled 500.
const HANDLED_FACTOR: f64 = 5.0;
/// Both versions' Lambda error rate in the handled-5xx family: the same, so that Lambda's
/// metrics see no difference.
const HANDLED_LAMBDA_ERRORS: f64 = 0.001;

/// A family of cells: a deployment shape, with when its fault begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Family {
    /// 10% for 15 min, then 100% with a 5-minute lock-in; faulty from the first shift.
    Canary,
    /// 10% for 15 min, then 100% with a 60-minute lock-in; faulty from 20 min into it.
    LockIn,
    /// "handled 5xx x5": the canary shape, both versions failing 0.1% of invocations
    /// (Lambda's Errors), the candidate answering a handled HTTP 500 five times as often
    /// as the stable version (whose share is the cell's baseline). A handled 500 is a
    /// success to Lambda, so this shows that stepshift's built-in judge cannot see it
    /// (it promotes the candidate about as often as a healthy one), and how fast the
    /// custom rule [`stepshift_local::scenario::handled_5xx_rule`] (the function's own
    /// `Http5xx` over `Requests`, no worse than the stable version, at most 2%) rolls it
    /// back. Its A/A cells run with the rule: their false rollbacks against
    /// `health.false_alarm_percent` (1%), which the budget split keeps for the whole
    /// deployment, the rule's test included.
    #[value(name = "handled-5xx")]
    Handled5xx,
}

impl Family {
    fn lock_in(self) -> u64 {
        match self {
            Family::Canary | Family::Handled5xx => 300,
            Family::LockIn => 3600,
        }
    }

    /// Seconds from the start to the fault's onset.
    fn onset(self) -> u64 {
        match self {
            Family::Canary | Family::Handled5xx => 0,
            Family::LockIn => PROMOTION + 1200,
        }
    }

    /// Seconds from the start to the end of a healthy deployment.
    fn deadline(self) -> u64 {
        PROMOTION + self.lock_in()
    }

    /// Seconds from the start to the end of the step in which the fault begins.
    fn step_end(self) -> u64 {
        match self {
            Family::Canary | Family::Handled5xx => PROMOTION,
            Family::LockIn => self.deadline(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::Canary => "canary",
            Family::LockIn => "lock-in onset",
            Family::Handled5xx => "handled 5xx x5",
        }
    }

    /// The judges of its cells: every judge, or in the handled-5xx family stepshift with
    /// and without the rule (with it only in the A/A cells).
    fn judges(self, fault: Fault) -> Vec<Judge> {
        match (self, fault) {
            (Family::Handled5xx, Fault::None) => vec![Judge::StepshiftRule],
            (Family::Handled5xx, _) => vec![Judge::Stepshift, Judge::StepshiftRule],
            _ => ALL.to_vec(),
        }
    }

    fn request(self) -> Value {
        json!({
            "schema": 1,
            "targets": [{"function": "orders", "alias": "live", "version": "42"}],
            "strategy": [{"weight_percent": 10, "bake_seconds": PROMOTION}, {"weight_percent": 100}],
            "lock_in_seconds": self.lock_in(),
            "health": {"check_interval_seconds": 60}
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// A/A: the candidate behaves like the stable version.
    None,
    /// The candidate's error rate times this.
    Errors(f64),
    /// The candidate's latency (p50 and p99) times this; errors unchanged.
    Latency(f64),
    /// The candidate's share of handled 500s times this; Lambda's errors and latency
    /// unchanged.
    Handled(f64),
}

impl Fault {
    fn label(self) -> String {
        match self {
            Fault::None => "A/A".to_owned(),
            Fault::Errors(m) => format!("errors {m}x"),
            Fault::Latency(m) => format!("p99 {m}x"),
            Fault::Handled(m) => format!("handled 500s {m}x"),
        }
    }

    /// Table order within a baseline and traffic.
    fn rank(self) -> f64 {
        match self {
            Fault::None => 0.0,
            Fault::Errors(m) => m,
            Fault::Latency(m) => 1000.0 + m,
            Fault::Handled(m) => 2000.0 + m,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    family: Family,
    baseline: f64,
    rps: f64,
    fault: Fault,
    /// Where its seeds start (the cells of the first version of this benchmark keep theirs).
    seed_index: u64,
}

impl Cell {
    fn label(&self) -> (String, String, String) {
        (format!("{}%", self.baseline * 100.0), format!("{}", self.rps), self.fault.label())
    }

    /// A one-line name, for lists.
    fn name(&self) -> String {
        let (b, rps, fault) = self.label();
        let baseline = if self.family == Family::Handled5xx { "stable handled 500s" } else { "baseline" };
        format!("{}, {b} {baseline}, {rps} req/s, {fault}", self.family.name())
    }

    fn same(&self, other: &Cell) -> bool {
        self.family == other.family
            && self.baseline == other.baseline
            && self.rps == other.rps
            && self.fault == other.fault
    }

    /// The A/A cell of the same shape, baseline and traffic.
    fn is_aa_of(&self, other: &Cell) -> bool {
        self.fault == Fault::None
            && self.family == other.family
            && self.baseline == other.baseline
            && self.rps == other.rps
    }

    /// Seconds from the start from which its times count: the fault's onset, or the
    /// first shift in an A/A cell.
    fn onset(&self) -> u64 {
        if self.fault == Fault::None { 0 } else { self.family.onset() }
    }

    fn order(&self) -> (Family, f64, f64, f64) {
        (self.family, self.baseline, self.rps, self.fault.rank())
    }
}

fn cells() -> Vec<Cell> {
    let grid: Vec<(f64, f64)> =
        [0.001, 0.01].into_iter().flat_map(|b| [1.0, 10.0, 100.0].into_iter().map(move |r| (b, r))).collect();
    let mut out = Vec::new();
    let mut push = |family, baseline, rps, fault| {
        let seed_index = out.len() as u64;
        out.push(Cell { family, baseline, rps, fault, seed_index });
    };
    // The first cells, in their first order, so that their seeds stay the same.
    for &(baseline, rps) in &grid {
        for fault in [
            Fault::None,
            Fault::Errors(2.0),
            Fault::Errors(3.0),
            Fault::Errors(5.0),
            Fault::Errors(10.0),
            Fault::Latency(3.0),
        ] {
            push(Family::Canary, baseline, rps, fault);
        }
    }
    // Latency only, from the first shift: with p99 3x above.
    for &(baseline, rps) in &grid {
        push(Family::Canary, baseline, rps, Fault::Latency(2.0));
    }
    for &(baseline, rps) in &grid {
        for fault in [Fault::None, Fault::Errors(3.0), Fault::Errors(5.0), Fault::Latency(3.0)] {
            push(Family::LockIn, baseline, rps, fault);
        }
    }
    // Handled 500s, with and without a custom rule.
    for baseline in HANDLED_BASELINES {
        for rps in HANDLED_RPS {
            for fault in [Fault::None, Fault::Handled(HANDLED_FACTOR)] {
                push(Family::Handled5xx, baseline, rps, fault);
            }
        }
    }
    out.sort_by(|a, b| {
        let (x, y) = (a.order(), b.order());
        x.0.cmp(&y.0).then(x.1.total_cmp(&y.1)).then(x.2.total_cmp(&y.2)).then(x.3.total_cmp(&y.3))
    });
    out
}

fn stable(cell: &Cell) -> Behavior {
    let handled = cell.family == Family::Handled5xx;
    Behavior {
        error_rate: if handled { HANDLED_LAMBDA_ERRORS } else { cell.baseline },
        latency_p50_ms: STABLE_P50,
        latency_p99_ms: STABLE_P99,
        throttle_rate: 0.0,
        handled_error_rate: if handled { cell.baseline } else { 0.0 },
    }
}

fn scenario(cell: &Cell, seed: u64) -> Scenario {
    let stable = stable(cell);
    let faulty = match cell.fault {
        Fault::None => stable.clone(),
        Fault::Errors(m) => Behavior { error_rate: (cell.baseline * m).min(1.0), ..stable.clone() },
        Fault::Latency(m) => {
            Behavior { latency_p50_ms: STABLE_P50 * m, latency_p99_ms: STABLE_P99 * m, ..stable.clone() }
        }
        Fault::Handled(m) => Behavior { handled_error_rate: (cell.baseline * m).min(1.0), ..stable.clone() },
    };
    let candidate = match cell.onset() {
        0 => VersionModel::steady(faulty),
        at => VersionModel { behavior: stable.clone(), changes: vec![Change { after_seconds: at, behavior: faulty }] },
    };
    Scenario::orders(candidate).with_seed(seed).with_rps(cell.rps).with_stable(stable).with_lag(LAG)
}

/// The name of the handled-5xx rule, as verdicts and causes name it.
fn rule_name() -> String {
    handled_5xx_rule()["name"].as_str().unwrap_or_default().to_owned()
}

/// One deployment's result.
struct Run {
    rolled_back: bool,
    /// Seconds from the fault's onset to entering "Roll back" (negative: before it).
    rollback_at: Option<i64>,
    /// "Roll back" entered before any "Promote": while the canary still had 10%.
    before_promotion: bool,
    /// The deployment succeeded: last-known-good is the candidate.
    promoted: bool,
    duration: i64,
    transitions: u64,
    /// Rolled back with a cause that names the custom rule's comparison with the stable
    /// version (the sequential test, within the false-alarm budget).
    by_test: bool,
    /// Rolled back with a cause that names the custom rule's absolute limit, and not its
    /// comparison (a guard outside the budget).
    by_limit: bool,
}

fn deploy(cell: &Cell, judge: Judge, seed: u64) -> Run {
    let scenario = scenario(cell, seed);
    let start = scenario.start;
    let mut sim = Simulation::new(scenario).expect("the ASL loads");
    sim.env.check_override = judge.check(cell.baseline);
    let mut request = cell.family.request();
    if judge == Judge::StepshiftTally {
        request["health"]["fast_path"] = json!({"enabled": true});
    }
    if judge == Judge::StepshiftRule {
        request["health"]["metrics"] = json!([handled_5xx_rule()]);
    }
    let o: Outcome = sim.run(request);
    let rule = rule_name();
    let failed = o.cause.as_deref().filter(|_| o.status != "SUCCEEDED");
    let entered = |state: State| {
        o.history.iter().position(|e| e.kind == "TaskStateEntered" && e.details["name"] == state.as_str())
    };
    let (rollback, promote) = (entered(State::RollBack), entered(State::Promote));
    Run {
        rolled_back: o.status != "SUCCEEDED",
        rollback_at: rollback.map(|i| o.history[i].timestamp.secs_since(start) - cell.onset() as i64),
        before_promotion: rollback.is_some_and(|r| promote.is_none_or(|p| r < p)),
        promoted: o.status == "SUCCEEDED",
        duration: o.duration_seconds,
        transitions: o.transitions,
        by_test: failed.is_some_and(|c| names_test(c, &rule)),
        by_limit: failed.is_some_and(|c| names_limit(c, &rule) && !names_test(c, &rule)),
    }
}

/// Whether `cause` names the rule `rule` with its comparison with the stable version.
fn names_test(cause: &str, rule: &str) -> bool {
    cause.contains(&format!("{rule} is "))
}

/// Whether `cause` names the rule `rule` with its absolute limit: "http-5xx 2.33% is
/// above 2%", where its comparison reads "http-5xx is 5.1x the rate of".
fn names_limit(cause: &str, rule: &str) -> bool {
    let at = format!("{rule} ");
    cause.match_indices(&at).any(|(i, _)| cause[i + at.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

/// Who produced a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Judge(Judge),
    /// The SPRT that knows the regression; `lag`: on CloudWatch's delivered minutes.
    Oracle {
        lag: bool,
    },
}

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Judge(j) => j.name(),
            Who::Oracle { lag: false } => "oracle, no lag",
            Who::Oracle { lag: true } => "oracle, CloudWatch lag",
        }
    }
}

/// A cell's figures for one judge (or oracle).
struct Row {
    cell: Cell,
    who: Who,
    runs: usize,
    /// Runs rolled back (oracles: detected before the deployment ended).
    rollbacks: usize,
    rolled_back: f64,
    before_promotion: f64,
    promoted: usize,
    /// Runs rolled back by the custom rule's comparison, and by its limit alone.
    by_test: usize,
    by_limit: usize,
    /// Rolled back minus this judge's false rollback rate in the A/A cell of the same
    /// shape, baseline and traffic: what it detects beyond rolling back anyway. `None`
    /// without that A/A cell.
    net: Option<f64>,
    /// Seconds from the onset to each rollback at or after it, sorted.
    times: Vec<i64>,
    duration: Option<i64>,
    transitions: Option<u64>,
}

impl Row {
    fn median(&self) -> Option<i64> {
        quantile(&self.times, 0.5)
    }

    fn p95(&self) -> Option<i64> {
        quantile(&self.times, 0.95)
    }

    /// The median over every run, a run with no detection after the onset counting as
    /// never: `None` when fewer than half detect.
    fn median_all(&self) -> Option<i64> {
        let rank = ((0.5 * self.runs as f64).ceil() as usize).max(1);
        self.times.get(rank - 1).copied()
    }

    /// The `q` quantile over every run, a run with no detection after the onset counting
    /// as never: `None` when fewer than that share detect.
    fn quantile_all(&self, q: f64) -> Option<i64> {
        let rank = ((q * self.runs as f64).ceil() as usize).max(1);
        self.times.get(rank - 1).copied()
    }

    fn is(&self, judge: Judge) -> bool {
        self.who == Who::Judge(judge)
    }
}

fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn summarize(cell: Cell, judge: Judge, runs: &[Run]) -> Row {
    let mut times: Vec<i64> = runs.iter().filter_map(|r| r.rollback_at).filter(|t| *t >= 0).collect();
    times.sort_unstable();
    let mut durations: Vec<i64> = runs.iter().filter(|r| !r.rolled_back).map(|r| r.duration).collect();
    durations.sort_unstable();
    let mut transitions: Vec<u64> = runs.iter().map(|r| r.transitions).collect();
    transitions.sort_unstable();
    let n = runs.len().max(1) as f64;
    let rollbacks = runs.iter().filter(|r| r.rolled_back).count();
    Row {
        cell,
        who: Who::Judge(judge),
        runs: runs.len(),
        rollbacks,
        rolled_back: rollbacks as f64 / n,
        before_promotion: runs.iter().filter(|r| r.before_promotion).count() as f64 / n,
        promoted: runs.iter().filter(|r| r.promoted).count(),
        by_test: runs.iter().filter(|r| r.by_test).count(),
        by_limit: runs.iter().filter(|r| r.by_limit).count(),
        net: None,
        times,
        duration: quantile(&durations, 0.5),
        transitions: transitions.get(transitions.len() / 2).copied(),
    }
}

/// The share of a candidate `m` times slower whose invocations are slower than the
/// stable version's p99, under the simulator's log-normal latency.
fn slow_share(m: f64) -> f64 {
    let sigma = (STABLE_P99 / STABLE_P50).ln() / 2.326_347_874;
    1.0 - phi((STABLE_P99.ln() - (STABLE_P50 * m).ln()) / sigma)
}

/// The oracle of a fault cell: its rates are the truth.
fn oracle_spec(cell: &Cell) -> Option<oracle::Spec> {
    let (p0, p1) = match cell.fault {
        Fault::None => return None,
        Fault::Errors(m) => (cell.baseline, (cell.baseline * m).min(1.0)),
        // Slow = above the stable version's p99: 1% of the stable's invocations.
        Fault::Latency(m) => (0.01, slow_share(m)),
        // Handled 500s per request: the rule's rate.
        Fault::Handled(m) => (cell.baseline, (cell.baseline * m).min(1.0)),
    };
    Some(oracle::Spec {
        rps: cell.rps,
        canary_share: CANARY_SHARE,
        promotion: PROMOTION,
        onset: cell.onset(),
        deadline: cell.family.deadline(),
        p0,
        p1,
        alpha: ORACLE_ALPHA,
        lag: LAG,
    })
}

fn oracle_rows(cell: Cell, runs: u32, seed: u64) -> Vec<Row> {
    let Some(spec) = oracle_spec(&cell) else { return Vec::new() };
    let found = oracle::run(&spec, runs, seed);
    let limit = spec.deadline - spec.onset;
    [false, true]
        .into_iter()
        .map(|lag| {
            let mut times: Vec<i64> = found
                .iter()
                .filter_map(|d| if lag { d.lagged } else { d.no_lag })
                .filter(|t| *t <= limit)
                .map(|t| t as i64)
                .collect();
            times.sort_unstable();
            oracle_row(cell, lag, found.len(), times)
        })
        .collect()
}

/// An oracle's row: `times` (sorted) are its detections out of `runs`.
fn oracle_row(cell: Cell, lag: bool, runs: usize, times: Vec<i64>) -> Row {
    Row {
        cell,
        who: Who::Oracle { lag },
        runs,
        rollbacks: times.len(),
        rolled_back: times.len() as f64 / runs.max(1) as f64,
        before_promotion: 0.0,
        promoted: 0,
        by_test: 0,
        by_limit: 0,
        net: None,
        times,
        duration: None,
        transitions: None,
    }
}

fn minutes(s: Option<i64>) -> String {
    s.map_or("-".into(), |s| format!("{:.1}", s as f64 / 60.0))
}

/// The 95% Wilson score interval of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054f64;
    let (k, n) = (k as f64, n as f64);
    let (p, z2) = (k / n, z * z);
    let d = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / d;
    let half = z / d * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// What a worker does.
#[derive(Clone, Copy)]
enum Job {
    Deploy { cell: usize, judge: Judge, runs: u32 },
    Oracle { cell: usize },
}

fn runs_for(args: &Args, cell: &Cell, judge: Judge) -> u32 {
    let aa = cell.fault == Fault::None;
    let n = if aa { args.runs_aa } else { args.runs };
    match (cell.family, judge) {
        (Family::LockIn, j) if !j.is_stepshift() => {
            n.min(if aa { args.peer_runs_aa_lock_in } else { args.peer_runs_lock_in })
        }
        _ => n,
    }
}

/// The seed of a cell's first deployment; the same for every judge: the same traffic.
fn cell_seed(args: &Args, cell: &Cell) -> u64 {
    args.seed.wrapping_mul(1_000_003).wrapping_add(cell.seed_index * 7919)
}

/// Runs the benchmark and prints (and optionally writes) the table.
pub fn run(args: &Args) {
    let cells: Vec<Cell> =
        cells().into_iter().filter(|c| args.family.is_empty() || args.family.contains(&c.family)).collect();
    let mut jobs: Vec<Job> = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        for judge in cell.family.judges(cell.fault) {
            jobs.push(Job::Deploy { cell: i, judge, runs: runs_for(args, cell, judge) });
        }
        if cell.fault != Fault::None {
            jobs.push(Job::Oracle { cell: i });
        }
    }
    // The longest first, so that two threads finish together.
    let cost = |j: &Job| match *j {
        Job::Deploy { cell, runs, .. } => {
            let c = &cells[cell];
            f64::from(runs) * (c.family.deadline() as f64 / 60.0 + 30.0) * (1.0 + c.rps / 50.0)
        }
        Job::Oracle { .. } => 0.0,
    };
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by(|a, b| cost(&jobs[*b]).total_cmp(&cost(&jobs[*a])));

    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Vec<Row>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..args.threads.max(1) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&j) = order.get(k) else { break };
                    let t = Instant::now();
                    let (cell, who, rows) = match jobs[j] {
                        Job::Deploy { cell, judge, runs } => {
                            let c = cells[cell];
                            let seed = cell_seed(args, &c);
                            let runs: Vec<Run> =
                                (0..runs).map(|k| deploy(&c, judge, seed.wrapping_add(u64::from(k)))).collect();
                            (c, judge.name(), vec![summarize(c, judge, &runs)])
                        }
                        Job::Oracle { cell } => {
                            let c = cells[cell];
                            (c, "oracles", oracle_rows(c, args.oracle_runs, cell_seed(args, &c) ^ 0x6f72_6163_6c65))
                        }
                    };
                    let mut d = done.lock().unwrap_or_else(|p| p.into_inner());
                    d.push((j, rows));
                    eprintln!(
                        "[{}/{}] {:.0} s: {} / {who}: {:.1} s",
                        d.len(),
                        jobs.len(),
                        started.elapsed().as_secs_f64(),
                        cell.name(),
                        t.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(j, _)| *j);
    let mut rows: Vec<Row> = done.into_iter().flat_map(|(_, r)| r).collect();
    let aa: Vec<(Cell, Who, f64)> =
        rows.iter().filter(|r| r.cell.fault == Fault::None).map(|r| (r.cell, r.who, r.rolled_back)).collect();
    for r in rows.iter_mut().filter(|r| matches!(r.who, Who::Judge(_))) {
        let base = aa.iter().find(|(c, w, _)| *w == r.who && c.is_aa_of(&r.cell));
        r.net = base.map(|(_, _, rate)| r.rolled_back - rate);
    }
    let table = render(&rows, args, started.elapsed());
    println!("{table}");
    if let Some(path) = &args.write {
        write_section(path, &table);
    }
}

fn render(rows: &[Row], args: &Args, took: Duration) -> String {
    let mut out = String::new();
    let families: String = args
        .family
        .iter()
        .filter_map(|f| clap::ValueEnum::to_possible_value(f).map(|v| format!(" --family {}", v.get_name())))
        .collect();
    out.push_str(&format!(
        "Command: `make bench-judge` (`cargo run --release -p stepshift-bench -- judge --runs-aa {} --runs {} --peer-runs-aa-lock-in {} --peer-runs-lock-in {} --oracle-runs {} --threads {} --seed {}{families}`), {:.0} s on this machine.\n\n",
        args.runs_aa,
        args.runs,
        args.peer_runs_aa_lock_in,
        args.peer_runs_lock_in,
        args.oracle_runs,
        args.threads,
        args.seed,
        took.as_secs_f64()
    ));
    out.push_str(
        "Every deployment is checked every minute, and CloudWatch delivers each minute's metrics 60-240 s after the minute ends. \
         Every judge sees the same simulated traffic (the same seeds). \
         \"rolled back\" is the false rollback rate in A/A rows and the detection rate otherwise. \
         \"net\" is the detection rate minus the same judge's false rollback rate in the A/A cell of the same shape, baseline and traffic: what it catches beyond rolling back anyway. \
         \"errors Nx\" multiplies the candidate's error rate; \"p99 Nx\" multiplies every duration (p50 and p99) and leaves errors alone; only stepshift's judge reads latency.\n\n",
    );
    out.push_str(&format!(
        "The two oracle rows of each fault cell are not judges but references, by direct Monte Carlo ({} runs, not through the state machine): \
         a sequential probability ratio test that knows the truth, the stable version's rate p0 against the candidate's p1 after the onset \
         (for latency: the share slower than the stable version's p99, 1% against {:.1}% at 2x and {:.1}% at 3x), \
         rolling back when the log likelihood ratio reaches ln(1/α), α = 1%. \
         \"no lag\" sees every candidate invocation as it happens; \"CloudWatch lag\" sees per-minute counts as they are delivered. \
         Only detections before the deployment would have ended count (\"rolled back\" is the share detected by then); they have no healthy duration or transitions.\n\n",
        args.oracle_runs,
        slow_share(2.0) * 100.0,
        slow_share(3.0) * 100.0
    ));
    let peers_reduced = args.peer_runs_aa_lock_in < args.runs_aa || args.peer_runs_lock_in < args.runs;
    let has = |family: Family| rows.iter().any(|r| r.cell.family == family);
    if has(Family::Canary) || has(Family::LockIn) {
        shapes(&mut out, rows, args, peers_reduced);
    }
    if has(Family::Handled5xx) {
        out.push_str(&handled(rows));
    }
    out
}

/// The canary and lock-in onset families: their tables, the oracle ratios and the
/// targets.
fn shapes(out: &mut String, rows: &[Row], args: &Args, peers_reduced: bool) {
    out.push_str("### Canary: faults from the first shift\n\n");
    out.push_str(
        "A 10% canary for 15 min, then 100% with a 5 min lock-in. A faulty candidate is faulty from its first invocation; times are from the first shift. \
         \"before promotion\" is the share rolled back while the canary still had 10% (rollback entered before the promotion).\n\n",
    );
    out.push_str("| baseline errors | req/s | candidate | judge | runs | rolled back | before promotion | net | median min to rollback | p95 min to rollback | healthy duration (min) | transitions |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows.iter().filter(|r| r.cell.family == Family::Canary) {
        let extra =
            if matches!(r.who, Who::Judge(_)) { format!("{:.1}%", r.before_promotion * 100.0) } else { "-".into() };
        out.push_str(&row_line(r, &extra));
    }

    out.push_str("\n### Lock-in onset: faults 20 min into a 60 min lock-in\n\n");
    out.push_str(
        "A 10% canary for 15 min, then 100% with a 60 min lock-in. The candidate behaves like the stable version until 20 min into the lock-in \
         (35 min after the start), then regresses; times are from that onset. The A/A rows are the same 75-minute deployment with no fault; their times are from the first shift. \
         \"promoted\" counts the runs that ended with last-known-good set to the candidate (the deployment succeeded).",
    );
    if peers_reduced {
        out.push_str(&format!(
            " To keep the benchmark's run time down, the four other judges run at most {} deployments per A/A cell and {} per fault cell here; stepshift runs {} and {}.",
            args.peer_runs_aa_lock_in, args.peer_runs_lock_in, args.runs_aa, args.runs
        ));
    }
    out.push_str("\n\n");
    out.push_str("| baseline errors | req/s | candidate | judge | runs | rolled back | promoted | net | median min from onset | p95 min from onset | healthy duration (min) | transitions |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows.iter().filter(|r| r.cell.family == Family::LockIn) {
        let extra = if matches!(r.who, Who::Judge(_)) { r.promoted.to_string() } else { "-".into() };
        out.push_str(&row_line(r, &extra));
    }

    out.push_str(&ratios(rows));
    out.push_str(&targets(rows));
    out.push_str(&fast_path_targets(rows));
}

/// The handled-5xx family: its table, and what it shows.
fn handled(rows: &[Row]) -> String {
    let mut out = String::from("\n### Handled 500s: the built-in judge and a custom rule\n\n");
    out.push_str(&format!(
        "Family \"handled 5xx x5\": the canary shape (10% for 15 min, then 100% with a 5 min lock-in). Both versions fail {}% of invocations (Lambda's Errors); \
         the stable version answers a handled HTTP 500 to the share of its requests in the first column, the candidate to {HANDLED_FACTOR} times that share, from its first invocation. \
         Lambda counts a handled 500 as a success: only the function's own metrics, `Http5xx` and `Requests` per version, see it. \
         \"stepshift\" is the built-in judge (no custom rule in the request); \"stepshift + http-5xx rule\" adds `handled_5xx_rule()` to `health.metrics`: \
         Http5xx over Requests, `max_increase_percent: 0` (the sequential comparison with the stable version, with its share of the false-alarm budget) \
         and `max_percent: 2` (an absolute limit over the last 5 minutes, outside the budget). The A/A rows (the candidate as the stable version) run with the rule. \
         \"by its test\" and \"by its limit\" are the shares of runs rolled back with a cause that names the rule's comparison, or its limit and not the comparison. \
         The oracles know both handled rates.\n\n",
        HANDLED_LAMBDA_ERRORS * 100.0
    ));
    out.push_str("| stable handled 500s | req/s | candidate | judge | runs | rolled back | before promotion | by its test | by its limit | net | median min to rollback | p95 min to rollback | healthy duration (min) | transitions |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let family: Vec<&Row> = rows.iter().filter(|r| r.cell.family == Family::Handled5xx).collect();
    for r in &family {
        let share = |k: usize| pct(k as f64 / r.runs.max(1) as f64);
        let extra = if matches!(r.who, Who::Judge(_)) {
            format!("{} | {} | {}", pct(r.before_promotion), share(r.by_test), share(r.by_limit))
        } else {
            "- | - | -".into()
        };
        out.push_str(&row_line(r, &extra));
    }
    out.push_str("\nWhat it shows:\n\n");
    out.push_str(&false_rollbacks(&family, Judge::StepshiftRule, "of the handled 5xx x5 family"));
    for r in family.iter().filter(|r| r.is(Judge::StepshiftRule) && r.cell.fault != Fault::None) {
        let built_in = family.iter().find(|x| x.is(Judge::Stepshift) && x.cell.same(&r.cell));
        let (_, lagged) = with_oracles(rows, r);
        out.push_str(&format!(
            "- {}: built-in judge {} rolled back ({} promoted); with the rule {} rolled back, {} before the promotion, median {} min (p95 {}) from the first shift; CloudWatch-lag oracle {} min\n",
            r.cell.name(),
            built_in.map_or("-".into(), |b| pct(b.rolled_back)),
            built_in.map_or("-".into(), |b| pct(b.promoted as f64 / b.runs.max(1) as f64)),
            pct(r.rolled_back),
            pct(r.before_promotion),
            minutes(r.median_all()),
            minutes(r.quantile_all(0.95)),
            minutes(lagged.and_then(Row::median_all)),
        ));
    }
    out
}

/// The false-rollback target of one judge: at most 1% in every A/A cell, each cell with
/// its Wilson interval.
fn false_rollbacks(rows: &[&Row], judge: Judge, scope: &str) -> String {
    let aa: Vec<&Row> = rows.iter().copied().filter(|r| r.is(judge) && r.cell.fault == Fault::None).collect();
    let worst = aa.iter().copied().max_by(|a, b| a.rolled_back.total_cmp(&b.rolled_back));
    let mut out = format!(
        "- false rollbacks ≤ 1% in every A/A cell of {}, {scope}: worst {} ({}) — {}\n",
        judge.name(),
        worst.map_or("-".into(), |r| pct(r.rolled_back)),
        worst.map_or("-".into(), |r| r.cell.name()),
        verdict(aa.iter().all(|r| r.rolled_back <= 0.01))
    );
    for r in &aa {
        let (lo, hi) = wilson(r.rollbacks, r.runs);
        out.push_str(&format!(
            "  - {}: {} of {} = {} (95% Wilson interval {}-{})\n",
            r.cell.name(),
            r.rollbacks,
            r.runs,
            pct(r.rolled_back),
            pct(lo),
            pct(hi)
        ));
    }
    out
}

/// The fast path's targets (issue "Seconds, not minutes"): no more false rollbacks, and
/// detection close to the oracle that sees every invocation as it happens.
fn fast_path_targets(rows: &[Row]) -> String {
    let fast: Vec<&Row> = rows.iter().filter(|r| r.is(Judge::StepshiftTally)).collect();
    let mut out = String::from("\n### The fast path against the no-lag oracle\n\n");
    out.push_str(
        "\"stepshift + tally\" is the same judge with `health.fast_path.enabled`: the simulated tally publishes each version's 10-second \
         counts 3-30 s after the bucket ends, and checks run every 20 s. Times over all runs (a run never detected counts as never). \
         Target: median at most the larger of 1.5x the no-lag oracle's median and that median + 45 s; p95 at most the larger of 1.5x \
         its p95 and that p95 + 60 s.\n\n",
    );
    out.push_str("| shape | baseline errors | req/s | candidate | stepshift median | + tally median | oracle median | target | + tally p95 | oracle p95 | target | met |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let mut misses = Vec::new();
    let mut cells = 0;
    for r in fast.iter().filter(|r| r.cell.fault != Fault::None && r.cell.rps >= 10.0) {
        let (plain, _) = with_oracles(rows, r);
        let plain_row = rows.iter().find(|x| x.is(Judge::Stepshift) && x.cell.same(&r.cell));
        let (om, op) = (plain.and_then(Row::median_all), plain.and_then(|p| p.quantile_all(0.95)));
        let target_m = om.map(|m| ((1.5 * m as f64) as i64).max(m + 45));
        let target_p = op.map(|p| ((1.5 * p as f64) as i64).max(p + 60));
        let (m, p) = (r.median_all(), r.quantile_all(0.95));
        let within = |x: Option<i64>, t: Option<i64>| match (x, t) {
            (Some(x), Some(t)) => x <= t,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        let met = within(m, target_m) && within(p, target_p);
        let (b, rps, fault) = r.cell.label();
        if r.cell.family == Family::Canary {
            cells += 1;
            if !met {
                misses.push(r.cell.name());
            }
        }
        out.push_str(&format!(
            "| {} | {b} | {rps} | {fault} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.cell.family.name(),
            minutes(plain_row.and_then(Row::median_all)),
            minutes(m),
            minutes(om),
            minutes(target_m),
            minutes(p),
            minutes(op),
            minutes(target_p),
            verdict(met)
        ));
    }
    out.push_str("\nTargets for the fast path:\n\n");
    out.push_str(&false_rollbacks(&fast, Judge::StepshiftTally, "both shapes"));
    out.push_str(&format!(
        "- detection within the targets above in the canary shape's 10 and 100 req/s fault cells: {} of {cells} — {}{}\n",
        cells - misses.len(),
        verdict(misses.is_empty()),
        if misses.is_empty() { String::new() } else { format!(" (missed: {})", misses.join("; ")) }
    ));
    out
}

fn row_line(r: &Row, extra: &str) -> String {
    let (b, rps, fault) = r.cell.label();
    let judge = matches!(r.who, Who::Judge(_));
    let net = match r.net {
        Some(net) if judge && r.cell.fault != Fault::None => format!("{:.1}%", net * 100.0),
        _ => "-".to_owned(),
    };
    let transitions = r.transitions.map_or("-".to_owned(), |t| t.to_string());
    let name = if judge { r.who.name().to_owned() } else { format!("*{}*", r.who.name()) };
    format!(
        "| {b} | {rps} | {fault} | {name} | {} | {:.1}% | {extra} | {net} | {} | {} | {} | {transitions} |\n",
        r.runs,
        r.rolled_back * 100.0,
        minutes(r.median()),
        minutes(r.p95()),
        if judge { minutes(r.duration) } else { "-".into() },
    )
}

/// stepshift's row, and the two oracles' rows, of a fault cell.
fn with_oracles<'a>(rows: &'a [Row], ours: &'a Row) -> (Option<&'a Row>, Option<&'a Row>) {
    let find = |lag| rows.iter().find(|r| r.who == Who::Oracle { lag } && r.cell.same(&ours.cell));
    (find(false), find(true))
}

fn ratio(ours: &Row, oracle: Option<&Row>) -> Option<f64> {
    let o = oracle?.median_all()?;
    let s = ours.median_all()?;
    (o > 0).then(|| s as f64 / o as f64)
}

/// Whether the lag-aware oracle's median detection falls within the step the fault began in.
fn within_step(lagged: Option<&Row>) -> bool {
    lagged.and_then(Row::median_all).is_some_and(|m| {
        let c = &lagged.map(|r| r.cell).expect("some");
        c.onset() as i64 + m < c.family.step_end() as i64
    })
}

fn ratios(rows: &[Row]) -> String {
    let mut out = String::from("\n### Detection time against the oracles\n\n");
    out.push_str(
        "Medians over all runs, in minutes from the onset: a run never rolled back (or rolled back before the onset) counts as never, \
         so a median is \"-\" when half the runs or more are not detected. The ratio is stepshift's median over the oracle's. \
         \"in step\": the CloudWatch-lag oracle's median detection falls within the step in which the fault began (the canary's 15 min; the lock-in).\n\n",
    );
    out.push_str("| shape | baseline errors | req/s | candidate | stepshift | oracle, no lag | ratio | oracle, CloudWatch lag | ratio | in step |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    for ours in rows
        .iter()
        .filter(|r| r.is(Judge::Stepshift) && r.cell.fault != Fault::None && r.cell.family != Family::Handled5xx)
    {
        let (b, rps, fault) = ours.cell.label();
        let (plain, lagged) = with_oracles(rows, ours);
        let x = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{r:.2}x"));
        out.push_str(&format!(
            "| {} | {b} | {rps} | {fault} | {} | {} | {} | {} | {} | {} |\n",
            ours.cell.family.name(),
            minutes(ours.median_all()),
            minutes(plain.and_then(Row::median_all)),
            x(ratio(ours, plain)),
            minutes(lagged.and_then(Row::median_all)),
            x(ratio(ours, lagged)),
            if within_step(lagged) { "yes" } else { "no" }
        ));
    }
    out
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn targets(rows: &[Row]) -> String {
    let ours: Vec<&Row> =
        rows.iter().filter(|r| r.is(Judge::Stepshift) && r.cell.family != Family::Handled5xx).collect();
    let find = |family: Family, baseline: f64, rps: f64, fault: Fault| {
        ours.iter().copied().find(|r| {
            r.cell.family == family && r.cell.baseline == baseline && r.cell.rps == rps && r.cell.fault == fault
        })
    };
    let mut out = String::from(
        "\nTargets for stepshift's judge (\"no worse\" compares false rollbacks in A/A cells, and net detection, then median time, in the others):\n\n",
    );

    // 1. False rollbacks.
    out.push_str(&false_rollbacks(&ours, Judge::Stepshift, "both shapes"));

    // 2. A regression late in the lock-in.
    let late = find(Family::LockIn, 0.01, 10.0, Fault::Errors(5.0));
    let ok = late.is_some_and(|r| r.rolled_back >= 0.95 && r.median_all().is_some_and(|m| m <= 360) && r.promoted == 0);
    out.push_str(&format!(
        "- lock-in onset, errors 5x at 10 req/s, 1% baseline: ≥ 95% rolled back, median ≤ 6 min from the onset, never promoted: {} rolled back, median {} min, {} promoted — {}\n",
        late.map_or("-".into(), |r| pct(r.rolled_back)),
        minutes(late.and_then(Row::median_all)),
        late.map_or("-".into(), |r| r.promoted.to_string()),
        verdict(ok)
    ));

    // 3. Latency caught in the canary.
    let slow: Vec<&Row> =
        [0.001, 0.01].into_iter().filter_map(|b| find(Family::Canary, b, 10.0, Fault::Latency(3.0))).collect();
    let ok = !slow.is_empty() && slow.iter().all(|r| r.before_promotion >= 0.95);
    out.push_str(&format!(
        "- p99 3x at 10 req/s, canary shape: ≥ 95% rolled back before promotion: {} — {}\n",
        slow.iter()
            .map(|r| format!("{} at a {}% baseline", pct(r.before_promotion), r.cell.baseline * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        verdict(ok)
    ));

    // 4. Against the lag-aware oracle.
    let mut in_scope = 0;
    let mut out_of_scope = Vec::new();
    let mut slower = Vec::new();
    for r in ours.iter().filter(|r| r.cell.fault != Fault::None && r.cell.rps >= 10.0) {
        let (_, lagged) = with_oracles(rows, r);
        if !within_step(lagged) {
            out_of_scope.push(r.cell.name());
            continue;
        }
        in_scope += 1;
        let o = lagged.and_then(Row::median_all);
        if ratio(r, lagged).is_none_or(|x| x > RATIO_TARGET) {
            // The oracle decides the second a minute arrives; a judge checked once a
            // minute sees it at the next check.
            let cadence = match (r.median_all(), o) {
                (Some(s), Some(o)) if s - o <= 60 => ", within one check interval",
                _ => "",
            };
            slower.push(format!(
                "{}: {} min against {} min ({}{cadence})",
                r.cell.name(),
                minutes(r.median_all()),
                minutes(o),
                ratio(r, lagged)
                    .map_or("stepshift detects in fewer than half the runs".to_owned(), |x| format!("{x:.3}x"))
            ));
        }
    }
    out.push_str(&format!(
        "- median detection ≤ {RATIO_TARGET}x the CloudWatch-lag oracle's median in the 10 and 100 req/s fault cells where that oracle detects within the step the fault began in ({in_scope} cells): {} ({} exceptions{})\n",
        verdict(slower.is_empty()),
        slower.len(),
        if slower.is_empty() { String::new() } else { format!(": {}", slower.join("; ")) }
    ));
    if !out_of_scope.is_empty() {
        out.push_str(&format!(
            "  - not in scope (the oracle's median is past the step's end, or it detects in fewer than half the runs): {}\n",
            out_of_scope.join("; ")
        ));
    }

    // 5. Against each other judge, cell by cell: no worse on false rollbacks (A/A) or
    // on detection rate and time (faults), strictly better on at least one.
    let mut worse = Vec::new();
    let mut better_cells = 0;
    let mut all_cells = 0;
    for ours in &ours {
        let others: Vec<&Row> = rows
            .iter()
            .filter(|r| matches!(r.who, Who::Judge(j) if !j.is_stepshift()) && r.cell.same(&ours.cell))
            .collect();
        all_cells += 1;
        let mut strictly = false;
        for o in others {
            let t = |r: &Row| r.median().unwrap_or(i64::MAX);
            let net = |r: &Row| r.net.unwrap_or(0.0);
            let (no_worse, better) = if ours.cell.fault == Fault::None {
                (ours.rolled_back <= o.rolled_back + 0.005, ours.rolled_back + 0.005 < o.rolled_back)
            } else if net(ours) <= 0.02 && net(o) <= 0.02 {
                // Neither detects the regression beyond its false rollbacks: a tie.
                (true, false)
            } else {
                // Net detection first; among judges that detect as often, the median time.
                let more = net(ours) > net(o) + 0.02;
                let fewer = net(ours) + 0.02 < net(o);
                (
                    !fewer && (more || t(ours) <= t(o).saturating_add(30)),
                    more || (!fewer && t(ours).saturating_add(30) < t(o)),
                )
            };
            if !no_worse {
                let why = if ours.cell.fault == Fault::None {
                    format!("false rollbacks {} against {}", pct(ours.rolled_back), pct(o.rolled_back))
                } else {
                    format!(
                        "net {} against {}, median {} against {} min",
                        pct(net(ours)),
                        pct(net(o)),
                        minutes(ours.median()),
                        minutes(o.median())
                    )
                };
                worse.push(format!("{} vs {} ({why})", ours.cell.name(), o.who.name()));
            }
            strictly |= better;
        }
        if strictly {
            better_cells += 1;
        }
    }
    out.push_str(&format!(
        "- no worse than each other judge in any cell: {} ({} exceptions{})\n",
        verdict(worse.is_empty()),
        worse.len(),
        if worse.is_empty() { String::new() } else { format!(": {}", worse.join("; ")) }
    ));
    out.push_str(&format!("- strictly better than at least one other judge in {better_cells} of {all_cells} cells\n"));
    out
}

fn write_section(path: &PathBuf, table: &str) {
    const BEGIN: &str = "<!-- judge:begin -->";
    const END: &str = "<!-- judge:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let section = format!("{BEGIN}\n{table}\n{END}");
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &text[..b], &text[e + END.len()..]),
        _ => format!("{text}\n## Health judge\n\n{section}\n"),
    };
    if let Err(e) = std::fs::write(path, new) {
        eprintln!("could not write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_by_hand() {
        // 5 of 1000, z = 1.96: centre (0.005 + 0.0019207) / 1.0038415 = 0.0068946,
        // half 1.9524 · sqrt(0.005·0.995/1000 + 3.8415/4e6) = 0.0047567.
        let (lo, hi) = wilson(5, 1000);
        assert!((lo - 0.002_137_5).abs() < 1e-6, "{lo}");
        assert!((hi - 0.011_651_0).abs() < 1e-6, "{hi}");
        // None of 1000: the upper end is z²/n / (1 + z²/n) = 0.0038268.
        let (lo, hi) = wilson(0, 1000);
        assert!(lo.abs() < 1e-12);
        assert!((hi - 0.003_826_8).abs() < 1e-6, "{hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn slow_shares_of_the_latency_faults() {
        // σ = ln 4.5 / 2.3263 = 0.64655; 3x: 1 - Φ(2.3263 - ln 3 / σ) = 1 - Φ(0.6272).
        assert!((slow_share(1.0) - 0.01).abs() < 1e-6);
        assert!((slow_share(2.0) - 0.104_874).abs() < 1e-5);
        assert!((slow_share(3.0) - 0.265_287).abs() < 1e-5);
    }

    #[test]
    fn medians_count_misses_as_never() {
        let cell = cells()[0];
        let row = |times: Vec<i64>, runs| oracle_row(cell, true, runs, times);
        assert_eq!(row(vec![60, 120, 180], 4).median_all(), Some(120));
        assert_eq!(row(vec![60, 120, 180], 4).median(), Some(120));
        assert_eq!(row(vec![60, 120], 5).median_all(), None);
        assert_eq!(row(vec![60, 120], 5).median(), Some(60));
    }

    #[test]
    fn causes_name_the_rule_by_its_test_or_its_limit() {
        let test = "orders:live version 42 http-5xx is 5.1x the rate of version 41 over the same minutes (9 in 900; \
                    evidence 230 against a threshold of 200)";
        let limit = "orders:live version 42 http-5xx 2.33% is above 2% (7 in 300 over 09:10-09:15)";
        assert!(names_test(test, "http-5xx") && !names_limit(test, "http-5xx"));
        assert!(names_limit(limit, "http-5xx") && !names_test(limit, "http-5xx"));
        assert!(names_limit(&format!("{test}; {limit}"), "http-5xx"));
        assert!(!names_limit("orders:live version 42 errors 2.1% is above 2%", "http-5xx"));
        assert_eq!(rule_name(), "http-5xx");
    }

    #[test]
    fn the_first_cells_keep_their_seeds() {
        let all = cells();
        let first = all.iter().find(|c| c.seed_index == 0).expect("a first cell");
        assert_eq!((first.family, first.baseline, first.rps, first.fault), (Family::Canary, 0.001, 1.0, Fault::None));
        let p99 = all.iter().find(|c| c.seed_index == 5).expect("a sixth cell");
        assert_eq!(p99.fault, Fault::Latency(3.0));
        assert_eq!(all.len(), 36 + 6 + 24 + 8);
        assert!(all.iter().filter(|c| c.family == Family::Handled5xx).all(|c| c.seed_index >= 66));
    }
}
