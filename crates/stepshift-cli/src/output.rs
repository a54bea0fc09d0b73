//! Terminal output: a live spinner when stdout is a terminal, plain lines otherwise,
//! one JSON document with `--output json`, one Markdown summary with `--output markdown`
//! (the lines then go to stderr); colours off without a terminal or with `NO_COLOR`.

use std::io::IsTerminal;
use std::time::Duration;

use console::Style;
use indicatif::{ProgressBar, ProgressStyle};

/// `--output`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document for machines.
    Json,
    /// A Markdown summary for a pipeline's summary page (`>> "$GITHUB_STEP_SUMMARY"`):
    /// the outcome, the steps, the verdict and charts. The progress lines go to stderr.
    Markdown,
}

impl Format {
    /// `self`, unless it is Markdown, which `command` has no summary for.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub fn text_or_json(self, command: &str) -> Result<Format, crate::error::CliError> {
        if self == Format::Markdown {
            return Err(crate::error::CliError::Invalid(format!(
                "--output markdown: {command} prints text or json; the Markdown summary is written at a deployment's end by `deploy --wait` and `watch`, and by `report`"
            )));
        }
        Ok(self)
    }
}

/// Where and how to print.
pub struct Out {
    /// `--output json`: print nothing but the final document.
    pub json: bool,
    /// `--output markdown`: the lines go to stderr, the summary to stdout.
    markdown: bool,
    bar: Option<ProgressBar>,
}

impl Out {
    /// Output for `format`, deciding on colours and the live display (a spinner).
    #[cfg(feature = "aws")]
    pub fn new(format: Format) -> Out {
        Out::with_progress(format, None)
    }

    /// Like [`Out::new`], with a progress bar of `length` units instead of a spinner.
    pub fn with_progress(format: Format, length: Option<u64>) -> Out {
        let markdown = format == Format::Markdown;
        // The lines (and the live display) go where people read them: stdout, or with
        // Markdown, stderr, so that stdout holds the summary alone. Nothing coloured goes
        // to stdout then.
        let terminal = if markdown { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
        let colours = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        console::set_colors_enabled(colours);
        console::set_colors_enabled_stderr(colours && std::io::stderr().is_terminal());
        let json = format == Format::Json;
        let bar = (terminal && !json).then(|| {
            let (bar, template) = match length {
                Some(n) => (ProgressBar::new(n.max(1)), "{spinner:.cyan} [{bar:30.cyan/blue}] {msg}"),
                None => (ProgressBar::new_spinner(), "{spinner:.cyan} {msg}"),
            };
            bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Out { json, markdown, bar }
    }

    /// Prints a line (not in json mode), above the live display if there is one; with
    /// Markdown, to stderr.
    pub fn line(&self, text: &str) {
        if self.json {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.markdown => eprintln!("{text}"),
            None => println!("{text}"),
        }
    }

    /// Whether the output is a Markdown summary.
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub fn is_markdown(&self) -> bool {
        self.markdown
    }

    /// Prints the Markdown summary (markdown mode only).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub fn markdown(&self, text: &str) {
        if self.markdown {
            println!("{}", text.trim_end());
        }
    }

    /// Sets the live display's status text (nothing without a terminal).
    pub fn status(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_owned());
        }
    }

    /// Whether there is a live display.
    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    /// Moves the progress bar.
    pub fn set_position(&self, position: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
        }
    }

    /// Ends the live display.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Prints the final JSON document (json mode only).
    pub fn document(&self, doc: &serde_json::Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(doc).unwrap_or_default());
        }
    }
}

/// Green for good news.
pub fn good(text: &str) -> String {
    Style::new().green().bold().apply_to(text).to_string()
}

/// Red for bad news.
pub fn bad(text: &str) -> String {
    Style::new().red().bold().apply_to(text).to_string()
}

/// Dim for details.
pub fn dim(text: &str) -> String {
    Style::new().dim().apply_to(text).to_string()
}
