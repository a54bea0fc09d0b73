//! The pipeline summary: a deployment's [`Timeline`] as GitHub-flavoured Markdown for a
//! job's summary page (`stepshift deploy --wait --output markdown >> "$GITHUB_STEP_SUMMARY"`).
//! The outcome, a row per step, the check that decided with each test's evidence against
//! its threshold, the tests, what the observe-only rules found, what happened when, and
//! two Mermaid charts GitHub draws: the candidate's weight and both sides' error rates,
//! minute by minute.
//!
//! A few kilobytes whatever the deployment's length (GitHub takes at most 1 MiB a step):
//! lists and tables are cut, a chart has at most [`MAX_POINTS`] points.

// Without the AWS commands only the tests use it (until `simulate` does).
#![cfg_attr(not(feature = "aws"), allow(dead_code))]

use std::time::Duration;

use stepshift_core::judge::VerdictStatus;
use stepshift_core::ports::MinuteCounts;
use stepshift_core::{Timestamp, truncate};

use crate::timeline::{Ending, MarkKind, Timeline, rate};

/// A chart's points at most: a longer deployment is drawn a few minutes to a point.
const MAX_POINTS: usize = 60;
/// Rows of a table at most.
const MAX_ROWS: usize = 100;
/// Items of a list at most.
const MAX_ITEMS: usize = 40;
/// A reason in the step table is cut to this many characters (whole in the details).
const SHORT_REASON: usize = 160;

/// The summary of `t`, with a link to the execution in the console when there is one.
pub fn markdown(t: &Timeline, console_url: Option<&str>) -> String {
    let mut md = heading(t, console_url);
    for section in [steps(t), verdict(t), tests(t), observed(t), events(t), charts(t)] {
        if !section.is_empty() {
            md.push(String::new());
            md.extend(section);
        }
    }
    md.push(String::new());
    md.join("\n")
}

/// `## ❌ orders-api:live 41 → 42: rolled back`, the cause, when and how long, the link.
fn heading(t: &Timeline, console_url: Option<&str>) -> Vec<String> {
    let icon = match t.ending {
        Ending::Promoted => "✅",
        Ending::RolledBack | Ending::Failed => "❌",
        Ending::Running => "⏳",
    };
    let (word, cause) = t.outcome.split_once(": ").unwrap_or((&t.outcome, ""));
    let name = execution_name(&t.execution);
    let what = if t.release.is_empty() { name } else { &t.release };
    let mut lines = vec![format!("## {icon} {}: {}", escape(what), escape(word))];
    if !cause.is_empty() {
        lines.extend([String::new(), format!("**Why:** {}", escape(cause))]);
    }
    let took = humantime::format_duration(Duration::from_secs(t.end.secs_since(t.start).max(0) as u64));
    let ran = if t.ending == Ending::Running { format!("running for {took}") } else { format!("took {took}") };
    let execution = match console_url {
        Some(url) => format!("execution [{}]({url})", escape(name)),
        None => format!("execution {}", escape(name)),
    };
    lines.extend([String::new(), format!("Started {} · {ran} · {execution}", t.start)]);
    lines
}

/// The last part of an execution ARN: its name.
fn execution_name(arn: &str) -> &str {
    arn.rsplit(':').next().unwrap_or(arn)
}

/// A row per step: its weight, checks, verdict, the test nearest its threshold at the
/// step's last check, and the reason in short (whole in a `<details>` block below).
fn steps(t: &Timeline) -> Vec<String> {
    if t.steps.is_empty() {
        return vec!["### Steps".into(), String::new(), "No step was checked.".into()];
    }
    let mut lines = vec![
        "### Steps".into(),
        String::new(),
        "| Step | Weight | Checks | Verdict | Evidence / threshold | Why |".into(),
        "|---:|---:|---:|---|---|---|".into(),
    ];
    let mut details = Vec::new();
    for s in t.steps.iter().take(MAX_ROWS) {
        let checks = match s.extensions {
            0 => s.checks.to_string(),
            n => format!("{} ({n} bake extension{})", s.checks, if n == 1 { "" } else { "s" }),
        };
        let short = short_reason(&s.reason);
        if short != s.reason {
            details.push(format!("- **Step {}** ({}): {}", s.index + 1, percent(s.weight_percent), escape(&s.reason)));
        }
        lines.push(format!(
            "| {} | {} | {checks} | {} | {} | {} |",
            s.index + 1,
            percent(s.weight_percent),
            status(s.status),
            nearest(t, s.index),
            escape(&short)
        ));
    }
    if t.steps.len() > MAX_ROWS {
        lines.push(format!("\n… and {} more steps.", t.steps.len() - MAX_ROWS));
    }
    if !details.is_empty() {
        lines.extend([String::new(), "<details><summary>Each step's whole reason</summary>".into(), String::new()]);
        lines.extend(details);
        lines.extend([String::new(), "</details>".into()]);
    }
    lines
}

