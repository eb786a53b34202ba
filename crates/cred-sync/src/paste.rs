//! SQLite-era OpenClaw (2026.6 and later): the token goes in through OpenClaw's own writer,
//! `openclaw models auth paste-token`, on its stdin. It takes seconds, so what was last pasted is
//! remembered (as a fingerprint) in a small state file and an unchanged token is not pasted again.

use crate::delivery::Delivery;
use crate::sync::{Outcome, Settings, TargetReport, Wrote};
use crate::target::Kind;
use credmap::{Credential, ExpiresAt};
use keeper_core::log::Level;
use keeper_core::process;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The prefix paste-token requires (docs/UPSTREAM.md, "paste-token").
const ACCEPTED_PREFIX: &str = "sk-ant-oat01-";
/// What 2026.9.6's paste-token says, exit 0, when it saved the token but could not tell the
/// running gateway ("…the local Gateway could not refresh them. Run `openclaw gateway restart`…").
const UNTOLD_MARK: &str = "could not refresh";
/// What 2026.9.6's paste-token says when several agents exist and no `--agent` was given.
const NO_OWNER_MARK: &str = "Pass --agent";
/// The shortest token paste-token accepts.
const ACCEPTED_MIN_LEN: usize = 80;

/// How to reach OpenClaw.
#[derive(Debug, Clone)]
pub(crate) struct PasteSettings {
    /// The command that runs `openclaw` (`openclaw`, or e.g. `docker compose exec -T
    /// openclaw-gateway openclaw`), split into words.
    pub(crate) command: Vec<String>,
    pub(crate) profile_id: String,
    pub(crate) timeout: Duration,
    /// Where the last pasted fingerprint is kept.
    pub(crate) state_dir: PathBuf,
}

/// The state file's record of the last successful paste.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pasted {
    pub(crate) fingerprint: String,
    pub(crate) expires_ms: i64,
}

impl PasteSettings {
    /// `paste-<profile>-<agent|shared>.json` in the state directory.
    pub(crate) fn state_file(&self, agent: Option<&str>) -> PathBuf {
        let clean = |s: &str| {
            s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect::<String>()
        };
        self.state_dir.join(format!(
            "paste-{}-{}.json",
            clean(&self.profile_id),
            agent.map_or_else(|| "shared".into(), clean)
        ))
    }

    pub(crate) fn last_pasted(&self, agent: Option<&str>) -> Option<Pasted> {
        let bytes = std::fs::read(self.state_file(agent)).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        Some(Pasted {
            fingerprint: v.get("fingerprint")?.as_str()?.to_owned(),
            expires_ms: v.get("expires_ms")?.as_i64()?,
        })
    }

