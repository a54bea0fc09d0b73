//! `stepshift-bench lambda`: how lean the six task Lambdas are.
//!
//! - Sizes: the stripped arm64 `bootstrap` and its zip, from `make build`.
//! - On this machine's build: the init time from process start to the first
//!   `GET /2018-06-01/runtime/invocation/next` at a minimal Runtime API stub (median
//!   and p95 over many starts), the latency of a cold and a warm invocation through the
//!   stub with the AWS calls answered by ministack, and the peak RSS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stepshift_testkit::Emulator;

/// Flags of `lambda`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the host build of the six binaries is.
    #[arg(long, default_value = "target/release")]
    pub binaries: PathBuf,
    /// Where `make build` put the arm64 zips (`<dir>/<name>/bootstrap.zip`).
    #[arg(long, default_value = "target/lambda")]
    pub zips: PathBuf,
    /// Where `sam build` put its functions (`<dir>/<LogicalId>/bootstrap`): what users
    /// deploy.
    #[arg(long, default_value = ".aws-sam/build")]
    pub sam_build: PathBuf,
    /// Process starts per function for the init time.
    #[arg(long, default_value_t = 25)]
    pub starts: usize,
}

const FUNCTIONS: [&str; 6] = ["shift-weight", "check-health", "promote", "rollback", "record-version", "tally"];

/// Each function's logical id in template.yaml: where `sam build` puts it.
fn logical_id(name: &str) -> String {
    let camel: String = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        })
        .collect();
    format!("{camel}Function")
}

/// Lines in tally's benchmark batch: a second of REPORT lines at 1,000 req/s.
const TALLY_BATCH_LINES: usize = 1000;

/// What the stub saw of one process.
#[derive(Debug, Default)]
struct Seen {
    first_next: Option<Instant>,
    /// (time the event was handed out, time the answer came, the answer)
    invocations: Vec<(Instant, Instant, Value)>,
}

/// A Runtime API stub serving `events` in order, then holding the next poll.
fn stub(events: Vec<Value>) -> (String, mpsc::Receiver<Seen>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("stub server");
    let address = server.server_addr().to_ip().expect("an IP address").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Seen::default();
        let mut queue = events.into_iter();
        let mut handed: Option<Instant> = None;
        let mut held = Vec::new();
        let mut n = 0;
        while let Ok(Some(mut request)) = server.recv_timeout(Duration::from_secs(20)) {
            let url = request.url().to_owned();
            if url.ends_with("/invocation/next") {
                seen.first_next.get_or_insert_with(Instant::now);
                match queue.next() {
                    Some(event) => {
                        n += 1;
                        let header = |k: &str, v: &str| {
                            tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("a header")
                        };
                        let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
                            .duration_since(std::time::UNIX_EPOCH)
                            .map(|d| d.as_millis())
                            .unwrap_or(0);
                        let response = tiny_http::Response::from_string(event.to_string())
                            .with_header(header("Lambda-Runtime-Aws-Request-Id", &format!("req-{n}")))
                            .with_header(header("Lambda-Runtime-Deadline-Ms", &deadline.to_string()))
                            .with_header(header(
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:us-east-1:000000000000:function:bench",
                            ))
                            .with_header(header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"))
                            .with_header(header("Content-Type", "application/json"));
                        handed = Some(Instant::now());
                        let _ = request.respond(response);
                    }
                    None => {
                        // The function waits here for its next event; report and keep it waiting.
                        held.push(request);
                        let _ = tx.send(std::mem::take(&mut seen));
                    }
                }
            } else {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                if url.contains("/response") || url.contains("/error") {
                    let answer = serde_json::from_str(&body).unwrap_or(Value::String(body));
                    let answer = if url.contains("/error") { json!({"error": answer}) } else { answer };
                    seen.invocations.push((handed.take().unwrap_or_else(Instant::now), Instant::now(), answer));
                }
                let _ = request.respond(tiny_http::Response::empty(202));
            }
        }
    });
    (address, rx)
}

