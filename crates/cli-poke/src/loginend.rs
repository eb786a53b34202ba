//! The login's hard end: a Max login ends about 30 days after `claude auth login`
//! (`claudeAiOauth.refreshTokenExpiresAt`, CLI 2.1.203 and later), and no refresh moves it
//! (docs/UPSTREAM.md, "Claude Code CLI"). So every run whose credentials record it checks how much
//! is left and, within `--warn-login-within`, logs a warning and tells the webhook, at most once
//! a day, when and what a human must do before the keeper can no longer refresh.
//!
//! The last post is kept in `STATE_DIR/login-ending`, `key=value` lines: `login_expires_at_ms`
//! (the end it was about) and `notified_ms` (when). A new login (a different end, or one outside
//! the window) forgets it.

use crate::notify::{Event, Webhook};
use crate::text::{human_ms, rfc3339};
use keeper_core::log::{Level, log};
use std::path::PathBuf;
use std::time::Duration;

/// At most one post per this long.
pub(crate) const EVERY_MS: i64 = 24 * 3600 * 1000;

/// Whom to warn, how early, and where the last warning is remembered.
#[derive(Debug, Clone)]
pub(crate) struct LoginEnd {
    /// The state file.
    pub(crate) file: PathBuf,
    pub(crate) notify: Option<Webhook>,
    /// Warn this long before the end; zero turns the warning off.
    pub(crate) within: Duration,
    /// The credentials file, named in the message.
    pub(crate) creds: PathBuf,
}

fn field(text: &str, key: &str) -> Option<i64> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')?.trim().parse().ok())
}

impl LoginEnd {
    /// Checks the login's end `end_ms` (None: the file does not record it) at `now_ms`: warns
    /// inside the window, forgets an old warning outside it. `refresh_token` is the login's
    /// refresh token fingerprint, for the `json` form.
    pub(crate) fn check(&self, end_ms: Option<i64>, refresh_token: Option<&str>, now_ms: i64) {
        let within = i64::try_from(self.within.as_millis()).unwrap_or(i64::MAX);
        let Some(end) = end_ms.filter(|e| within > 0 && e.saturating_sub(now_ms) <= within) else {
            self.forget();
            return;
        };
        let left = end - now_ms;
        let when = if left > 0 {
            format!("ends {} (in {})", rfc3339(end), human_ms(left))
        } else {
            format!("ended {} ({} ago)", rfc3339(end), human_ms(-left))
        };
        let todo = format!(
            "run `claude auth login` as the user that owns {} (inside the container when the CLI runs in one) \
             before then, then `cli-poke --force`; or, for unattended use, switch to a long-lived token from \
             `claude setup-token`",
            self.creds.display()
        );
        log(
            Level::Warning,
            crate::PROGRAM,
            format_args!(
                "the Claude login {when}: refreshes cannot extend it (refreshTokenExpiresAt; a login lasts about \
                 30 days); {todo}"
            ),
        );
        let Some(hook) = &self.notify else { return };
        let state = std::fs::read_to_string(&self.file).unwrap_or_default();
        let last = field(&state, "notified_ms").filter(|_| field(&state, "login_expires_at_ms") == Some(end));
        if last.is_some_and(|l| (0..EVERY_MS).contains(&now_ms.saturating_sub(l))) {
            return;
        }
        let text = format!(
            "openclaw-oauth-keeper on {}: the Claude login {when}. Refreshes cannot extend it (a Max login lasts \
             about 30 days from `claude auth login`); after that the keeper can no longer refresh and OpenClaw \
             stops working. To do: {todo}.",
            crate::reauth::hostname()
        );
        match hook.post(Event::LoginEnds, &text, refresh_token) {
            Ok(()) => {
                log(Level::Info, crate::PROGRAM, format_args!("login-ending notification sent"));
                let record = format!(
                    "# cli-poke: the last warning that the Claude login is about to end\n\
                     login_expires_at_ms={end}\nnotified_ms={now_ms}\n"
                );
                let written = self
                    .file
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| keeper_core::write::replace_atomically(&self.file, record.as_bytes()));
                if let Err(e) = written {
                    log(
                        Level::Warning,
                        crate::PROGRAM,
                        format_args!("cannot record the login-ending notification in {}: {e}", self.file.display()),
                    );
                }
            }
            Err(e) => log(
                Level::Error,
                crate::PROGRAM,
                format_args!("login-ending notification failed: {e}; retried on the next run"),
            ),
        }
    }

    fn forget(&self) {
        crate::remove_state_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_by_exact_key() {
        let t = "# x\nlogin_expires_at_ms=5\nnotified_ms=7\n";
        assert_eq!(field(t, "notified_ms"), Some(7));
        assert_eq!(field(t, "login_expires_at_ms"), Some(5));
        assert_eq!(field(t, "notified"), None);
    }

    #[test]
    fn outside_the_window_or_off_forgets_and_posts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l = LoginEnd {
            file: dir.path().join("login-ending"),
            notify: Webhook::new(
                Some(format!("http://{}/hook", listener.local_addr().unwrap())),
                crate::notify::Format::Slack,
                crate::notify::DEFAULT_TIMEOUT,
            )
            .unwrap(),
            within: Duration::from_secs(3 * 86_400),
            creds: dir.path().join(".credentials.json"),
        };
        std::fs::write(&l.file, "login_expires_at_ms=1\nnotified_ms=1\n").unwrap();
        l.check(Some(10 * EVERY_MS), None, 0);
        assert!(!l.file.exists());
        l.check(None, None, 0);
        LoginEnd { within: Duration::ZERO, ..l.clone() }.check(Some(1000), None, 0);
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "a post was made");
    }
}
