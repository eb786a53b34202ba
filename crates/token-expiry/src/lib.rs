//! `token-expiry`: report when the Claude Code CLI's OAuth token, or a copy of it in one of
//! `OpenClaw`'s places, expires: exit codes for scripts, JSON lines, bare seconds and Prometheus
//! textfile metrics, and a mode that blocks until the token is due for a refresh.
//!
//! The binary's `main` only calls [`main`].

mod output;
mod report;
mod wait;

use clap::{CommandFactory, Parser, ValueEnum};
use credmap::Format;
use keeper_core::input::Source;
use report::{Report, Settings, Status};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const AFTER_HELP: &str = "\
Exit status (with several FILEs the worst wins: 4 > 3 > 2 > 1 > 6 > 5 > 0):
  0   valid: not expired (with --within: more than DURATION left; with --login-within: the
      login has more than DURATION left, or the file records no login end)
  1   expires within DURATION (--within)
  2   already expired
  3   logged-out stub: the CLI's refresh failed; a human must run `claude auth login`
  4   unreadable or invalid input: missing, a directory or another non-regular file (a FIFO, a
      socket, a device: refused unread; `-` reads stdin), empty, truncated or malformed JSON
      (a byte-order mark before it, too), wrong field types, binary, larger than 1 MiB,
      unrecognised format, no such entry
  5   no expiry recorded (bare token, KEY=value file, systemd drop-in)
  6   the access token is fine, but the login ends within DURATION (--login-within) or has
      ended: a human must run `claude auth login` before then (or use `claude setup-token`)
  64  usage error

The login's end is the CLI's claudeAiOauth.refreshTokenExpiresAt (CLI 2.1.203 and later): about
30 days after `claude auth login`, and no refresh moves it.

With --wait-until-within: 0 once the token has DURATION or less left (at once if it already
has), 3 for a logged-out stub, 4 when the directory cannot be watched, 5 when the file records
no expiry. A missing, half-written or invalid file is logged and waited out. SIGTERM or SIGINT
ends the wait by that same signal: a shell sees status 128+N (143 for SIGTERM), so `&&` chains
stop, and systemd counts it as a clean stop.

Tokens are never printed: only their kind prefix and a fingerprint (first 8 hex digits of the
SHA-256).

Examples:
  token-expiry --within 1h
  token-expiry --json ~/.openclaw/agents/main/agent/auth-profiles.json
  token-expiry --prometheus > dir/token.prom.tmp; mv dir/token.prom.tmp dir/token.prom
  token-expiry --wait-until-within 5m && claude -p 'say ok'";

/// Report when Claude Code CLI / OpenClaw OAuth credentials expire.
///
/// Reads each FILE (default: the Claude CLI's credentials), detects its format, and prints one
/// line per file: status, time left, expiry (RFC 3339, UTC), format and the token's fingerprint.
#[derive(Debug, Parser)]
#[command(name = "token-expiry", version = keeper_core::LONG_VERSION, after_help = AFTER_HELP, max_term_width = 100)]
// Reason: these doc comments are --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
struct Cli {
    /// Credentials files to check; `-` reads stdin [default: ~/.claude/.credentials.json]
    ///
    /// Any mix of Claude CLI .credentials.json, OpenClaw oauth.json and auth-profiles.json,
    /// KEY=value files, systemd drop-ins and bare tokens. Without FILE (and KEEPER_CREDENTIALS):
    /// $CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json, else
    /// $CLAUDE_CONFIG_DIR/.credentials.json, else ~/.claude/.credentials.json.
    #[arg(value_name = "FILE", env = "KEEPER_CREDENTIALS")]
    files: Vec<PathBuf>,

    /// Output style
    ///
    /// text: one line per file (status, time left, expiry, format, token fingerprint);
    /// json: one JSON object per line; seconds: remaining whole seconds only; prometheus:
    /// node_exporter textfile metrics. Errors always go to stderr, one line per file.
    #[arg(long, value_enum, value_name = "STYLE", env = "KEEPER_OUTPUT", help_heading = "Output")]
    #[arg(default_value_t = OutputMode::Text)]
    output: OutputMode,

