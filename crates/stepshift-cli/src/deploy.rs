//! `deploy`, `watch`, `status`, `approve` and `reject`: the commands that talk to the
//! state machine.

use std::time::{Duration, Instant};

use serde_json::json;
use stepshift_core::{Clock, SystemClock};

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
    /// Output format.
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

/// The Step Functions console page of an execution.
pub fn console_url(execution: &str) -> String {
    let region = execution.split(':').nth(3).unwrap_or("us-east-1");
    format!("https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution}")
}

/// `deploy`.
pub async fn deploy(args: DeployArgs) -> Result<(), CliError> {
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
pub async fn follow(sfn: &Sfn, arn: &str, args: &FollowArgs, out: &Out) -> Result<(), CliError> {
    let started = Instant::now();
    let mut seen = 0;
    let mut view = View::default();
    loop {
        let items = sfn.history(arn).await?;
        for item in items.iter().skip(seen) {
            if let Some(line) = narrate(item, &view, arn) {
                out.line(&format!("{} {line}", dim(&item.timestamp.to_rfc3339())));
            }
            view.apply(item);
        }
        seen = items.len();
        out.status(&status_line(&view, started.elapsed()));
        let info = sfn.describe(arn).await?;
        if info.ended() {
            out.finish();
            return finish(arn, &info, &view, out);
        }
        if started.elapsed() >= args.timeout {
            out.finish();
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
    let steps = view.progress.as_ref().map_or(json!([]), |p| json!(p.steps));
    let doc = json!({
        "execution": arn,
        "status": info.status,
        "output": info.output,
        "error": info.error,
        "cause": info.cause,
        "steps": steps,
    });
    out.document(&doc);
    if info.status == "SUCCEEDED" {
        let summary = info.output.as_ref().and_then(|o| o["summary"].as_str()).unwrap_or("Promoted.");
        out.line(&good(summary));
        Ok(())
    } else {
        let why = format!(
            "{} {}: {}",
            info.status,
            info.error.as_deref().unwrap_or(""),
            info.cause.as_deref().unwrap_or("no cause given")
        );
        out.line(&bad(&why));
        Err(CliError::Failed(why))
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
    let sfn = Sfn::new(&stepshift_aws::load_config().await);
    let arn = sfn.execution(execution, target).await?;
    let info = sfn.describe(&arn).await?;
    let items = sfn.history(&arn).await?;
    let view = crate::view::view(&items);
    let verdict = view.progress.as_ref().and_then(|p| p.verdict.clone());
    let doc = json!({
        "execution": arn,
        "status": info.status,
        "state": view.state,
        "step": view.progress.as_ref().map(|p| &p.cursor),
        "weight_percent": view.traffic.as_ref().map(|t| t.weight_percent),
        "last_verdict": verdict,
        "pending_approval": view.pending_approval.as_ref().map(|p| json!({"since": p.since, "token": p.token})),
        "error": info.error,
        "cause": info.cause,
        "output": info.output,
    });
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    println!("execution  {arn}");
    println!("status     {}", info.status);
    if let Some(state) = &view.state {
        println!("state      {state}");
    }
    if let (Some(p), Some(t)) = (&view.progress, &view.traffic) {
        println!("step       {}", step_label(view.plan.as_ref(), p.cursor.index, p.cursor.weight_percent));
        if let Some(plan) = &view.plan {
            for target in &plan.targets {
                let w = t.weight_percent;
                println!(
                    "traffic    {}: version {} {}%, version {} {}%",
                    target.qualified(),
                    target.stable,
                    stepshift_core::percent_text(1.0 - w / 100.0),
                    target.candidate,
                    stepshift_core::percent_text(w / 100.0)
                );
            }
        }
    }
    if let Some(v) = verdict {
        println!("verdict    {:?} at {}", v.status, v.checked_at);
        for r in &v.reasons {
            println!("           {r}");
        }
        for t in &v.targets {
            println!("baseline   {}: {}", t.target, stepshift_core::judge::baseline_summary(t));
        }
        for note in &v.notes {
            println!("note       {note}");
        }
    }
    if view.pending_approval.is_some() {
        println!("waiting    for approval: stepshift approve {arn}  |  stepshift reject {arn} --reason ...");
    }
    if let Some(cause) = &info.cause {
        println!("cause      {cause}");
    }
    Ok(())
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
}
