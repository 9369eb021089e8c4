//! A notifier that prints the SMS it would send: `--demo` and local testing.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Delivery, Notifier, NotifyError};
use crate::domain::Recipient;

/// Where the console notifier writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleTarget {
    /// Standard output (human output format).
    Stdout,
    /// Standard error (when stdout carries JSON).
    Stderr,
}

/// Prints each message instead of sending it.
#[derive(Debug)]
pub struct ConsoleNotifier {
    target: ConsoleTarget,
    sent: AtomicU64,
    // Serialises whole messages so concurrent sends never interleave lines.
    lock: Mutex<()>,
}

impl ConsoleNotifier {
    /// A console notifier writing to `target`.
    pub fn new(target: ConsoleTarget) -> Self {
        Self {
            target,
            sent: AtomicU64::new(0),
            lock: Mutex::new(()),
        }
    }

    /// How many messages it has printed.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, to: &Recipient, body: &str) -> Result<Delivery, NotifyError> {
        let n = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let line = match to {
            Recipient::Phone(_) => format!("SMS to {to}: {body}\n"),
            Recipient::Channel { .. } => format!("Message to {to}: {body}\n"),
        };
        let _guard = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = match self.target {
            ConsoleTarget::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            ConsoleTarget::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
        };
        written
            .map_err(|e| NotifyError::Unreachable(format!("cannot write to the console: {e}")))?;
        Ok(Delivery {
            id: format!("console-{n}"),
            segments: Some(1),
        })
    }
}
