//! `rollback`, `unlock` and `history`: the version records and locks, from a person's
//! side.

use serde_json::json;
use stepshift_aws::AwsPorts;
use stepshift_core::ports::{AliasRouter, AliasRouting, PortResult, VersionCatalog};
use stepshift_core::records::{self, HistoryEntry, HistoryEvent, RecordKeys, VersionRecords};
use stepshift_core::{Clock, PortError};

use crate::error::CliError;
use crate::output::Format;
use crate::sfn::Sfn;

/// The alias and where its records live.
#[derive(Clone, Debug, clap::Args)]
pub struct AliasArgs {
    /// Function name.
    #[arg(long)]
    pub function: String,
    /// Alias name.
    #[arg(long)]
    pub alias: String,
    /// SSM parameter prefix of the records.
    #[arg(long, env = "STEPSHIFT_PARAMETER_PREFIX", default_value = records::DEFAULT_PREFIX)]
    pub prefix: String,
}

impl AliasArgs {
    fn keys(&self) -> Result<RecordKeys, CliError> {
        records::validate_prefix(&self.prefix).map_err(|e| CliError::Invalid(format!("--prefix: {e}")))?;
        Ok(RecordKeys::new(&self.prefix, &self.function, &self.alias))
    }

    fn qualified(&self) -> String {
        format!("{}:{}", self.function, self.alias)
    }
}

fn who() -> String {
    format!("manual:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()))
}

/// `rollback`: points the alias at `to` (default: last-known-good, else previous).
pub async fn rollback(args: &AliasArgs, to: Option<String>, force: bool) -> Result<(), CliError> {
    if let Some(why) = stepshift_core::routers::refuse_hand_rollback(&args.function) {
        return Err(CliError::Invalid(format!("--function {}: {why}", args.function)));
    }
    let keys = args.keys()?;
    let aws = AwsPorts::from_env().await;
    let stored = records::load(&aws, &keys).await?;
    if let Some(lock) = &stored.lock
        && !force
    {
        return Err(CliError::Failed(format!(
            "{} is being deployed by {} (candidate {}, since {}); that deployment rolls back by itself if the candidate is unhealthy. Use --force to roll back anyway (the deployment will then stop on drift).",
            args.qualified(),
            lock.execution,
            lock.candidate,
            lock.acquired_at
        )));
    }
    let version = to
        .or_else(|| stored.records.last_known_good.clone())
        .or_else(|| stored.records.previous.clone())
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "no last-known-good or previous version is recorded for {}; give --to VERSION",
                args.qualified()
            ))
        })?;
    let published = aws.list_versions(&args.function).await?;
    if !published.contains(&version) {
        return Err(CliError::Invalid(format!("--to: version {version} of {} is not published", args.function)));
    }
    let now = aws.get_alias(&args.function, &args.alias).await?;
    let wanted = AliasRouting::single(version.clone());
    if now.routing.same_as(&wanted) {
        println!("{} already serves version {version} only; nothing to do", args.qualified());
        return Ok(());
    }
    let result: PortResult<_> = aws.update_alias(&args.function, &args.alias, &wanted, Some(&now.revision_id)).await;
    match result {
        Ok(_) => {}
        Err(PortError::PreconditionFailed { .. }) => {
            return Err(CliError::Failed(format!(
                "{} changed while rolling back; look at it and try again",
                args.qualified()
            )));
        }
        Err(e) => return Err(e.into()),
    }
    let after = VersionRecords {
        current: Some(version.clone()),
        previous: Some(now.routing.version.clone()),
        last_known_good: stored.records.last_known_good.clone(),
        deployed_at: Some(aws.now()),
    };
    records::save(&aws, &keys, &stored.records, &after).await?;
    let entry = HistoryEntry {
        at: aws.now(),
        event: HistoryEvent::ManualRollback,
        execution: Some(who()),
        from: Some(now.routing.version.clone()),
        to: Some(version.clone()),
        detail: Some(format!("stepshift rollback; the alias routed {}", now.routing.describe())),
    };
    records::append_history(&aws, &keys, &stored.history, entry).await?;
    println!("Rolled back {} to version {version} (it routed {})", args.qualified(), now.routing.describe());
    Ok(())
}

/// `unlock`: releases a lock whose execution has ended (a crashed deployment's).
pub async fn unlock(args: &AliasArgs, force: bool) -> Result<(), CliError> {
    let keys = args.keys()?;
    let config = stepshift_aws::load_config().await;
    let aws = AwsPorts::new(&config);
    let stored = records::load(&aws, &keys).await?;
    let Some(lock) = stored.lock else {
        println!("{} is not locked", args.qualified());
        return Ok(());
    };
    let running =
        if lock.execution.starts_with("arn:") { Sfn::new(&config).is_running(&lock.execution).await? } else { false };
    if running && !force {
        return Err(CliError::Failed(format!(
            "{} is held by {}, which is still running; it releases the lock when it ends. Use --force only if you are sure.",
            args.qualified(),
            lock.execution
        )));
    }
    if !records::release_lock(&aws, &keys, &lock.execution).await? {
        return Err(CliError::Failed(format!(
            "the lock on {} changed hands while releasing it; look again",
            args.qualified()
        )));
    }
    let entry = HistoryEntry {
        at: aws.now(),
        event: HistoryEvent::LockReleased,
        execution: Some(who()),
        from: None,
        to: None,
        detail: Some(format!(
            "released the lock of {} ({})",
            lock.execution,
            if running { "forced" } else { "it had ended" }
        )),
    };
    records::append_history(&aws, &keys, &stored.history, entry).await?;
    println!("Released the lock {} held on {}", lock.execution, args.qualified());
    // The fast path's subscription filter goes with the lock: a stale one would keep
    // invoking tally and hold one of the log group's two slots.
    match stepshift_core::tasks::fast::stop(&aws, &lock.execution, std::slice::from_ref(&args.function)).await {
        Ok(stopped) => {
            for name in &stopped.removed {
                println!("Removed the fast path's subscription filter {name}");
            }
        }
        Err(e) => eprintln!("warning: could not remove the fast path's subscription filter of {}: {e}", lock.execution),
    }
    Ok(())
}

/// `history`: the records and the recorded events.
pub async fn history(args: &AliasArgs, format: Format) -> Result<(), CliError> {
    let format = format.text_or_json("history")?;
    let keys = args.keys()?;
    let aws = AwsPorts::from_env().await;
    let stored = records::load(&aws, &keys).await?;
    if format == Format::Json {
        let doc = json!({"records": stored.records, "lock": stored.lock, "history": stored.history});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(());
    }
    let r = &stored.records;
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    println!("{}", args.qualified());
    println!("  current          {}", show(&r.current));
    println!("  previous         {}", show(&r.previous));
    println!("  last-known-good  {}", show(&r.last_known_good));
    println!("  deployed at      {}", r.deployed_at.map_or("-".into(), |t| t.to_rfc3339()));
    if let Some(lock) = &stored.lock {
        println!("  locked by        {} (candidate {}, since {})", lock.execution, lock.candidate, lock.acquired_at);
    }
    println!();
    for h in stored.history.iter().rev() {
        let event = serde_json::to_value(h.event).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let moved = match (&h.from, &h.to) {
            (Some(f), Some(t)) => format!("{f} → {t}"),
            _ => String::new(),
        };
        println!("  {}  {event:<15} {moved:<10} {}", h.at, h.detail.as_deref().unwrap_or(""));
        if let Some(e) = &h.execution {
            println!("  {:20}  {}", "", crate::output::dim(e));
        }
    }
    Ok(())
}