/// The test nearest its threshold at the last check of step `index`:
/// `errors 622418.92 / 200` (the target first when the checks judged several).
fn nearest(t: &Timeline, index: usize) -> String {
    let Some(check) = t.checks.iter().rev().find(|c| c.step == index) else {
        return "–".into();
    };
    let several = check.tests.iter().any(|e| e.target != check.tests[0].target);
    let ratio = |e: &crate::timeline::Evidence| if e.threshold > 0.0 { e.evidence / e.threshold } else { 0.0 };
    check.tests.iter().max_by(|a, b| ratio(a).total_cmp(&ratio(b))).map_or_else(
        || "–".into(),
        |e| {
            let target = if several { format!("{} ", e.target) } else { String::new() };
            escape(&format!("{target}{} {} / {}", e.test, number(e.evidence), number(e.threshold)))
        },
    )
}

/// The last check: when, its verdict, its whole reason, and every test's evidence
/// against its threshold.
fn verdict(t: &Timeline) -> Vec<String> {
    let Some(last) = t.checks.last() else { return Vec::new() };
    let weight = t.steps.iter().find(|s| s.index == last.step).map(|s| format!(" ({})", percent(s.weight_percent)));
    let decided = match (t.ending, last.status) {
        (Ending::RolledBack, VerdictStatus::Unhealthy) => " It decided the rollback.",
        _ => "",
    };
    let mut lines = vec![
        "### Verdict".into(),
        String::new(),
        format!(
            "The last check, at step {}{} at {}: {}.{decided}",
            last.step + 1,
            weight.unwrap_or_default(),
            offset(t, last.at),
            status(last.status)
        ),
    ];
    if !last.reason.is_empty() {
        lines.extend([String::new(), format!("> {}", escape(&last.reason))]);
    }
    if !last.tests.is_empty() {
        lines.extend([
            String::new(),
            "| Target | Test | Evidence | Threshold | |".into(),
            "|---|---|---:|---:|---|".into(),
        ]);
        for e in last.tests.iter().take(MAX_ROWS) {
            let crossed = if e.evidence >= e.threshold { "❌ crossed" } else { "✅ below" };
            lines.push(format!(
                "| {} | {} | {} | {} | {crossed} |",
                escape(&e.target),
                escape(&e.test),
                number(e.evidence),
                number(e.threshold)
            ));
        }
        lines.extend([
            String::new(),
            "<sub>Evidence is each test's likelihood ratio that the candidate is worse (1: none either way); \
             at its threshold the deployment rolls back.</sub>"
                .into(),
        ]);
    }
    lines
}

/// The validation tests' judgements, one per point (and step).
fn tests(t: &Timeline) -> Vec<String> {
    let items: Vec<String> = t
        .marks
        .iter()
        .filter_map(|m| {
            let icon = match m.kind {
                MarkKind::TestsPassed => "✅",
                MarkKind::TestsFailed => "❌",
                _ => return None,
            };
            Some(format!("- {icon} `{}` {}", offset(t, m.at), escape(&m.label)))
        })
        .collect();
    list("### Tests", items)
}

/// What the rules in observe mode found at the last check.
fn observed(t: &Timeline) -> Vec<String> {
    let items = t.observed.iter().map(|o| format!("- {}", escape(o))).collect();
    list("### Observe-only rules", items)
}

/// What happened when: the weight's moves, pauses, commands, the promotion, the rollback.
fn events(t: &Timeline) -> Vec<String> {
    let mut items: Vec<(Timestamp, String)> = Vec::new();
    for (i, (at, w)) in t.weights.iter().enumerate() {
        if i > 0 || *w > 0.0 {
            items.push((*at, format!("🔀 candidate at {}", percent(*w))));
        }
    }
    for p in &t.pauses {
        let took = humantime::format_duration(Duration::from_secs(p.end.secs_since(p.start).max(0) as u64));
        items.push((p.start, format!("⏸️ {} for {took}", escape(&p.label))));
    }
    for m in &t.marks {
        let icon = match m.kind {
            MarkKind::Promoted => "🚀",
            MarkKind::RollBack => "↩️",
            MarkKind::Command => "🧑",
            MarkKind::TestsPassed | MarkKind::TestsFailed => continue,
        };
        items.push((m.at, format!("{icon} {}", escape(&m.label))));
    }
    items.sort_by_key(|(at, _)| *at);
    list("### Timeline", items.into_iter().map(|(at, what)| format!("- `{}` {what}", offset(t, at))).collect())
}

