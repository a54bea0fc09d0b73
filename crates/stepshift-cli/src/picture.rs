//! The deployment's timeline as one self-contained SVG (`simulate --report`): a title
//! that says how it ended, then four panels over one time axis, minutes since the start:
//!
//! 1. the candidate's share of traffic step by step, with the approval waits and pauses
//!    shaded and the tests, the promotion, people's commands and the rollback marked;
//! 2. each version's error rate, minute by minute;
//! 3. each version's share of slow invocations, minute by minute;
//! 4. every test's evidence against its threshold at each check, on a log scale where
//!    the threshold is the line at 1 (a test rolls the deployment back above it).
//!
//! Every panel has the same left and right margins and the same x range, so that a
//! moment is at the same pixel column in all four. plotters writes the SVG, text
//! included (as `<text>` elements whose size it estimates: no font is read here).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use stepshift_core::judge::VerdictStatus;
use stepshift_core::ports::MinuteCounts;
use stepshift_core::{Timestamp, truncate};

use crate::timeline::{self, Check, Ending, Evidence, MarkKind, Timeline};

/// The picture's size in pixels.
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 760;
/// The title band's height, then each panel's, top to bottom (they add up to `HEIGHT`).
const TITLE_HEIGHT: u32 = 72;
const PANEL_HEIGHTS: [u32; 4] = [212, 140, 140, 196];
/// Room for a panel's caption above its plot.
const CAPTION_HEIGHT: u32 = 22;
/// Room for the tick labels left of every plot: the same in every panel, so that the
/// plots line up.
const Y_LABEL_AREA: u32 = 70;
/// Room for the time axis's labels, under the bottom panel only.
const X_LABEL_AREA: u32 = 40;
/// Room under the other panels, between a plot and the next caption.
const GAP: u32 = 10;
const RIGHT_MARGIN: u32 = 28;
/// The rows of labels above the traffic plot (marks and pauses), and their height.
const LABEL_ROWS: usize = 3;
const LABEL_ROW_HEIGHT: i32 = 14;
/// The evidence panel's scale: evidence/threshold from 10^-LIMIT to 10^LIMIT; points
/// beyond are drawn at the edge as triangles.
const EVIDENCE_LIMIT: f64 = 3.0;
/// The most targets the rate panels draw a colour pair for.
const MAX_TARGETS: usize = 3;

const FONT: &str = "sans-serif";
/// Font sizes as plotters takes them (it writes size / 1.24 into the SVG).
const TITLE_SIZE: u32 = 24;
const SUBTITLE_SIZE: u32 = 15;
const CAPTION_SIZE: u32 = 16;
const LABEL_SIZE: u32 = 14;

/// Text, secondary text (and commands, and a running deployment), plot frames, grid.
const INK: RGBColor = RGBColor(0x24, 0x29, 0x2F);
const MUTED: RGBColor = RGBColor(0x6E, 0x77, 0x81);
/// The plots' frames: drawn in this colour and nothing else (the tests find the plots by it).
const FRAME: RGBColor = RGBColor(0x57, 0x60, 0x6A);
const GRID: RGBColor = RGBColor(0xE4, 0xE8, 0xEC);
const LEGEND_BORDER: RGBColor = RGBColor(0xD0, 0xD7, 0xDE);
/// The candidate (its traffic, its rates), and the stable side.
const CANDIDATE: RGBColor = RGBColor(0x09, 0x69, 0xDA);
const STABLE: RGBColor = RGBColor(0x8C, 0x95, 0x9F);
const GREEN: RGBColor = RGBColor(0x1A, 0x7F, 0x37);
const RED: RGBColor = RGBColor(0xCF, 0x22, 0x2E);
const DARK_RED: RGBColor = RGBColor(0x82, 0x07, 0x1E);
/// Approval waits and pauses: shaded in this colour, labelled in the darker one.
const PAUSE: RGBColor = RGBColor(0xD4, 0xA7, 0x2C);
const PAUSE_TEXT: RGBColor = RGBColor(0x9A, 0x67, 0x00);
/// The candidates' colours when a release has several targets (the first is `CANDIDATE`).
const TARGET_COLOURS: [RGBColor; MAX_TARGETS] = [CANDIDATE, RGBColor(0x82, 0x50, 0xDF), RGBColor(0xBC, 0x4C, 0x00)];
/// The tests' colours in the evidence panel.
const TEST_COLOURS: [RGBColor; 6] = [
    RGBColor(0xBC, 0x4C, 0x00),
    RGBColor(0x82, 0x50, 0xDF),
    RGBColor(0x1B, 0x7C, 0x83),
    RGBColor(0xBF, 0x39, 0x89),
    RGBColor(0x09, 0x69, 0xDA),
    RGBColor(0x7D, 0x4E, 0x00),
];

type Backend<'b> = SVGBackend<'b>;
type Area<'b> = DrawingArea<Backend<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, Backend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The picture of `t`, as SVG text.
pub fn svg(t: &Timeline) -> String {
    let mut out = String::new();
    if let Err(e) = draw(t, &mut out) {
        // Writing into a string does not fail; should plotters still refuse, the
        // picture says so under the title rather than being cut off.
        out.clear();
        let _ = draw_failure(t, &e.to_string(), &mut out);
    }
    out
}

/// Draws the whole picture into `out`.
fn draw(t: &Timeline, out: &mut String) -> Drawn {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, mut rest) = root.split_vertically(TITLE_HEIGHT);
    title(&head, t)?;
    let mut panels = Vec::new();
    for height in PANEL_HEIGHTS {
        let (panel, below) = rest.split_vertically(height);
        panels.push(panel);
        rest = below;
    }
    traffic(&panels[0], t)?;
    rates(&panels[1], t, &ERROR_RATE)?;
    rates(&panels[2], t, &SLOW_RATE)?;
    evidence(&panels[3], t)?;
    root.present()
}

