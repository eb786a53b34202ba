//! The REAUTH episode: when only a human login helps, a flag file marks it (created once, kept
//! until the token refreshes again or the credentials are replaced by a new login), and a
//! webhook is told once per episode.
//!
//! The flag file is `key=value` lines after a comment saying what to do:
//!
//! ```text
//! # The Claude CLI needs a human login: …
//! since=2026-05-01T12:00:00Z
//! reason=the token endpoint answered invalid_grant: the refresh token is dead
//! credentials=/root/.claude/.credentials.json
//! refresh_token=sk-ant-ort01-…(1a2b3c4d)
//! notified=yes
//! ```
//!
//! `refresh_token` is the fingerprint of the refresh token that failed (`unknown` when the file
//! already held the logged-out stub). `notified` is `yes` (the webhook accepted the message),
//! `failed` (retried on the next run), `pending` (being sent) or `no` (no webhook configured; sent
//! on a later run if one is configured by then).

use crate::notify::{Event, Webhook};
use crate::text::rfc3339;
use credmap::Credential;
use keeper_core::log::{Level, log};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the flag goes and whom to tell.
#[derive(Debug, Clone)]
pub(crate) struct Reauth {
    /// The flag file.
    pub(crate) flag: PathBuf,
    /// The webhook, if any.
    pub(crate) notify: Option<Webhook>,
    /// The credentials file, named in the flag and the message.
    pub(crate) creds: PathBuf,
}

/// A parsed flag file.
#[derive(Debug, Clone, Default)]
struct Flag {
    fields: Vec<(String, String)>,
}

impl Flag {
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
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => value.clone_into(&mut slot.1),
            None => self.fields.push((key.to_owned(), value.to_owned())),
        }
    }

    fn text(&self, creds: &Path) -> String {
        let mut out = format!(
            "# The Claude CLI needs a human login: run `claude auth login` as the user that owns\n\
             # {} (inside the container when the CLI runs in one), then `cli-poke --force`.\n\
             # cli-poke removes this file after the next successful refresh.\n",
            creds.display()
        );
        for (k, v) in &self.fields {
            let _ = writeln!(out, "{k}={}", v.replace('\n', " "));
        }
        out
    }
}