/// A titled list, cut to [`MAX_ITEMS`]; nothing when empty.
fn list(title: &str, items: Vec<String>) -> Vec<String> {
    if items.is_empty() {
        return Vec::new();
    }
    let more = items.len().saturating_sub(MAX_ITEMS);
    let mut lines = vec![title.to_owned(), String::new()];
    lines.extend(items.into_iter().take(MAX_ITEMS));
    if more > 0 {
        lines.push(format!("- … and {more} more"));
    }
    lines
}

/// The charts: the candidate's weight, then both sides' error rates of the first target.
/// Nothing when traffic never moved.
fn charts(t: &Timeline) -> Vec<String> {
    if t.weights.is_empty() {
        return Vec::new();
    }
    let origin = t.start.floor_minute();
    let minutes = (t.end.ceil_minute().secs_since(origin) / 60).max(1) as usize;
    let per = minutes.div_ceil(MAX_POINTS).max(1);
    let axis =
        if per == 1 { "minutes since the start".to_owned() } else { format!("minutes since the start, {per} a point") };
    let each = if per == 1 { "each minute".to_owned() } else { format!("each {per} minutes") };
    let weights = bucket_max(&weight_by_minute(&t.weights, origin, minutes), per);
    let mut lines = vec!["### Traffic and errors".into(), String::new()];
    lines.extend(xychart("Candidate's weight (%)", &axis, per, ("weight (%)", 100.0), &[weights]));
    let mut notes = vec![format!("Weight: the highest in {each}.")];
    match t.series.first() {
        None => notes.push(
            "No per-minute metrics to draw: the targets are judged on alarms only, or CloudWatch could not be read."
                .into(),
        ),
        Some(s) => {
            let candidate = counts_by_minute(&s.candidate_minutes, origin, minutes);
            let stable = counts_by_minute(&s.stable_minutes, origin, minutes);
            // The metrics arrive minutes late: the chart ends at the last minute with any.
            let last = [&s.candidate_minutes, &s.stable_minutes]
                .iter()
                .flat_map(|m| m.iter())
                .filter_map(|m| minute_index(m.start, origin, minutes))
                .max();
            let late = "CloudWatch's metrics arrive a few minutes late: `stepshift report` draws them later.";
            match last.map(|last| last / per + 1) {
                Some(points) if points >= 2 => {
                    let last = last.unwrap_or_default();
                    let rates = |c: &[(u64, u64)]| bucket_rates(&c[..=last], per);
                    let (c, st) = (rates(&candidate), rates(&stable));
                    let top = c.iter().chain(&st).copied().fold(0.0, f64::max);
                    let title = format!("Error rate (%): {} (candidate), {} (stable)", s.candidate, s.stable);
                    lines.push(String::new());
                    lines.extend(xychart(&title, &axis, per, ("errors (%)", nice_ceiling(top)), &[c, st]));
                    notes.push(format!(
                        "Error rate: errors / invocations of {} in {each}, the candidate's line first; 0 without invocations.",
                        escape(&s.target)
                    ));
                    if last + 1 < minutes {
                        notes.push(format!("It ends at the last minute CloudWatch had when this was written; {late}"));
                    }
                    if t.series.len() > 1 {
                        notes.push(format!("{} more targets are not drawn.", t.series.len() - 1));
                    }
                }
                _ => notes.push(format!(
                    "No error rate chart: CloudWatch had {} minute of {} when this was written. {late}",
                    if last.is_some() { "only one" } else { "not one" },
                    escape(&s.target)
                )),
            }
        }
    }
    lines.extend([String::new(), format!("<sub>{}</sub>", notes.join(" "))]);
    lines
}

/// A Mermaid `xychart-beta` block: `series` lines over labels `0, per, 2 per, ...`,
/// the y axis from 0 to `top`.
fn xychart(title: &str, axis: &str, per: usize, (y_title, top): (&str, f64), series: &[Vec<f64>]) -> Vec<String> {
    let n = series.iter().map(Vec::len).max().unwrap_or(0);
    let labels: Vec<String> = (0..n).map(|i| (i * per).to_string()).collect();
    let mut lines = vec![
        "```mermaid".into(),
        "xychart-beta".into(),
        format!("    title \"{}\"", chart_text(title)),
        format!("    x-axis \"{}\" [{}]", chart_text(axis), labels.join(", ")),
        format!("    y-axis \"{}\" 0 --> {}", chart_text(y_title), value(top)),
    ];
    for s in series {
        let values: Vec<String> = s.iter().map(|v| value(v.clamp(0.0, top))).collect();
        lines.push(format!("    line [{}]", values.join(", ")));
    }
    lines.push("```".into());
    lines
}

