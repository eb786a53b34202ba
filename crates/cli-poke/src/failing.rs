//! A failure streak: the CLI ran but its refresh failed with no evidence that the login is dead
//! (the token endpoint answered 5xx, the network was down, the CLI timed out). The next run will
//! likely succeed, so this is no REAUTH; but a streak that outlasts the access token matters: the
//! gateway's copy expires with it. So a message goes to the webhook once the access token has
//! been expired for `--notify-failing-after`, then at most once per `--notify-every`, and
//! "recovered: …" once when the streak ends, if anyone was told of it.
//!
//! The streak lives in `STATE_DIR/refresh-failing`, `key=value` lines: `since` (first failure),
//! `failures` (count), `reason` (the latest), `refresh_token` (the failing refresh token's
//! fingerprint, for the `json` notification form), `notified_ms` (the last post, when there was
//! one).

use crate::notify::{Event, Webhook};
use crate::text::{human_ms, rfc3339};
use keeper_core::log::{Level, log};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Where the streak is kept and whom to tell.
#[derive(Debug, Clone)]
pub(crate) struct Failing {
    /// The streak file.
    pub(crate) file: PathBuf,
    pub(crate) notify: Option<Webhook>,
    /// Post only once the access token has been expired this long.
    pub(crate) after: Duration,
    /// At most one post per this long.
    pub(crate) every: Duration,
    /// The credentials file, named in the message.
    pub(crate) creds: PathBuf,
}

/// The streak file's fields.
#[derive(Debug, Default)]
struct Streak {
    fields: Vec<(String, String)>,
}

impl Streak {
    fn parse(text: &str) -> Self {
        let fields = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Self { fields }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: &str) {
        let value = value.replace('\n', " ");
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key.to_owned(), value)),
        }
    }

    fn text(&self) -> String {
        let mut out = String::from(
            "# cli-poke: the CLI's refresh is failing (no sign of a dead login); removed after the next refresh\n",
        );
        for (k, v) in &self.fields {
            let _ = writeln!(out, "{k}={v}");
        }
        out
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Failing {
    fn read(&self) -> Option<Streak> {
        std::fs::read_to_string(&self.file).ok().map(|t| Streak::parse(&t))
    }

    fn write(&self, streak: &Streak) {
        let written = self
            .file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| keeper_core::write::replace_atomically(&self.file, streak.text().as_bytes()));
        if let Err(e) = written {
            log(
                Level::Warning,
                crate::PROGRAM,
                format_args!("cannot record the failure streak in {}: {e}", self.file.display()),
            );
        }
    }

    /// One more failure: `expired_for_ms` is how long the access token has been expired (negative
    /// while it is still valid, as after a failed `--force`); `refresh_token` is the fingerprint
    /// of the refresh token that failed, when the file had one.
    pub(crate) fn record(&self, reason: &str, refresh_token: Option<&str>, expired_for_ms: i64, now_ms: i64) {
        let mut streak = self.read().unwrap_or_default();
        if streak.get("since").is_none() {
            streak.set("since", &rfc3339(now_ms));
        }
        let failures = streak.get("failures").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) + 1;
        streak.set("failures", &failures.to_string());
        streak.set("reason", reason);
        if let Some(fp) = refresh_token {
            streak.set("refresh_token", fp);
        }
        let since = streak.get("since").unwrap_or("?").to_owned();
        log(
            Level::Error,
            crate::PROGRAM,
            format_args!(
                "refresh failed, will retry: {reason} (failure {failures} since {since}; no sign that the login is dead)"
            ),
        );
        if let Some(hook) = self.notify.as_ref().filter(|_| expired_for_ms >= millis(self.after)) {
            let last = streak.get("notified_ms").and_then(|v| v.parse::<i64>().ok());
            let due = last.is_none_or(|l| !(0..millis(self.every)).contains(&now_ms.saturating_sub(l)));
            if due {
                let text = format!(
                    "openclaw-oauth-keeper on {}: the Claude CLI's token refresh has been failing since {since} \
                     ({failures} attempts; latest: {reason}). The access token expired {} ago, so OpenClaw's copy \
                     has expired too. No sign that the login is dead: this is usually the network or the token \
                     endpoint, and the next run retries. If it persists, check the machine's network, then run \
                     `claude -p 'say ok'` as the user that owns {}; if that says \"Not logged in\", run \
                     `claude auth login`.",
                    crate::reauth::hostname(),
                    human_ms(expired_for_ms),
                    self.creds.display()
                );
                match hook.post(Event::RefreshFailing, &text, refresh_token) {
                    Ok(()) => {
                        log(Level::Info, crate::PROGRAM, format_args!("refresh-failing notification sent"));
                        streak.set("notified_ms", &now_ms.to_string());
                    }
                    Err(e) => log(
                        Level::Error,
                        crate::PROGRAM,
                        format_args!("refresh-failing notification failed: {e}; retried on the next run"),
                    ),
                }
            }
        }
        self.write(&streak);
    }

    /// The streak ended (a refresh succeeded, or the token is valid again): forget it, and post
    /// "recovered" when someone was told of it.
    pub(crate) fn clear(&self, how: &str) {
        let Some(streak) = self.read() else { return };
        let since = streak.get("since").unwrap_or("?").to_owned();
        let failures = streak.get("failures").unwrap_or("?").to_owned();
        log(
            Level::Info,
            crate::PROGRAM,
            format_args!("recovered: {how} after {failures} failed refreshes since {since}"),
        );
        if let (Some(hook), Some(_)) = (&self.notify, streak.get("notified_ms")) {
            let text = format!(
                "openclaw-oauth-keeper on {}: recovered: {how}, after {failures} failed refreshes since {since}.",
                crate::reauth::hostname()
            );
            if let Err(e) = hook.post(Event::Recovered, &text, streak.get("refresh_token")) {
                log(Level::Warning, crate::PROGRAM, format_args!("the recovery notification failed: {e}"));
            }
        }
        crate::remove_state_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streak_round_trip() {
        let mut s = Streak::default();
        s.set("since", "2026-01-01T00:00:00Z");
        s.set("reason", "a\nb");
        s.set("failures", "1");
        s.set("failures", "2");
        let back = Streak::parse(&s.text());
        assert_eq!(back.get("failures"), Some("2"));
        assert_eq!(back.get("reason"), Some("a b"));
        assert_eq!(back.fields.len(), 3);
    }

    #[test]
    fn no_post_before_the_token_has_been_expired_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let f = Failing {
            file: dir.path().join("state/refresh-failing"),
            notify: Webhook::new(
                Some(format!("http://{}/hook", listener.local_addr().unwrap())),
                crate::notify::Format::Slack,
                crate::notify::DEFAULT_TIMEOUT,
            )
            .unwrap(),
            after: Duration::from_secs(1800),
            every: Duration::from_secs(3600),
            creds: dir.path().join(".credentials.json"),
        };
        f.record("HTTP 500", Some("sk-ant-ort01-…(1a2b3c4d)"), 60_000, 1_767_225_600_000);
        f.record("HTTP 500", None, -60_000, 1_767_225_700_000);
        let text = std::fs::read_to_string(&f.file).unwrap();
        assert!(text.contains("failures=2") && !text.contains("notified_ms"), "{text}");
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a post was made");
        f.clear("the token refreshed again");
        assert!(!f.file.exists());
        assert_eq!(
            listener.accept().unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "nobody was told: no recovery post"
        );
    }
}
