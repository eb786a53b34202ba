//! `cli-poke`: make the Claude Code CLI refresh its OAuth token in time, on the host or in a
//! container, check that it did, and raise the REAUTH flag when only a human login helps.
//!
//! The CLI refreshes only when `now + 5 min >= expiresAt`, and only before an API call
//! (docs/UPSTREAM.md, "Claude Code CLI"). So `cli-poke` reads the credentials first: outside that window it does
//! nothing ("not due", saying when the window opens); inside it, it runs `claude -p 'say ok'` and
//! then re-reads the file: success only when the access token changed and the expiry advanced.
//! `--force` moves the expiry to now under the CLI's own lock, so the CLI refreshes at once.
//!
//! The binary's `main` only calls [`main`].

mod command;
mod creds;
mod debuglog;
mod direct;
mod failed;
mod failing;
mod lockdir;
mod loginend;
mod notify;
mod process;
mod reauth;
mod redact;
mod text;

use clap::{CommandFactory, Parser, ValueEnum};
use command::{CliEnv, Invocation, NotRunnable};
use credmap::Credential;
use creds::{Creds, ForceError, Forced, WriteMode};
use debuglog::{DebugLog, TokenStatus};
use failing::Failing;
use keeper_core::log::{Level, log};
use process::{Ended, Finished};
use reauth::Reauth;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use text::{human_ms, rfc3339};

pub(crate) const PROGRAM: &str = "cli-poke";

/// The token was refreshed (the access token changed and its expiry advanced).
pub const EXIT_REFRESHED: u8 = 0;
/// Not due: the CLI would not refresh yet.
pub const EXIT_NOT_DUE: u8 = 1;
/// The CLI ran but did not refresh.
pub const EXIT_NOT_REFRESHED: u8 = 2;
/// The refresh token is dead: a human must log in (REAUTH).
pub const EXIT_REAUTH: u8 = 3;
/// The credentials file is missing, unreadable or invalid, or `--force` (or `--direct`) could not
/// lock or rewrite it.
pub const EXIT_CREDENTIALS: u8 = 4;
/// The CLI could not be run: not found, not executable, container not running, timed out.
pub const EXIT_CLI: u8 = 5;
/// `--notify-failed`: posting to the webhook failed.
pub const EXIT_POST_FAILED: u8 = failed::EXIT_POST_FAILED;
/// The CLI tried and failed to refresh, with no sign that the login is dead (token endpoint
/// error, no network, timed out): the next run retries.
pub const EXIT_REFRESH_FAILED: u8 = 7;

const AFTER_HELP: &str = "\
Exit status:
  0   refreshed: after the poke the access token changed and its expiry advanced (also with
      --force); with --not-due-ok also \"not due\"
  1   not due: more than the refresh window (5m) left, so the CLI would not refresh; the log
      says when the window opens
  2   the CLI answered (exit 0) but did not refresh the token (its output is logged, tokens
      hidden): it did not try, e.g. another config dir or a token variable in a container
  3   REAUTH: the login is dead, on evidence only: the file holds the logged-out stub or
      loginEnded, the CLI said invalid_grant, or its debug log shows the token endpoint answered
      400/401; the flag file is created and the webhook told, once per episode
  4   the credentials file is missing, unreadable or invalid, or --force could not lock or
      rewrite it (a live CLI held one of its locks through 6 tries, 1-2 s apart)
  5   the CLI could not be run: not found, not executable, container missing or stopped, the
      file belongs to another user (host mode)
  7   refresh failed, will retry: the CLI failed or timed out without refreshing and nothing
      says the login is dead (the token endpoint answered 5xx, no network); the webhook is told
      once the access token has been expired for --notify-failing-after, then at most once per
      --notify-every, and \"recovered\" when a refresh succeeds again
  64  usage error

With --notify-failed UNIT (the keeper's OnFailure= units run it; no poke, no credentials read):
  0   the failure was logged, and posted to --notify-url when one is set (or not posted because
      this unit's failure was posted within --notify-every)
  6   posting to --notify-url failed (logged; the next failure tries again)
  64  usage error (UNIT is not a unit name)

A systemd timer unit should run `cli-poke --not-due-ok` (or set SuccessExitStatus=1), so that a
run outside the window does not show as failed.

--force takes the CLI's locks as CLI 2.1.332 does, in its order: DIR/.oauth_refresh.lock (with
a .oauth_refresh.lock.owner record naming this process), then <realpath(DIR)>.lock
(~/.claude.lock), then DIR/.storage-write.lock around the write; DIR is the credentials file's
directory. A live holder's lock is never broken; one whose owner record names a dead process, or
whose mtime is older than the CLI's stale time (60 s; 15 s for .storage-write.lock), is taken over.

--force trade-off: it sets expiresAt to now, so the CLI refreshes on this poke. That rotates the
refresh token early (harmless: the CLI is the only refresher), and a watcher such as cred-sync
sees the changed expiry for a moment. When the poke does not refresh, the original expiry is put
back.

Tokens never reach the CLI's command line or environment (token variables are removed from the
environment it inherits); its output is logged with every token replaced by a fingerprint.

--direct, the fallback for when the CLI cannot run: cli-poke itself POSTs the CLI's refresh
request to --token-url, under the CLI's locks (taken as for --force, kept fresh while held), in
the token's last --direct-window (55m; --force: now), and writes the answer into the CLI's file
(atomically, owner, mode and every other key kept). invalid_grant is exit 3 (REAUTH, no stub
written); 429, 5xx, network errors and timeouts, still failing after 4 tries, and an answer that
is no token are exit 7 (file untouched); a lock held through 6 tries is exit 4 (nothing sent).
It is a third-party program presenting the subscription's refresh token to Anthropic: see the
README's terms-of-use note before choosing it.