/// Text a chart can hold: in quotes, on one line, without Mermaid's comment mark.
fn chart_text(text: &str) -> String {
    let plain: String = text.chars().map(|c| if c == '"' || c.is_control() { ' ' } else { c }).collect();
    plain.replace("%%", "% %")
}

/// A plain number for a chart: at most two decimals, never `NaN`, `inf` or `-0`.
fn value(v: f64) -> String {
    if !v.is_finite() || v.abs() < 0.005 {
        return "0".into();
    }
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Which minute since `origin` `at` falls in, if one of the `minutes` drawn.
fn minute_index(at: Timestamp, origin: Timestamp, minutes: usize) -> Option<usize> {
    let secs = at.secs_since(origin);
    (secs >= 0).then_some(secs as usize / 60).filter(|m| *m < minutes)
}

/// The candidate's highest weight in each minute since `origin`.
fn weight_by_minute(weights: &[(Timestamp, f64)], origin: Timestamp, minutes: usize) -> Vec<f64> {
    (0..minutes)
        .map(|m| {
            let from = origin.plus_secs(60 * m as i64);
            let to = from.plus_secs(60);
            let before = weights.iter().take_while(|(at, _)| *at <= from).last().map_or(0.0, |w| w.1);
            weights.iter().filter(|(at, _)| *at > from && *at < to).map(|w| w.1).fold(before, f64::max)
        })
        .collect()
}

/// Invocations and errors in each minute since `origin` (0 where there were none).
fn counts_by_minute(data: &[MinuteCounts], origin: Timestamp, minutes: usize) -> Vec<(u64, u64)> {
    let mut counts = vec![(0, 0); minutes];
    for m in data {
        if let Some(i) = minute_index(m.start, origin, minutes) {
            counts[i].0 += m.invocations;
            counts[i].1 += m.errors;
        }
    }
    counts
}

/// The highest value of each `per` minutes.
fn bucket_max(values: &[f64], per: usize) -> Vec<f64> {
    values.chunks(per).map(|c| c.iter().copied().fold(0.0, f64::max)).collect()
}

/// The error rate (percent) of each `per` minutes: their errors over their invocations.
fn bucket_rates(counts: &[(u64, u64)], per: usize) -> Vec<f64> {
    counts
        .chunks(per)
        .map(|c| {
            let (invocations, errors) = c.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            rate(errors, invocations).unwrap_or(0.0)
        })
        .collect()
}

/// The y axis's top: 1, 2 or 5 times a power of ten, at least `x` and 1 (percent).
fn nice_ceiling(x: f64) -> f64 {
    if !x.is_finite() || x <= 1.0 {
        return 1.0;
    }
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|top| *top >= x).unwrap_or(10.0 * power).min(100.0)
}

/// `10%`, `12.5%`.
fn percent(weight_percent: f64) -> String {
    format!("{}%", stepshift_core::percent_text(weight_percent / 100.0))
}

/// `+03:01`, `+1:03:01` since the start.
fn offset(t: &Timeline, at: Timestamp) -> String {
    let secs = at.secs_since(t.start).max(0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 { format!("+{h}:{m:02}:{s:02}") } else { format!("+{m:02}:{s:02}") }
}

/// A verdict with its sign.
fn status(s: VerdictStatus) -> &'static str {
    match s {
        VerdictStatus::Healthy => "✅ healthy",
        VerdictStatus::Unhealthy => "❌ unhealthy",
        VerdictStatus::Inconclusive => "⚪ not enough data",
    }
}

/// Evidence and thresholds as the reasons write them: `0.73`, `622418.92`, `1.2e8`.
fn number(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x.is_infinite() {
        "∞".into()
    } else {
        stepshift_core::judge::evidence_text(x)
    }
}

/// A reason's first clause, each parenthesis cut to its own first clause:
/// `v42 fails 81x as often (10 errors in 131 invocations; evidence 622418 against 200):
/// worse; ...` → `v42 fails 81x as often (10 errors in 131 invocations): worse`.
fn short_reason(reason: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    // The depth whose clause is being skipped (after its first "; ").
    let mut skipping: Option<usize> = None;
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if skipping.is_some_and(|d| depth < d) {
                    skipping = None;
                }
            }
            ';' if chars.peek() == Some(&' ') => {
                if depth == 0 {
                    break;
                }
                skipping.get_or_insert(depth);
            }
            _ => {}
        }
        if skipping.is_none() {
            out.push(c);
        }
    }
    truncate(out.trim_end(), SHORT_REASON)
}