    /// One JSON object per file and line (same as --output json)
    ///
    /// Fields: file, format, profile (auth-profiles.json only), status (ok, within, expired,
    /// logged-out, invalid, no-expiry, login-ending), exit_code, expires_at (RFC 3339),
    /// expires_at_ms, remaining_seconds, fingerprint; when the file records the login's end
    /// (refreshTokenExpiresAt): login_expires_at (RFC 3339), login_expires_at_ms,
    /// login_remaining_seconds and, the same instant, refresh_token_expires_at; error (invalid
    /// files).
    #[arg(long, help_heading = "Output", conflicts_with_all = ["seconds", "prometheus"])]
    json: bool,

    /// Only the remaining seconds, one line per file (same as --output seconds)
    ///
    /// Negative once expired. A file without expiry (or invalid, or logged out) prints nothing on
    /// stdout and one error line on stderr.
    #[arg(long, help_heading = "Output", conflicts_with = "prometheus")]
    seconds: bool,

    /// Prometheus textfile metrics (same as --output prometheus)
    ///
    /// For node_exporter's textfile collector, labelled file="PATH":
    /// openclaw_keeper_token_expiry_timestamp_seconds, openclaw_keeper_token_remaining_seconds,
    /// openclaw_keeper_token_login_expiry_timestamp_seconds (when the login ends; only for files
    /// that record it), openclaw_keeper_token_valid (1/0) and openclaw_keeper_token_read_ok (0 for
    /// a file that cannot be read or understood). The exit status is as usual: do not chain the rename of
    /// the .prom file with &&.
    #[arg(long, help_heading = "Output")]
    prometheus: bool,

    /// Exit 1 when DURATION or less is left (e.g. 90m, 1h30m, 5m)
    ///
    /// Without it only an expired token fails; with it, status "within" and exit 1 when the
    /// token has DURATION or less left, exit 0 only with more.
    #[arg(long, value_name = "DURATION", env = "KEEPER_WITHIN", help_heading = "Checks")]
    #[arg(value_parser = humantime::parse_duration)]
    within: Option<Duration>,

    /// Exit 6 when the login ends within DURATION (e.g. 3d), however long the access token has
    ///
    /// The login's end is claudeAiOauth.refreshTokenExpiresAt (CLI 2.1.203 and later): about 30
    /// days after `claude auth login`; refreshes never move it, only a new login does. Status
    /// "login-ending" and exit 6 when DURATION or less is left (or it has passed) and the access
    /// token is otherwise fine; a file that records no login end passes.
    #[arg(long, value_name = "DURATION", env = "KEEPER_LOGIN_WITHIN", help_heading = "Checks")]
    #[arg(value_parser = humantime::parse_duration)]
    login_within: Option<Duration>,

    /// Read every FILE as this format instead of detecting it
    #[arg(long, value_name = "NAME", env = "KEEPER_FORMAT", value_parser = format_parser(), help_heading = "Checks")]
    format: Option<Format>,

    /// Profile of an auth-profiles.json to report on [default: anthropic:claude-code]
    ///
    /// Without --profile-id: anthropic:claude-code, or when that profile is absent the first
    /// Anthropic oauth/token profile that has an expiry; the output names the profile used. With
    /// it, exactly that profile (exit 4 when absent).
    #[arg(long, value_name = "ID", env = "KEEPER_PROFILE_ID", help_heading = "Checks")]
    profile_id: Option<String>,