/// The title alone, and why the rest could not be drawn.
fn draw_failure(t: &Timeline, why: &str, out: &mut String) -> Drawn {
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (head, rest) = root.split_vertically(TITLE_HEIGHT);
    title(&head, t)?;
    rest.draw_text(&format!("the timeline could not be drawn: {why}"), &text(LABEL_SIZE, RED), (16, 16))?;
    root.present()
}

// ---------------------------------------------------------------------------------
// The title

/// The title band: the release and its ending in the ending's colour, the cause (when
/// there is one) under it, then when it started and how long it ran.
fn title(area: &Area, t: &Timeline) -> Drawn {
    // `t.title()` is `<release>: <outcome>`; a cause after the outcome's first `: `
    // goes on a line of its own.
    let title = t.title();
    let cause = t.outcome.split_once(": ").map(|(_, cause)| cause);
    let headline = cause.and_then(|c| title.strip_suffix(c)?.strip_suffix(": ")).unwrap_or(&title);
    let line = headline.trim_start_matches(": ");
    let bold = styled((FONT, TITLE_SIZE).into_font().style(FontStyle::Bold), ending_colour(t.ending));
    area.draw_text(&truncate(line, 80), &bold, (16, 8))?;
    let mut y = 36;
    if let Some(cause) = cause {
        area.draw_text(&truncate(&short_names(cause), 140), &text(SUBTITLE_SIZE, INK), (16, y))?;
        y += 18;
    }
    let mut about = format!("started {} · ran {}", utc(t.start), duration(t.end.secs_since(t.start)));
    if let Some(name) = t.execution.rsplit(':').next().filter(|n| !n.is_empty()) {
        about.push_str(&format!(" · execution {}", truncate(name, 60)));
    }
    area.draw_text(&about, &text(LABEL_SIZE, MUTED), (16, y))
}

/// The ending's colour: promoted green, rolled back red, failed dark red, running grey.
fn ending_colour(ending: Ending) -> RGBColor {
    match ending {
        Ending::Promoted => GREEN,
        Ending::RolledBack => RED,
        Ending::Failed => DARK_RED,
        Ending::Running => MUTED,
    }
}

/// `2026-11-24 09:00:00 UTC`.
fn utc(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    let text = text.trim_end_matches('Z');
    let seconds = text.split('.').next().unwrap_or(text);
    format!("{} UTC", seconds.replacen('T', " ", 1))
}

/// `42 s`, `3 min 2 s`, `1 h 5 min`.
fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

// ---------------------------------------------------------------------------------
// Panel 1: the candidate's traffic

/// The candidate's share of traffic as a step line, each step's weight written at its
/// level; pauses shaded; every mark a dashed line, labelled above the plot.
fn traffic(area: &Area, t: &Timeline) -> Drawn {
    let label_strip = LABEL_ROWS as u32 * LABEL_ROW_HEIGHT as u32 + 4;
    let y = 0.0..100.0;
    let mut chart = panel(area, t, "candidate traffic %", label_strip, y.clone(), false)?;
    mesh(&mut chart, 5, &|v| percent(*v), false)?;
    shade_pauses(&mut chart, t, &y)?;

    let steps = weight_steps(t);
    let mut under = steps.clone();
    under.extend([(steps.last().map_or(0.0, |p| p.0), 0.0), (0.0, 0.0)]);
    chart.draw_series(std::iter::once(Polygon::new(under, CANDIDATE.mix(0.1).filled())))?;
    chart.draw_series(std::iter::once(PathElement::new(steps.clone(), CANDIDATE.stroke_width(2))))?;
    // Each level's weight at its start: the last level's, and those long enough to
    // hold it (a test's seconds at 0% before the first step have none).
    let levels: Vec<_> = steps.chunks(2).filter(|p| p.len() == 2).collect();
    for (i, pair) in levels.iter().enumerate() {
        let ((x, w), (to, _)) = (pair[0], pair[1]);
        let long = chart.backend_coord(&(to, w)).0 - chart.backend_coord(&(x, w)).0 >= 30;
        if !(long || i + 1 == levels.len()) {
            continue;
        }
        let (dy, v) = if w > 85.0 { (3, VPos::Top) } else { (-3, VPos::Bottom) };
        beside(&mut chart, (x, w), percent(w), CANDIDATE, dy, v)?;
    }

    let mut labels = Vec::new();
    for mark in &t.marks {
        let x = clamp_x(t, t.minute_of(mark.at));
        let colour = mark_colour(mark.kind);
        dashed(&mut chart, x, &y, colour.stroke_width(2))?;
        labels.push((x, mark_label(mark.kind, &mark.label), colour));
    }
    // A pause's span is labelled unless a command's mark at its start already names it.
    let commanded =
        |at: Timestamp| t.marks.iter().any(|m| m.kind == MarkKind::Command && (m.at.secs_since(at)).abs() <= 1);
    for span in t.pauses.iter().filter(|s| !commanded(s.start)) {
        labels.push((clamp_x(t, t.minute_of(span.start)), truncate(&short_names(&span.label), 30), PAUSE_TEXT));
    }
    label_above(&mut chart, labels)?;
    frame(&mut chart, &y)
}

/// The weights as a step line: two points per level, its start and its end (at least
/// one level: 0% throughout when there are no weights).
fn weight_steps(t: &Timeline) -> Vec<(f64, f64)> {
    let end = clamp_x(t, t.minute_of(t.end));
    let mut steps = Vec::new();
    for (i, (at, w)) in t.weights.iter().enumerate() {
        let from = clamp_x(t, t.minute_of(*at));
        let to = t.weights.get(i + 1).map_or(end, |(next, _)| clamp_x(t, t.minute_of(*next)));
        let w = if w.is_finite() { w.clamp(0.0, 100.0) } else { 0.0 };
        steps.extend([(from, w), (to.max(from), w)]);
    }
    if steps.is_empty() {
        steps.extend([(0.0, 0.0), (end, 0.0)]);
    }
    steps
}