Examples:
  cli-poke --not-due-ok
  cli-poke --container openclaw-claude --creds /srv/claude/.credentials.json
  cli-poke --cli-cmd 'docker compose -f /srv/openclaw/compose.yml exec -T claude claude' --creds …
  token-expiry --wait-until-within 5m && cli-poke
  cli-poke --direct --not-due-ok";

/// Make the Claude Code CLI refresh its OAuth token in its 5-minute window, and check it did.
///
/// Reads the CLI's credentials; when under 5 minutes are left (or with --force) runs the CLI
/// (`claude -p 'say ok'`) on the host, in a container or through a given command, then checks the
/// token changed. Raises the REAUTH flag (and tells a webhook once) when only a human login helps.
#[derive(Debug, Parser)]
#[command(name = "cli-poke", version = keeper_core::LONG_VERSION, after_help = AFTER_HELP, max_term_width = 100)]
// Reason: these doc comments are --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
struct Options {
    /// The CLI's credentials file [default: $CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json,
    /// else $CLAUDE_CONFIG_DIR/.credentials.json, else ~/.claude/.credentials.json]
    ///
    /// Its directory is where --force takes the CLI's locks. A symlink is followed (its target
    /// rewritten, the link kept, with a warning); it is never replaced by a regular file.
    ///
    /// With --container or --cli-cmd: required, the host path of the file the CLI writes (its
    /// directory bind-mounted into the container).
    #[arg(long, value_name = "FILE", env = "KEEPER_CREDENTIALS", help_heading = "Credentials")]
    creds: Option<PathBuf>,

    /// Refresh now, however long the token has left
    ///
    /// Sets expiresAt to now under the CLI's locks, then pokes; see the trade-off below.
    #[arg(long, env = "KEEPER_FORCE", help_heading = "Credentials")]
    force: bool,

    /// How --force rewrites the file
    ///
    /// rename: a temp file renamed over it (atomic, owner and mode kept); in-place: the same
    /// inode, for a file bind-mounted on its own into a container (a rename would leave the
    /// container on the old file).
    #[arg(long, value_enum, value_name = "HOW", env = "KEEPER_FORCE_WRITE", help_heading = "Credentials")]
    #[arg(default_value_t = WriteMode::Rename)]
    force_write: WriteMode,

    /// The CLI refreshes only when this much or less is left (its built-in rule is 5 minutes)
    #[arg(long, value_name = "DURATION", env = "KEEPER_REFRESH_WINDOW", help_heading = "Credentials")]
    #[arg(default_value = "5m", value_parser = humantime::parse_duration)]
    refresh_window: Duration,

    /// Exit 0 instead of 1 when the refresh is not due (for timer units)
    #[arg(long, env = "KEEPER_NOT_DUE_OK", help_heading = "Credentials")]
    not_due_ok: bool,

    /// The claude program [default: claude in PATH, then ~/.local/bin/claude, ~/.claude/local/claude]
    ///
    /// With --container: the program inside the container [default: claude].
    #[arg(long, value_name = "PATH", env = "KEEPER_CLI", conflicts_with = "cli_cmd", help_heading = "The CLI")]
    cli: Option<PathBuf>,

    /// Run the CLI in this running container: docker exec CONTAINER claude -p PROMPT
    #[arg(long, value_name = "NAME", env = "KEEPER_CONTAINER", conflicts_with = "cli_cmd", help_heading = "The CLI")]
    container: Option<String>,

    /// Run the CLI through this command, e.g. 'docker compose exec -T svc claude'
    ///
    /// Split into words like a shell does (quotes, backslashes; no expansion); the CLI's
    /// arguments are appended. Variables cli-poke sets for the CLI (CLAUDE_CODE_MAX_RETRIES=1, and
    /// ANTHROPIC_BASE_URL with the base-URL override) go into this command's environment, and
    /// for `docker exec`, `docker container exec`, `docker compose … exec` and `docker-compose …
    /// exec` also in as `-e VAR=value` right after `exec` (those do not pass the environment on).
    /// Any other wrapper (ssh, sudo, a script) must pass them on itself, at least
    /// CLAUDE_CODE_MAX_RETRIES=1: with its default retries the CLI takes ~3 min to fail on a dead
    /// token, past --timeout, and the dead login is never reported.
    #[arg(long, value_name = "CMD", env = "KEEPER_CLI_CMD", allow_hyphen_values = true, help_heading = "The CLI")]
    cli_cmd: Option<String>,

    /// The docker program, for --container (DOCKER_HOST and friends are inherited)
    #[arg(long, value_name = "PATH", env = "KEEPER_DOCKER", default_value = "docker", help_heading = "The CLI")]
    docker: PathBuf,

    /// The prompt the CLI answers (a tiny one: it costs a request)
    #[arg(long, value_name = "TEXT", env = "KEEPER_PROMPT", default_value = "say ok", help_heading = "The CLI")]
    prompt: String,

    /// The CLI's arguments instead of `-p PROMPT`, split like a shell does
    #[arg(long, value_name = "ARGS", env = "KEEPER_CLI_ARGS", allow_hyphen_values = true, help_heading = "The CLI")]
    cli_args: Option<String>,

