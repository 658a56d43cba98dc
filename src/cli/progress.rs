//! A progress bar on stderr (hidden when stderr is not a terminal) and the Ctrl-C flag
//! that long operations check between pages.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Set by the first Ctrl-C; a second one ends the process at once (still safe: every
/// page is one atomic batch).
#[derive(Debug, Clone, Default)]
pub(crate) struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the Ctrl-C handler.
    pub(crate) fn install() -> Self {
        let interrupt = Self::default();
        let flag = Arc::clone(&interrupt.0);
        // Fails when the process already has a handler (an application embedding the
        // CLI, or a second run in one process): Ctrl-C is then that handler's business.
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(super::EXIT_INTERRUPTED));
            }
            eprintln!("\nrush: stopping after the current page (Ctrl-C again to quit now)");
        });
        interrupt
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A spinner counting records, ticking by itself.
pub(crate) struct Bar {
    bar: ProgressBar,
    interrupt: Interrupt,
}

impl Bar {
    pub(crate) fn new(what: &str, interrupt: &Interrupt) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {msg}: {human_pos} records ({per_sec}, {elapsed})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self {
            bar,
            interrupt: interrupt.clone(),
        }
    }

    /// Counts `records`; `false` once Ctrl-C was pressed.
    pub(crate) fn advance(&self, records: u64) -> bool {
        self.bar.inc(records);
        !self.interrupt.is_set()
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
