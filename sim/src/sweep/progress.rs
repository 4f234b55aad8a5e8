//! Progress on stderr: an indicatif bar with the rate and the findings so far when stderr is a
//! terminal, otherwise a plain line every few seconds (CI logs keep every line, so a redrawn bar
//! would fill them with control codes).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::ProgressMode;
use super::results::RunRecord;

const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    resumed: u64,
    failed: u64,
    /// Pairs whose record is an internal error (`RunRecord::internal_error`).
    internal_errors: u64,
    /// The findings so far, each by its `minimise::FindingKey`, as the summary counts them.
    findings: BTreeSet<super::minimise::FindingKey>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: u64) -> Progress {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} runs · {rate} · eta {eta} · {msg}",
                )
                .expect("a valid template")
                // indicatif's own `{per_sec}` prints four decimals; whole runs are enough.
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                        let _ = write!(out, "{:.0} runs/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
            );
            bar.set_message("no findings");
            bar
        });
        let now = Instant::now();
        Progress {
            mode,
            bar,
            total,
            done: 0,
            resumed: 0,
            failed: 0,
            internal_errors: 0,
            findings: BTreeSet::new(),
            started: now,
            last_line: now,
        }
    }

    fn count(&mut self, record: &RunRecord) {
        self.done += 1;
        if record.internal_error.is_some() {
            self.internal_errors += 1;
        }
        if record.failed() {
            self.failed += 1;
            for signature in &record.signatures {
                self.findings.insert(super::minimise::key_of(
                    &record.subject,
                    &record.defects,
                    signature,
                ));
            }
        }
    }

    fn message(&self) -> String {
        let found = match self.findings.len() {
            0 => "no findings".to_string(),
            n => format!("{n} finding(s) in {} failing run(s)", self.failed),
        };
        match self.internal_errors {
            0 => found,
            n => format!("{found}; {n} pair(s) met an internal error"),
        }
    }

    /// Prints `warnings` now, above the bar, unless progress is off; returns how many it
    /// printed, so that the caller does not print them again.
    pub fn warn_all(&self, warnings: &[String]) -> usize {
        if self.mode == ProgressMode::Quiet {
            return 0;
        }
        for warning in warnings {
            let line = format!("warning: {warning}");
            match &self.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
        warnings.len()
    }

    /// Prints `sweep: LINE` now, above the bar, unless progress is off.
    pub fn note(&self, line: &str) {
        let line = format!("sweep: {line}");
        match (&self.bar, self.mode) {
            (Some(bar), _) => bar.println(line),
            (None, ProgressMode::Lines) => eprintln!("{line}"),
            (None, _) => {}
        }
    }

    /// A pair found done in the results file.
    pub fn resumed(&mut self, record: &RunRecord) {
        self.count(record);
        self.resumed += 1;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            // The rate should count this invocation's runs only.
            bar.reset_eta();
        }
    }

    /// A pair this invocation ran.
    pub fn finished(&mut self, record: &RunRecord) {
        self.count(record);
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done);
                bar.set_message(self.message());
            }
            None if self.mode == ProgressMode::Lines
                && (self.last_line.elapsed() >= LINE_EVERY || self.done == self.total) =>
            {
                self.last_line = Instant::now();
                let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
                eprintln!(
                    "sweep: {}/{} runs, {:.1} runs/s, {}",
                    self.done,
                    self.total,
                    (self.done - self.resumed) as f64 / seconds,
                    self.message()
                );
            }
            None => {}
        }
    }

    /// A new phase after the runs.
    pub fn phase(&self, what: &str) {
        match &self.bar {
            Some(bar) if !self.findings.is_empty() => {
                bar.set_message(format!("{}; {what}", self.message()));
            }
            Some(_) => {}
            None if self.mode == ProgressMode::Lines && !self.findings.is_empty() => {
                eprintln!("sweep: {what}");
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