    fn remember(&self, agent: Option<&str>, cred: &Credential, now_ms: i64) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.state_dir)?;
        let record = json!({
            "fingerprint": cred.access_token.fingerprint().to_string(),
            "expires_ms": cred.expires_at.as_millis(),
            "pasted_at_ms": now_ms,
            "profile_id": self.profile_id,
            "agent": agent,
        });
        keeper_core::write::replace_atomically(&self.state_file(agent), format!("{record}\n").as_bytes())
    }

    /// `openclaw … models auth paste-token …`: the token is never among the arguments.
    pub(crate) fn paste_command(&self, agent: Option<&str>, expires_in: Duration) -> Command {
        let mut cmd = self.openclaw();
        cmd.args(["models", "auth", "paste-token", "--provider", "anthropic", "--profile-id", &self.profile_id]);
        cmd.args(["--expires-in", &expires_in_arg(expires_in)]);
        if let Some(agent) = agent {
            cmd.args(["--agent", agent]);
        }
        cmd
    }

    /// The configured OpenClaw command with no subcommand yet.
    pub(crate) fn openclaw(&self) -> Command {
        let (program, prefix) =
            self.command.split_first().map_or(("openclaw", &[][..]), |(p, rest)| (p.as_str(), rest));
        let mut cmd = Command::new(program);
        // OpenClaw colours its stderr even into a pipe; our logs want plain text.
        cmd.args(prefix).env("NO_COLOR", "1");
        cmd
    }

    /// The command line for messages (holds no secret).
    pub(crate) fn shown(cmd: &Command) -> String {
        std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `--expires-in` as whole minutes (`479m`), rounded down so OpenClaw never believes a token lives
/// longer than it does.
fn expires_in_arg(d: Duration) -> String {
    format!("{}m", (d.as_secs() / 60).max(1))
}

/// The `--expires-in` for a token with `remaining` time left. OpenClaw counts it from its own
/// start-up, seconds after ours (3–7 s for 2026.9.6), and at most `timeout` later: leaving that
/// out keeps OpenClaw's expiry at or before the token's, one to two minutes early with the 60 s
/// default.
fn expires_in(remaining: Duration, timeout: Duration) -> Duration {
    remaining.saturating_sub(timeout)
}

/// Whether paste-token would accept the token; the reason when not.
pub(crate) fn acceptable(cred: &Credential) -> Result<(), String> {
    let token = cred.access_token.expose();
    if !token.starts_with(ACCEPTED_PREFIX) {
        return Err(format!(
            "paste-token accepts only {ACCEPTED_PREFIX} tokens; this one starts {}",
            cred.access_token.kind_prefix()
        ));
    }
    if token.len() < ACCEPTED_MIN_LEN {
        return Err(format!(
            "paste-token accepts only tokens of {ACCEPTED_MIN_LEN}+ characters; this one has {}",
            token.len()
        ));
    }
    Ok(())
}

/// Pastes `cred` unless the state file says it is already there.
pub(crate) fn sync(
    paste: &PasteSettings,
    agent: Option<&str>,
    cred: &Credential,
    now_ms: i64,
    settings: &Settings,
    dry_run: bool,
) -> TargetReport {
    let name =
        agent.map_or_else(|| Kind::OpenclawPaste.name().to_owned(), |a| format!("{}:{a}", Kind::OpenclawPaste.name()));
    let report = |outcome, wrote, delivery| TargetReport {
        name: name.clone(),
        kind: Kind::OpenclawPaste,
        outcome,
        wrote,
        delivery,
    };
    let fingerprint = cred.access_token.fingerprint().to_string();
    let last = paste.last_pasted(agent);
    if let Some(last) = &last {
        // Same token: nothing to paste (a same-token earlier expiry is `cli-poke --force` at work).
        if last.fingerprint == fingerprint && last.expires_ms >= cred.expires_at.as_millis() {
            return report(Outcome::Unchanged, Wrote::Nothing, Delivery::Told);
        }
        if !settings.allow_downgrade && last.fingerprint != fingerprint && last.expires_ms > cred.expires_at.as_millis()
        {
            let held = ExpiresAt::from_millis(last.expires_ms).unwrap_or(cred.expires_at);
            return report(Outcome::Downgrade { held, by: None }, Wrote::Nothing, Delivery::Told);
        }
    }
    if let Err(problem) = acceptable(cred) {
        return report(Outcome::Failed(format!("{name}: {problem}")), Wrote::Nothing, Delivery::Untold);
    }
    let remaining = Duration::from_millis(cred.expires_at.remaining_ms(now_ms).max(0) as u64);
    let expires_in = expires_in(remaining, paste.timeout);
    let wrote = Wrote::Token { token: cred.access_token.clone(), expires_at: cred.expires_at };
    if dry_run {
        return report(Outcome::Written, wrote, Delivery::Told);
    }
    let mut pasted = paste.run_paste(agent, cred, expires_in);
    if agent.is_none() && pasted.as_ref().is_err_and(|e| e.contains(NO_OWNER_MARK)) {
        // Several agents: the shared store is the default agent's (docs/UPSTREAM.md).
        pasted = match paste.default_agent() {
            Ok(default) => {
                log(
                    Level::Info,
                    format_args!(
                        "{name}: several agents; pasting into the shared store through the default agent, {default}"
                    ),
                );
                paste.run_paste(Some(&default), cred, expires_in)
            }
            Err(problem) => Err(problem),
        };
    }
    let told = match pasted {
        Ok(told) => told,
        Err(problem) => return report(Outcome::Failed(format!("{name}: {problem}")), Wrote::Nothing, Delivery::Untold),
    };
    let delivery = if told {
        Delivery::Told
    } else {
        log(
            Level::Warning,
            format_args!(
                "{name}: pasted, but paste-token could not tell the running gateway (give cred-sync the gateway's \
                 token: gateway.auth.token in openclaw.json, or OPENCLAW_GATEWAY_TOKEN in the keeper's config); \
                 trying `openclaw secrets reload`"
            ),
        );
        match paste.secrets_reload() {
            Ok(()) => {
                log(Level::Info, format_args!("{name}: told the gateway through `openclaw secrets reload`"));
                Delivery::Told
            }
            Err(problem) => {
                log(Level::Warning, format_args!("{name}: {problem}: the gateway must be restarted to see the token"));
                Delivery::Untold
            }
        }
    };
    if let Err(e) = paste.remember(agent, cred, now_ms) {
        // The paste worked; only the skip-if-unchanged memory failed, so the next sync pastes again.
        log(
            Level::Warning,
            format_args!("{name}: pasted, but cannot record it in {}: {e}", paste.state_file(agent).display()),
        );
    }
    report(Outcome::Written, wrote, delivery)
}

fn log(level: Level, message: std::fmt::Arguments<'_>) {
    keeper_core::log::log(level, crate::PROGRAM, message);
}

impl PasteSettings {
    /// Runs paste-token with the token on stdin: `Ok(true)` when it also told the running
    /// gateway, `Ok(false)` when it saved the token without telling it, `Err` naming the command
    /// and OpenClaw's last words when it failed.
    fn run_paste(&self, agent: Option<&str>, cred: &Credential, expires_in: Duration) -> Result<bool, String> {
        let mut input = cred.access_token.expose().as_bytes().to_vec();
        input.push(b'\n');
        let finished = self.run_openclaw(self.paste_command(agent, expires_in), Some(&input))?;
        let said = String::from_utf8_lossy(&finished.stderr) + String::from_utf8_lossy(&finished.stdout);
        Ok(!said.to_lowercase().contains(UNTOLD_MARK))
    }

    /// `openclaw agents list --json`: the id of the agent marked `isDefault`.
    fn default_agent(&self) -> Result<String, String> {
        let mut cmd = self.openclaw();
        cmd.args(["agents", "list", "--json"]);
        let shown = Self::shown(&cmd);
        let finished = self.run_openclaw(cmd, None)?;
        let agents: Value = serde_json::from_slice(&finished.stdout)
            .map_err(|e| format!("`{shown}` printed no JSON list of agents ({e})"))?;
        let default = agents
            .as_array()
            .and_then(|list| list.iter().find(|a| a["isDefault"] == Value::Bool(true)).and_then(|a| a["id"].as_str()));
        default.map(str::to_owned).ok_or_else(|| format!("`{shown}` names no default agent (isDefault)"))
    }

    /// `openclaw secrets reload`: makes the running gateway re-read its credentials.
    fn secrets_reload(&self) -> Result<(), String> {
        let mut cmd = self.openclaw();
        cmd.args(["secrets", "reload"]);
        let finished = self.run_openclaw(cmd, None)?;
        let said = String::from_utf8_lossy(&finished.stderr) + String::from_utf8_lossy(&finished.stdout);
        // It has been seen to say "Could not reload secrets…" and still exit 0.
        if said.to_lowercase().contains("could not") {
            return Err(format!("`openclaw secrets reload` failed{}", last_lines(&finished.stderr, &finished.stdout)));
        }
        Ok(())
    }

    /// Runs an OpenClaw command within the time limit; `Err` unless it exits 0.
    fn run_openclaw(&self, cmd: Command, input: Option<&[u8]>) -> Result<process::Finished, String> {
        let shown = Self::shown(&cmd);
        let finished = process::run(cmd, input, self.timeout).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound { " (set --openclaw-cmd)" } else { "" };
            format!("cannot run `{shown}`: {e}{hint}")
        })?;
        if finished.success() {
            return Ok(finished);
        }
        let what = match finished.ended {
            process::Ended::TimedOut => format!("timed out after {}", humantime::format_duration(self.timeout)),
            _ => finished.describe(),
        };
        Err(format!("`{shown}` {what}{}", last_lines(&finished.stderr, &finished.stdout)))
    }
}

