//! `stepshift-bench`: figures about stepshift, printed as Markdown tables.
//!
//! - `runner`: state transitions of healthy deployments per strategy, and how many
//!   simulated one-hour deployments the local runner completes per second.
//! - `judge`: stepshift's health judge against the usual alternatives, on the same
//!   simulated traffic: false rollbacks, detection rate and time, for faults from the
//!   first shift and late in a long lock-in, with an oracle's times for reference.
//! - `faults`: the randomized fault campaign at scale: faults injected by kind,
//!   invariant violations, Lambda control-plane calls per traffic step.
//! - `scale`: many deployments started at once in one account whose Lambda and SSM
//!   quotas throttle: invariants, throttles absorbed, step delays, bursts.

mod judge_bench;
mod judges;
mod lambda_bench;
mod oracle;
mod scale_bench;

use std::time::Instant;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use stepshift_core::State;
use stepshift_local::scenario::orders_request;
use stepshift_local::sim::{Behavior, VersionModel};
use stepshift_local::{Scenario, Simulation};

#[derive(Parser)]
#[command(about = "stepshift benchmarks (figures, not tests)")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// The judges compared: false rollbacks and detection, per traffic and regression.
    Judge(judge_bench::Args),
    /// The task Lambdas: sizes, init time, invocation latency, peak memory.
    Lambda(lambda_bench::Args),
    /// Random deployments under random faults, with every invariant checked.
    Faults {
        /// Deployments to run.
        #[arg(long, default_value_t = 2000)]
        deployments: u32,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Many deployments at once in one throttling account.
    Scale(scale_bench::Args),
    /// Transitions per strategy, and simulated deployments per second.
    Runner {
        /// Deployments to time.
        #[arg(long, default_value_t = 200)]
        deployments: u32,
    },
}

/// A healthy release of orders:live for the runner's figures.
fn scenario(seed: u64, rps: f64) -> Scenario {
    Scenario::orders(VersionModel::steady(Behavior::default())).with_seed(seed).with_rps(rps)
}

fn runner(deployments: u32) {
    println!("## Healthy deployments: state transitions\n");
    println!("| strategy | lock-in | transitions | traffic steps | per traffic step | simulated duration |");
    println!("|---|---|---|---|---|---|");
    for strategy in ["all-at-once", "canary-10-5m", "canary-10-30m", "linear-10-every-1m", "linear-10-every-10m"] {
        for lock_in in [0, 300] {
            let o = Simulation::new(scenario(1, 20.0))
                .expect("the ASL loads")
                .run(orders_request(json!(strategy), lock_in));
            assert_eq!(o.status, "SUCCEEDED", "{strategy}: {:?}", o.cause);
            let shifts = o.path.iter().filter(|p| **p == State::ShiftTraffic).count();
            // States entered from the first shift up to the promotion, per shift.
            let first = o.path.iter().position(|p| *p == State::ShiftTraffic);
            let promote = o.path.iter().position(|p| *p == State::Promote).unwrap_or(o.path.len());
            let per_step = first.map_or("-".to_owned(), |f| format!("{:.1}", (promote - f) as f64 / shifts as f64));
            println!(
                "| {strategy} | {lock_in} s | {} | {shifts} | {per_step} | {} min |",
                o.transitions,
                o.duration_seconds / 60
            );
        }
    }
    // A one-hour deployment: 10% steps every 6 minutes (54 min) plus a 6-minute lock-in.
    let hour: Vec<Value> = (1..=10)
        .map(|i| {
            if i < 10 { json!({"weight_percent": i * 10, "bake_seconds": 360}) } else { json!({"weight_percent": 100}) }
        })
        .collect();
    for rps in [10.0, 100.0] {
        let started = Instant::now();
        let mut transitions = 0;
        for seed in 0..u64::from(deployments) {
            let o = Simulation::new(scenario(seed, rps))
                .expect("the ASL loads")
                .run(orders_request(json!(hour.clone()), 360));
            assert_eq!(o.status, "SUCCEEDED");
            assert!(o.duration_seconds >= 3600);
            transitions += o.transitions;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "\n{deployments} simulated one-hour deployments at {rps} requests/s: {secs:.2} s, {:.0} deployments/s ({} transitions each)",
            f64::from(deployments) / secs,
            transitions / u64::from(deployments)
        );
    }
}

fn faults(deployments: u32, seed: u64) {
    let started = Instant::now();
    let r = stepshift_local::campaign::run(seed, deployments);
    println!("## Fault campaign\n");
    println!(
        "Command: `make bench-faults` (`cargo run --release -p stepshift-bench -- faults --deployments {deployments} --seed {seed}`), {:.0} s.\n",
        started.elapsed().as_secs_f64()
    );
    println!("- deployments run: {}", r.deployments);
    let injected: u32 = r.faults_injected.values().sum();
    println!(
        "- faults injected: {injected}, of which {} struck (the rest targeted calls that never came)",
        r.faults_struck
    );
    for (kind, n) in &r.faults_injected {
        println!("  - {kind}: {n}");
    }
    println!("- how the deployments ended:");
    for (end, n) in &r.outcomes {
        println!("  - {end}: {n}");
    }
    println!("- invariant violations: {}", r.violations.len());
    for v in r.violations.iter().take(20) {
        println!("  - seed {}: {}", v.seed, v.message);
    }
    let per_step = r.control_plane_calls as f64 / r.traffic_steps.max(1) as f64;
    println!(
        "- Lambda control-plane calls: {} over {} traffic steps: {per_step:.2} per step on average, {:.1} at most (retries included)",
        r.control_plane_calls, r.traffic_steps, r.max_calls_per_step
    );
}

fn main() {
    match Args::parse().bench {
        Bench::Judge(args) => judge_bench::run(&args),
        Bench::Lambda(args) => lambda_bench::run(&args),
        Bench::Faults { deployments, seed } => faults(deployments, seed),
        Bench::Runner { deployments } => runner(deployments),
        Bench::Scale(args) => scale_bench::run(&args),
    }
}
