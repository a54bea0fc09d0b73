//! Terminal output: a live spinner when stdout is a terminal, plain lines otherwise,
//! one JSON document with `--output json`; colours off without a terminal or with
//! `NO_COLOR`.

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
}

/// Where and how to print.
pub struct Out {
    /// `--output json`: print nothing but the final document.
    pub json: bool,
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
        let terminal = std::io::stdout().is_terminal();
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
        Out { json, bar }
    }

    /// Prints a line (text mode only), above the live display if there is one.
    pub fn line(&self, text: &str) {
        if self.json {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
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