/// A mark's colour: tests passed green, failed red, promoted blue, commands grey,
/// the rollback red.
fn mark_colour(kind: MarkKind) -> RGBColor {
    match kind {
        MarkKind::TestsPassed => GREEN,
        MarkKind::TestsFailed | MarkKind::RollBack => RED,
        MarkKind::Promoted => CANDIDATE,
        MarkKind::Command => MUTED,
    }
}

/// A mark's label, short enough for the strip above the plot: `tests before traffic:
/// passed`, `abort by alice`, `promoted`.
fn mark_label(kind: MarkKind, label: &str) -> String {
    match kind {
        MarkKind::TestsPassed | MarkKind::TestsFailed => {
            let verdict = if kind == MarkKind::TestsPassed { "passed" } else { "failed" };
            let point = label.split(':').next().unwrap_or("tests");
            format!("{}: {verdict}", truncate(point, 24))
        }
        _ => truncate(&short_names(label), 28),
    }
}

/// `label` with each ARN cut to its last part: `paused by arn:aws:iam::1:user/alice` is
/// `paused by alice`.
fn short_names(label: &str) -> String {
    let short = |word: &str| match word.strip_prefix("arn:") {
        Some(arn) => arn.rsplit(['/', ':']).next().filter(|s| !s.is_empty()).unwrap_or(word).to_owned(),
        None => word.to_owned(),
    };
    label.split(' ').map(short).collect::<Vec<_>>().join(" ")
}

/// Writes `labels` (each at its minute) in the rows above the plot, the nearest row
/// first, each joined to the plot by a short tick; a label that would overrun the
/// plot's right edge goes left of its minute.
fn label_above(chart: &mut Chart, mut labels: Vec<(f64, String, RGBColor)>) -> Drawn {
    labels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (xs, _) = chart.plotting_area().get_pixel_range();
    let top = chart.y_range().end;
    let mut row_ends = [i32::MIN; LABEL_ROWS];
    for (x, label, colour) in labels {
        let at = chart.backend_coord(&(x, top)).0;
        let width = text_width(&label, LABEL_SIZE);
        let left = if at + 4 + width > xs.end { at - 4 - width } else { at + 4 };
        // The first row with room, or else the one whose last label ends first.
        let row = (0..LABEL_ROWS)
            .find(|&r| row_ends[r] + 6 <= left)
            .unwrap_or_else(|| (0..LABEL_ROWS).min_by_key(|&r| row_ends[r]).unwrap_or(0));
        row_ends[row] = left + width;
        let rise = (row as i32 + 1) * LABEL_ROW_HEIGHT;
        let tick = PathElement::new(vec![(0, 0), (0, -rise + 3)], colour.stroke_width(1));
        let words = Text::new(label, (left - at, -rise), text(LABEL_SIZE, colour).pos(Pos::new(HPos::Left, VPos::Top)));
        chart.draw_series(std::iter::once(EmptyElement::at((x, top)) + tick + words))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Panels 2 and 3: each version's minutes

/// A rate the minutes give: errors per invocation, slow per timed invocation.
struct Metric {
    caption: &'static str,
    /// The minute's rate in percent, if it had any of what the rate is out of.
    rate: fn(&MinuteCounts) -> Option<f64>,
    /// What a target without any of it is told.
    missing: &'static str,
}

const ERROR_RATE: Metric = Metric {
    caption: "error rate %",
    rate: |m| timeline::rate(m.errors, m.invocations),
    missing: "no invocations in these minutes",
};

const SLOW_RATE: Metric = Metric {
    caption: "slow invocations %",
    rate: |m| timeline::rate(m.slow, m.durations),
    missing: "no latency data for this target",
};

/// Each target's candidate (strong colour) and stable side (grey), one point per
/// minute with data at the minute's start; a legend names the versions.
fn rates(area: &Area, t: &Timeline, metric: &Metric) -> Drawn {
    // Every target's two sides as points, oldest first; minutes before the start are left out.
    let sides: Vec<_> = t
        .series
        .iter()
        .take(MAX_TARGETS)
        .map(|s| (s, rate_points(t, &s.candidate_minutes, metric), rate_points(t, &s.stable_minutes, metric)))
        .collect();
    let highest = sides.iter().flat_map(|(_, c, s)| c.iter().chain(s)).map(|p| p.1).fold(0.0, f64::max);
    // Headroom above the highest point for the legend.
    let y = 0.0..(highest * 1.6).max(0.1);
    let mut chart = panel(area, t, metric.caption, 0, y.clone(), false)?;
    mesh(&mut chart, 4, &|v| percent(*v), false)?;
    shade_pauses(&mut chart, t, &y)?;
    moments(&mut chart, t, &y)?;

    let mut notes = Vec::new();
    if t.series.is_empty() {
        notes.push("judged on alarms only".to_owned());
    }
    if t.series.len() > MAX_TARGETS {
        notes.push(format!("{} more targets not drawn", t.series.len() - MAX_TARGETS));
    }
    let several = t.series.len() > 1;
    let mut legend = false;
    for (i, (series, candidate, stable)) in sides.iter().enumerate() {
        if candidate.is_empty() && stable.is_empty() {
            let note =
                if several { format!("{}: {}", series.target, metric.missing) } else { metric.missing.to_owned() };
            notes.push(note);
            continue;
        }
        let (strong, pale) = target_colours(i, several);
        let name = |version: &str, side: &str| {
            if several { format!("{}: {version} ({side})", series.target) } else { format!("{version} ({side})") }
        };
        minutes_line(&mut chart, stable, pale, &name(&series.stable, "stable"))?;
        minutes_line(&mut chart, candidate, strong, &name(&series.candidate, "candidate"))?;
        legend = true;
    }
    write_notes(&mut chart, &notes, !legend)?;
    if legend {
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    frame(&mut chart, &y)
}

/// The rates of `minutes` as (minute since the start, percent), for the minutes with data.
fn rate_points(t: &Timeline, minutes: &[MinuteCounts], metric: &Metric) -> Vec<(f64, f64)> {
    minutes
        .iter()
        .filter_map(|m| Some((t.minute_of(m.start), (metric.rate)(m)?)))
        .filter(|(x, y)| *x >= 0.0 && *x <= t.minutes() && y.is_finite())
        .collect()
}

/// A target's candidate and stable colours: blue and grey for a single target, one
/// hue each (the stable side pale) for several.
fn target_colours(i: usize, several: bool) -> (RGBAColor, RGBAColor) {
    let strong = TARGET_COLOURS[i % TARGET_COLOURS.len()];
    let pale = if several { strong.mix(0.4) } else { STABLE.to_rgba() };
    (strong.to_rgba(), pale)
}

/// One side's minutes: lines through consecutive minutes (a minute without data breaks
/// the line), a dot on each minute, and its legend entry.
fn minutes_line<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, points: &[(f64, f64)], colour: RGBAColor, name: &str) -> Drawn {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    for &p in points {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|last| p.0 - last.0 <= 1.5) => run.push(p),
            _ => runs.push(vec![p]),
        }
    }
    chart.draw_series(runs.into_iter().filter(|r| r.len() > 1).map(|r| PathElement::new(r, colour.stroke_width(2))))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?.label(name).legend(move |(x, y)| {
        EmptyElement::at((x, y))
            + PathElement::new(vec![(0, 0), (18, 0)], colour.stroke_width(2))
            + Circle::new((9, 0), 3, colour.filled())
    });
    Ok(())
}