    /// Run the CLI with ANTHROPIC_BASE_URL=https://api.anthropic.com
    ///
    /// For this one command only. auto: when the CLI's environment points ANTHROPIC_BASE_URL
    /// elsewhere (a proxy such as LiteLLM): in a container as `docker inspect` shows it, else
    /// cli-poke's own environment.
    #[arg(long, value_enum, value_name = "WHEN", env = "KEEPER_BASE_URL_OVERRIDE", help_heading = "The CLI")]
    #[arg(default_value_t = Override::Auto)]
    base_url_override: Override,

    /// CLAUDE_CODE_MAX_RETRIES for the CLI (with its default retries a dead token takes ~3 min)
    ///
    /// On the host in the CLI's environment; with --container and a docker exec --cli-cmd as
    /// `-e CLAUDE_CODE_MAX_RETRIES=N` after `exec`; another --cli-cmd wrapper must pass it on.
    #[arg(long, value_name = "N", env = "KEEPER_POKE_MAX_RETRIES", default_value_t = 1, help_heading = "The CLI")]
    max_retries: u32,

    /// Stop the CLI (SIGTERM, then SIGKILL to its whole process group) after this long
    ///
    /// A CLI stopped this way did not refresh: exit 7 (refresh failed, will retry).
    #[arg(long, value_name = "DURATION", env = "KEEPER_POKE_TIMEOUT", help_heading = "The CLI")]
    #[arg(default_value = "120s", value_parser = humantime::parse_duration)]
    timeout: Duration,

    /// OpenClaw's directory, where the REAUTH_NEEDED flag goes [default: ~/.openclaw]
    #[arg(long, value_name = "DIR", env = "KEEPER_OPENCLAW_DIR", help_heading = "Re-authentication")]
    openclaw_dir: Option<PathBuf>,

    /// The REAUTH flag file [default: OPENCLAW_DIR/REAUTH_NEEDED]
    ///
    /// Created (with the time, the reason and the failed refresh token's fingerprint) when only a
    /// human login helps; removed after the next successful refresh, or when the credentials were
    /// replaced by a new login.
    #[arg(long, value_name = "PATH", env = "KEEPER_REAUTH_FLAG", help_heading = "Re-authentication")]
    reauth_flag: Option<PathBuf>,

    /// Tell this webhook once per REAUTH episode, about a long failing refresh, the login's near
    /// end, a failed unit (--notify-failed) and each recovery
    ///
    /// In the form --notify-format says. http:// or https:// (certificates checked against
    /// SSL_CERT_FILE when set, else the system CA bundle; HTTPS_PROXY, HTTP_PROXY, NO_PROXY
    /// honoured). A failed post is retried on the next run. The message names the host, the
    /// reason and the files, never a token; the URL is never logged.
    // A webhook URL is a secret: --help must not show its value.
    #[arg(
        long,
        value_name = "URL",
        env = "KEEPER_NOTIFY_URL",
        hide_env_values = true,
        help_heading = "Re-authentication"
    )]
    notify_url: Option<String>,

    /// What --notify-url speaks
    ///
    /// ntfy: --notify-url is the topic's URL (https://ntfy.sh/TOPIC; a protected topic's token
    /// as ?auth=…). json: event is one of reauth_needed, refresh_failing, recovered, login_ends,
    /// unit_failed; fingerprint is the refresh token's fingerprint as the REAUTH flag shows it,
    /// or null; never a token.
    #[arg(long, value_enum, value_name = "FORMAT", env = "KEEPER_NOTIFY_FORMAT", help_heading = "Re-authentication")]
    #[arg(default_value_t = notify::Format::Slack)]
    notify_format: notify::Format,

    /// Give up a post to --notify-url after this long (connect, send, answer)
    #[arg(long, value_name = "DURATION", env = "KEEPER_NOTIFY_TIMEOUT", help_heading = "Re-authentication")]
    #[arg(default_value = "20s", value_parser = humantime::parse_duration)]
    notify_timeout: Duration,

    /// Tell --notify-url about a failing refresh (exit 7) once the access token has been expired
    /// this long
    ///
    /// A refresh that fails while the token is still valid (a failed --force) or expired only
    /// briefly is retried by the next run without telling anyone; past this, OpenClaw's copy has
    /// been expired long enough to matter.
    #[arg(long, value_name = "DURATION", env = "KEEPER_NOTIFY_FAILING_AFTER", help_heading = "Re-authentication")]
    #[arg(default_value = "30m", value_parser = humantime::parse_duration)]
    notify_failing_after: Duration,

    /// Warn this long before the login's hard end (0 turns it off)
    ///
    /// A Max login ends about 30 days after `claude auth login` (claudeAiOauth.refreshTokenExpiresAt,
    /// CLI 2.1.203 and later); refreshes never extend it. Inside this window every run logs a
    /// warning, and --notify-url is told at most once a day when the login ends and what to do:
    /// `claude auth login` again, or `claude setup-token` for unattended use.
    #[arg(long, value_name = "DURATION", env = "KEEPER_WARN_LOGIN_WITHIN", help_heading = "Re-authentication")]
    #[arg(default_value = "3d", value_parser = humantime::parse_duration)]
    warn_login_within: Duration,

    /// Do not ask a CLI on the host for a debug log
    ///
    /// By default a CLI on the host (not --container or --cli-cmd, not with --cli-args) is run
    /// with --debug-file PATH, a private file read and deleted after the poke: CLI 2.1.112 says
    /// only there whether the token endpoint rejected the refresh token (a dead login, exit 3) or
    /// failed (exit 7).
    #[arg(long, env = "KEEPER_NO_DEBUG_LOG", help_heading = "The CLI")]
    no_debug_log: bool,

    /// Report that systemd unit UNIT failed, instead of poking: log an error naming it and where
    /// its log is, and post to --notify-url
    ///
    /// For openclaw-keeper-notify@.service, the OnFailure= target of the keeper's units. Reads no
    /// credentials. No environment variable: set in the config file it would turn every run
    /// into a report.
    #[arg(long, value_name = "UNIT", help_heading = "Failure reports")]
    notify_failed: Option<String>,

    /// With --notify-failed: UNIT belongs to the user's service manager (the hint says
    /// `journalctl --user-unit`)
    #[arg(long, requires = "notify_failed", help_heading = "Failure reports")]
    user_unit: bool,

    /// Post about the same failed unit (--notify-failed), and about a failing refresh (exit 7), at
    /// most once per this long (the log line is written every time)
    #[arg(long, value_name = "DURATION", env = "KEEPER_NOTIFY_EVERY", help_heading = "Failure reports")]
    #[arg(default_value = "1h", value_parser = humantime::parse_duration)]
    notify_every: Duration,

    /// Where cli-poke remembers a failure streak and when it last posted (also about the login's end) [default:
    /// /var/lib/openclaw-oauth-keeper for root, else $XDG_STATE_HOME/openclaw-oauth-keeper]
    #[arg(long, value_name = "DIR", env = "KEEPER_STATE_DIR", help_heading = "Failure reports")]
    state_dir: Option<PathBuf>,

    #[command(flatten)]
    direct: direct::DirectArgs,

    #[command(flatten)]
    config: keeper_core::config::ConfigArg,
}