/// The failed refresh token's fingerprint the flag records, unless it is `unknown`.
fn flag_fingerprint(flag: &Flag) -> Option<&str> {
    flag.get("refresh_token").filter(|f| !f.is_empty() && *f != "unknown")
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

impl Reauth {
    fn read_flag(&self) -> Option<Flag> {
        std::fs::read_to_string(&self.flag).ok().map(|t| Flag::parse(&t))
    }

    fn write_flag(&self, flag: &Flag) -> std::io::Result<()> {
        keeper_core::write::replace_atomically(&self.flag, flag.text(&self.creds).as_bytes())
    }

    fn message(&self, reason: &str) -> String {
        format!(
            "openclaw-oauth-keeper on {}: the Claude CLI's login has run out and only a human can renew it ({reason}). \
             Run `claude auth login` as the user that owns {} (inside the container when the CLI runs in one), \
             then `cli-poke --force` to check. Flag: {}",
            hostname(),
            self.creds.display(),
            self.flag.display()
        )
    }

    /// Starts or continues an episode: logs the error, creates the flag when it does not exist,
    /// and tells the webhook unless this episode already did.
    pub(crate) fn raise(&self, reason: &str, refresh_token: Option<&str>, now_ms: i64) {
        log(
            Level::Error,
            crate::PROGRAM,
            format_args!(
                "REAUTH needed: {reason}. A human must run `claude auth login` as the user that owns {}",
                self.creds.display()
            ),
        );
        let mut flag = if let Some(flag) = self.read_flag() {
            let since = flag.get("since").unwrap_or("an unknown time");
            log(Level::Info, crate::PROGRAM, format_args!("REAUTH flag {} present since {since}", self.flag.display()));
            flag
        } else {
            let mut flag = Flag::default();
            flag.set("since", &rfc3339(now_ms));
            flag.set("reason", reason);
            flag.set("credentials", &self.creds.display().to_string());
            flag.set("refresh_token", refresh_token.unwrap_or("unknown"));
            flag.set("notified", if self.notify.is_some() { "pending" } else { "no" });
            if let Err(e) = self.write_flag(&flag) {
                // Without the flag there is no episode to remember a notification by: telling
                // the webhook now would repeat it on every run.
                log(
                    Level::Error,
                    crate::PROGRAM,
                    format_args!("cannot create the REAUTH flag {}: {e}; nobody is notified", self.flag.display()),
                );
                return;
            }
            log(Level::Info, crate::PROGRAM, format_args!("created the REAUTH flag {}", self.flag.display()));
            flag
        };
        let Some(hook) = &self.notify else { return };
        if flag.get("notified") == Some("yes") {
            return;
        }
        let episode_reason = flag.get("reason").unwrap_or(reason).to_owned();
        let fingerprint = flag_fingerprint(&flag).map(str::to_owned);
        let notified = match hook.post(Event::ReauthNeeded, &self.message(&episode_reason), fingerprint.as_deref()) {
            Ok(()) => {
                log(Level::Info, crate::PROGRAM, format_args!("REAUTH notification sent"));
                "yes"
            }
            Err(e) => {
                log(
                    Level::Error,
                    crate::PROGRAM,
                    format_args!("REAUTH notification failed: {e}; retried on the next run"),
                );
                "failed"
            }
        };
        flag.set("notified", notified);
        if let Err(e) = self.write_flag(&flag) {
            log(
                Level::Error,
                crate::PROGRAM,
                format_args!("cannot update the REAUTH flag {}: {e}", self.flag.display()),
            );
        }
    }

    /// Ends the episode after a successful refresh.
    pub(crate) fn clear_after_refresh(&self) {
        self.remove("the token refreshed again");
    }

    /// When the refresh is not due: ends the episode if the credentials were replaced since the
    /// flag was raised (a human logged in again); otherwise says it is still open.
    pub(crate) fn check_when_not_due(&self, cred: &Credential) {
        let Some(flag) = self.read_flag() else { return };
        let current = cred.refresh_token.as_ref().map(ToString::to_string);
        if flag.get("refresh_token") == current.as_deref() {
            log(
                Level::Warning,
                crate::PROGRAM,
                format_args!(
                    "the REAUTH flag {} (since {}) is still present: {}",
                    self.flag.display(),
                    flag.get("since").unwrap_or("?"),
                    flag.get("reason").unwrap_or("?")
                ),
            );
        } else {
            self.remove("the credentials were replaced since it was raised (a new login)");
        }
    }

    fn remove(&self, why: &str) {
        let told = self.read_flag().filter(|f| f.get("notified") == Some("yes"));
        match std::fs::remove_file(&self.flag) {
            Ok(()) => {
                log(
                    Level::Info,
                    crate::PROGRAM,
                    format_args!("REAUTH resolved: {why}; removed {}", self.flag.display()),
                );
                // Whoever was told of the episode is told that it ended, once: the flag, which
                // remembers the telling, is gone now.
                if let (Some(hook), Some(flag)) = (&self.notify, told) {
                    let text = format!(
                        "openclaw-oauth-keeper on {}: recovered: {why}. The REAUTH episode since {} is over; nothing to do.",
                        hostname(),
                        flag.get("since").unwrap_or("?")
                    );
                    if let Err(e) = hook.post(Event::Recovered, &text, flag_fingerprint(&flag)) {
                        log(Level::Warning, crate::PROGRAM, format_args!("the recovery notification failed: {e}"));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log(
                Level::Error,
                crate::PROGRAM,
                format_args!("cannot remove the REAUTH flag {}: {e}", self.flag.display()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_round_trip_keeps_fields_and_updates_in_place() {
        let mut f = Flag::default();
        f.set("since", "2026-01-01T00:00:00Z");
        f.set("reason", "why\nnot");
        f.set("notified", "pending");
        f.set("notified", "yes");
        let text = f.text(Path::new("/c"));
        assert!(text.starts_with("# The Claude CLI needs a human login"));
        let back = Flag::parse(&text);
        assert_eq!(back.get("since"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(back.get("reason"), Some("why not"));
        assert_eq!(back.get("notified"), Some("yes"));
        assert_eq!(back.fields.len(), 3);
    }

    #[test]
    fn without_a_writable_flag_nobody_is_notified() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let r = Reauth {
            flag: dir.path().join("missing-dir/REAUTH_NEEDED"),
            notify: crate::notify::Webhook::new(
                Some(format!("http://{}/hook", listener.local_addr().unwrap())),
                crate::notify::Format::Slack,
                crate::notify::DEFAULT_TIMEOUT,
            )
            .unwrap(),
            creds: dir.path().join(".credentials.json"),
        };
        r.raise("test", None, 1_767_225_600_000);
        assert!(!r.flag.exists());
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a post was made");
    }
}