// ---------------------------------------------------------------------------------
// Panel 4: the evidence

/// Each test's evidence over its threshold at every check, on a log scale clamped to
/// `EVIDENCE_LIMIT` decades either way; the threshold is the dashed line at 1, and a
/// rollback's verdict is marked.
fn evidence(area: &Area, t: &Timeline) -> Drawn {
    let edge = EVIDENCE_LIMIT + 0.5;
    let y = -edge..edge;
    let caption = "evidence / threshold (log scale; a test above its threshold rolls back)";
    let mut chart = panel(area, t, caption, 0, y.clone(), true)?;
    mesh(&mut chart, 8, &|v| if v.abs() < 1e-6 { String::new() } else { ratio(*v) }, true)?;
    shade_pauses(&mut chart, t, &y)?;
    moments(&mut chart, t, &y)?;
    verdict(&mut chart, t, &y)?;

    // Every (target, test) the checks weighed, in order of appearance.
    let mut tests: Vec<(&str, &str)> = Vec::new();
    for e in t.checks.iter().flat_map(|c| &c.tests) {
        if !tests.contains(&(e.target.as_str(), e.test.as_str())) {
            tests.push((e.target.as_str(), e.test.as_str()));
        }
    }
    if tests.is_empty() {
        let note = if t.checks.is_empty() { "no checks" } else { "no test weighed evidence (judged on alarms only)" };
        write_notes(&mut chart, &[note.to_owned()], true)?;
        return frame(&mut chart, &y);
    }
    let several = tests.iter().any(|k| k.0 != tests[0].0);
    let mut off_the_scale = false;
    for (i, &(target, test)) in tests.iter().enumerate() {
        let name = if several { format!("{target}: {test}") } else { test.to_owned() };
        off_the_scale |= test_line(&mut chart, t, (target, test), TEST_COLOURS[i % TEST_COLOURS.len()], name)?;
    }
    if off_the_scale {
        let beyond = format!("off the scale (above {}, below {})", ratio(EVIDENCE_LIMIT), ratio(-EVIDENCE_LIMIT));
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(beyond)
            .legend(|(x, y)| EmptyElement::at((x + 9, y)) + triangle(true, INK));
    }
    threshold(&mut chart)?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    frame(&mut chart, &y)
}

/// One test's evidence at each check that weighed it: a line with a dot per check, or
/// a triangle where it went off the scale (then true), and its legend entry.
fn test_line<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    t: &Timeline,
    (target, test): (&str, &str),
    colour: RGBColor,
    name: String,
) -> Result<bool, DrawingAreaErrorKind<std::io::Error>> {
    let points: Vec<(f64, f64, bool)> = t
        .checks
        .iter()
        .filter_map(|c| {
            let e = c.tests.iter().find(|e| e.target == target && e.test == test)?;
            let (level, clamped) = level(e)?;
            Some((clamp_x(t, t.minute_of(c.at)), level, clamped))
        })
        .collect();
    let line: Vec<(f64, f64)> = points.iter().map(|p| (p.0, p.1)).collect();
    chart.draw_series(std::iter::once(PathElement::new(line, colour.stroke_width(2))))?;
    chart.draw_series(points.iter().filter(|p| !p.2).map(|p| Circle::new((p.0, p.1), 3, colour.filled())))?;
    chart.draw_series(
        points.iter().filter(|p| p.2).map(|p| EmptyElement::at((p.0, p.1)) + triangle(p.1 > 0.0, colour)),
    )?;
    chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?.label(name).legend(move |(x, y)| {
        EmptyElement::at((x, y))
            + PathElement::new(vec![(0, 0), (18, 0)], colour.stroke_width(2))
            + Circle::new((9, 0), 3, colour.filled())
    });
    Ok(points.iter().any(|p| p.2))
}