/// When to point the CLI at the Anthropic API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Override {
    Always,
    Auto,
    Never,
}

/// Where the CLI runs.
#[derive(Debug, Clone)]
enum Target {
    Host { cli: Option<PathBuf> },
    Container { name: String, cli: String },
    Custom(Vec<String>),
}

/// The checked settings of one run.
#[derive(Debug)]
struct Settings {
    creds: PathBuf,
    target: Target,
    docker: PathBuf,
    cli_args: Vec<String>,
    base_url_override: Override,
    max_retries: u32,
    timeout: Duration,
    force: bool,
    force_write: WriteMode,
    window_ms: i64,
    not_due_ok: bool,
    reauth: Reauth,
    failing: Failing,
    login_end: loginend::LoginEnd,
    /// Run a host CLI with `--debug-file` (not with custom arguments: they may not be `-p`).
    debug_log: bool,
    /// `--direct`: refresh at the token endpoint instead of running the CLI.
    direct: Option<direct::Direct>,
}

impl Settings {
    fn from_cli(cli: Options) -> Result<Self, String> {
        let target = match (cli.container, cli.cli_cmd) {
            (Some(_), Some(_)) => return Err("--container and --cli-cmd exclude each other".into()),
            (Some(name), _) if name.trim().is_empty() => return Err("--container needs a container name".into()),
            (Some(name), _) => Target::Container {
                name,
                cli: cli.cli.map_or_else(|| "claude".to_owned(), |p| p.to_string_lossy().into_owned()),
            },
            (None, Some(cmd)) => {
                let words = command::split_words(&cmd).map_err(|e| format!("--cli-cmd: {e}"))?;
                if words.is_empty() {
                    return Err("--cli-cmd is empty".into());
                }
                Target::Custom(words)
            }
            (None, None) => Target::Host { cli: cli.cli },
        };
        let creds = match (cli.creds, &target) {
            (Some(p), _) => p,
            (None, Target::Host { .. }) => keeper_core::paths::claude_credentials(),
            (None, _) => {
                return Err(
                    "--container and --cli-cmd need --creds: the host path of the credentials file the CLI writes"
                        .into(),
                );
            }
        };
        let custom_args = cli.cli_args.is_some();
        let cli_args = match cli.cli_args {
            Some(a) => command::split_words(&a).map_err(|e| format!("--cli-args: {e}"))?,
            None => vec!["-p".to_owned(), cli.prompt],
        };
        let notify = notify::Webhook::new(cli.notify_url, cli.notify_format, cli.notify_timeout)?;
        let openclaw_dir = cli.openclaw_dir.unwrap_or_else(|| keeper_core::paths::home().join(".openclaw"));
        let flag = cli.reauth_flag.unwrap_or_else(|| openclaw_dir.join("REAUTH_NEEDED"));
        let window_ms = i64::try_from(cli.refresh_window.as_millis()).map_err(|_| "--refresh-window is too long")?;
        let state_dir = cli.state_dir.unwrap_or_else(keeper_core::paths::state_dir);
        Ok(Self {
            debug_log: !cli.no_debug_log && !custom_args && matches!(target, Target::Host { .. }),
            failing: Failing {
                file: state_dir.join("refresh-failing"),
                notify: notify.clone(),
                after: cli.notify_failing_after,
                every: cli.notify_every,
                creds: creds.clone(),
            },
            login_end: loginend::LoginEnd {
                file: state_dir.join("login-ending"),
                notify: notify.clone(),
                within: cli.warn_login_within,
                creds: creds.clone(),
            },
            reauth: Reauth { flag, notify, creds: creds.clone() },
            creds,
            target,
            docker: cli.docker,
            cli_args,
            base_url_override: cli.base_url_override,
            max_retries: cli.max_retries,
            timeout: cli.timeout,
            force: cli.force,
            force_write: cli.force_write,
            window_ms,
            not_due_ok: cli.not_due_ok,
            direct: cli.direct.settings()?,
        })
    }
}

