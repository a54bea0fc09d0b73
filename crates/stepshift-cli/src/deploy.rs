//! `deploy`, `watch`, `status`, `approve` and `reject`: the commands that talk to the
//! state machine. (`abort`, `promote`, `pause`, `resume` and `retry` are in `control`.)

use std::time::{Duration, Instant};

use serde_json::json;
use stepshift_aws::AwsPorts;
use stepshift_core::routers::ObservePorts;
use stepshift_core::{Clock, SystemClock, Timestamp};

use crate::error::CliError;
use crate::output::{Format, Out, bad, dim, good};
use crate::request::RequestArgs;
use crate::sfn::{ExecutionInfo, Sfn, Target, execution_name};
use crate::view::{Item, View, narrate, step_label};

/// Flags of `deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub request: RequestArgs,
    #[command(flatten)]
    pub target: Target,
    /// Execution name (default: function-version-timestamp).
    #[arg(long)]
    pub name: Option<String>,
    /// Follow the deployment to its end; exit 0 if promoted, 1 if not.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub follow: FollowArgs,
    /// Validate and print the request; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format (markdown: a summary for a pipeline's summary page at the end; needs
    /// --wait).
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// How long to follow an execution.
#[derive(Clone, Debug, clap::Args)]
pub struct FollowArgs {
    /// Give up waiting after this long (the deployment continues in AWS), e.g. 2h.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2h")]
    pub timeout: Duration,
    /// How often to poll Step Functions.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s", hide = true)]
    pub poll: Duration,
}

pub use stepshift_core::events::console_url;

/// `deploy`.
pub async fn deploy(args: DeployArgs) -> Result<(), CliError> {
    if args.output == Format::Markdown && (!args.wait || args.dry_run) {
        return Err(CliError::Invalid(
            "--output markdown summarizes the deployment at its end: use it with --wait (a dry run starts nothing, and prints the request as JSON)".into(),
        ));
    }
    let (input, request) = crate::request::build_valid(&args.request)?;
    for w in request.warnings() {
        eprintln!("warning: {w}");
    }
    let out = Out::new(args.output);
    if args.dry_run {
        out.finish();
        println!("{}", serde_json::to_string_pretty(&input).unwrap_or_default());
        return Ok(());
    }
    let config = stepshift_aws::load_config().await;
    for w in stepshift_core::tasks::fast::preflight(&stepshift_aws::AwsPorts::new(&config), &request).await {
        eprintln!("warning: {w}");
    }
    let sfn = Sfn::new(&config);
    let machine = sfn.state_machine(&args.target).await?;
    let name = args.name.clone().unwrap_or_else(|| execution_name(&request.targets, SystemClock.now()));
    let arn = sfn.start(&machine, &name, &input).await?;
    out.line(&format!("Started {}", good(&arn)));
    out.line(&dim(&console_url(&arn)));
    if !args.wait {
        out.finish();
        out.document(&json!({"execution": arn, "status": "RUNNING", "console": console_url(&arn)}));
        return Ok(());
    }
    follow(&sfn, &arn, &args.follow, &out).await
}

/// `watch` and `deploy --wait`: narrates the execution until it ends or the timeout.
/// With `--output markdown`, the summary of the deployment follows at the end.
pub async fn follow(sfn: &Sfn, arn: &str, args: &FollowArgs, out: &Out) -> Result<(), CliError> {
    let started = Instant::now();
    let mut seen = 0;
    let mut view = View::default();
    loop {
        // The status first: once it says the execution ended, the history read after it
        // is whole (read the other way round, the last events could be missing).
        let info = sfn.describe(arn).await?;
        let items = sfn.history(arn).await?;
        for item in items.iter().skip(seen) {
            if let Some(line) = narrate(item, &view, arn) {
                out.line(&format!("{} {line}", dim(&item.timestamp.to_rfc3339())));
            }
            view.apply(item);
        }
        seen = items.len();
        out.status(&status_line(&view, started.elapsed()));
        if info.ended() {
            out.finish();
            if out.is_markdown() {
                out.markdown(
                    &markdown_summary(&AwsPorts::from_env().await, arn, &info, &items, SystemClock.now()).await,
                );
            }
            return finish(arn, &info, &view, out);
        }
        if started.elapsed() >= args.timeout {
            out.finish();
            if out.is_markdown() {
                out.markdown(
                    &markdown_summary(&AwsPorts::from_env().await, arn, &info, &items, SystemClock.now()).await,
                );
            }
            let message = format!(
                "still running after {}: {arn}. It goes on in AWS (stepshift never stops it, because stopping would skip the rollback); follow it with `stepshift watch {arn}`",
                humantime::format_duration(args.timeout)
            );
            out.document(&json!({"execution": arn, "status": "RUNNING", "error": "WaitTimedOut", "cause": message}));
            return Err(CliError::Failed(message));
        }
        tokio::time::sleep(args.poll).await;
    }
}