/// Text as Markdown shows it: on one line, with the characters Markdown (or a table's
/// cell) would read as markup escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The timeline of an execution from its history `items` (oldest first) and its status:
/// each event goes to a [`crate::timeline::Recorder`] with the deployment after it; then
/// every target's minutes are read with `ports` (CloudWatch: the checks' own queries).
/// A running execution's timeline ends at `now`.
#[cfg(feature = "aws")]
pub async fn timeline_of_history<P: stepshift_core::routers::ObservePorts>(
    ports: &P,
    arn: &str,
    info: &crate::sfn::ExecutionInfo,
    items: &[crate::view::Item],
    now: Timestamp,
) -> Timeline {
    let mut view = crate::view::View::default();
    let mut recorder = crate::timeline::Recorder::default();
    for item in items {
        view.apply(item);
        recorder.see(item, &view);
    }
    let end = (!info.ended()).then_some(now);
    let mut t = recorder.finish(arn, &view, &info.status, info.cause.as_deref(), end);
    if let Some(plan) = &view.plan {
        t.series = crate::timeline::minutes(ports, plan, t.end).await;
    }
    t
}

/// The timeline of execution `arn` as Step Functions and CloudWatch have it now
/// (`stepshift report`): its status, then its history (whole, if the status says it
/// ended), then its minutes through `ports` (`stepshift_aws::AwsPorts`).
#[cfg(feature = "aws")]
pub async fn timeline_of_execution<P: stepshift_core::routers::ObservePorts>(
    sfn: &crate::sfn::Sfn,
    ports: &P,
    arn: &str,
) -> Result<Timeline, crate::error::CliError> {
    use stepshift_core::Clock;
    let info = sfn.describe(arn).await?;
    let items = sfn.history(arn).await?;
    Ok(timeline_of_history(ports, arn, &info, &items, stepshift_core::SystemClock.now()).await)
}

#[cfg(test)]
pub mod checker {
    //! A checker for the Mermaid the summary writes. It knows only that subset of the
    //! `xychart-beta` grammar (Mermaid's own is larger): the keyword alone on the first
    //! line, then one statement a line: `title "text"`, `x-axis "text" [label, ...]`,
    //! `y-axis "text" low --> high` and `line [number, ...]`, numbers as Mermaid's lexer
    //! reads them (`[+-]?(\d+(\.\d+)?|\.\d+)`: no exponent, no NaN, no inf).

    /// One chart, read.
    #[derive(Debug, Default, PartialEq)]
    pub struct Chart {
        pub title: String,
        pub labels: Vec<String>,
        pub y: (f64, f64),
        pub lines: Vec<Vec<f64>>,
    }

    fn number(text: &str) -> Result<f64, String> {
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let ok = whole.chars().all(|c| c.is_ascii_digit())
            && fraction.chars().all(|c| c.is_ascii_digit())
            && (!whole.is_empty() || !fraction.is_empty())
            && (!digits.contains('.') || !fraction.is_empty());
        if ok { text.parse().map_err(|e| format!("{text}: {e}")) } else { Err(format!("not a number: {text:?}")) }
    }

    /// `"text"` at the start of `rest`: the text, and what follows.
    fn quoted(rest: &str) -> Result<(&str, &str), String> {
        let inner = rest.strip_prefix('"').ok_or_else(|| format!("no opening quote: {rest:?}"))?;
        let end = inner.find('"').ok_or_else(|| format!("no closing quote: {rest:?}"))?;
        Ok((&inner[..end], inner[end + 1..].trim_start()))
    }

    /// `[a, b, c]`, the whole of `rest`.
    fn bracketed(rest: &str) -> Result<Vec<&str>, String> {
        let inner =
            rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')).ok_or_else(|| format!("not [..]: {rest:?}"))?;
        let items: Vec<&str> = inner.split(',').map(str::trim).collect();
        if items.iter().any(|i| i.is_empty()) {
            return Err(format!("an empty item: {rest:?}"));
        }
        Ok(items)
    }