/// The clap definition of `cli-poke`'s command line, the one `--help` shows: the man page and the
/// shell completions are generated from it (`crates/keeper-dist`).
#[must_use]
pub fn command() -> clap::Command {
    <Options as clap::CommandFactory>::command()
}

/// Runs `cli-poke` with the process's arguments and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut cli = match keeper_core::config::parse_args::<Options>(args.iter().cloned()) {
        Ok(cli) => cli,
        Err(e) => return keeper_core::clap_exit(&e),
    };
    // clap's conflict check ignores values from the config file; a mode given on the command line
    // wins over the other mode set in the environment or the file.
    if cli.container.is_some() && cli.cli_cmd.is_some() {
        match (on_command_line(&args, "--container"), on_command_line(&args, "--cli-cmd")) {
            (true, false) => cli.cli_cmd = None,
            (false, true) => cli.container = None,
            _ => {}
        }
    }
    if let Some(unit) = cli.notify_failed.take() {
        return notify_failed(cli, unit);
    }
    match Settings::from_cli(cli) {
        Ok(settings) => ExitCode::from(match &settings.direct {
            Some(d) => direct::run(&settings, d),
            None => poke(&settings),
        }),
        Err(message) => {
            let err = Options::command().error(clap::error::ErrorKind::ArgumentConflict, message);
            keeper_core::clap_exit(&err)
        }
    }
}

/// `--notify-failed UNIT`: report a failed unit.
fn notify_failed(cli: Options, unit: String) -> ExitCode {
    let usage = |message: String| {
        let err = Options::command().error(clap::error::ErrorKind::ValueValidation, message);
        keeper_core::clap_exit(&err)
    };
    if !failed::valid_unit_name(&unit) {
        return usage(format!("--notify-failed: {unit:?} is not a systemd unit name"));
    }
    let notify = match notify::Webhook::new(cli.notify_url, cli.notify_format, cli.notify_timeout) {
        Ok(n) => n,
        Err(e) => return usage(e),
    };
    let openclaw_dir = cli.openclaw_dir.unwrap_or_else(|| keeper_core::paths::home().join(".openclaw"));
    let report = failed::Report {
        unit,
        user_unit: cli.user_unit,
        notify,
        every: cli.notify_every,
        state_dir: cli.state_dir.unwrap_or_else(keeper_core::paths::state_dir),
        reauth_flag: cli.reauth_flag.unwrap_or_else(|| openclaw_dir.join("REAUTH_NEEDED")),
    };
    ExitCode::from(report.run(keeper_core::clock::now_ms()))
}

/// Whether `--flag` or `--flag=…` is among the arguments (before any `--`).
fn on_command_line(args: &[std::ffi::OsString], flag: &str) -> bool {
    args.iter()
        .skip(1)
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|rest| rest.starts_with('=')))
}

fn info(args: std::fmt::Arguments<'_>) {
    log(Level::Info, PROGRAM, args);
}

fn warn(args: std::fmt::Arguments<'_>) {
    log(Level::Warning, PROGRAM, args);
}

fn error(args: std::fmt::Arguments<'_>) {
    log(Level::Error, PROGRAM, args);
}

/// Removes a state file (a failure streak, a login-end marker) whose episode is over; one that is
/// already gone is fine, any other failure only a warning (the next run tries again).
fn remove_state_file(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log(Level::Warning, PROGRAM, format_args!("cannot remove {}: {e}", path.display()));
        }
    }
}

fn refresh_fingerprint(c: &Credential) -> Option<String> {
    c.refresh_token.as_ref().map(ToString::to_string)
}

/// The credentials before a refresh, judged against `window_ms`, shared by the poke and
/// `--direct`: `Ok((credentials, due))` to go on, else the exit code. A logged-out stub raises
/// REAUTH (3), an unreadable file is 4, and a token with more than `window_ms` left is "not due"
/// (1, or 0 with --not-due-ok) unless --force. `who` names the refresher in the "not due" line.
fn read_and_judge(s: &Settings, now: i64, window_ms: i64, who: &str) -> Result<(Box<Credential>, bool), u8> {
    let before = match creds::read(&s.creds) {
        Ok((_, Creds::Credential(c))) => c,
        Ok((_, Creds::LoggedOut { login_ended })) => {
            let why = creds::logged_out_reason(
                login_ended.as_deref(),
                "the credentials file holds the logged-out stub: the last refresh failed",
            );
            s.reauth.raise(&why, None, now);
            return Err(EXIT_REAUTH);
        }
        Err(e) => {
            error(format_args!("{e}"));
            return Err(EXIT_CREDENTIALS);
        }
    };
    let login_end = before.refresh_token_expires_at.map(credmap::ExpiresAt::as_millis);
    s.login_end.check(login_end, refresh_fingerprint(&before).as_deref(), now);
    let left = before.expires_at.remaining_ms(now);
    let due = left <= window_ms;
    if !due && !s.force {
        let opens = before.expires_at.as_millis() - window_ms;
        info(format_args!(
            "not due: {} has {} left (expires {}); {who} refreshes only in its last {}: from {} (in {}). --force \
             refreshes now",
            before.access_token,
            human_ms(left),
            before.expires_at,
            human_ms(window_ms),
            rfc3339(opens),
            human_ms(opens - now)
        ));
        s.reauth.check_when_not_due(&before);
        // A valid token with time left: whatever failed before (network, endpoint) is over.
        s.failing.clear("the access token is valid again");
        return Err(if s.not_due_ok { EXIT_REFRESHED } else { EXIT_NOT_DUE });
    }
    Ok((before, due))
}

