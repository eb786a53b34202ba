//! `--stdin`: `cred-sync`'s change lines in, one recreation per burst out.

use crate::redact::Redactor;
use serde_json::Value;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// Longest change line read; a longer one is dropped with a warning.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Coalesces change lines into batches: a batch is due once no line came for the quiet period,
/// and never sooner than the minimum interval after the previous recreation started. A pure state
/// machine: the caller passes the time in.
#[derive(Debug)]
pub(crate) struct Batcher {
    quiet: Duration,
    min_interval: Duration,
    pending: Option<Pending>,
    last_run: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    last_line: Instant,
    lines: usize,
}

impl Batcher {
    pub(crate) fn new(quiet: Duration, min_interval: Duration) -> Self {
        Self { quiet, min_interval, pending: None, last_run: None }
    }

    /// A change line arrived.
    pub(crate) fn line(&mut self, now: Instant) {
        let lines = self.pending.map_or(0, |p| p.lines);
        self.pending = Some(Pending { last_line: now, lines: lines + 1 });
    }

    /// Queues another attempt of a failed batch (due like a batch whose last line came now).
    pub(crate) fn retry(&mut self, now: Instant) {
        if self.pending.is_none() {
            self.pending = Some(Pending { last_line: now, lines: 0 });
        }
    }

    /// When the pending batch is due, if there is one. After end of input no more lines can
    /// come, so the quiet period no longer applies; the minimum interval still does.
    pub(crate) fn due_at(&self, input_ended: bool) -> Option<Instant> {
        let pending = self.pending?;
        let quiet_end = if input_ended { pending.last_line } else { pending.last_line + self.quiet };
        Some(self.last_run.map_or(quiet_end, |run| quiet_end.max(run + self.min_interval)))
    }

    /// Takes the pending batch when it is due: the number of lines it coalesces.
    pub(crate) fn take_due(&mut self, now: Instant, input_ended: bool) -> Option<usize> {
        if self.due_at(input_ended)? <= now { self.pending.take().map(|p| p.lines) } else { None }
    }

    /// A recreation started now (a batch that found nothing to do does not count).
    pub(crate) fn ran(&mut self, now: Instant) {
        self.last_run = Some(now);
    }
}

/// What the stdin reader thread sends.
#[derive(Debug)]
pub(crate) enum Input {
    Line(String),
    TooLong,
    Error(String),
    End,
}

/// Reads stdin on a thread of its own, one message per line, then [`Input::End`].
pub(crate) fn read_stdin() -> Receiver<Input> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let limit = (MAX_LINE_BYTES + 1) as u64;
            match std::io::Read::take(&mut stdin, limit).read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) if buf.len() > MAX_LINE_BYTES => {
                    if buf.last() != Some(&b'\n') {
                        // Drop the rest of the line.
                        let mut rest = Vec::new();
                        let _ = stdin.read_until(b'\n', &mut rest);
                    }
                    if tx.send(Input::TooLong).is_err() {
                        return;
                    }
                }
                Ok(_) => {
                    if tx.send(Input::Line(String::from_utf8_lossy(&buf).into_owned())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Input::Error(e.to_string()));
                    break;
                }
            }
        }
        let _ = tx.send(Input::End);
    });
    rx
}

/// One change line, as `cred-sync` prints it: `{"target": …, "kind": …, "fingerprint": …,
/// "expires": …, "expires_ms": …, "delivery": …, "restart": …}`. Every field is optional and
/// unknown fields are fine; the line must be a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// `target (kind) fingerprint`, redacted, for the log.
    pub(crate) summary: String,
    /// Whether the gateway needs a new container to take this change. `cred-sync` says
    /// `"restart": false` when OpenClaw's own store already delivered the token to the running
    /// gateway (docs/ARCHITECTURE.md, "Delivery"); a line without the field (an older cred-sync,
    /// a user's script) asks for a recreation, as before.
    pub(crate) restart: bool,
}

