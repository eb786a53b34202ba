//! `--notify-failed UNIT`: the body of the `openclaw-keeper-notify@.service` units, which the
//! keeper's units name in `OnFailure=`. Logs an error naming the failed unit and where its log
//! is, and posts a message to the webhook, at most once per `--notify-every` per unit (a refresh
//! that fails every 2 minutes must not post 720 messages a day). Reads no credentials: the
//! message names the unit, the host and the REAUTH flag when it is raised, never a token.

use keeper_core::log::{Level, log};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The post failed (logged; the next failure tries again).
pub(crate) const EXIT_POST_FAILED: u8 = 6;

/// What one report needs.
#[derive(Debug)]
pub(crate) struct Report {
    /// The failed unit, e.g. `openclaw-keeper-refresh.service`.
    pub(crate) unit: String,
    /// The unit belongs to the user's service manager (`systemctl --user`).
    pub(crate) user_unit: bool,
    pub(crate) notify: Option<crate::notify::Webhook>,
    /// Minimum time between two posts about the same unit.
    pub(crate) every: Duration,
    /// Where the time of the last post per unit is kept.
    pub(crate) state_dir: PathBuf,
    /// The REAUTH flag: the message says when it is raised.
    pub(crate) reauth_flag: PathBuf,
}

/// Whether `name` can be a systemd unit name (it goes into a log line and a message).
pub(crate) fn valid_unit_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

impl Report {
    fn hint(&self) -> String {
        if self.user_unit {
            format!("journalctl --user-unit {0} (or: systemctl --user status {0})", self.unit)
        } else {
            format!("journalctl -u {0} (or: systemctl status {0})", self.unit)
        }
    }

    fn marker(&self) -> PathBuf {
        self.state_dir.join(format!("notified-failed.{}", self.unit))
    }

    /// Milliseconds of the last post about this unit, from its marker file.
    fn last_post_ms(&self) -> Option<i64> {
        std::fs::read_to_string(self.marker()).ok()?.trim().parse().ok()
    }

    fn message(&self) -> String {
        let mut text = format!(
            "openclaw-oauth-keeper on {}: {} failed. See `{}`; `scripts/verify.sh{}` shows every check.",
            crate::reauth::hostname(),
            self.unit,
            self.hint(),
            if self.user_unit { " --user" } else { "" }
        );
        if self.reauth_flag.exists() {
            let _ = write!(
                text,
                " The REAUTH flag {} is raised: a human must run `claude auth login`.",
                self.reauth_flag.display()
            );
        }
        text
    }

    /// Logs, posts when due; returns the exit status.
    pub(crate) fn run(&self, now_ms: i64) -> u8 {
        log(Level::Error, crate::PROGRAM, format_args!("{} failed; its log: {}", self.unit, self.hint()));
        if self.reauth_flag.exists() {
            log(
                Level::Error,
                crate::PROGRAM,
                format_args!(
                    "the REAUTH flag {} is raised: a human must run `claude auth login`",
                    self.reauth_flag.display()
                ),
            );
        }
        let Some(hook) = &self.notify else { return 0 };
        let every_ms = i64::try_from(self.every.as_millis()).unwrap_or(i64::MAX);
        if let Some(last) = self.last_post_ms() {
            let since = now_ms.saturating_sub(last);
            if (0..every_ms).contains(&since) {
                log(
                    Level::Info,
                    crate::PROGRAM,
                    format_args!(
                        "not posting: the failure of {} was posted {} ago (--notify-every {})",
                        self.unit,
                        crate::text::human_ms(since),
                        humantime::format_duration(self.every)
                    ),
                );
                return 0;
            }
        }
        match hook.post(crate::notify::Event::UnitFailed, &self.message(), None) {
            Ok(()) => {
                log(Level::Info, crate::PROGRAM, format_args!("posted the failure of {}", self.unit));
                remember(&self.marker(), now_ms);
                0
            }
            Err(e) => {
                log(Level::Error, crate::PROGRAM, format_args!("posting the failure of {} failed: {e}", self.unit));
                EXIT_POST_FAILED
            }
        }
    }
}

/// Writes the marker; a failure only means the next failure posts again.
fn remember(marker: &Path, now_ms: i64) {
    let written = marker
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| keeper_core::write::replace_atomically(marker, format!("{now_ms}\n").as_bytes()));
    if let Err(e) = written {
        log(
            Level::Warning,
            crate::PROGRAM,
            format_args!("cannot record the post in {}: {e}; the next failure posts again", marker.display()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        for ok in ["openclaw-keeper-refresh.service", "a@b\\x2dc.service", "x.timer"] {
            assert!(valid_unit_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", "a/b.service", "a b", "a\nb", "$(x)", &"a".repeat(257)] {
            assert!(!valid_unit_name(bad), "{bad}");
        }
    }
}