/// One run: read, decide, (force,) poke, check.
fn poke(s: &Settings) -> u8 {
    let now = keeper_core::clock::now_ms();
    let (before, due) = match read_and_judge(s, now, s.window_ms, "the CLI") {
        Ok(judged) => judged,
        Err(code) => return code,
    };
    let left = before.expires_at.remaining_ms(now);
    let inv = match invocation(s) {
        Ok(inv) => inv,
        Err(NotRunnable(why)) => {
            error(format_args!("cannot run the CLI: {why}"));
            return EXIT_CLI;
        }
    };

    let forced = if due {
        None
    } else {
        let waiting = |lock: &Path, holder: &str| {
            info(format_args!(
                "waiting for the CLI's lock {} ({holder}; another refresh or write is running)",
                lock.display()
            ));
        };
        match creds::force_expiry(&s.creds, s.force_write, now, creds::LOCK_PATIENCE, waiting) {
            Ok(f) => {
                info(format_args!(
                    "--force: expiresAt set to now in {} (it had {} left)",
                    s.creds.display(),
                    human_ms(f.before.expires_at.remaining_ms(now))
                ));
                Some(f)
            }
            Err(ForceError::LoggedOut { login_ended }) => {
                let why = creds::logged_out_reason(
                    login_ended.as_deref(),
                    "the credentials file holds the logged-out stub: the CLI's last refresh failed",
                );
                s.reauth.raise(&why, None, now);
                return EXIT_REAUTH;
            }
            Err(ForceError::Failed(why)) => {
                error(format_args!("--force: {why}"));
                return EXIT_CREDENTIALS;
            }
        }
    };
    let baseline: &Credential = forced.as_ref().map_or(&before, |f| &f.before);
    if due {
        info(format_args!(
            "due: {} {}; running {inv}",
            baseline.access_token,
            if left > 0 { format!("has {} left", human_ms(left)) } else { format!("expired {} ago", human_ms(-left)) }
        ));
    } else {
        info(format_args!("running {inv}"));
    }

    let (finished, status) = match run_cli(s, &inv) {
        Ok(r) => r,
        Err(e) => {
            error(format_args!("cannot run {}: {e}", inv.program.display()));
            restore(s, forced.as_ref());
            return EXIT_CLI;
        }
    };
    judge(s, &inv, baseline, forced.as_ref(), &finished, status, now)
}

/// Runs the CLI, with a private debug log when the settings ask for one; returns what it did and
/// the token request's status the log records.
fn run_cli(s: &Settings, inv: &Invocation) -> std::io::Result<(Finished, Option<TokenStatus>)> {
    let debug = if s.debug_log {
        DebugLog::create()
            .map_err(|e| warn(format_args!("no debug log for the CLI (a private temporary directory: {e})")))
            .ok()
    } else {
        None
    };
    let run = |debug: Option<&DebugLog>| {
        let mut inv = inv.clone();
        if let Some(d) = debug {
            inv.args.push("--debug-file".into());
            inv.args.push(d.path().into());
        }
        process::run(&inv, s.timeout)
    };
    let finished = run(debug.as_ref())?;
    if debug.is_some() && debuglog::option_unknown(&finished.output()) {
        // A build older than --debug-file: poke again without it.
        warn(format_args!("the CLI does not know --debug-file; poking again without it"));
        return Ok((run(None)?, None));
    }
    Ok((finished, debug.as_ref().and_then(DebugLog::token_status)))
}