/// The last lines a failed OpenClaw printed, redacted, for the error message.
fn last_lines(stderr: &[u8], stdout: &[u8]) -> String {
    let text = if stderr.iter().any(|b| !b.is_ascii_whitespace()) { stderr } else { stdout };
    let text = credmap::redact(&String::from_utf8_lossy(text));
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credmap::Secret;

    fn settings(command: &str) -> PasteSettings {
        PasteSettings {
            command: command.split_whitespace().map(str::to_owned).collect(),
            profile_id: "anthropic:claude-code".into(),
            timeout: Duration::from_secs(5),
            state_dir: PathBuf::from("/state"),
        }
    }

    #[test]
    fn the_command_names_profile_expiry_and_agent_but_never_the_token() {
        let s = settings("docker compose exec -T openclaw-gateway openclaw");
        let cmd = s.paste_command(Some("main"), Duration::from_secs(8 * 3600 - 30));
        assert_eq!(
            PasteSettings::shown(&cmd),
            "docker compose exec -T openclaw-gateway openclaw models auth paste-token --provider anthropic \
             --profile-id anthropic:claude-code --expires-in 479m --agent main"
        );
        assert_eq!(s.state_file(Some("main")), PathBuf::from("/state/paste-anthropic_claude-code-main.json"));
        assert_eq!(s.state_file(None), PathBuf::from("/state/paste-anthropic_claude-code-shared.json"));
    }

    /// Regression: with the remainder rounded down alone, OpenClaw 2026.9.6 (which counts from
    /// its own start, seconds later) listed a token expiring 1.5 s past a whole minute as expiring
    /// 3.3 s after the source's (`tests/real_openclaw.rs` has the same case against the real one).
    #[test]
    fn regression_openclaw_believed_a_pasted_token_outlived_the_source() {
        let timeout = Duration::from_secs(60);
        let remaining = Duration::from_millis(8 * 3_600_000 + 1_500);
        assert_eq!(expires_in_arg(expires_in(remaining, timeout)), "479m");
        // Started as late as the timeout allows, OpenClaw's expiry is still not past the token's.
        let latest_start = timeout.as_millis();
        assert!(latest_start + 479 * 60_000 <= remaining.as_millis());
        assert_eq!(expires_in_arg(expires_in(Duration::from_secs(30), timeout)), "1m", "never zero");
    }

    #[test]
    fn only_long_oat_tokens_are_acceptable() {
        let with =
            |t: String| Credential::new(Secret::new(t), None, ExpiresAt::from_millis(1_800_000_000_000).unwrap());
        assert!(acceptable(&with(format!("sk-ant-oat01-{}", "a".repeat(67)))).is_ok());
        assert!(acceptable(&with(format!("sk-ant-oat01-{}", "a".repeat(66)))).unwrap_err().contains("has 79"));
        assert!(acceptable(&with(format!("sk-ant-api03-{}", "a".repeat(90)))).unwrap_err().contains("sk-ant-api03-"));
    }
}