    /// Reads one chart's source (without the fence).
    pub fn parse(source: &str) -> Result<Chart, String> {
        if source.contains("%%") {
            return Err("`%%` starts a Mermaid comment".into());
        }
        let mut lines = source.lines();
        if lines.next() != Some("xychart-beta") {
            return Err("the first line is not `xychart-beta`".into());
        }
        let mut chart = Chart::default();
        let (mut x, mut y) = (false, false);
        for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
            let (keyword, rest) = line.split_once(' ').ok_or_else(|| format!("a bare word: {line:?}"))?;
            let rest = rest.trim_start();
            match keyword {
                "title" => {
                    let (text, after) = quoted(rest)?;
                    if !after.is_empty() {
                        return Err(format!("after the title: {after:?}"));
                    }
                    chart.title = text.to_owned();
                }
                "x-axis" if !x => {
                    let (_, after) = quoted(rest)?;
                    let labels = bracketed(after)?;
                    if let Some(bad) = labels.iter().find(|l| !l.chars().all(|c| c.is_ascii_alphanumeric())) {
                        return Err(format!("a label that is not a word: {bad:?}"));
                    }
                    chart.labels = labels.into_iter().map(str::to_owned).collect();
                    x = true;
                }
                "y-axis" if !y => {
                    let (_, after) = quoted(rest)?;
                    let (low, high) = after.split_once(" --> ").ok_or_else(|| format!("no range: {after:?}"))?;
                    chart.y = (number(low.trim())?, number(high.trim())?);
                    if chart.y.0 >= chart.y.1 {
                        return Err(format!("an empty range: {after:?}"));
                    }
                    y = true;
                }
                "line" => {
                    let values = bracketed(rest)?.into_iter().map(number).collect::<Result<Vec<f64>, String>>()?;
                    chart.lines.push(values);
                }
                other => return Err(format!("not in the subset (or repeated): {other:?}")),
            }
        }
        if !x || !y || chart.lines.is_empty() {
            return Err("an axis or the lines are missing".into());
        }
        for (i, values) in chart.lines.iter().enumerate() {
            if values.len() != chart.labels.len() {
                return Err(format!("line {i} has {} values for {} labels", values.len(), chart.labels.len()));
            }
            if let Some(v) = values.iter().find(|v| **v < chart.y.0 || **v > chart.y.1) {
                return Err(format!("line {i}: {v} is off the y axis {:?}", chart.y));
            }
        }
        Ok(chart)
    }

    /// Every ```` ```mermaid ```` block of a Markdown text, read.
    pub fn charts(markdown: &str) -> Result<Vec<Chart>, String> {
        let mut charts = Vec::new();
        let mut rest = markdown;
        while let Some(start) = rest.find("```mermaid\n") {
            let body = &rest[start + "```mermaid\n".len()..];
            let end = body.find("\n```").ok_or("an unclosed mermaid block")?;
            charts.push(parse(&body[..end])?);
            rest = &body[end + 4..];
        }
        Ok(charts)
    }
}

#[cfg(test)]
mod tests {
    use super::checker::{charts, parse};
    use super::*;
    use crate::simulate::simulated_timeline;

    /// The step table's rows (its header and rule left out).
    fn step_rows(md: &str) -> Vec<&str> {
        let header =
            "| Step | Weight | Checks | Verdict | Evidence / threshold | Why |\n|---:|---:|---:|---|---|---|\n";
        let body = md.split_once(header).expect("a step table").1;
        body.lines().take_while(|l| l.starts_with('|')).collect()
    }

    /// What every summary must be: charts GitHub draws, nothing unprintable, small.
    fn well_formed(md: &str) -> Vec<checker::Chart> {
        assert!(!md.contains("NaN") && !md.contains("inf"), "{md}");
        assert!(md.len() < 64 * 1024, "{} bytes", md.len());
        let charts = charts(md).unwrap_or_else(|e| panic!("{e}\n{md}"));
        for c in &charts {
            assert!(c.labels.len() <= MAX_POINTS + 1, "{} points", c.labels.len());
            assert!(c.labels.iter().enumerate().all(|(i, l)| l.parse::<usize>().is_ok_and(|m| i == 0 || m > 0)));
        }
        charts
    }