fn spawn(binary: &Path, runtime_api: &str, env: &HashMap<String, String>) -> Child {
    Command::new(binary)
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()))
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Sizes of `<dir>/<name>/bootstrap.zip` and of the `bootstrap` in it, in bytes.
fn sizes(dir: &Path, name: &str) -> Option<(u64, u64)> {
    let path = dir.join(name).join("bootstrap.zip");
    let zipped = std::fs::metadata(&path).ok()?.len();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).ok()?).ok()?;
    let file = archive.by_name("bootstrap").ok()?;
    Some((file.size(), zipped))
}

/// The AWS resources the events touch, in ministack, and one event per function.
async fn prepare(emulator: &Emulator) -> HashMap<&'static str, Value> {
    let config = emulator.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    let code =
        aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(zip)).build();
    let _ = lambda
        .create_function()
        .function_name("orders")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .role("arn:aws:iam::000000000000:role/x")
        .handler("bootstrap")
        .code(code)
        .send()
        .await;
    for i in 1..=2 {
        let _ =
            lambda.update_function_configuration().function_name("orders").description(format!("v{i}")).send().await;
        let _ = lambda.publish_version().function_name("orders").send().await;
    }
    let _ = lambda.create_alias().function_name("orders").name("live").function_version("1").send().await;
    // Every function starts from the same alias: all traffic on version 1.
    let empty = aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
        .set_additional_version_weights(Some(HashMap::new()))
        .build();
    let _ = lambda
        .update_alias()
        .function_name("orders")
        .name("live")
        .function_version("1")
        .routing_config(empty)
        .send()
        .await;
    let revision = lambda
        .get_alias()
        .function_name("orders")
        .name("live")
        .send()
        .await
        .ok()
        .and_then(|a| a.revision_id().map(str::to_owned))
        .unwrap_or_default();
    let now = stepshift_core::Clock::now(&stepshift_core::SystemClock);
    let targets = json!([{"route": {"kind": "alias", "function": "orders", "alias": "live"}, "stable": "1", "candidate": "2", "records_before": {}}]);
    let traffic = json!({"weight_percent": 0.0, "step_started_at": null, "revisions": [{"function": "orders", "alias": "live", "revision_id": revision}]});
    let cursor = json!({"index": 0, "weight_percent": 10.0, "approval": false, "promote": false, "wait_seconds": 60, "extensions_used": 0});
    let plan = json!({
        "execution": "arn:aws:states:us-east-1:000000000000:execution:stepshift:bench",
        "started_at": now.to_rfc3339(),
        "targets": targets,
        "steps": [{"weight_percent": 10.0, "bake_seconds": 60, "approval": false}, {"weight_percent": 100.0, "bake_seconds": 0, "approval": false}],
        "health": serde_json::to_value(stepshift_core::request::HealthSettings::default()).unwrap_or_default(),
        "lock_in_seconds": 60, "keep_versions": null, "approval_timeout_seconds": 3600
    });
    let mut progress = serde_json::to_value(stepshift_core::deployment::Progress {
        cursor: serde_json::from_value(cursor.clone()).expect("a cursor"),
        decision: stepshift_core::deployment::Decision::Advance,
        verdict: None,
        steps: Vec::new(),
        control: Default::default(),
    })
    .unwrap_or_default();
    progress["cursor"] = cursor.clone();
    let mut started = traffic.clone();
    started["step_started_at"] = json!(now.to_rfc3339());
    HashMap::from([
        // Shifting the same step twice: the second call finds it done (one GetAlias).
        ("shift-weight", json!({"targets": targets, "traffic": traffic, "cursor": cursor})),
        ("check-health", json!({"plan": plan, "traffic": started, "progress": progress})),
        // Rolling back an unsplit alias: GetAlias, nothing to do.
        ("rollback", json!({"targets": targets, "traffic": traffic})),
        ("promote", json!({"targets": targets, "traffic": traffic})),
        ("record-version", json!({"action": "promoted", "plan": plan})),
        // One log batch: a second of a function's REPORT lines at 1,000 req/s, one in 50
        // a timeout, counted and published in one PutMetricData call.
        ("tally", tally_batch(now)),
    ])
}