/// The threshold: a dashed line at 1 over the tests' lines, named where the scale
/// would say 1.
fn threshold(chart: &mut Chart) -> Drawn {
    let right = chart.x_range().end;
    chart.draw_series(DashedLineSeries::new(vec![(0.0, 0.0), (right, 0.0)], 8, 5, RED.stroke_width(2)))?;
    let words = text(LABEL_SIZE, RED).pos(Pos::new(HPos::Right, VPos::Center));
    chart.draw_series(std::iter::once(EmptyElement::at((0.0, 0.0)) + Text::new("threshold", (-8, 0), words)))?;
    Ok(())
}

/// Where a test stands: log10(evidence / threshold), clamped to the scale, and whether
/// it was; none when the numbers say nothing (NaN, a threshold that is not positive).
fn level(e: &Evidence) -> Option<(f64, bool)> {
    if !(e.threshold > 0.0 && e.threshold.is_finite()) {
        return None;
    }
    // Logs first: evidence of 1e300 over a threshold of 0.01 does not overflow.
    let level = e.evidence.log10() - e.threshold.log10();
    (!level.is_nan()).then(|| (level.clamp(-EVIDENCE_LIMIT, EVIDENCE_LIMIT), level.abs() > EVIDENCE_LIMIT))
}

/// A point off the scale: a filled triangle around the origin, pointing the way it went.
fn triangle(up: bool, colour: RGBColor) -> Polygon<(i32, i32)> {
    let s = if up { 1 } else { -1 };
    Polygon::new(vec![(0, -6 * s), (-5, 3 * s), (5, 3 * s)], colour.filled())
}

/// The check whose verdict rolled the deployment back (the last, when it was
/// unhealthy: not a person's abort): a line across the plot, labelled above it.
fn verdict(chart: &mut Chart, t: &Timeline, y: &Range<f64>) -> Drawn {
    let unhealthy = |c: &&Check| c.status == VerdictStatus::Unhealthy;
    let Some(last) = t.checks.last().filter(unhealthy).filter(|_| t.ending == Ending::RolledBack) else {
        return Ok(());
    };
    let x = clamp_x(t, t.minute_of(last.at));
    chart.draw_series(std::iter::once(PathElement::new(vec![(x, y.start), (x, y.end)], RED.stroke_width(2))))?;
    beside(chart, (x, y.end), "verdict: roll back".to_owned(), RED, -3, VPos::Bottom)
}

// ---------------------------------------------------------------------------------
// What the panels share

/// A panel: its caption above the plot, `top` more pixels of room under the caption,
/// the time axis over [0, the deployment's minutes] and `y` up the side. Every panel
/// has the same left and right margins, so the plots line up.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    t: &Timeline,
    caption: &str,
    top: u32,
    y: Range<f64>,
    bottom: bool,
) -> Result<Chart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let bold = styled((FONT, CAPTION_SIZE).into_font().style(FontStyle::Bold), INK);
    area.draw_text(caption, &bold, (Y_LABEL_AREA as i32, 4))?;
    let mut builder = ChartBuilder::on(area);
    builder.margin_top(CAPTION_HEIGHT + top).margin_right(RIGHT_MARGIN).y_label_area_size(Y_LABEL_AREA);
    if bottom {
        builder.x_label_area_size(X_LABEL_AREA);
    } else {
        builder.margin_bottom(GAP);
    }
    builder.build_cartesian_2d(0.0..t.minutes(), y)
}

/// The grid and the tick labels: the same vertical grid lines in every panel, the
/// time axis's labels and name only under the bottom one.
fn mesh(chart: &mut Chart, y_labels: usize, y_label: &dyn Fn(&f64) -> String, bottom: bool) -> Drawn {
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(12)
        .y_labels(y_labels)
        .x_label_formatter(&|v| minutes(*v))
        .y_label_formatter(y_label)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(FRAME)
        .label_style(text(LABEL_SIZE, INK));
    if bottom {
        mesh.x_desc("minutes since start").axis_desc_style(text(LABEL_SIZE, INK));
    }
    mesh.draw()
}

/// `label` by the point `at`, `dy` pixels down: right of it, or left where it would
/// run past the plot's right edge.
fn beside(chart: &mut Chart, at: (f64, f64), label: String, colour: RGBColor, dy: i32, v: VPos) -> Drawn {
    let (xs, _) = chart.plotting_area().get_pixel_range();
    let pixel = chart.backend_coord(&at).0;
    let (dx, h) = if pixel + 5 + text_width(&label, LABEL_SIZE) > xs.end { (-5, HPos::Right) } else { (5, HPos::Left) };
    let style = text(LABEL_SIZE, colour).pos(Pos::new(h, v));
    chart.draw_series(std::iter::once(EmptyElement::at(at) + Text::new(label, (dx, dy), style)))?;
    Ok(())
}

/// The plot's frame, over everything in it.
fn frame(chart: &mut Chart, y: &Range<f64>) -> Drawn {
    let corners = [(0.0, y.end), (chart.x_range().end, y.start)];
    chart.draw_series(std::iter::once(Rectangle::new(corners, FRAME.stroke_width(1))))?;
    Ok(())
}

/// The approval waits and pauses, shaded across the plot.
fn shade_pauses(chart: &mut Chart, t: &Timeline, y: &Range<f64>) -> Drawn {
    chart.draw_series(t.pauses.iter().map(|p| {
        let (from, to) = (clamp_x(t, t.minute_of(p.start)), clamp_x(t, t.minute_of(p.end)));
        Rectangle::new([(from, y.end), (to, y.start)], PAUSE.mix(0.22).filled())
    }))?;
    Ok(())
}

