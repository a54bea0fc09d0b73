//! `stepshift-bench judge`: every judge on the same simulated deployments.
//!
//! One deployment: a 10% canary for 15 minutes, then 100% with a 5-minute lock-in,
//! checked every minute; CloudWatch delivers each minute's metrics 1 to 4 minutes late.
//! A faulty candidate is faulty from its first invocation, so "time to rollback" counts
//! from the first shift.

use std::path::PathBuf;

use serde_json::{Value, json};
use stepshift_local::sim::Behavior;
use stepshift_local::{Outcome, Scenario, Simulation};

use crate::judges::{ALL, Judge};

/// Flags of `judge`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Deployments per A/A cell (the candidate as good as the stable version).
    #[arg(long, default_value_t = 1000)]
    pub runs_aa: u32,
    /// Deployments per cell with a regression.
    #[arg(long, default_value_t = 200)]
    pub runs: u32,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Also write the table into this Markdown file, between its judge markers.
    #[arg(long)]
    pub write: Option<PathBuf>,
    /// Seed of the whole benchmark.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// A/A: the candidate behaves like the stable version.
    None,
    /// The candidate's error rate times this.
    Errors(f64),
    /// The candidate's latency times this.
    Latency(f64),
}

#[derive(Clone, Copy, Debug)]
struct Cell {
    baseline: f64,
    rps: f64,
    fault: Fault,
}

impl Cell {
    fn label(&self) -> (String, String, String) {
        let fault = match self.fault {
            Fault::None => "A/A".to_owned(),
            Fault::Errors(m) => format!("errors {m}x"),
            Fault::Latency(m) => format!("p99 {m}x"),
        };
        (format!("{}%", self.baseline * 100.0), format!("{}", self.rps), fault)
    }
}

fn cells() -> Vec<Cell> {
    let mut out = Vec::new();
    for baseline in [0.001, 0.01] {
        for rps in [1.0, 10.0, 100.0] {
            for fault in [
                Fault::None,
                Fault::Errors(2.0),
                Fault::Errors(3.0),
                Fault::Errors(5.0),
                Fault::Errors(10.0),
                Fault::Latency(3.0),
            ] {
                out.push(Cell { baseline, rps, fault });
            }
        }
    }
    out
}

fn scenario(cell: &Cell, seed: u64) -> Scenario {
    let stable =
        Behavior { error_rate: cell.baseline, latency_p50_ms: 40.0, latency_p99_ms: 180.0, throttle_rate: 0.0 };
    let candidate = match cell.fault {
        Fault::None => stable.clone(),
        Fault::Errors(m) => Behavior { error_rate: (cell.baseline * m).min(1.0), ..stable.clone() },
        Fault::Latency(m) => Behavior { latency_p50_ms: 40.0 * m, latency_p99_ms: 180.0 * m, ..stable.clone() },
    };
    crate::orders_release(seed, cell.rps, stable, candidate, (60, 240))
}

fn request() -> Value {
    json!({
        "schema": 1,
        "targets": [{"function": "orders", "alias": "live", "version": "42"}],
        "strategy": [{"weight_percent": 10, "bake_seconds": 900}, {"weight_percent": 100}],
        "lock_in_seconds": 300,
        "health": {"check_interval_seconds": 60}
    })
}

/// One deployment's result.
struct Run {
    rolled_back: bool,
    seconds_to_rollback: Option<i64>,
    duration: i64,
    transitions: u64,
}

fn deploy(cell: &Cell, judge: Judge, seed: u64) -> Run {
    let mut sim = Simulation::new(scenario(cell, seed)).expect("the ASL loads");
    sim.env.check_override = judge.check(cell.baseline);
    let o: Outcome = sim.run(request());
    let start = o.history.first().map(|e| e.timestamp).unwrap_or_default();
    let seconds_to_rollback = o
        .history
        .iter()
        .find(|e| e.kind == "TaskStateEntered" && e.details["name"] == "Roll back")
        .map(|e| e.timestamp.secs_since(start));
    Run {
        rolled_back: o.status != "SUCCEEDED",
        seconds_to_rollback,
        duration: o.duration_seconds,
        transitions: o.transitions,
    }
}

/// A cell's figures for one judge.
struct Row {
    cell: Cell,
    judge: Judge,
    runs: usize,
    rolled_back: f64,
    /// Rolled back minus this judge's false rollback rate in the A/A cell of the same
    /// baseline and traffic: what it detects beyond rolling back anyway.
    net: f64,
    median: Option<i64>,
    p95: Option<i64>,
    duration: Option<i64>,
    transitions: u64,
}

fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

fn summarize(cell: Cell, judge: Judge, runs: &[Run]) -> Row {
    let mut times: Vec<i64> = runs.iter().filter_map(|r| r.seconds_to_rollback).collect();
    times.sort_unstable();
    let mut durations: Vec<i64> = runs.iter().filter(|r| !r.rolled_back).map(|r| r.duration).collect();
    durations.sort_unstable();
    let mut transitions: Vec<u64> = runs.iter().map(|r| r.transitions).collect();
    transitions.sort_unstable();
    Row {
        cell,
        judge,
        runs: runs.len(),
        rolled_back: runs.iter().filter(|r| r.rolled_back).count() as f64 / runs.len().max(1) as f64,
        net: 0.0,
        median: quantile(&times, 0.5),
        p95: quantile(&times, 0.95),
        duration: quantile(&durations, 0.5),
        transitions: transitions.get(transitions.len() / 2).copied().unwrap_or(0),
    }
}

fn minutes(s: Option<i64>) -> String {
    s.map_or("-".into(), |s| format!("{:.1}", s as f64 / 60.0))
}

/// Runs the benchmark and prints (and optionally writes) the table.
pub fn run(args: &Args) {
    let jobs: Vec<(Cell, Judge)> = cells().into_iter().flat_map(|c| ALL.into_iter().map(move |j| (c, j))).collect();
    let started = std::time::Instant::now();
    let rows: Vec<Row> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<(usize, Cell, Judge)>> = (0..args.threads.max(1))
            .map(|t| {
                jobs.iter()
                    .enumerate()
                    .filter(|(i, _)| i % args.threads.max(1) == t)
                    .map(|(i, (c, j))| (i, *c, *j))
                    .collect()
            })
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, cell, judge)| {
                            let n = if cell.fault == Fault::None { args.runs_aa } else { args.runs };
                            // The same seeds for every judge: the same traffic.
                            let cell_seed =
                                args.seed.wrapping_mul(1_000_003).wrapping_add((i / ALL.len()) as u64 * 7919);
                            let runs: Vec<Run> =
                                (0..n).map(|k| deploy(&cell, judge, cell_seed.wrapping_add(u64::from(k)))).collect();
                            (i, summarize(cell, judge, &runs))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Row)> = handles.into_iter().flat_map(|h| h.join().expect("a worker")).collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let aa: Vec<(Cell, Judge, f64)> =
        rows.iter().filter(|r| r.cell.fault == Fault::None).map(|r| (r.cell, r.judge, r.rolled_back)).collect();
    let mut rows = rows;
    for r in &mut rows {
        let base = aa.iter().find(|(c, j, _)| *j == r.judge && c.baseline == r.cell.baseline && c.rps == r.cell.rps);
        r.net = r.rolled_back - base.map_or(0.0, |(_, _, rate)| *rate);
    }
    let table = render(&rows, args, started.elapsed());
    println!("{table}");
    if let Some(path) = &args.write {
        write_section(path, &table);
    }
}

fn render(rows: &[Row], args: &Args, took: std::time::Duration) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Command: `make bench-judge` (`cargo run --release -p stepshift-bench -- judge --runs-aa {} --runs {} --seed {}`), {:.0} s on this machine.\n\n",
        args.runs_aa,
        args.runs,
        args.seed,
        took.as_secs_f64()
    ));
    out.push_str("One deployment: 10% canary for 15 min, then 100% with a 5 min lock-in, checked every minute; metrics arrive 1-4 min late. ");
    out.push_str("\"rolled back\" is the false rollback rate in A/A rows and the detection rate otherwise; times are from the first shift (the fault's onset) to the rollback.\n\n");
    out.push_str("\"net\" is the detection rate minus the same judge's false rollback rate at the same baseline and traffic: what it catches beyond rolling back anyway.\n\n");
    out.push_str("| baseline errors | req/s | candidate | judge | runs | rolled back | net | median min to rollback | p95 min to rollback | healthy duration (min) | transitions |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let (b, rps, fault) = r.cell.label();
        let net = if r.cell.fault == Fault::None { "-".to_owned() } else { format!("{:.1}%", r.net * 100.0) };
        out.push_str(&format!(
            "| {b} | {rps} | {fault} | {} | {} | {:.1}% | {net} | {} | {} | {} | {} |\n",
            r.judge.name(),
            r.runs,
            r.rolled_back * 100.0,
            minutes(r.median),
            minutes(r.p95),
            minutes(r.duration),
            r.transitions
        ));
    }
    out.push_str(&targets(rows));
    out
}