    #[test]
    fn a_rolled_back_canary_says_why_in_its_first_lines() {
        let md = markdown(
            &simulated_timeline(&["--scenario", "error-spike"]),
            Some("https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/x"),
        );
        assert!(md.starts_with("## ❌ orders-api:live 41 → 42: rolled back\n\n**Why:** the candidate was unhealthy at step 1 of 2 (10%)"), "{md}");
        assert!(md.contains("· execution [deployment-1](https://us-east-1.console.aws.amazon.com/"), "{md}");
        let rows = step_rows(&md);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].starts_with("| 1 | 10% | 3 | ❌ unhealthy | errors 622418.92 / 200 | orders-api:live version 42 fails 81.07x as often as version 41 over the same minutes since 09:00 (10 errors in 131 invocations): worse, with 99% confidence |"), "{}", rows[0]);
        // The whole reason, numbers and all, in the details.
        assert!(
            md.contains("<details><summary>") && md.contains("evidence 622418.92 against a threshold of 200): worse")
        );
        assert!(
            md.contains("The last check, at step 1 (10%) at +03:01: ❌ unhealthy. It decided the rollback."),
            "{md}"
        );
        assert!(md.contains("| orders-api:live | errors | 622418.92 | 200 | ❌ crossed |"), "{md}");
        assert!(md.contains("| orders-api:live | slow | 0.73 | 200 | ✅ below |"), "{md}");
        assert!(md.contains("- `+03:01` ↩️ rollback"), "{md}");
        let charts = well_formed(&md);
        assert_eq!(charts.len(), 2, "the weight, and the error rates (read after the end, as a report would)");
        assert_eq!(charts[0].labels, ["0", "1", "2", "3"]);
        assert_eq!(charts[0].lines, [vec![10.0, 10.0, 10.0, 10.0]], "10% until the rollback, in its minute");
        assert_eq!(charts[0].y, (0.0, 100.0));
        let (candidate, stable) = (&charts[1].lines[0], &charts[1].lines[1]);
        assert!(candidate[..3].iter().all(|r| *r > 5.0), "the candidate's 8% errors: {candidate:?}");
        assert!(stable.iter().all(|r| *r < 1.0), "the stable version's 0.1%: {stable:?}");
    }

    #[test]
    fn a_later_rollback_draws_both_sides_error_rates() {
        let md = markdown(&simulated_timeline(&["--scenario", "error-spike", "--fails-after", "4m"]), None);
        assert!(md.starts_with("## ❌ orders-api:live 41 → 42: rolled back\n"), "{md}");
        assert_eq!(step_rows(&md).len(), 2);
        let charts = well_formed(&md);
        assert_eq!(charts.len(), 2, "{md}");
        let (weight, errors) = (&charts[0], &charts[1]);
        assert_eq!(weight.lines[0].first(), Some(&10.0));
        assert!(weight.lines[0].contains(&100.0), "{weight:?}");
        assert_eq!(errors.lines.len(), 2, "the candidate and the stable version");
        assert!(errors.labels.len() >= 2 && errors.labels.len() <= weight.labels.len(), "{errors:?}");
        assert!(errors.title.contains("version 42 (candidate), version 41 (stable)"), "{}", errors.title);
        let top = errors.lines[0].iter().copied().fold(0.0, f64::max);
        assert!(top > 1.0 && top <= errors.y.1, "the spike shows: {errors:?}");
    }

    #[test]
    fn a_promoted_canary_has_a_row_per_step() {
        let t = simulated_timeline(&[]);
        let md = markdown(&t, None);
        assert!(md.starts_with("## ✅ orders-api:live 41 → 42: promoted\n\nStarted 2026-11-24T09:00:00Z · took 10m 2s · execution deployment-1\n"), "{md}");
        let rows = step_rows(&md);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[0].starts_with("| 1 | 10% | 5 | ✅ healthy | errors 0.77 / 200 | orders-api:live version 42 healthy: 0% errors (0 in 273 invocations over 08:57-09:02), p99 162.25 ms |"), "{}", rows[0]);
        assert!(rows[1].starts_with("| 2 | 100% |"), "{}", rows[1]);
        assert!(!md.contains("It decided"), "{md}");
        let charts = well_formed(&md);
        assert_eq!(charts[0].lines[0].last(), Some(&100.0));
    }

    #[test]
    fn an_approval_shows_in_the_timeline() {
        let md = markdown(&simulated_timeline(&["--scenario", "approval"]), None);
        assert_eq!(step_rows(&md).len(), 3);
        assert!(md.contains("- `+03:01` ⏸️ approval for 2m"), "{md}");
        assert!(md.contains("🚀 promoted"), "{md}");
        let charts = well_formed(&md);
        assert!(charts[0].lines[0].contains(&50.0), "{:?}", charts[0]);
    }

    #[test]
    fn a_long_deployment_is_drawn_in_buckets_and_stays_small() {
        let mut t = simulated_timeline(&["--scenario", "approval"]);
        // Ten hours, a hundred steps, a thousand checks, every minute with data.
        t.end = t.start.plus_secs(10 * 3600);
        t.ending = Ending::Running;
        t.outcome = "running".into();
        let step = t.steps[0].clone();
        t.steps = (0..150).map(|i| stepshift_core::deployment::StepSummary { index: i, ..step.clone() }).collect();
        let check = t.checks[0].clone();
        t.checks = (0..1000).map(|i| crate::timeline::Check { step: i % 150, ..check.clone() }).collect();
        let minute = t.series[0].stable_minutes[0];
        t.series[0].stable_minutes =
            (0..600).map(|m| MinuteCounts { start: t.start.floor_minute().plus_secs(60 * m), ..minute }).collect();
        t.observed = vec!["observe-only, would roll back: x".into(); 200];
        let md = markdown(&t, None);
        assert!(md.starts_with("## ⏳ orders-api:live 41 → 42: running\n"), "{md}");
        assert!(md.contains("running for 10h"), "{md}");
        assert_eq!(step_rows(&md).len(), MAX_ROWS);
        assert!(md.contains("### Observe-only rules\n\n- observe-only, would roll back: x\n"), "{md}");
        assert!(md.contains("… and 50 more steps.") && md.contains("- … and 160 more"));
        let charts = well_formed(&md);
        assert_eq!(charts[0].labels.len(), 60);
        assert_eq!(&charts[0].labels[..3], ["0", "10", "20"]);
        assert!(md.contains("minutes since the start, 10 a point"));
        assert_eq!(charts[1].labels.len(), 60, "the stable side's minutes reach the end");
    }

    #[test]
    fn nothing_checked_nothing_drawn() {
        let mut t = simulated_timeline(&["--scenario", "error-spike"]);
        t.steps.clear();
        t.checks.clear();
        t.weights.clear();
        t.series.clear();
        t.marks.clear();
        let md = markdown(&t, None);
        assert!(md.contains("No step was checked."), "{md}");
        assert!(!md.contains("### Verdict") && !md.contains("### Traffic"), "{md}");
        well_formed(&md);
        // Traffic moved, the metrics could not be read: the weight alone.
        t.weights = vec![(t.start, 0.0), (t.start.plus_secs(30), 10.0)];
        let md = markdown(&t, None);
        assert_eq!(well_formed(&md).len(), 1);
        assert!(md.contains("No per-minute metrics to draw"), "{md}");
    }

    #[test]
    fn reasons_are_cut_to_their_first_clause() {
        assert_eq!(short_reason("a (b; c (d)) e; f"), "a (b) e");
        assert_eq!(
            short_reason("not enough data yet (evidence 1 / 200 against none (limits only))"),
            "not enough data yet (evidence 1 / 200 against none (limits only))"
        );
        assert_eq!(short_reason("x served 0 invocations; 5 needed"), "x served 0 invocations");
        assert_eq!(short_reason("p99 450.5 ms;no space"), "p99 450.5 ms;no space");
        assert_eq!(short_reason(&"x".repeat(300)).chars().count(), SHORT_REASON);
    }

    #[test]
    fn text_cannot_break_the_markdown() {
        assert_eq!(escape("a|b <c> *d* [e](f) `g`\nh"), r"a\|b \<c\> \*d\* \[e\](f) \`g\` h");
        assert_eq!(chart_text("say \"hi\" 100%% sure\n"), "say  hi  100% % sure ");
        assert_eq!(value(f64::NAN), "0");
        assert_eq!(value(f64::INFINITY), "0");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(12.5), "12.5");
        assert_eq!(value(7.6335), "7.63");
        assert_eq!(number(622_418.919), "622418.92");
        assert_eq!(number(123_961_075.0), "1.2e8");
        assert_eq!(number(f64::INFINITY), "∞");
        assert_eq!(number(222.2222), "222.22");
        assert_eq!(nice_ceiling(7.63), 10.0);
        assert_eq!(nice_ceiling(0.2), 1.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(f64::NAN), 1.0);
    }

    #[test]
    fn the_checker_knows_a_bad_chart() {
        let good =
            "xychart-beta\n    title \"t\"\n    x-axis \"m\" [0, 1]\n    y-axis \"y\" 0 --> 10\n    line [1, 2.5]";
        assert_eq!(parse(good).unwrap().lines, [vec![1.0, 2.5]]);
        for bad in [
            good.replace("xychart-beta", "xychart-beta horizontal"),
            good.replace("2.5]", "NaN]"),
            good.replace("2.5]", "1e3]"),
            good.replace("2.5]", "inf]"),
            good.replace("2.5]", "2.5, 3]"),
            good.replace("2.5]", "12]"),
            good.replace("[0, 1]", "[0, 1.5]"),
            good.replace("0 --> 10", "10 --> 0"),
            good.replace("\"t\"", "\"t"),
            good.replace("\"t\"", "\"t %% c\""),
            good.replace("    line [1, 2.5]", ""),
            good.replace("title", "bar"),
        ] {
            assert!(parse(&bad).is_err(), "{bad}");
        }
    }
}