/// After the poke: re-read the file and decide what happened. REAUTH only on evidence that the
/// login is dead; any other failure is "refresh failed, will retry" (docs/UPSTREAM.md, "Claude
/// Code CLI": every build prints "OAuth token has expired" after a token endpoint 500 too).
fn judge(
    s: &Settings,
    inv: &Invocation,
    baseline: &Credential,
    forced: Option<&Forced>,
    f: &Finished,
    status: Option<TokenStatus>,
    now: i64,
) -> u8 {
    let after = creds::read(&s.creds);
    let refreshed = matches!(&after, Ok((_, Creds::Credential(c)))
        if c.access_token != baseline.access_token && c.expires_at > baseline.expires_at);
    log_output(f, if refreshed && f.ended == Ended::Exited(0) { Level::Info } else { Level::Warning });
    let login_ended = match after {
        Ok((_, Creds::Credential(c))) if refreshed => {
            if f.ended != Ended::Exited(0) {
                warn(format_args!("the CLI {} after refreshing the token", f.describe()));
            }
            let now_after = keeper_core::clock::now_ms();
            info(format_args!(
                "refreshed: {} -> {}, expires {} ({} left)",
                baseline.access_token,
                c.access_token,
                c.expires_at,
                human_ms(c.expires_at.remaining_ms(now_after))
            ));
            s.reauth.clear_after_refresh();
            s.failing.clear("the token refreshed again");
            return EXIT_REFRESHED;
        }
        Ok((_, Creds::LoggedOut { login_ended })) => {
            let why = creds::logged_out_reason(login_ended.as_deref(), "the CLI wrote the logged-out stub");
            s.reauth.raise(&why, refresh_fingerprint(baseline).as_deref(), now);
            return EXIT_REAUTH;
        }
        Err(e) => {
            error(format_args!("after running the CLI: {e}"));
            return EXIT_CREDENTIALS;
        }
        Ok((doc, Creds::Credential(_))) => creds::login_ended(&doc),
    };
    restore(s, forced);
    let output = f.output();
    let evidence = login_ended
        .map(|e| creds::logged_out_reason(Some(&e), "the credentials file records the login's end"))
        .or_else(|| redact::dead_token_sign(&output).map(str::to_owned))
        .or_else(|| {
            status.filter(|st| st.means_dead()).map(|st| {
                format!(
                    "the CLI's debug log shows the token endpoint answered HTTP {}: the refresh token is dead",
                    st.0
                )
            })
        });
    if let Some(why) = evidence {
        s.reauth.raise(&why, refresh_fingerprint(baseline).as_deref(), now);
        return EXIT_REAUTH;
    }
    let expired_for = -baseline.expires_at.remaining_ms(now);
    let endpoint = status.map(|st| format!("the token endpoint answered HTTP {}; ", st.0)).unwrap_or_default();
    match f.ended {
        Ended::TimedOut => {
            // In a container, the CLI was stopped there too (process.rs logs how).
            let inside =
                if matches!(s.target, Target::Container { .. }) { " and the CLI inside the container" } else { "" };
            error(format_args!(
                "the CLI did not finish within {}: killed its process group{inside}",
                humantime::format_duration(s.timeout)
            ));
            let why = format!("{endpoint}the CLI did not finish within {}", humantime::format_duration(s.timeout));
            s.failing.record(&why, refresh_fingerprint(baseline).as_deref(), expired_for, now);
            EXIT_REFRESH_FAILED
        }
        Ended::Exited(code @ (126 | 127)) => {
            let why = if code == 126 {
                "could not be started (not executable, or missing inside the container)"
            } else {
                "was not found"
            };
            error(format_args!("{inv}: exit {code}: the CLI {why}"));
            EXIT_CLI
        }
        Ended::Exited(0) => {
            warn(format_args!(
                "the CLI {} but did not refresh the token ({} still expires {})",
                f.describe(),
                baseline.access_token,
                baseline.expires_at
            ));
            EXIT_NOT_REFRESHED
        }
        _ => {
            let said = redact::last_line(&output).map(|l| format!(": {l}")).unwrap_or_default();
            let why = format!("{endpoint}the CLI {} without refreshing{said}", f.describe());
            s.failing.record(&why, refresh_fingerprint(baseline).as_deref(), expired_for, now);
            EXIT_REFRESH_FAILED
        }
    }
}

/// Logs what the CLI printed, tokens replaced by fingerprints, a bounded number of lines.
fn log_output(f: &Finished, level: Level) {
    const MAX_LINES: usize = 20;
    const MAX_LINE: usize = 500;
    for (stream, bytes) in [("stdout", &f.stdout), ("stderr", &f.stderr)] {
        let text = redact::redact(&String::from_utf8_lossy(bytes));
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for line in lines.iter().take(MAX_LINES) {
            let cut = line.char_indices().nth(MAX_LINE).map_or(*line, |(i, _)| &line[..i]);
            log(level, PROGRAM, format_args!("claude {stream}: {cut}"));
        }
        if lines.len() > MAX_LINES {
            log(level, PROGRAM, format_args!("claude {stream}: … {} more lines", lines.len() - MAX_LINES));
        }
    }
}

/// Puts the original expiry back after a `--force` whose poke did not refresh.
fn restore(s: &Settings, forced: Option<&Forced>) {
    let Some(forced) = forced else { return };
    match creds::restore_expiry(&s.creds, s.force_write, forced, creds::LOCK_PATIENCE) {
        Ok(true) => info(format_args!("--force: put the original expiry {} back", forced.before.expires_at)),
        Ok(false) => {}
        Err(e) => error(format_args!("--force: cannot put the original expiry back: {e}")),
    }
}

/// Builds the command for the configured target; for a container, checks it runs and reads its
/// `ANTHROPIC_BASE_URL`.
fn invocation(s: &Settings) -> Result<Invocation, NotRunnable> {
    let own_base_url_elsewhere = || std::env::var("ANTHROPIC_BASE_URL").is_ok_and(|u| command::base_url_elsewhere(&u));
    let decide = |auto: bool| match s.base_url_override {
        Override::Always => true,
        Override::Never => false,
        Override::Auto => auto,
    };
    let max_retries = Some(s.max_retries);
    match &s.target {
        Target::Host { cli } => {
            same_owner(&s.creds)?;
            let cli = command::find_cli(cli.as_deref(), &keeper_core::paths::home())?;
            let env = CliEnv {
                base_url_override: decide(own_base_url_elsewhere()),
                max_retries,
                config_dir: config_dir_for(&s.creds),
            };
            Ok(command::host(&cli, &s.cli_args, &env))
        }
        Target::Custom(words) => {
            let env = CliEnv { base_url_override: decide(own_base_url_elsewhere()), max_retries, config_dir: None };
            Ok(command::custom(words, &s.cli_args, &env))
        }
        Target::Container { name, cli } => {
            let container = inspect(s, name)?;
            if !container.running {
                return Err(NotRunnable(format!("container {name} is not running")));
            }
            if !container.token_vars.is_empty() {
                warn(format_args!(
                    "container {name} sets {}: its CLI may use that instead of the credentials file and never refresh",
                    container.token_vars.join(", ")
                ));
            }
            let elsewhere = container.base_url.as_deref().is_some_and(command::base_url_elsewhere);
            let base_url_override = decide(elsewhere);
            if elsewhere && base_url_override {
                info(format_args!(
                    "container {name}'s ANTHROPIC_BASE_URL points elsewhere: overriding it for this one command"
                ));
            }
            let env = CliEnv { base_url_override, max_retries, config_dir: None };
            Ok(command::container(&s.docker, name, cli, &s.cli_args, &env))
        }
    }
}