fn status_line(view: &View, elapsed: Duration) -> String {
    let state = view.state.as_deref().unwrap_or("starting");
    let weight = view.traffic.as_ref().map_or(String::new(), |t| {
        format!(", candidate at {}%", stepshift_core::percent_text(t.weight_percent / 100.0))
    });
    format!("{state}{weight} ({} elapsed)", humantime::format_duration(Duration::from_secs(elapsed.as_secs())))
}

fn finish(arn: &str, info: &ExecutionInfo, view: &View, out: &Out) -> Result<(), CliError> {
    out.document(&finish_document(arn, info, view));
    let (lines, verdict) = summary(info, view);
    for line in lines {
        out.line(&line);
    }
    match verdict {
        Ok(summary) => {
            out.line(&good(&summary));
            Ok(())
        }
        Err(why) => {
            out.line(&bad(&why));
            Err(CliError::Failed(why))
        }
    }
}

/// `--output markdown` at the end of `deploy --wait` and `watch` (or when the wait gives
/// up): the deployment's summary from its history, with its minutes read through `ports`.
async fn markdown_summary<P: ObservePorts>(
    ports: &P,
    arn: &str,
    info: &ExecutionInfo,
    items: &[Item],
    now: Timestamp,
) -> String {
    let t = crate::summary::timeline_of_history(ports, arn, info, items, now).await;
    crate::summary::markdown(&t, Some(&console_url(arn)))
}

/// `--output json` at the end of `deploy --wait` and `watch`.
fn finish_document(arn: &str, info: &ExecutionInfo, view: &View) -> serde_json::Value {
    let steps = view.progress.as_ref().map_or(json!([]), |p| json!(p.steps));
    json!({
        "execution": arn,
        "status": info.status,
        "output": info.output,
        "error": info.error,
        "cause": info.cause,
        "steps": steps,
        "hooks": view.hooks,
        "observed": observed(view),
    })
}

/// What the rules in observe mode found at the last check.
fn observed(view: &View) -> Vec<String> {
    view.progress.as_ref().and_then(|p| p.verdict.as_ref()).map_or_else(Vec::new, |v| v.observed.clone())
}

/// The end of `deploy --wait` and `watch` in text: the validation hooks' judgements,
/// one line per point, what the observe-only rules found at the last check, then the
/// release's summary (`Ok`) or why it did not happen.
fn summary(info: &ExecutionInfo, view: &View) -> (Vec<String>, Result<String, String>) {
    let mut lines = crate::hooks::summary_lines(&view.hooks);
    lines.extend(observed(view));
    if info.status == "SUCCEEDED" {
        let summary = info.output.as_ref().and_then(|o| o["summary"].as_str()).unwrap_or("Promoted.");
        (lines, Ok(summary.to_owned()))
    } else {
        let why = format!(
            "{} {}: {}",
            info.status,
            info.error.as_deref().unwrap_or(""),
            info.cause.as_deref().unwrap_or("no cause given")
        );
        (lines, Err(why))
    }
}

/// `watch`.
pub async fn watch(execution: &str, target: &Target, follow_args: &FollowArgs, format: Format) -> Result<(), CliError> {
    let sfn = Sfn::new(&stepshift_aws::load_config().await);
    let arn = sfn.execution(execution, target).await?;
    let out = Out::new(format);
    follow(&sfn, &arn, follow_args, &out).await
}

/// `status`.
pub async fn status(execution: &str, target: &Target, format: Format) -> Result<(), CliError> {
    let format = format.text_or_json("status")?;
    let sfn = Sfn::new(&stepshift_aws::load_config().await);
    let arn = sfn.execution(execution, target).await?;
    let info = sfn.describe(&arn).await?;
    let items = sfn.history(&arn).await?;
    let view = crate::view::view(&items);
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&status_document(&arn, &info, &view)).unwrap_or_default());
    } else {
        for line in status_lines(&arn, &info, &view) {
            println!("{line}");
        }
    }
    Ok(())
}