/// The marks again, faint and unlabelled, so that a rate's jump can be read against
/// the step or the rollback that caused it.
fn moments(chart: &mut Chart, t: &Timeline, y: &Range<f64>) -> Drawn {
    for mark in &t.marks {
        let style = mark_colour(mark.kind).mix(0.45).stroke_width(1);
        dashed(chart, clamp_x(t, t.minute_of(mark.at)), y, style)?;
    }
    Ok(())
}

/// A dashed vertical line at minute `x` across `y`.
fn dashed(chart: &mut Chart, x: f64, y: &Range<f64>, style: ShapeStyle) -> Drawn {
    chart.draw_series(DashedLineSeries::new(vec![(x, y.start), (x, y.end)], 6, 4, style))?;
    Ok(())
}

/// Notes in the plot: centred when the plot has nothing else, else at its top left.
fn write_notes(chart: &mut Chart, notes: &[String], alone: bool) -> Drawn {
    let (x, y) = (chart.x_range(), chart.y_range());
    for (i, note) in notes.iter().enumerate() {
        let row = i as i32 * 18;
        let element = if alone {
            let style = text(CAPTION_SIZE, MUTED).pos(Pos::new(HPos::Center, VPos::Center));
            let middle = ((x.start + x.end) / 2.0, (y.start + y.end) / 2.0);
            EmptyElement::at(middle) + Text::new(note.clone(), (0, row - 9 * (notes.len() as i32 - 1)), style)
        } else {
            let style = text(LABEL_SIZE, MUTED).pos(Pos::new(HPos::Left, VPos::Top));
            EmptyElement::at((x.start, y.end)) + Text::new(note.clone(), (8, 6 + row), style)
        };
        chart.draw_series(std::iter::once(element))?;
    }
    Ok(())
}

/// The labelled series' legend, on a pale background inside the plot.
fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.75))
        .border_style(LEGEND_BORDER)
        .label_font(text(LABEL_SIZE, INK))
        .legend_area_size(22)
        .margin(6)
        .draw()
}

/// A text style in the picture's font.
fn text(size: u32, colour: RGBColor) -> TextStyle<'static> {
    styled((FONT, size).into_font(), colour)
}