/// Parses a change line: `Ok(None)` for a blank line, `Err(problem)` for one that is not a JSON
/// object (the problem never quotes the line).
pub(crate) fn parse_change(line: &str, redactor: &Redactor) -> Result<Option<Change>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON (column {})", e.column()))?;
    let Value::Object(fields) = value else {
        return Err("not a JSON object".to_owned());
    };
    let field = |name: &str| fields.get(name).and_then(Value::as_str);
    let mut summary = field("target").unwrap_or("(no target)").to_owned();
    if let Some(kind) = field("kind") {
        summary.push_str(" (");
        summary.push_str(kind);
        summary.push(')');
    }
    if let Some(fingerprint) = field("fingerprint") {
        summary.push(' ');
        summary.push_str(fingerprint);
    }
    let restart = fields.get("restart").and_then(Value::as_bool).unwrap_or(true);
    Ok(Some(Change { summary: redactor.redact(&summary), restart }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_secs(2);
    const INTERVAL: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_becomes_one_batch_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut b = Batcher::new(QUIET, INTERVAL);
        assert_eq!(b.due_at(false), None);
        for i in 0..50 {
            b.line(t0 + ms(i * 100)); // 50 lines over 4.9 s, 100 ms apart
        }
        let last = t0 + ms(4900);
        assert_eq!(b.due_at(false), Some(last + QUIET));
        assert_eq!(b.take_due(last + ms(1999), false), None);
        assert_eq!(b.take_due(last + QUIET, false), Some(50));
        assert_eq!(b.take_due(last + QUIET + ms(1), false), None, "taken once");
    }

    #[test]
    fn the_minimum_interval_holds_back_the_next_batch() {
        let t0 = Instant::now();
        let mut b = Batcher::new(QUIET, INTERVAL);
        b.line(t0);
        assert_eq!(b.take_due(t0 + QUIET, false), Some(1));
        b.ran(t0 + QUIET);
        b.line(t0 + QUIET + ms(500));
        assert_eq!(b.due_at(false), Some(t0 + QUIET + INTERVAL), "interval counts from the recreation");
        b.line(t0 + QUIET + INTERVAL + ms(100)); // a line after the interval: the quiet period rules
        assert_eq!(b.due_at(false), Some(t0 + QUIET + INTERVAL + ms(100) + QUIET));
        assert_eq!(b.take_due(t0 + QUIET + INTERVAL + ms(100) + QUIET, false), Some(2));
    }

    #[test]
    fn a_batch_that_did_nothing_does_not_start_the_interval() {
        let t0 = Instant::now();
        let mut b = Batcher::new(QUIET, INTERVAL);
        b.line(t0);
        assert_eq!(b.take_due(t0 + QUIET, false), Some(1)); // found nothing to do: no ran()
        b.line(t0 + ms(2500));
        assert_eq!(b.due_at(false), Some(t0 + ms(2500) + QUIET));
    }

    #[test]
    fn end_of_input_skips_the_quiet_period_but_not_the_interval() {
        let t0 = Instant::now();
        let mut b = Batcher::new(QUIET, INTERVAL);
        b.line(t0);
        assert_eq!(b.take_due(t0, true), Some(1));
        b.ran(t0);
        b.line(t0 + ms(10));
        assert_eq!(b.due_at(true), Some(t0 + INTERVAL));
    }

    #[test]
    fn a_retry_is_due_after_the_interval_and_merges_with_new_lines() {
        let t0 = Instant::now();
        let mut b = Batcher::new(QUIET, INTERVAL);
        b.ran(t0);
        b.retry(t0 + ms(100));
        assert_eq!(b.due_at(false), Some(t0 + INTERVAL));
        b.line(t0 + ms(200));
        assert_eq!(b.take_due(t0 + INTERVAL, false), Some(1));
    }

    #[test]
    fn change_lines_unknown_fields_blank_lines_and_garbage() {
        let r = Redactor::default();
        let line = r#"{"target":"/srv/openclaw/.env","kind":"dotenv","fingerprint":"sk-ant-oat01-…(3f2a9c1e)","expires_at":"2026-01-01T08:00:00Z","expires_at_ms":1767254400000,"new_field":[1,2]}"#;
        assert_eq!(
            parse_change(line, &r).unwrap().unwrap().summary,
            "/srv/openclaw/.env (dotenv) sk-ant-oat01-…(3f2a9c1e)"
        );
        assert_eq!(parse_change("{}", &r).unwrap().unwrap().summary, "(no target)");
        assert!(parse_change(line, &r).unwrap().unwrap().restart, "no field: recreate, as before");
        assert!(!parse_change(r#"{"target":"x","restart":false}"#, &r).unwrap().unwrap().restart);
        assert!(parse_change(r#"{"target":"x","restart":true}"#, &r).unwrap().unwrap().restart);
        assert_eq!(parse_change("  \n", &r), Ok(None));
        assert_eq!(parse_change("[1]", &r), Err("not a JSON object".to_owned()));
        let token = format!("sk-ant-oat01-TESTchange{}", "a".repeat(40));
        let err = parse_change(&format!("{token} changed"), &r).unwrap_err();
        assert!(!err.contains("TESTchange"), "{err}");
        let summary = parse_change(&format!(r#"{{"target":"{token}"}}"#), &r).unwrap().unwrap().summary;
        assert!(!summary.contains("TESTchange"), "{summary}");
    }
}