/// `status --output json`.
fn status_document(arn: &str, info: &ExecutionInfo, view: &View) -> serde_json::Value {
    let control = view.progress.as_ref().map(|p| &p.control).filter(|c| !c.is_empty());
    json!({
        "execution": arn,
        "status": info.status,
        "state": view.state,
        "step": view.progress.as_ref().map(|p| &p.cursor),
        "weight_percent": view.traffic.as_ref().map(|t| t.weight_percent),
        "last_verdict": view.progress.as_ref().and_then(|p| p.verdict.as_ref()),
        "pending_approval": view.pending_approval.as_ref().map(|p| json!({"since": p.since, "token": p.token})),
        "paused": control.and_then(|c| c.paused.as_ref()).filter(|_| !info.ended()),
        "control": control,
        "hooks": view.hooks,
        "error": info.error,
        "cause": info.cause,
        "output": info.output,
    })
}

/// `status` in text.
fn status_lines(arn: &str, info: &ExecutionInfo, view: &View) -> Vec<String> {
    let mut lines = vec![format!("execution  {arn}"), format!("status     {}", info.status)];
    if let Some(state) = &view.state {
        lines.push(format!("state      {state}"));
    }
    if let (Some(p), Some(t)) = (&view.progress, &view.traffic) {
        lines.push(format!("step       {}", step_label(view.plan.as_ref(), p.cursor.index, p.cursor.weight_percent)));
        if let Some(plan) = &view.plan {
            for target in &plan.targets {
                let w = t.weight_percent;
                lines.push(format!(
                    "traffic    {}: version {} {}%, version {} {}%",
                    target.qualified(),
                    target.stable,
                    stepshift_core::percent_text(1.0 - w / 100.0),
                    target.candidate,
                    stepshift_core::percent_text(w / 100.0)
                ));
            }
        }
    }
    if let Some(v) = view.progress.as_ref().and_then(|p| p.verdict.as_ref()) {
        lines.push(format!("verdict    {:?} at {}", v.status, v.checked_at));
        for r in &v.reasons {
            lines.push(format!("           {r}"));
        }
        for t in &v.targets {
            lines.push(format!("baseline   {}: {}", t.target, stepshift_core::judge::baseline_summary(t)));
        }
        for note in &v.notes {
            lines.push(format!("note       {note}"));
        }
        for line in &v.observed {
            lines.push(format!("observed   {line}"));
        }
    }
    for line in crate::hooks::summary_lines(&view.hooks) {
        lines.push(format!("tests      {}", line.trim_start_matches("tests ")));
    }
    if let Some(control) = view.progress.as_ref().map(|p| &p.control) {
        if let Some(p) = control.paused.as_ref().filter(|_| !info.ended()) {
            lines.push(format!("paused     by {} until {}: stepshift resume {arn}", p.command.by, p.until));
        }
        if let Some(note) = &control.note {
            lines.push(format!("command    {note}"));
        } else if let Some(last) = control.log.last() {
            lines.push(format!("command    {} (command {}, given at {})", last.describe(), last.seq, last.at));
        }
    }
    if view.pending_approval.is_some() {
        lines.push(format!("waiting    for approval: stepshift approve {arn}  |  stepshift reject {arn} --reason ..."));
    }
    if let Some(cause) = &info.cause {
        lines.push(format!("cause      {cause}"));
    }
    lines
}

