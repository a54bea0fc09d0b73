//! `stepshift`: progressive delivery for AWS Lambda, from the command line.
//!
//! Exit codes: 0 promoted (or done), 1 rolled back / failed / refused / timed out,
//! 2 invalid request or arguments (nothing started), 3 AWS unreachable or refused.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[cfg(feature = "aws")]
mod control;
#[cfg(feature = "aws")]
mod deploy;
mod error;
mod hooks;
mod output;
mod picture;
#[cfg(feature = "aws")]
mod records;
#[cfg(feature = "aws")]
mod report;
mod request;
#[cfg(feature = "aws")]
mod sfn;
mod simulate;
mod summary;
mod timeline;
mod view;

use error::CliError;

#[derive(Parser)]
#[command(
    name = "stepshift",
    version,
    about = "Progressive delivery for AWS Lambda: shift traffic in steps, judge on real metrics, promote or roll back by itself."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a deployment (with --wait: follow it; exit 0 if promoted, 1 if not).
    #[cfg(feature = "aws")]
    Deploy(Box<deploy::DeployArgs>),
    /// Where a deployment stands: step, weights, last verdict, pending approval.
    #[cfg(feature = "aws")]
    Status {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: output::Format,
    },
    /// Draw a deployment's timeline (--svg FILE), or summarise it (--output markdown|json).
    #[cfg(feature = "aws")]
    Report(Box<report::ReportArgs>),
    /// Follow a deployment until it ends.
    #[cfg(feature = "aws")]
    Watch {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        #[command(flatten)]
        follow: deploy::FollowArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: output::Format,
    },
    /// Approve a deployment's pause.
    #[cfg(feature = "aws")]
    Approve {
        /// Execution ARN, or its name with --state-machine/--stack.
        #[arg(required_unless_present = "token")]
        execution: Option<String>,
        #[command(flatten)]
        target: sfn::Target,
        /// A note for the record.
        #[arg(long)]
        comment: Option<String>,
        /// The task token itself, when the history does not hold it.
        #[arg(long)]
        token: Option<String>,
    },
    /// Reject a deployment's pause: it rolls back.
    #[cfg(feature = "aws")]
    Reject {
        /// Execution ARN, or its name with --state-machine/--stack.
        #[arg(required_unless_present = "token")]
        execution: Option<String>,
        #[command(flatten)]
        target: sfn::Target,
        /// Why (shown as the deployment's cause).
        #[arg(long)]
        reason: String,
        /// The task token itself, when the history does not hold it.
        #[arg(long)]
        token: Option<String>,
    },
    /// Abort a running deployment: it rolls back at its next health check (at an
    /// approval pause: at once).
    #[cfg(feature = "aws")]
    Abort {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        /// Why (kept in the deployment's history and its cause).
        #[arg(long)]
        reason: String,
    },
    /// Promote a running deployment now: its next health check skips the remaining steps.
    #[cfg(feature = "aws")]
    Promote {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        /// Confirm without the lock-in watch (or end a lock-in under way).
        #[arg(long)]
        skip_lock_in: bool,
        /// Why (kept in the deployment's history).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Hold a running deployment at its step; the health checks go on.
    #[cfg(feature = "aws")]
    Pause {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        /// How long, e.g. 30m, 2h, 90s (default: the deployment's approval timeout).
        #[arg(long = "for", value_name = "DURATION", value_parser = control::pause_duration, allow_hyphen_values = true)]
        hold: Option<std::time::Duration>,
        /// Why (kept in the deployment's history).
        #[arg(long)]
        reason: Option<String>,
    },
    /// End a pause: the deployment goes on from its step.
    #[cfg(feature = "aws")]
    Resume {
        /// Execution ARN, or its name with --state-machine/--stack.
        execution: String,
        #[command(flatten)]
        target: sfn::Target,
        /// Why (kept in the deployment's history).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Start a failed deployment again with the same request (with --wait: follow it).
    #[cfg(feature = "aws")]
    Retry(Box<control::RetryArgs>),
    /// Roll an alias back by hand (default: to its last-known-good version).
    #[cfg(feature = "aws")]
    Rollback {
        #[command(flatten)]
        alias: records::AliasArgs,
        /// The version to roll back to.
        #[arg(long)]
        to: Option<String>,
        /// Roll back even while a deployment holds the alias's lock.
        #[arg(long)]
        force: bool,
    },
    /// Release the lock a crashed deployment left on an alias.
    #[cfg(feature = "aws")]
    Unlock {
        #[command(flatten)]
        alias: records::AliasArgs,
        /// Release it even if its execution is still running.
        #[arg(long)]
        force: bool,
    },
    /// The recorded versions and deployments of an alias.
    #[cfg(feature = "aws")]
    History {
        #[command(flatten)]
        alias: records::AliasArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t)]
        output: output::Format,
    },
    /// Run a deployment locally on simulated traffic: what would stepshift decide, and when?
    Simulate(Box<simulate::SimulateArgs>),
}

#[cfg(feature = "aws")]
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Failed(format!("could not start: {e}")))
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Simulate(args) => simulate::simulate(*args),
        #[cfg(feature = "aws")]
        other => runtime()?.block_on(run_aws(other)),
    }
}

#[cfg(feature = "aws")]
async fn run_aws(command: Command) -> Result<(), CliError> {
    match command {
        Command::Deploy(args) => deploy::deploy(*args).await,
        Command::Status { execution, target, output } => deploy::status(&execution, &target, output).await,
        Command::Watch { execution, target, follow, output } => {
            deploy::watch(&execution, &target, &follow, output).await
        }
        Command::Approve { execution, target, comment, token } => {
            deploy::answer(execution.as_deref().unwrap_or_default(), &target, token, None, comment).await
        }
        Command::Reject { execution, target, reason, token } => {
            deploy::answer(execution.as_deref().unwrap_or_default(), &target, token, Some(reason), None).await
        }
        Command::Abort { execution, target, reason } => {
            control::command(&execution, &target, control::Ask::Abort, Some(reason)).await
        }
        Command::Promote { execution, target, skip_lock_in, reason } => {
            control::command(&execution, &target, control::Ask::Promote { skip_lock_in }, reason).await
        }
        Command::Pause { execution, target, hold, reason } => {
            control::command(&execution, &target, control::Ask::Pause { hold }, reason).await
        }
        Command::Resume { execution, target, reason } => {
            control::command(&execution, &target, control::Ask::Resume, reason).await
        }
        Command::Retry(args) => control::retry(*args).await,
        Command::Report(args) => report::report(*args).await,
        Command::Rollback { alias, to, force } => records::rollback(&alias, to, force).await,
        Command::Unlock { alias, force } => records::unlock(&alias, force).await,
        Command::History { alias, output } => records::history(&alias, output).await,
        Command::Simulate(_) => unreachable!("simulate runs without AWS"),
    }
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`stepshift history | head`)
    // panics in println!. A command-line tool should end quietly there, as cat does:
    // restore the default action. The standard library has no stable switch for it.
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap's own exit codes are 0 for --help/--version and 2 for usage errors,
            // which matches "2 = invalid arguments".
            return ExitCode::from(if e.use_stderr() { error::code::INVALID } else { error::code::OK });
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("error: {text}");
            }
            e.exit_code()
        }
    }
}
