//! A one-line progress bar on stderr (redrawn with `\r`): step, bar, loss, tokens/s, ETA.

use std::io::Write;
use std::time::Instant;

pub struct Progress {
    total: u64,
    start: Instant,
    start_step: u64,
    enabled: bool,
}

impl Progress {
    pub fn new(total: u64, start_step: u64, enabled: bool) -> Self {
        Self { total, start: Instant::now(), start_step, enabled }
    }

    pub fn update(&self, step: u64, loss: f64, tokens_per_s: f64, extra: &str) {
        self.status(step, &format!("loss {loss:.4} {tokens_per_s:.0} tok/s"), extra);
    }

    /// Redraw the bar with `what` (e.g. "loss 0.1234 900 tok/s") and `extra` after it.
    pub fn status(&self, step: u64, what: &str, extra: &str) {
        if !self.enabled {
            return;
        }
        let width = 24usize;
        let frac = if self.total == 0 { 1.0 } else { step as f64 / self.total as f64 };
        let filled = ((frac * width as f64) as usize).min(width);
        let done = step.saturating_sub(self.start_step) as f64;
        let el = self.start.elapsed().as_secs_f64();
        let eta = if done > 0.0 { el / done * (self.total.saturating_sub(step)) as f64 } else { 0.0 };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rstep {step}/{} [{}{}] {what} eta {:.0}s {extra}   ",
            self.total,
            "#".repeat(filled),
            ".".repeat(width - filled),
            eta
        );
        let _ = err.flush();
    }

    /// End the bar's line (before printing anything else).
    pub fn newline(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