/// `approve` and `reject`.
pub async fn answer(
    execution: &str,
    target: &Target,
    token: Option<String>,
    reject: Option<String>,
    comment: Option<String>,
) -> Result<(), CliError> {
    let sfn = Sfn::new(&stepshift_aws::load_config().await);
    let token = match token {
        Some(t) => t,
        None => {
            let arn = sfn.execution(execution, target).await?;
            let items: Vec<Item> = sfn.history(&arn).await?;
            let view = crate::view::view(&items);
            let Some(pending) = view.pending_approval else {
                let where_ = view.state.map_or("has ended".to_owned(), |s| format!("is in \"{s}\""));
                return Err(CliError::Failed(format!("nothing is waiting for approval: {arn} {where_}")));
            };
            pending.token.ok_or_else(|| {
                CliError::Failed(format!(
                    "{arn} waits for approval, but its history does not hold the task token; take detail.task_token from the approval event and run: stepshift approve --token TOKEN"
                ))
            })?
        }
    };
    match reject {
        Some(reason) => {
            sfn.reject(&token, &reason).await?;
            println!("Rejected: the deployment rolls back ({reason})");
        }
        None => {
            let by = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            sfn.approve(&token, &json!({"approved_by": by, "comment": comment})).await?;
            println!("Approved: the deployment continues");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_links_use_the_executions_region() {
        let url = console_url("arn:aws:states:eu-west-1:123456789012:execution:sm:run-1");
        assert!(url.starts_with("https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#"), "{url}");
    }

    #[test]
    fn the_status_line_shows_state_and_weight() {
        let view = View { state: Some(stepshift_core::State::Bake.to_string()), ..View::default() };
        assert_eq!(status_line(&view, Duration::from_secs(65)), "Bake (1m 5s elapsed)");
    }

    /// A deployment whose hooks passed before traffic and failed at step 2.
    fn tested() -> View {
        use crate::hooks::fixtures::{failing_at_step_2, passing_before_traffic};
        crate::view::view(&[passing_before_traffic(), failing_at_step_2()].concat())
    }

    fn failed() -> ExecutionInfo {
        ExecutionInfo {
            status: "FAILED".into(),
            output: None,
            error: Some("HookFailed".into()),
            cause: Some("Rolled back orders:live: the tests at step 2 failed".into()),
            state_machine: "arn:aws:states:us-east-1:1:stateMachine:sm".into(),
            input: None,
        }
    }

    #[test]
    fn the_summary_and_status_show_each_points_tests() {
        let view = tested();
        let (lines, verdict) = summary(&failed(), &view);
        assert_eq!(
            lines,
            [
                "tests before traffic: passed (2): smoke, invoke orders:7",
                "tests at step 2: FAILED: smoke: Error: boom; load: did not answer within 30 s (timeout_seconds)",
            ]
        );
        assert_eq!(verdict, Err("FAILED HookFailed: Rolled back orders:live: the tests at step 2 failed".to_owned()));
        let status = status_lines("arn", &failed(), &view);
        assert!(
            status.contains(&"tests      before traffic: passed (2): smoke, invoke orders:7".to_owned()),
            "{status:?}"
        );
        assert!(
            status.iter().any(|l| l.starts_with("tests      at step 2: FAILED: smoke: Error: boom; load: ")),
            "{status:?}"
        );
    }

    /// A deployment held by `stepshift pause` (command 2), whose check just applied it.
    fn paused() -> View {
        let mut progress = crate::hooks::fixtures::progress(1, 0, "wait");
        let pause = json!({"seq": 2, "execution": "arn", "action": {"command": "pause", "until": "2026-11-30T12:00:00Z"},
            "by": "arn:aws:iam::1:user/ana", "reason": "ticket 42", "at": "2026-11-30T11:00:00Z"});
        progress["control"] = json!({
            "applied": 2,
            "log": [pause],
            "paused": {"command": pause, "since": "2026-11-30T11:01:00Z", "until": "2026-11-30T12:00:00Z"},
            "note": "pause by arn:aws:iam::1:user/ana (\"ticket 42\"): holding until 2026-11-30T12:00:00Z",
        });
        View { progress: Some(serde_json::from_value(progress).unwrap()), ..View::default() }
    }

    fn running() -> ExecutionInfo {
        ExecutionInfo { status: "RUNNING".into(), error: None, cause: None, ..failed() }
    }

    #[test]
    fn status_shows_a_pause_under_way_and_the_last_command() {
        let view = paused();
        let lines = status_lines("arn", &running(), &view);
        assert!(
            lines.contains(
                &"paused     by arn:aws:iam::1:user/ana until 2026-11-30T12:00:00Z: stepshift resume arn".to_owned()
            ),
            "{lines:?}"
        );
        assert!(
            lines.contains(
                &"command    pause by arn:aws:iam::1:user/ana (\"ticket 42\"): holding until 2026-11-30T12:00:00Z"
                    .to_owned()
            ),
            "{lines:?}"
        );
        let doc = status_document("arn", &running(), &view);
        assert_eq!(doc["paused"]["until"], "2026-11-30T12:00:00Z");
        assert_eq!(doc["control"]["applied"], 2);
        // The next check clears the note: the last command stays in view. An ended
        // deployment is paused no more.
        let mut later = view.clone();
        later.progress.as_mut().unwrap().control.note = None;
        let lines = status_lines("arn", &failed(), &later);
        assert!(!lines.iter().any(|l| l.starts_with("paused")), "{lines:?}");
        assert!(
            lines.contains(&"command    pause by arn:aws:iam::1:user/ana (\"ticket 42\") (command 2, given at 2026-11-30T11:00:00Z)".to_owned()),
            "{lines:?}"
        );
        assert_eq!(status_document("arn", &failed(), &later)["paused"], serde_json::Value::Null);
        // Nothing commanded: no control in the document.
        assert_eq!(status_document("arn", &running(), &View::default())["control"], serde_json::Value::Null);
    }

    #[test]
    fn observe_only_findings_show_in_status_and_in_the_final_summary() {
        let mut progress = crate::hooks::fixtures::progress(1, 0, "advance");
        let line = "observe-only, would roll back: orders:live version 42 http-5xx 4% is above 2% (40 in 1000)";
        progress["verdict"] = json!({"status": "healthy", "reasons": ["fine"], "checked_at": "2026-11-30T11:01:00Z",
            "window": {"start": "2026-11-30T10:56:00Z", "end": "2026-11-30T11:01:00Z"}, "targets": [],
            "observed": [line]});
        let view = View { progress: Some(serde_json::from_value(progress).unwrap()), ..View::default() };
        assert!(status_lines("arn", &running(), &view).contains(&format!("observed   {line}")));
        let promoted = ExecutionInfo { status: "SUCCEEDED".into(), error: None, cause: None, ..failed() };
        let (lines, verdict) = summary(&promoted, &view);
        assert_eq!(lines, [line]);
        assert!(verdict.is_ok());
        assert_eq!(finish_document("arn", &promoted, &view)["observed"][0], line);
    }

    #[tokio::test]
    async fn markdown_output_summarizes_the_history() {
        use crate::hooks::fixtures::{failing_at_step_2, passing_before_traffic};
        let items = [passing_before_traffic(), failing_at_step_2()].concat();
        let aws = stepshift_core::memory::MemoryAws::new(Timestamp::from_secs(0));
        let arn = "arn:aws:states:eu-west-1:123456789012:execution:sm:run-1";
        let md = markdown_summary(&aws, arn, &failed(), &items, Timestamp::from_secs(600)).await;
        // No plan in this history: the execution's name stands for the release.
        assert!(
            md.starts_with(
                "## ❌ run-1: rolled back\n\n**Why:** Rolled back orders:live: the tests at step 2 failed\n"
            ),
            "{md}"
        );
        assert!(md.contains("· execution [run-1](https://eu-west-1.console.aws.amazon.com/states/"), "{md}");
        assert!(md.contains("- ✅ `+00:00` tests before traffic: passed (2): smoke, invoke orders:7\n"), "{md}");
        assert!(
            md.contains("- ❌ `+00:00` tests at step 2: FAILED: smoke: Error: boom; load: did not answer within 30 s (timeout\\_seconds)\n"),
            "{md}"
        );
        assert!(md.contains("- `+00:00` ↩️ rollback"), "{md}");
        // Traffic never moved: nothing to draw.
        assert!(!md.contains("```mermaid"), "{md}");
    }

    #[tokio::test]
    async fn markdown_is_refused_where_there_is_no_summary_to_write() {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            args: DeployArgs,
        }
        let parse = |extra: &[&str]| {
            let flags = [&["deploy", "--function", "orders", "--alias", "live", "--version", "2"], extra].concat();
            <Flags as clap::Parser>::try_parse_from(flags).unwrap().args
        };
        for extra in [&["--output", "markdown"][..], &["--output", "markdown", "--wait", "--dry-run"]] {
            let e = deploy(parse(extra)).await.unwrap_err();
            assert!(matches!(&e, CliError::Invalid(m) if m.contains("use it with --wait")), "{extra:?}: {e}");
        }
        let e = status("run-1", &Target::default(), Format::Markdown).await.unwrap_err();
        assert!(
            matches!(&e, CliError::Invalid(m) if m.starts_with("--output markdown: status prints text or json")),
            "{e}"
        );
    }

    #[test]
    fn json_output_has_the_hooks_reports_and_the_failure_sentence() {
        let view = tested();
        let expected = json!([
            {
                "point": "before_traffic",
                "step": null,
                "passed": true,
                "sentence": "the tests before traffic passed (2)",
                "results": [
                    {"name": "smoke", "function": "orders-smoke", "outcome": "passed", "detail": "passed"},
                    {"name": "invoke orders:7", "function": "orders:7", "outcome": "passed", "detail": "passed"},
                ],
            },
            {
                "point": "each_step",
                "step": 1,
                "passed": false,
                "sentence": crate::hooks::fixtures::AT_STEP_2,
                "results": null,
            },
        ]);
        assert_eq!(finish_document("arn", &failed(), &view)["hooks"], expected);
        assert_eq!(status_document("arn", &failed(), &view)["hooks"], expected);
        // No hooks: an empty list.
        assert_eq!(status_document("arn", &failed(), &View::default())["hooks"], json!([]));
    }
}