/// A subscription batch of [`TALLY_BATCH_LINES`] REPORT lines of version 2 of
/// orders:live, as CloudWatch Logs delivers it to tally.
fn tally_batch(now: stepshift_core::Timestamp) -> Value {
    let events: Vec<Value> = (0..TALLY_BATCH_LINES)
        .map(|i| {
            let status = if i % 50 == 0 { "\tStatus: timeout" } else { "" };
            json!({
                "id": format!("{i:056}"),
                "timestamp": now.millis() + i as i64,
                "message": format!(
                    "REPORT RequestId: {i:08x}-0000-4000-8000-000000000000\tDuration: 41.27 ms\tBilled Duration: 42 ms\tMemory Size: 128 MB\tMax Memory Used: 31 MB{status}\n"
                ),
            })
        })
        .collect();
    tally::logs::encode_payload(&json!({
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": "/aws/lambda/orders",
        "logStream": "2026/11/30/[2]0123456789abcdef0123456789abcdef",
        "subscriptionFilters": ["stepshift/orders/live/180/bench"],
        "logEvents": events,
    }))
}

/// Runs the measurements and prints a Markdown table.
pub fn run(args: &Args) {
    let emulator = Emulator::start(stepshift_testkit::Kind::Ministack);
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let env: HashMap<String, String> = emulator
        .aws_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain([
            ("STEPSHIFT_PARAMETER_PREFIX".to_owned(), "/bench".to_owned()),
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
        ])
        .collect();
    println!(
        "| function | arm64 bootstrap | arm64 zip | `sam build` bootstrap | init median | init p95 | cold invocation | warm invocation | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for name in FUNCTIONS {
        let binary = args.binaries.join(name);
        let (bootstrap, zipped) = sizes(&args.zips, name).map_or(("-".to_owned(), "-".to_owned()), |(b, z)| {
            (format!("{:.2} MB", b as f64 / 1e6), format!("{:.2} MB", z as f64 / 1e6))
        });
        let sam = std::fs::metadata(args.sam_build.join(logical_id(name)).join("bootstrap"))
            .map_or("-".to_owned(), |m| format!("{:.2} MB", m.len() as f64 / 1e6));
        let mut inits = Vec::new();
        let mut cold = f64::NAN;
        let mut warm = f64::NAN;
        let mut rss = None;
        let events = runtime.block_on(prepare(&emulator));
        for start in 0..args.starts {
            // The first start also serves two invocations: cold, then warm.
            let served = if start == 0 { vec![events[name].clone(), events[name].clone()] } else { Vec::new() };
            let (address, seen) = stub(served);
            let begun = Instant::now();
            let mut child = spawn(&binary, &address, &env);
            let got = seen.recv_timeout(Duration::from_secs(30));
            if start == 0 {
                rss = peak_rss_kib(child.id());
            }
            let _ = child.kill();
            let _ = child.wait();
            let Ok(got) = got else {
                eprintln!("{name}: no answer from the process");
                continue;
            };
            if let Some(t) = got.first_next {
                inits.push((t - begun).as_secs_f64() * 1000.0);
            }
            if start == 0 {
                for (i, (handed, answered, answer)) in got.invocations.iter().enumerate() {
                    if answer.get("error").is_some() {
                        eprintln!("{name}: invocation {i} failed: {answer}");
                    }
                    let ms = (*answered - *handed).as_secs_f64() * 1000.0;
                    if i == 0 { cold = ms } else { warm = ms }
                }
            }
        }
        inits.sort_by(f64::total_cmp);
        println!(
            "| {name} | {bootstrap} | {zipped} | {sam} | {:.1} ms | {:.1} ms | {cold:.1} ms | {warm:.1} ms | {} |",
            percentile(&inits, 0.5),
            percentile(&inits, 0.95),
            rss.map_or("-".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0))
        );
    }
    println!("\n{} starts per function; init = process start to the first GET /invocation/next.", args.starts);
    println!("`sam build` bootstrap: what `sam build` (make build-<LogicalId>) put in {}.", args.sam_build.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_follow_the_template() {
        assert_eq!(logical_id("record-version"), "RecordVersionFunction");
        assert_eq!(logical_id("tally"), "TallyFunction");
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
        for name in FUNCTIONS {
            assert!(template.contains(&format!("\n  {}:\n", logical_id(name))), "{name}");
        }
    }
}
