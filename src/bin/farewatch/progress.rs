//! The progress bar: on stderr, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;

use farewatch::engine::{Progress, RouteReport};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar counting resolved lookups.
#[derive(Debug)]
pub struct Bar {
    bar: ProgressBar,
}

/// A bar, hidden under cron, in pipes and with `--no-progress`.
pub fn bar(disabled: bool) -> Arc<Bar> {
    let bar = if disabled || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {pos}/{len} lookups [{bar:30}] {elapsed} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    Arc::new(Bar { bar })
}

impl Progress for Bar {
    fn planned(&self, lookups: usize) {
        self.bar.set_length(lookups as u64);
    }
    fn lookup_done(&self) {
        self.bar.inc(1);
    }
    /// Clears the bar before the report is printed.
    fn finished(&self) {
        self.bar.finish_and_clear();
    }
    fn route_done(&self, report: &RouteReport) {
        if report.alert == farewatch::engine::AlertOutcome::Sent {
            self.bar
                .set_message(format!("alert sent for row {}", report.row));
        }
    }
}