/// `font` in `colour`.
fn styled(font: FontDesc<'static>, colour: RGBColor) -> TextStyle<'static> {
    TextStyle { color: colour.to_backend_color(), ..TextStyle::from(font) }
}

/// About how wide `s` is drawn at plotters' `size` (which the SVG writes as size /
/// 1.24 px; an average sans-serif character is about 0.55 em).
fn text_width(s: &str, size: u32) -> i32 {
    (s.chars().count() as f64 * f64::from(size) / 1.24 * 0.56).ceil() as i32
}

/// `x` within the time axis.
fn clamp_x(t: &Timeline, x: f64) -> f64 {
    if x.is_finite() { x.clamp(0.0, t.minutes()) } else { 0.0 }
}

/// A tick on the time axis: `5`, `0.5`.
fn minutes(v: f64) -> String {
    trimmed(v, 1)
}

/// `10%`, `0.5%`, `0.05%`.
fn percent(v: f64) -> String {
    let places = if v.abs() >= 10.0 || v == 0.0 {
        0
    } else if v.abs() >= 1.0 {
        1
    } else {
        2
    };
    format!("{}%", trimmed(v, places))
}

/// A tick of the evidence scale, 10^v: `1`, `10`, `1000`, `1/100`; none between decades.
fn ratio(v: f64) -> String {
    if (v - v.round()).abs() > 1e-6 || v.abs() > EVIDENCE_LIMIT + 1e-6 {
        return String::new();
    }
    let decades = v.round() as i32;
    let power = 10_i64.pow(decades.unsigned_abs());
    if decades >= 0 { power.to_string() } else { format!("1/{power}") }
}

/// `v` with up to `places` decimals, without trailing zeros.
fn trimmed(v: f64, places: usize) -> String {
    let text = format!("{v:.places$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::simulated_timeline;

    /// The picture of a simulation run with `flags`, also written to
    /// `target/timeline-<name>.svg` for a person to look at.
    fn drawn(name: &str, flags: &[&str]) -> (Timeline, String) {
        let t = simulated_timeline(flags);
        let svg = svg(&t);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../target/timeline-{name}.svg"));
        let _ = std::fs::write(path, &svg);
        (t, svg)
    }

    /// The value of `name` in one element's text (`<rect x="1" .../>`).
    fn attr<'s>(element: &'s str, name: &str) -> Option<&'s str> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        element[start..].split('"').next()
    }

    fn number(element: &str, name: &str) -> i32 {
        attr(element, name).and_then(|v| v.parse::<f64>().ok()).map_or(i32::MIN, |v| v.round() as i32)
    }

    /// Every element `<tag ...>` of the SVG, as its text up to `>`.
    fn elements<'s>(svg: &'s str, tag: &str) -> Vec<&'s str> {
        let open = format!("<{tag} ");
        svg.match_indices(&open).map(|(i, _)| &svg[i..i + svg[i..].find('>').unwrap_or(0)]).collect()
    }

    /// Every `<text>`: its x, y and words.
    fn texts(svg: &str) -> Vec<(i32, i32, String)> {
        elements(svg, "text")
            .into_iter()
            .map(|e| {
                let start = svg.find(e).unwrap_or(0) + e.len() + 1;
                let words = svg[start..].split("</text>").next().unwrap_or("");
                let words =
                    words.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'");
                (number(e, "x"), number(e, "y"), words.replace("&amp;", "&").trim().to_owned())
            })
            .collect()
    }

    fn has_text(svg: &str, words: &str) -> bool {
        texts(svg).iter().any(|t| t.2.contains(words))
    }

    /// The plots' frames, top to bottom, as (left, top, width, height) in pixels.
    ///
    /// How the tests know the panels line up: each panel draws its frame as a
    /// `Rectangle` in its own data coordinates, from (0, its y range's top) to (the
    /// deployment's minutes, its bottom), in `FRAME`, a colour nothing else uses. The
    /// frame's pixels are therefore where that panel maps minute 0 and the last minute:
    /// a panel with another left margin, label area or x range would draw its frame
    /// elsewhere. plotters writes an unfilled rectangle as `<rect fill="none"
    /// stroke="#57606A" .../>`, which is easy to find and does not depend on how
    /// plotters draws its axes or ticks.
    fn frames(svg: &str) -> Vec<(i32, i32, i32, i32)> {
        let stroke = format!("#{:02X}{:02X}{:02X}", FRAME.0, FRAME.1, FRAME.2);
        let mut frames: Vec<_> = elements(svg, "rect")
            .into_iter()
            .filter(|e| attr(e, "fill") == Some("none") && attr(e, "stroke") == Some(stroke.as_str()))
            .map(|e| (number(e, "x"), number(e, "y"), number(e, "width"), number(e, "height")))
            .collect();
        frames.sort_by_key(|f| f.1);
        frames
    }

    /// The panels: four, one under the other, with the same left and right pixel edges;
    /// and the time axis's labels (under the bottom one) start at its left edge and stay
    /// within it.
    fn assert_panels_line_up(svg: &str) -> Vec<(i32, i32, i32, i32)> {
        let frames = frames(svg);
        assert_eq!(frames.len(), 4, "one frame per panel: {frames:?}");
        for pair in frames.windows(2) {
            assert_eq!((pair[0].0, pair[0].2), (pair[1].0, pair[1].2), "same left edge and width: {frames:?}");
            assert!(pair[0].1 + pair[0].3 < pair[1].1, "one under the other: {frames:?}");
        }
        let (left, top, width, height) = frames[3];
        let ticks: Vec<_> = texts(svg)
            .into_iter()
            .filter(|(_, y, words)| *y > top + height && *y < top + height + 30 && words.parse::<f64>().is_ok())
            .collect();
        assert!(ticks.len() >= 3, "the time axis has labels: {ticks:?}");
        assert!(ticks.iter().any(|(x, _, w)| w == "0" && (x - left).abs() <= 1), "0 at the left edge: {ticks:?}");
        assert!(ticks.iter().all(|(x, _, _)| *x >= left && *x <= left + width), "{ticks:?}");
        frames
    }

    /// The picture as pixels (without its text: resvg is built without fonts).
    fn raster(svg: &str) -> resvg::tiny_skia::Pixmap {
        let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).expect("valid SVG");
        let size = tree.size().to_int_size();
        assert_eq!((size.width(), size.height()), (WIDTH, HEIGHT));
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
        resvg::render(&tree, resvg::tiny_skia::Transform::default(), &mut pixmap.as_mut());
        pixmap
    }

    /// Every plot has coloured pixels inside its frame (grid lines and frames are grey:
    /// the colour is the data, the shading, the threshold).
    fn assert_each_plot_drawn(svg: &str, frames: &[(i32, i32, i32, i32)]) {
        let pixmap = raster(svg);
        for &(left, top, width, height) in frames {
            let coloured = (top + 3..top + height - 3)
                .flat_map(|y| (left + 3..left + width - 3).map(move |x| (x, y)))
                .filter_map(|(x, y)| pixmap.pixel(x as u32, y as u32))
                .filter(|p| {
                    let (r, g, b) = (p.red(), p.green(), p.blue());
                    r.max(g).max(b) - r.min(g).min(b) > 40
                })
                .count();
            assert!(coloured > 50, "the plot at y {top} has only {coloured} coloured pixels");
        }
    }

    const CAPTIONS: [&str; 4] = ["candidate traffic %", "error rate %", "slow invocations %", "evidence / threshold"];

    #[test]
    fn a_rollback_reads_as_one() {
        let (t, svg) = drawn("rolled-back", &["--scenario", "error-spike"]);
        assert_eq!(t.ending, Ending::RolledBack);
        let title = &texts(&svg)[0];
        assert_eq!(title.2, "orders-api:live 41 → 42: rolled back");
        assert!(svg.contains("fill=\"#CF222E\""), "the title in red");
        assert!(has_text(&svg, "the candidate was unhealthy at step 1 of 2"), "the cause under it");
        assert!(has_text(&svg, "started 2026-11-24 09:00:00 UTC · ran 3 min 2 s"));
        for caption in CAPTIONS {
            assert!(has_text(&svg, caption), "{caption}");
        }
        // Both versions in both rate panels' legends.
        assert_eq!(texts(&svg).iter().filter(|t| t.2 == "version 42 (candidate)").count(), 2);
        assert_eq!(texts(&svg).iter().filter(|t| t.2 == "version 41 (stable)").count(), 2);
        assert!(texts(&svg).iter().any(|t| t.2 == "threshold"));
        assert!(has_text(&svg, "rollback"), "the rollback marked");
        assert!(has_text(&svg, "verdict: roll back"));
        // The errors test went off the scale: a triangle, and the legend says what it is.
        assert!(has_text(&svg, "off the scale (above 1000, below 1/1000)"));
        assert!(svg.contains("<polygon"));
        let frames = assert_panels_line_up(&svg);
        assert_each_plot_drawn(&svg, &frames);
    }

    #[test]
    fn a_promotion_reads_as_one() {
        let (t, svg) = drawn("promoted", &[]);
        assert_eq!(t.ending, Ending::Promoted);
        assert_eq!(texts(&svg)[0].2, "orders-api:live 41 → 42: promoted");
        assert!(svg.contains("fill=\"#1A7F37\""), "the title in green");
        for caption in CAPTIONS {
            assert!(has_text(&svg, caption), "{caption}");
        }
        assert!(has_text(&svg, "version 42 (candidate)") && has_text(&svg, "version 41 (stable)"));
        assert!(has_text(&svg, "promoted"), "the promotion marked");
        assert!(has_text(&svg, "10%") && has_text(&svg, "100%"), "each step's weight written");
        assert!(has_text(&svg, "errors") && has_text(&svg, "slow"), "each test in the legend");
        assert!(!has_text(&svg, "verdict"), "no rollback verdict");
        // Lines: the step line, two rate panels × two versions, two tests, and plotters' axes.
        assert!(elements(&svg, "polyline").len() >= 8);
        let frames = assert_panels_line_up(&svg);
        assert_each_plot_drawn(&svg, &frames);
    }

    #[test]
    fn an_approval_wait_is_shaded_and_labelled() {
        let (t, svg) = drawn("approval", &["--scenario", "approval"]);
        assert_eq!(texts(&svg)[0].2, "orders-api:live 41 → 42: promoted");
        assert!(has_text(&svg, "approval"));
        let frames = assert_panels_line_up(&svg);
        // The wait's span, shaded in every panel over its minutes.
        let pause = &t.pauses[0];
        let shade = format!("#{:02X}{:02X}{:02X}", PAUSE.0, PAUSE.1, PAUSE.2);
        let spans: Vec<_> =
            elements(&svg, "rect").into_iter().filter(|e| attr(e, "fill") == Some(shade.as_str())).collect();
        assert_eq!(spans.len(), 4, "{spans:?}");
        let (left, _, width, _) = frames[0];
        let pixel = |at| left + (f64::from(width) * t.minute_of(at) / t.minutes()).round() as i32;
        for span in spans {
            assert!((number(span, "x") - pixel(pause.start)).abs() <= 1, "{span} starts at {}", pixel(pause.start));
            assert!((number(span, "x") + number(span, "width") - pixel(pause.end)).abs() <= 1, "{span}");
        }
        assert_each_plot_drawn(&svg, &frames);
    }

    #[test]
    fn odd_timelines_are_drawn_without_panicking() {
        let base = simulated_timeline(&["--scenario", "error-spike"]);
        // Judged on alarms only: no minutes, no tests; and a deployment that took no time.
        let mut t = base.clone();
        t.series.clear();
        for c in &mut t.checks {
            c.tests.clear();
        }
        t.end = t.start;
        t.weights.truncate(1);
        let svg = svg(&t);
        assert_eq!(texts(&svg).iter().filter(|t| t.2 == "judged on alarms only").count(), 2);
        assert!(has_text(&svg, "no test weighed evidence"));
        assert_panels_line_up(&svg);
        raster(&svg);

        // No checks, no weights, no marks: an empty deployment.
        let mut t = base.clone();
        t.checks.clear();
        t.weights.clear();
        t.marks.clear();
        t.release.clear();
        t.outcome = "running".into();
        t.ending = Ending::Running;
        let svg = super::svg(&t);
        assert_eq!(texts(&svg)[0].2, "running");
        assert!(has_text(&svg, "no checks"));
        assert_panels_line_up(&svg);
        raster(&svg);

        // Evidence that says nothing, or too much; a front end's minutes (no durations);
        // several targets.
        let mut t = base.clone();
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, 0.0, -1.0, 1e-300];
        for (test, value) in t.checks.iter_mut().flat_map(|c| c.tests.iter_mut()).zip(odd.iter().cycle()) {
            test.evidence = *value;
        }
        t.checks[0].tests[0].threshold = 0.0;
        let mut front = t.series[0].clone();
        front.target = "www.example.com".into();
        for m in front.candidate_minutes.iter_mut().chain(&mut front.stable_minutes) {
            m.durations = 0;
            m.slow = 0;
        }
        t.series.push(front);
        let svg = super::svg(&t);
        assert!(has_text(&svg, "www.example.com: no latency data for this target"));
        assert!(has_text(&svg, "www.example.com: version 42"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "no number that is not one");
        assert_panels_line_up(&svg);
        raster(&svg);
    }

    #[test]
    fn scales_read_well() {
        assert_eq!(ratio(0.0), "1");
        assert_eq!(ratio(3.0), "1000");
        assert_eq!(ratio(-2.0), "1/100");
        assert_eq!(ratio(0.5), "");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.25), "0.25%");
        assert_eq!(percent(2.5), "2.5%");
        assert_eq!(percent(50.0), "50%");
        assert_eq!(minutes(2.0), "2");
        assert_eq!(minutes(0.5), "0.5");
        assert_eq!(short_names("paused by arn:aws:iam::1:user/alice (\"why\")"), "paused by alice (\"why\")");
        assert_eq!(short_names("abort by arn:"), "abort by arn:");
        assert_eq!(duration(0), "0 s");
        assert_eq!(duration(182), "3 min 2 s");
        assert_eq!(duration(3900), "1 h 5 min");
        assert_eq!(utc(Timestamp::from_millis(1_795_510_800_250)), "2026-11-24 09:00:00 UTC");
        let e = |evidence, threshold| Evidence { target: String::new(), test: String::new(), evidence, threshold };
        assert_eq!(level(&e(200.0, 200.0)), Some((0.0, false)));
        assert_eq!(level(&e(1e300, 0.01)), Some((EVIDENCE_LIMIT, true)));
        assert_eq!(level(&e(0.0, 200.0)), Some((-EVIDENCE_LIMIT, true)));
        assert_eq!(level(&e(f64::NAN, 200.0)), None);
        assert_eq!(level(&e(1.0, 0.0)), None);
    }
}