/// A CLI on the host runs as this process's user; refuses when the credentials file belongs to
/// someone else: the CLI would rewrite it as a file that user can no longer read (2.1.197 writes a
/// new 0600 file owned by whoever runs it).
fn same_owner(creds: &Path) -> Result<(), NotRunnable> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(creds) else { return Ok(()) };
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() == me {
        return Ok(());
    }
    Err(NotRunnable(format!(
        "{} belongs to uid {}, but the CLI would run as uid {me} and could leave it unreadable to its owner: \
         run cli-poke as that user (systemd User=), or use --cli-cmd",
        creds.display(),
        meta.uid()
    )))
}

/// `CLAUDE_CONFIG_DIR` for a CLI on the host when the credentials file is not where that CLI
/// would look (its config dir, or `CLAUDE_SECURESTORAGE_CONFIG_DIR`, which it inherits): its directory. None when it is (setting the variable to the default directory
/// would move the CLI's other state, `~/.claude.json`, into it).
fn config_dir_for(creds: &Path) -> Option<PathBuf> {
    let norm = |p: &Path| std::fs::canonicalize(p).or_else(|_| std::path::absolute(p)).ok();
    let dir = norm(keeper_core::paths::parent_dir(creds))?;
    let looks_there = |d: PathBuf| norm(&d).as_ref() == Some(&dir);
    let found = looks_there(keeper_core::paths::claude_config_dir())
        || keeper_core::paths::claude_secure_storage_dir().is_some_and(looks_there);
    (!found).then_some(dir)
}

/// `docker inspect` of the container, within the poke's time limit (at most 30 s).
fn inspect(s: &Settings, name: &str) -> Result<command::ContainerInfo, NotRunnable> {
    let inv = command::inspect(&s.docker, name);
    let limit = s.timeout.min(Duration::from_secs(30));
    let f = process::run(&inv, limit).map_err(|e| NotRunnable(format!("{}: {e}", s.docker.display())))?;
    match f.ended {
        Ended::Exited(0) => command::parse_inspect(&String::from_utf8_lossy(&f.stdout)).map_err(NotRunnable),
        Ended::TimedOut => {
            Err(NotRunnable(format!("docker inspect {name} did not answer within {}s", limit.as_secs())))
        }
        _ => {
            let stderr = redact::redact(&String::from_utf8_lossy(&f.stderr));
            let why = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").to_owned();
            Err(NotRunnable(format!("docker inspect {name} {}: {why}", f.describe())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(flags: &[&str]) -> Result<Settings, String> {
        let mut argv = vec!["cli-poke", "--config", "/dev/null"];
        argv.extend_from_slice(flags);
        Settings::from_cli(Options::try_parse_from(argv).map_err(|e| e.to_string())?)
    }

    #[test]
    fn container_mode_needs_creds_and_uses_claude_inside() {
        assert!(settings(&["--container", "c"]).unwrap_err().contains("need --creds"));
        let s = settings(&["--container", "c", "--creds", "/x/.credentials.json"]).unwrap();
        assert!(matches!(&s.target, Target::Container { name, cli } if name == "c" && cli == "claude"));
        assert_eq!(s.cli_args, ["-p", "say ok"]);
        let s =
            settings(&["--container", "c", "--cli", "/opt/claude", "--creds", "/x/c.json", "--prompt", "hi"]).unwrap();
        assert!(matches!(&s.target, Target::Container { cli, .. } if cli == "/opt/claude"));
        assert_eq!(s.cli_args, ["-p", "hi"]);
    }

    #[test]
    fn custom_command_and_arguments_are_split() {
        let s = settings(&[
            "--cli-cmd",
            "docker compose exec -T 'my svc' claude",
            "--creds",
            "/c",
            "--cli-args",
            "-p 'say hi' --model x",
        ])
        .unwrap();
        assert!(
            matches!(&s.target, Target::Custom(w) if w == &["docker", "compose", "exec", "-T", "my svc", "claude"])
        );
        assert_eq!(s.cli_args, ["-p", "say hi", "--model", "x"]);
        assert!(settings(&["--cli-cmd", "  ", "--creds", "/c"]).unwrap_err().contains("empty"));
        assert!(settings(&["--cli-cmd", "'a", "--creds", "/c"]).unwrap_err().contains("unterminated"));
        assert!(settings(&["--cli-cmd", "x", "--cli", "y"]).is_err(), "--cli conflicts with --cli-cmd");
    }

    #[test]
    fn flag_defaults_to_the_openclaw_dir_and_urls_are_checked() {
        let s = settings(&["--openclaw-dir", "/srv/oc"]).unwrap();
        assert_eq!(s.reauth.flag, Path::new("/srv/oc/REAUTH_NEEDED"));
        let s = settings(&["--openclaw-dir", "/srv/oc", "--reauth-flag", "/run/flag"]).unwrap();
        assert_eq!(s.reauth.flag, Path::new("/run/flag"));
        assert!(settings(&["--notify-url", "hooks.example/x"]).unwrap_err().contains("http://"));
        assert_eq!(settings(&[]).unwrap().window_ms, 300_000);
        assert_eq!(settings(&[]).unwrap().timeout, Duration::from_secs(120));
    }
}