    /// Variable holding the token in a KEY=value file or a drop-in's Environment= line
    #[arg(
        long,
        value_name = "KEY",
        env = "KEEPER_ENV_KEY",
        default_value = "ANTHROPIC_OAUTH_TOKEN",
        help_heading = "Checks"
    )]
    key: String,

    /// Block until the one FILE's token has DURATION or less left, then exit 0
    ///
    /// Exits at once when it already has, or has expired. Wakes when the file changes (inotify on
    /// its directory: in-place writes and renames over it) and at the wall-clock instant the
    /// window opens (suspend and clock changes are handled); never polls. A missing, half-written
    /// or invalid file is logged and waited out; a logged-out stub exits 3 at once. Logs to
    /// stderr, prints nothing on stdout; ignores --within and the output style. SIGTERM/SIGINT
    /// end it by the same signal (see below).
    #[arg(long, value_name = "DURATION", env = "KEEPER_WAIT_UNTIL_WITHIN", help_heading = "Waiting")]
    #[arg(value_parser = humantime::parse_duration)]
    wait_until_within: Option<Duration>,

    #[command(flatten)]
    config: keeper_core::config::ConfigArg,
}

/// The output styles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputMode {
    Text,
    Json,
    Seconds,
    Prometheus,
}

fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Format::ALL.map(Format::name)).try_map(|s| s.parse::<Format>())
}

/// The clap definition of `token-expiry`'s command line, the one `--help` shows: the man page and the
/// shell completions are generated from it (`crates/keeper-dist`).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs `token-expiry` with the process's arguments and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    match keeper_core::config::parse_args::<Cli>(std::env::args_os()) {
        Ok(cli) => run(cli),
        Err(e) => keeper_core::clap_exit(&e),
    }
}

fn run(cli: Cli) -> ExitCode {
    let mode = match (cli.json, cli.seconds, cli.prometheus) {
        (true, _, _) => OutputMode::Json,
        (_, true, _) => OutputMode::Seconds,
        (_, _, true) => OutputMode::Prometheus,
        _ => cli.output,
    };
    let settings = Settings { format: cli.format, profile_id: cli.profile_id, key: cli.key };
    let files = if cli.files.is_empty() { vec![keeper_core::paths::claude_credentials()] } else { cli.files };

    if let Some(window) = cli.wait_until_within {
        return match files.as_slice() {
            [file] if Source::from_arg(file) != Source::Stdin => wait::run(file, window, &settings),
            [_] => usage_error("--wait-until-within needs a file to watch, not stdin"),
            _ => usage_error("--wait-until-within takes exactly one FILE"),
        };
    }

    let now = keeper_core::clock::now_ms();
    let judged: Vec<(Report, Status)> = files
        .iter()
        .map(|f| {
            let r = report::inspect(&Source::from_arg(f), &settings);
            let status = r.status(now, cli.within, cli.login_within);
            (r, status)
        })
        .collect();

    let worst = judged.iter().map(|(_, s)| *s).max_by_key(|s| s.rank()).unwrap_or(Status::Ok);
    match write_output(mode, &judged, now, &settings.key) {
        // A reader that stopped early (`| head`) is no failure of the check.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            let level = keeper_core::log::Level::Error;
            keeper_core::log::log(level, "token-expiry", format_args!("cannot write output: {e}"));
            return ExitCode::from(Status::Invalid.exit_code());
        }
        _ => {}
    }
    ExitCode::from(worst.exit_code())
}

/// Writes each input's stdout line and stderr error line, in input order.
fn write_output(mode: OutputMode, judged: &[(Report, Status)], now: i64, key: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    if mode == OutputMode::Prometheus {
        stdout.write_all(output::prometheus(judged, now).as_bytes())?;
    }
    for j in judged {
        let line = match mode {
            OutputMode::Text => output::text_line(j, now, key),
            OutputMode::Json => Some(output::json_line(j, now)),
            OutputMode::Seconds => output::seconds_line(j, now),
            OutputMode::Prometheus => None,
        };
        if let Some(line) = line {
            writeln!(stdout, "{line}")?;
        }
        if let Some(line) = output::error_line(&j.0, mode == OutputMode::Seconds) {
            stdout.flush()?;
            // One write per line, so concurrent writers do not interleave mid-line.
            let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
        }
    }
    stdout.flush()
}

fn usage_error(message: &str) -> ExitCode {
    let err = Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message);
    keeper_core::clap_exit(&err)
}
