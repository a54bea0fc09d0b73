//! `scale`: many deployments started at once in one account ([`stepshift_local::fleet`]),
//! against Lambda's and Parameter Store's rate quotas, with the fault campaign's random
//! faults on top. Prints a Markdown section for docs/benchmarks.md.

use std::time::Instant;

use serde_json::Value;
use stepshift_core::ErrorName;
use stepshift_core::memory::quota::Quota;
use stepshift_local::fleet::{self, FleetOptions, FleetReport};
use stepshift_local::runner::DEPLOYMENT_ASL;

/// The options of `stepshift-bench scale`.
#[derive(clap::Args)]
pub struct Args {
    /// Deployments started at once in each fleet.
    #[arg(long, default_value_t = 50)]
    deployments: usize,
    /// Fleets per row (each with its own seeds).
    #[arg(long, default_value_t = 20)]
    fleets: u32,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The state machine as it was before throttling had a retrier of its own: one retrier
/// for every transient error ([`ErrorName::TRANSIENT`]) with the other transient errors'
/// attempts and cap (6 and 60 s; the rollback's 10 and 120 s).
fn one_transient_retrier(asl: &str) -> String {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(retry)) = map.get_mut("Retry") {
                    let throttling: Vec<Value> = ErrorName::THROTTLING.iter().map(|e| e.as_str().into()).collect();
                    if retry.len() > 1 && retry[0]["ErrorEquals"] == Value::Array(throttling) {
                        retry.remove(0);
                        let all: Vec<Value> = ErrorName::TRANSIENT.iter().map(|e| e.as_str().into()).collect();
                        retry[0]["ErrorEquals"] = Value::Array(all);
                    }
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut machine: Value = serde_json::from_str(asl).expect("the production ASL is JSON");
    walk(&mut machine);
    machine.to_string()
}

/// `fleets` fleets of `options`, from seeds `seed`, `seed + 1000`, ..., merged.
fn fleets(options: &FleetOptions, fleets: u32) -> FleetReport {
    let mut all = FleetReport::default();
    for k in 0..u64::from(fleets) {
        let r = fleet::run(&FleetOptions { seed: options.seed + 1000 * k, ..options.clone() });
        all.deployments += r.deployments;
        all.violations.extend(r.violations);
        all.failed_for_throttling.extend(r.failed_for_throttling);
        all.throttled_attempts += r.throttled_attempts;
        all.throttled_finally += r.throttled_finally;
        all.step_delays_ms.extend(r.step_delays_ms);
        all.clock_went_back += r.clock_went_back;
        all.faults_injected += r.faults_injected;
        all.faults_struck += r.faults_struck;
        all.control_plane_calls += r.control_plane_calls;
        for (end, n) in r.outcomes {
            *all.outcomes.entry(end).or_default() += n;
        }
        for (name, usage) in r.quotas {
            let u = all.quotas.entry(name).or_default();
            u.calls += usage.calls;
            u.throttled += usage.throttled;
            u.largest_burst = u.largest_burst.max(usage.largest_burst);
            u.largest_admitted = u.largest_admitted.max(usage.largest_admitted);
        }
    }
    all
}

/// Runs the rows and prints the section.
pub fn run(args: &Args) {
    let started = Instant::now();
    let n = args.deployments;
    let base = FleetOptions::new(n, args.seed);
    let previous = one_transient_retrier(DEPLOYMENT_ASL);
    // Quotas that never throttle, so that the row without them still counts the bursts.
    let counted: Vec<Quota> =
        fleet::ACCOUNT_QUOTAS.iter().map(|q| Quota { per_second: 1e12, burst: 1e12, ..*q }).collect();
    let rows: Vec<(String, FleetOptions, u32)> = vec![
        (
            format!("{n} at once, no quotas (faults only)"),
            FleetOptions { quotas: counted, ..base.clone() },
            args.fleets,
        ),
        (
            format!("{n} at once, quotas, no faults (throttling alone)"),
            FleetOptions { faults: false, ..base.clone() },
            args.fleets,
        ),
        (
            format!("{n} at once, quotas and faults, the previous retry policy"),
            FleetOptions { asl: Some(previous), ..base.clone() },
            args.fleets,
        ),
        (format!("**{n} at once, quotas and faults (stepshift)**"), base.clone(), args.fleets),
        (
            format!("{} at once, quotas and faults (stepshift)", 2 * n),
            FleetOptions { deployments: 2 * n, ..base.clone() },
            args.fleets.div_ceil(2),
        ),
    ];
    let mut table = Vec::new();
    let mut worst: Vec<String> = Vec::new();
    let mut counts: Vec<String> = Vec::new();
    for (label, options, count) in &rows {
        let r = fleets(options, *count);
        let usage = |name: &str| r.quotas.get(name).cloned().unwrap_or_default();
        let (lambda, ssm) = (
            usage(stepshift_core::memory::quota::LAMBDA_CONTROL_PLANE.name),
            usage(stepshift_core::memory::quota::PARAMETER_STORE.name),
        );
        table.push(format!(
            "| {label} | {} | {} | {} | {} / {} | {} | {:.1} / {:.1} / {:.1} s | {} ({} admitted) | {} ({} admitted) | {} |",
            r.deployments,
            r.violations.len(),
            r.failed_for_throttling.len(),
            lambda.throttled,
            ssm.throttled,
            r.throttled_attempts,
            r.step_delay_percentile(50.0),
            r.step_delay_percentile(95.0),
            r.step_delay_percentile(100.0),
            lambda.largest_burst,
            lambda.largest_admitted,
            ssm.largest_burst,
            ssm.largest_admitted,
            r.clock_went_back,
        ));
        counts.push(format!(
            "- {label}: {} faults injected, {} of them struck; {} Lambda control-plane calls.",
            r.faults_injected, r.faults_struck, r.control_plane_calls
        ));
        for v in r.violations.iter().chain(&r.failed_for_throttling).take(5) {
            worst.push(format!("- {label}, seed {}: {}", v.seed, v.message));
        }
    }

    println!("## Many deployments at once (`make bench-scale`)\n");
    println!(
        "Command: `make bench-scale` (`cargo run --release -p stepshift-bench -- scale --deployments {n} --fleets {} --seed {}`), {:.0} s.\n",
        args.fleets,
        args.seed,
        started.elapsed().as_secs_f64()
    );
    println!(
        "Each fleet starts the fault campaign's random deployments at the same instant in one simulated account, each on \
         functions of its own, interleaved on one virtual clock. The account throttles Lambda's control plane above 15 \
         requests/s and Parameter Store above 40/s (token buckets holding one second's worth). Every deployment is checked \
         against the campaign's six invariants. Retries are the state machine's own: the AWS SDK's, which a real task makes \
         first, are not simulated. A step's delay is the time from entering a shift or promotion to leaving it, less one \
         task invocation. Bursts count the calls that reached a quota in one second of the clock, throttled included (without quotas, the calls made). \
         Target, for 50 at once: no invariant violation, and no deployment failing for throttling.\n"
    );
    println!(
        "| fleet | deployments | invariant violations | failed for throttling | throttled calls (Lambda / SSM) | task attempts retried after throttling | step delay p50 / p95 / max | largest Lambda burst per second | largest SSM burst per second | clock went back |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in &table {
        println!("{row}");
    }
    println!("\nFaults and calls by row (the faults are the campaign's, spread over the interleaved calls):\n");
    for c in &counts {
        println!("{c}");
    }
    if !worst.is_empty() {
        println!("\nFirst failures by row:\n");
        for w in &worst {
            println!("{w}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_policy_has_one_transient_retrier() {
        let previous: Value = serde_json::from_str(&one_transient_retrier(DEPLOYMENT_ASL)).unwrap();
        let shift = &previous["States"][stepshift_core::State::ShiftTraffic.as_str()]["Retry"];
        assert_eq!(shift.as_array().unwrap().len(), 2, "{shift:#}");
        assert_eq!(shift[0]["ErrorEquals"].as_array().unwrap().len(), ErrorName::TRANSIENT.len());
        assert_eq!((shift[0]["MaxAttempts"].as_u64(), shift[0]["MaxDelaySeconds"].as_u64()), (Some(6), Some(60)));
    }
}
