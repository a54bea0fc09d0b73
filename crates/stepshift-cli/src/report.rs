//! `stepshift report`: a deployment's timeline, after the fact or while it runs, as a
//! picture ([`crate::picture`]), a pipeline summary ([`crate::summary`]), JSON, or a few
//! lines of text.

use std::path::PathBuf;

use crate::error::CliError;
use crate::output::Format;
use crate::sfn::{Sfn, Target};
use crate::timeline::{Ending, Timeline};

/// Flags of `report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Execution ARN, or its name with --state-machine/--stack.
    pub execution: String,
    #[command(flatten)]
    pub target: Target,
    /// Draw the timeline into this SVG file: the weights, each version's error and slow
    /// rates minute by minute, and the evidence against its threshold.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Output format: a few lines, the timeline as JSON, or a Markdown summary.
    #[arg(long, value_enum, default_value_t)]
    pub output: Format,
}

/// `report`.
pub async fn report(args: ReportArgs) -> Result<(), CliError> {
    let config = stepshift_aws::load_config().await;
    let sfn = Sfn::new(&config);
    let arn = sfn.execution(&args.execution, &args.target).await?;
    let ports = stepshift_aws::AwsPorts::new(&config);
    let t = crate::summary::timeline_of_execution(&sfn, &ports, &arn).await?;
    if let Some(path) = &args.svg {
        write_svg(path, &t)?;
        eprintln!("timeline drawn in {}", path.display());
    }
    match args.output {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&crate::timeline::document(&t)).unwrap_or_default())
        }
        Format::Markdown => print!("{}", crate::summary::markdown(&t, Some(&crate::deploy::console_url(&arn)))),
        Format::Text => {
            for line in lines(&t) {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// Writes the picture of `t` to `path`.
pub fn write_svg(path: &std::path::Path, t: &Timeline) -> Result<(), CliError> {
    std::fs::write(path, crate::picture::svg(t)).map_err(|e| CliError::Failed(format!("--svg {}: {e}", path.display())))
}

/// The timeline in a few lines: the ending, the weights over time, the pauses and marks,
/// and the last check's evidence.
fn lines(t: &Timeline) -> Vec<String> {
    let at = |x| format!("+{:05.1} min", t.minute_of(x));
    let mut out = vec![t.title(), format!("started {} · {} checks", t.start.to_rfc3339(), t.checks.len())];
    for (when, w) in &t.weights {
        out.push(format!("{}  candidate at {}%", at(*when), stepshift_core::percent_text(w / 100.0)));
    }
    for p in &t.pauses {
        out.push(format!("{}  {} until {}", at(p.start), p.label, at(p.end).trim_start_matches('+')));
    }
    for m in &t.marks {
        out.push(format!("{}  {}", at(m.at), m.label));
    }
    if let Some(last) = t.checks.last() {
        for e in &last.tests {
            out.push(format!(
                "last check: {} {} evidence {} of {}",
                e.target,
                e.test,
                stepshift_core::judge::evidence_text(e.evidence),
                e.threshold.round()
            ));
        }
    }
    if t.ending == Ending::Running {
        out.push("still running: report again later for the rest".to_owned());
    }
    out.extend(t.observed.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::simulated_timeline;

    #[test]
    fn the_text_report_tells_the_story_in_order() {
        let t = simulated_timeline(&["--scenario", "approval"]);
        let lines = lines(&t);
        assert_eq!(lines[0], "orders-api:live 41 → 42: promoted");
        assert!(lines.contains(&"+000.0 min  candidate at 10%".to_owned()), "{lines:#?}");
        assert!(lines.iter().any(|l| l.contains("approval until 005.0 min")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.ends_with("promoted")), "{lines:#?}");
        assert!(lines.iter().any(|l| l.starts_with("last check: orders-api:live errors evidence")), "{lines:#?}");
    }
}