fn targets(rows: &[Row]) -> String {
    let ours =
        |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| r.judge == Judge::Stepshift && f(r)).collect::<Vec<_>>();
    let aa = ours(&|r| r.cell.fault == Fault::None);
    let worst_aa = aa.iter().map(|r| r.rolled_back).fold(0.0, f64::max);
    let cell = |m: f64| {
        ours(&|r| r.cell.baseline == 0.01 && r.cell.rps == 10.0 && r.cell.fault == Fault::Errors(m)).into_iter().next()
    };
    let within = |row: Option<&Row>, limit: i64| {
        row.and_then(|r| r.p95.map(|p| p <= limit && r.rolled_back >= 0.95)).unwrap_or(false)
    };
    let mut out = String::from(
        "\nTargets for stepshift's judge (\"no worse\" compares false rollbacks in A/A cells, and net detection, then median time, in the others):\n\n",
    );
    out.push_str(&format!(
        "- false rollback rate ≤ 1% in every A/A cell: worst {:.1}% — {}\n",
        worst_aa * 100.0,
        if worst_aa <= 0.01 { "met" } else { "NOT met" }
    ));
    out.push_str(&format!(
        "- 10 req/s, 1% baseline, 5x: rolled back within 5 min of onset in ≥ 95% of runs (p95 {} min, {:.0}% detected) — {}\n",
        minutes(cell(5.0).and_then(|r| r.p95)),
        cell(5.0).map_or(0.0, |r| r.rolled_back * 100.0),
        if within(cell(5.0), 300) { "met" } else { "NOT met" }
    ));
    out.push_str(&format!(
        "- 10 req/s, 1% baseline, 3x: within 15 min (p95 {} min, {:.0}% detected) — {}\n",
        minutes(cell(3.0).and_then(|r| r.p95)),
        cell(3.0).map_or(0.0, |r| r.rolled_back * 100.0),
        if within(cell(3.0), 900) { "met" } else { "NOT met" }
    ));
    // Compared with each other judge, cell by cell: no worse on false rollbacks (A/A)
    // or on detection rate and time (faults), strictly better on at least one.
    let mut worse = Vec::new();
    let mut better_cells = 0;
    let mut all_cells = 0;
    for ours in rows.iter().filter(|r| r.judge == Judge::Stepshift) {
        let others: Vec<&Row> =
            rows.iter().filter(|r| r.judge != Judge::Stepshift && same(&r.cell, &ours.cell)).collect();
        all_cells += 1;
        let mut strictly = false;
        for o in others {
            let (no_worse, better) = if ours.cell.fault == Fault::None {
                (ours.rolled_back <= o.rolled_back + 0.005, ours.rolled_back + 0.005 < o.rolled_back)
            } else if ours.net <= 0.02 && o.net <= 0.02 {
                // Neither detects the regression beyond its false rollbacks: a tie.
                (true, false)
            } else {
                // Net detection first; among judges that detect as often, the median time.
                let t = |r: &Row| r.median.unwrap_or(i64::MAX);
                let more = ours.net > o.net + 0.02;
                let fewer = ours.net + 0.02 < o.net;
                (
                    !fewer && (more || t(ours) <= t(o).saturating_add(30)),
                    more || (!fewer && t(ours).saturating_add(30) < t(o)),
                )
            };
            if !no_worse {
                let (b, rps, fault) = ours.cell.label();
                worse.push(format!("{b}/{rps} req/s/{fault} vs {}", o.judge.name()));
            }
            strictly |= better;
        }
        if strictly {
            better_cells += 1;
        }
    }
    out.push_str(&format!(
        "- no worse than each other judge in any cell: {} ({} exceptions{})\n",
        if worse.is_empty() { "met" } else { "NOT met" },
        worse.len(),
        if worse.is_empty() { String::new() } else { format!(": {}", worse.join("; ")) }
    ));
    out.push_str(&format!("- strictly better than at least one other judge in {better_cells} of {all_cells} cells\n"));
    out
}

fn same(a: &Cell, b: &Cell) -> bool {
    a.baseline == b.baseline && a.rps == b.rps && a.fault == b.fault
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
