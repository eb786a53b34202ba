//! `cred-sync`: copy the Claude Code CLI's fresh OAuth access token into every place OpenClaw
//! reads it from — legacy JSON stores, `.env` files, systemd drop-ins, or SQLite-era OpenClaw
//! through its own `paste-token` — once, or watching the CLI's file; never writing a bad,
//! half-written, logged-out, expired or older token, and never leaving a target half-written.
//!
//! The binary's `main` only calls [`main`].

mod check;
mod delivery;
mod generation;
mod paste;
mod source;
mod store;
mod sync;
mod target;
mod watch;

use clap::{ArgGroup, Parser};
use credmap::RefreshPolicy;
use delivery::GatewayAction;
use keeper_core::log::{Level, log};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;
use sync::{Outcome, Settings, TargetReport};
use target::TargetSpec;

pub(crate) const PROGRAM: &str = "cred-sync";

/// At least one target was written (or, with --dry-run, would be).
const EXIT_SYNCED: u8 = 0;
/// Every target already held the token.
const EXIT_NOTHING_TO_DO: u8 = 1;
/// The source is missing, unreadable, too large, half-written, malformed or holds an empty token.
const EXIT_SOURCE_INVALID: u8 = 2;
/// The source is the CLI's logged-out stub.
const EXIT_LOGGED_OUT: u8 = 3;
/// The source's token has expired.
const EXIT_EXPIRED: u8 = 4;
/// A target holds a longer-lived token and was not replaced.
const EXIT_DOWNGRADE: u8 = 5;
/// A target could not be written.
const EXIT_TARGET_FAILED: u8 = 6;
/// --check: a target is not in sync.
const EXIT_DRIFT: u8 = 7;

const AFTER_HELP: &str = "\
Targets (--to, repeatable; KEEPER_TO holds several separated by spaces):
  openclaw-oauth:PATH       legacy ~/.openclaw/credentials/oauth.json (anthropic entry)
  openclaw-profiles:PATH    legacy auth-profiles.json; PATH may be a glob, e.g.
                            '~/.openclaw/agents/*/agent/auth-profiles.json'; a `token` profile
                            with `expires` (an `oauth` one with --share-refresh-token); clears the
                            profile's cooldown
  dotenv:PATH               KEY=value file: a compose .env, ~/.openclaw/.env, ~/.openclaw-env
  systemd-dropin:PATH       e.g. ~/.config/systemd/user/openclaw-gateway.service.d/anthropic.conf
  openclaw-paste[:AGENT]    OpenClaw >= 2026.6.5 (SQLite): `openclaw models auth paste-token`,
                            token on stdin, into the shared store (with several agents:
                            through the default agent), or AGENT's own
  clear-stale:GLOB          remove Anthropic oauth/token profiles from matching
                            auth-profiles.json files, so OpenClaw uses ANTHROPIC_OAUTH_TOKEN
  Add ,in-place after the kind (dotenv,in-place:PATH) for a file bind-mounted on its own into a
  container: it is rewritten in place (same inode), since a rename would leave the container on
  the old file. Every kind with a PATH takes it (openclaw-oauth, openclaw-profiles, dotenv,
  systemd-dropin, clear-stale; with a glob, each matching file); openclaw-paste does not.
  A source or target that is not a regular file (a FIFO, a socket, a device) is refused unread.

Exit status (once and --dry-run; the worst wins: 6 > 5 > 0 > 1):
  0   synced: at least one target written (--dry-run: would be)
  1   nothing to do: every target already holds the token
  2   source missing, unreadable, not a regular file (FIFO, device), over 1 MiB, half-written,
      malformed (a byte-order mark before the JSON, too) or with an empty token
  3   source is the CLI's logged-out stub: a human must run `claude auth login`
  4   source token expired (--allow-expired to copy it anyway)
  5   a target holds a token that expires later (a .env or drop-in: as cred-sync remembers
      writing it): no target is given the source's token, so every copy stays on one
      (--allow-downgrade)
  6   a target failed: unwritable, unreadable, not a regular file, symlink, retired file in
      SQLite-era OpenClaw, paste-token failed or timed out
  7   --check: a target is stale, missing, unreadable or a retired file
  64  usage error
--check exits 2, 3 for the source as above, else 7 on any drift, else 4 when the source has
expired, else 0. --watch runs until SIGTERM/SIGINT (exit 0), or exits 2 at once when the
source's directory cannot be watched (inotify limits: fall back to a timer running cred-sync
once); guards and failures are logged and retried on the next change; SIGHUP forces a full
re-sync. Once (not --dry-run) re-reads the source after syncing and syncs again while it
changed meanwhile, up to --max-rounds rounds: the status is then the last round's (0 when an
earlier round wrote and the last had nothing to do).

Output: one JSON line per written target on stdout ({\"target\", \"kind\", \"fingerprint\",
\"expires\", \"expires_ms\", \"delivery\", \"restart\"}; clear-stale: {\"target\", \"kind\",
\"removed\", …}), so `cred-sync --watch | compose-recreate --stdin` works. Logs go to stderr.
Tokens are never printed: only a fingerprint (first 8 hex digits of the SHA-256).

Telling the gateway (\"delivery\" of each written target; docs/ARCHITECTURE.md):
  told         paste-token (or `openclaw secrets reload`) told the running gateway: its next
               request carries the token
  live         a JSON-era store, re-read on every lookup, replacing a valid copy: the next
               request but one carries it at the latest; no restart
  needs-nudge  as live, but the copy it replaced had expired or was missing: a gateway whose
               turn failed stops looking, so --nudge-cmd runs (else --restart-cmd)
  untold       pasted, but nothing could tell the gateway: --restart-cmd runs
  at-start     .env, drop-in, clear-stale: read at start. Only when nothing in the batch
               delivered the token (setup-token mode) does --restart-cmd run
\"restart\" is true on every line of a batch that needs a restart (compose-recreate --stdin
recreates only then). --exec-on-change runs on every batch.

Examples:
  cred-sync \\
      --to 'openclaw-profiles:~/.openclaw/agents/*/agent/auth-profiles.json'
  cred-sync --watch --to dotenv:/srv/openclaw/.env |
      compose-recreate --stdin openclaw-gateway
  cred-sync --to openclaw-paste \\
      --openclaw-cmd 'docker compose --project-directory /srv/openclaw exec -T
      openclaw-gateway openclaw'
  cred-sync --check --to dotenv:/srv/openclaw/.env";

/// Copy the Claude Code CLI's OAuth access token into OpenClaw's credential stores.
///
/// Reads the CLI's credentials (FILE of --from), checks them, and writes the access token into
/// every --to target that does not already hold it: atomically, keeping each file's other
/// contents, owner and mode.
#[derive(Debug, Parser)]
#[command(name = "cred-sync", version = keeper_core::LONG_VERSION, after_help = AFTER_HELP, max_term_width = 100)]
#[command(group(ArgGroup::new("mode").args(["watch", "check", "dry_run", "detect"])))]
// Reason: these doc comments are --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
struct Cli {
    /// The Claude CLI's credentials file [default: $CLAUDE_SECURESTORAGE_CONFIG_DIR/.credentials.json,
    /// else $CLAUDE_CONFIG_DIR/.credentials.json, else ~/.claude/.credentials.json]
    #[arg(long, value_name = "FILE", env = "KEEPER_CREDENTIALS", help_heading = "Source")]
    from: Option<PathBuf>,

    /// Where to copy the token: KIND[,in-place]:PATH (see Targets below)
    #[arg(long = "to", value_name = "TARGET", env = "KEEPER_TO", value_delimiter = ' ')]
    #[arg(help_heading = "Targets")]
    to: Vec<TargetSpec>,

    /// Profile id written in auth-profiles.json and pasted into SQLite-era OpenClaw
    #[arg(long, value_name = "ID", env = "KEEPER_PROFILE_ID", default_value = credmap::auth_profiles::DEFAULT_PROFILE_ID)]
    #[arg(help_heading = "Targets")]
    profile_id: String,

    /// Variable set in dotenv and systemd-dropin targets
    #[arg(long, value_name = "KEY", env = "KEEPER_ENV_KEY", default_value = "ANTHROPIC_OAUTH_TOKEN")]
    #[arg(help_heading = "Targets")]
    key: String,

    /// Also give OpenClaw the refresh token (JSON targets: an `oauth` profile)
    ///
    /// Off by default, and best left off: OpenClaw then refreshes by itself, rotating the refresh
    /// token and logging the Claude CLI out (refresh tokens are single-use).
    #[arg(long, env = "KEEPER_SHARE_REFRESH_TOKEN", help_heading = "Targets")]
    share_refresh_token: bool,

    /// Command that runs OpenClaw for openclaw-paste targets and --check, split on spaces
    ///
    /// E.g. 'docker compose -f /srv/openclaw/docker-compose.yml exec -T openclaw-gateway openclaw'.
    #[arg(long, value_name = "CMD", env = "KEEPER_OPENCLAW_CMD", default_value = "openclaw")]
    #[arg(help_heading = "Targets")]
    openclaw_cmd: String,

    /// Time limit for each OpenClaw command (the whole process group is killed)
    ///
    /// Also left out of the lifetime given to paste-token (--expires-in), which OpenClaw counts
    /// from its own start: it never believes the token outlives the source's.
    #[arg(long, value_name = "DURATION", env = "KEEPER_PASTE_TIMEOUT", default_value = "60s")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Targets")]
    paste_timeout: Duration,

    /// Where the fingerprint of the last pasted token, and of the token last written into each
    /// .env and drop-in with its expiry (for the downgrade guard), are kept [default:
    /// /var/lib/openclaw-oauth-keeper for root, else $XDG_STATE_HOME/openclaw-oauth-keeper]
    #[arg(long, value_name = "DIR", env = "KEEPER_STATE_DIR", help_heading = "Targets")]
    state_dir: Option<PathBuf>,

    /// Write JSON targets even in a SQLite-era OpenClaw (where they are retired files)
    #[arg(long, env = "KEEPER_FORCE_LEGACY", help_heading = "Safety")]
    force_legacy: bool,

    /// Write through a symlinked target to the file it points to (refused by default)
    #[arg(long, env = "KEEPER_FOLLOW_SYMLINKS", help_heading = "Safety")]
    follow_symlinks: bool,

    /// Copy an expired token too
    #[arg(long, env = "KEEPER_ALLOW_EXPIRED", help_heading = "Safety")]
    allow_expired: bool,

    /// Replace a target's token even when it, or another target's, expires later than the
    /// source's
    #[arg(long, env = "KEEPER_ALLOW_DOWNGRADE", help_heading = "Safety")]
    allow_downgrade: bool,

    /// Keep running: sync whenever the source changes (inotify; no polling)
    #[arg(long, env = "KEEPER_WATCH", help_heading = "Mode")]
    watch: bool,

    /// Write nothing: one row per target (in-sync, stale, missing, unreadable, retired-file)
    #[arg(long, help_heading = "Mode")]
    check: bool,

    /// Write nothing: say what would change
    #[arg(long, help_heading = "Mode")]
    dry_run: bool,

    /// --check rows as JSON lines
    #[arg(long, requires = "check", help_heading = "Mode")]
    json: bool,

    /// Write nothing: print the generation of the OpenClaw directory DIR (json or sqlite) and
    /// its evidence as one JSON object, by the rules that refuse JSON targets in a SQLite-era
    /// OpenClaw (`scripts/setup.sh` asks this)
    ///
    /// {"dir", "generation", "evidence": [..], "installed_version", "first_sqlite_release"}.
    /// The installed version is --openclaw-version, else read from the npm package of
    /// --openclaw-cmd when that is one program on this host. Needs no --to; exit 0.
    #[arg(long, value_name = "DIR", help_heading = "Mode")]
    detect: Option<PathBuf>,

    /// --detect: the version of the OpenClaw that serves DIR when it is not on this host's PATH
    /// (e.g. read from the gateway container's /app/package.json)
    #[arg(long, value_name = "VERSION", requires = "detect", help_heading = "Mode")]
    #[arg(value_parser = parse_version)]
    openclaw_version: Option<generation::Version>,

    /// --watch: wait until the source has been quiet this long before syncing (default: sync on
    /// the first event)
    #[arg(long, value_name = "DURATION", env = "KEEPER_DEBOUNCE", default_value = "0s")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Mode")]
    debounce: Duration,

    /// Run CMD (with sh -c) once per batch of changes, the batch's JSON lines on its stdin
    #[arg(long, value_name = "CMD", env = "KEEPER_EXEC_ON_CHANGE", help_heading = "Mode")]
    exec_on_change: Option<String>,

    /// Run CMD (with sh -c) when the running gateway can take a batch only by restarting
    ///
    /// That is: only `.env`/drop-in targets were written (nothing delivered the token to the
    /// running gateway's store), or a paste neither paste-token nor `openclaw secrets reload` could
    /// announce. A store write that reached the gateway never runs it. The batch's JSON lines on
    /// its stdin. E.g. 'systemctl --user daemon-reload && systemctl --user try-restart
    /// openclaw-gateway.service'
    #[arg(long, value_name = "CMD", env = "KEEPER_RESTART_CMD", help_heading = "Telling the gateway")]
    restart_cmd: Option<String>,

    /// Run CMD (with sh -c) when a store write may go unseen: the copy it replaced had expired or
    /// was missing, and a gateway whose turn failed for lack of a credential stops looking
    ///
    /// The cheap nudge for OpenClaw 2026.6.x is SIGUSR1 (an in-process restart, ~2 s), e.g.
    /// 'systemctl --user kill -s USR1 --kill-whom=main openclaw-gateway.service'. Without it,
    /// --restart-cmd runs instead.
    #[arg(long, value_name = "CMD", env = "KEEPER_NUDGE_CMD", help_heading = "Telling the gateway")]
    nudge_cmd: Option<String>,

    /// Time limit for --exec-on-change, --restart-cmd and --nudge-cmd (the whole process group is
    /// killed)
    #[arg(long, value_name = "DURATION", env = "KEEPER_EXEC_TIMEOUT", default_value = "5m")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Mode")]
    exec_timeout: Duration,

    /// Once: after a round, re-read the source and sync again while its `claudeAiOauth` changed
    /// during the round, at most N rounds in all (1: no re-check). A `.path` unit loses a write
    /// that lands while its service runs; this catches it
    #[arg(long, value_name = "N", env = "KEEPER_MAX_ROUNDS", default_value = "5")]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100), help_heading = "Mode")]
    max_rounds: u32,

    #[command(flatten)]
    config: keeper_core::config::ConfigArg,
}

/// The clap definition of `cred-sync`'s command line, the one `--help` shows: the man page and the
/// shell completions are generated from it (`crates/keeper-dist`).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs `cred-sync` with the process's arguments and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match keeper_core::config::parse_args::<Cli>(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => return keeper_core::clap_exit(&e),
    };
    if let Some(dir) = &cli.detect {
        return detect(dir, &cli);
    }
    if let Err(problem) = usable_targets(&cli.to) {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        return keeper_core::clap_exit(&cmd.error(clap::error::ErrorKind::MissingRequiredArgument, problem));
    }
    let mut runner = Runner::new(cli);
    if runner.check {
        return runner.check();
    }
    if runner.watch {
        return watch::run(&mut runner);
    }
    if runner.dry_run {
        return ExitCode::from(runner.cycle(true));
    }
    ExitCode::from(runner.until_stable())
}

/// `--detect DIR`: prints the generation and its evidence.
fn detect(dir: &std::path::Path, cli: &Cli) -> ExitCode {
    let installed = cli.openclaw_version.or_else(|| {
        let words: Vec<&str> = cli.openclaw_cmd.split_whitespace().collect();
        match words.as_slice() {
            [program] => generation::installed_version(program),
            _ => None,
        }
    });
    let detection = generation::detect(dir, installed);
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", detection.to_json(dir)).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(Level::Error, PROGRAM, format_args!("cannot write output: {e}"));
            ExitCode::from(EXIT_TARGET_FAILED)
        }
    }
}

fn parse_version(text: &str) -> Result<generation::Version, String> {
    generation::Version::parse(text).ok_or_else(|| format!("{text:?} is not an OpenClaw version (e.g. 2026.9.6)"))
}

/// At least one target, and none that would undo another's work.
fn usable_targets(targets: &[TargetSpec]) -> Result<(), String> {
    if targets.is_empty() {
        return Err("no target: give --to KIND:PATH (or KEEPER_TO in the config file)".into());
    }
    let has = |k: target::Kind| targets.iter().any(|t| t.kind == k);
    if has(target::Kind::ClearStale) && has(target::Kind::OpenclawProfiles) {
        return Err("clear-stale removes the profiles openclaw-profiles writes: use one or the other \
                    (clear-stale goes with a dotenv or systemd-dropin target)"
            .into());
    }
    Ok(())
}

/// The parsed command line, ready to sync.
#[derive(Debug)]
pub(crate) struct Runner {
    pub(crate) from: PathBuf,
    settings: Settings,
    allow_expired: bool,
    dry_run: bool,
    check: bool,
    json: bool,
    watch: bool,
    pub(crate) debounce: Duration,
    exec_on_change: Option<String>,
    restart_cmd: Option<String>,
    nudge_cmd: Option<String>,
    exec_timeout: Duration,
    max_rounds: u32,
    /// The `claudeAiOauth` section of the last sync that left every target in sync: an
    /// unrelated rewrite of the file (MCP tokens) is then no work at all.
    last_synced: Option<serde_json::Value>,
}

impl Runner {
    fn new(cli: Cli) -> Self {
        let openclaw_cmd: Vec<String> = cli.openclaw_cmd.split_whitespace().map(str::to_owned).collect();
        let wants_version = cli.to.iter().any(|t| t.kind.is_retired_in_sqlite_era()) && !cli.force_legacy;
        let installed = if wants_version && openclaw_cmd.len() == 1 {
            generation::installed_version(&openclaw_cmd[0])
        } else {
            None
        };
        let settings = Settings {
            targets: cli.to,
            shape: store::Shape {
                profile_id: cli.profile_id.clone(),
                env_key: cli.key,
                policy: if cli.share_refresh_token { RefreshPolicy::Carry } else { RefreshPolicy::AccessOnly },
            },
            allow_downgrade: cli.allow_downgrade,
            follow_symlinks: cli.follow_symlinks,
            force_legacy: cli.force_legacy,
            paste: paste::PasteSettings {
                command: openclaw_cmd,
                profile_id: cli.profile_id,
                timeout: cli.paste_timeout,
                state_dir: cli.state_dir.unwrap_or_else(keeper_core::paths::state_dir),
            },
            installed,
        };
        Self {
            from: cli.from.unwrap_or_else(keeper_core::paths::claude_credentials),
            settings,
            allow_expired: cli.allow_expired,
            dry_run: cli.dry_run,
            check: cli.check,
            json: cli.json,
            watch: cli.watch,
            debounce: cli.debounce,
            exec_on_change: cli.exec_on_change,
            restart_cmd: cli.restart_cmd,
            nudge_cmd: cli.nudge_cmd,
            exec_timeout: cli.exec_timeout,
            max_rounds: cli.max_rounds,
            last_synced: None,
        }
    }

    /// Reads the source and syncs every target; returns the exit code. `force` skips the
    /// "token section unchanged since the last complete sync" shortcut.
    pub(crate) fn cycle(&mut self, force: bool) -> u8 {
        let now = keeper_core::clock::now_ms();
        // Read once, expired or not: the expiry is judged below against this very file.
        let fresh = match source::read(&self.from, now, true) {
            Ok(fresh) => fresh,
            Err(unusable) => {
                self.last_synced = None;
                return self.refuse_source(&unusable);
            }
        };
        if !self.allow_expired && fresh.credential.is_expired(now) {
            if self.already_everywhere(&fresh.credential, now) {
                // `cli-poke --force` marks the current token due (expiresAt = now) and the CLI
                // refreshes seconds later: the targets hold this very token with its true expiry,
                // so there is nothing to copy and nothing wrong (the refresh's write comes next).
                log(
                    Level::Info,
                    PROGRAM,
                    format_args!(
                        "{}: the token every target holds was marked due (cli-poke --force?): nothing to do until the CLI refreshes",
                        self.from.display()
                    ),
                );
                return EXIT_NOTHING_TO_DO;
            }
            self.last_synced = None;
            return self.refuse_source(&source::Unusable::Expired(fresh.credential.expires_at));
        }
        if !force && self.last_synced.as_ref() == Some(&fresh.section) {
            log(
                Level::Info,
                PROGRAM,
                format_args!(
                    "{}: rewritten, token unchanged ({}): nothing to do",
                    self.from.display(),
                    fresh.credential.access_token
                ),
            );
            return EXIT_NOTHING_TO_DO;
        }
        let reports = sync::sync_all(&self.settings, &fresh.credential, now, self.dry_run);
        let code = self.report(&reports);
        let complete = reports.iter().all(|r| matches!(r.outcome, Outcome::Unchanged | Outcome::Written));
        self.last_synced = (complete && !self.dry_run).then_some(fresh.section);
        code
    }

    /// Whether every target already holds `cred` with a later expiry (a dry run finds nothing
    /// to write: no file is written and no program is run).
    fn already_everywhere(&self, cred: &credmap::Credential, now: i64) -> bool {
        let reports = sync::sync_all(&self.settings, cred, now, true);
        !reports.is_empty() && reports.iter().all(|r| r.outcome == Outcome::Unchanged)
    }

    /// One-shot: a round, then again while the source changed during the round (systemd's
    /// `PathChanged=` drops the event of a write landing while the triggered service runs,
    /// systemd#5770), at most `max_rounds` rounds. The exit code is the last round's, except that
    /// a round that wrote makes a later "nothing to do" a 0.
    fn until_stable(&mut self) -> u8 {
        let mut seen = source::snapshot(&self.from);
        let mut code = self.cycle(true);
        for round in 2..=self.max_rounds {
            let now_seen = source::snapshot(&self.from);
            if now_seen == seen {
                return code;
            }
            log(
                Level::Info,
                PROGRAM,
                format_args!(
                    "{}: changed during the run; syncing again (round {round} of at most {})",
                    self.from.display(),
                    self.max_rounds
                ),
            );
            seen = now_seen;
            let this = self.cycle(true);
            code = if this == EXIT_NOTHING_TO_DO && code == EXIT_SYNCED { EXIT_SYNCED } else { this };
        }
        if self.max_rounds > 1 && source::snapshot(&self.from) != seen {
            log(
                Level::Warning,
                PROGRAM,
                format_args!(
                    "{}: still changing after {} rounds; stopping (--max-rounds): the next run syncs the rest",
                    self.from.display(),
                    self.max_rounds
                ),
            );
        }
        code
    }

    fn refuse_source(&self, unusable: &source::Unusable) -> u8 {
        let from = self.from.display();
        let (code, message) = match unusable {
            source::Unusable::Invalid(problem) => (EXIT_SOURCE_INVALID, format!("{from}: {problem}; nothing written")),
            source::Unusable::LoggedOut => {
                (EXIT_LOGGED_OUT, format!("{from}: {}; nothing written", credmap::Error::LoggedOut))
            }
            source::Unusable::Expired(at) => (
                EXIT_EXPIRED,
                format!(
                    "{from}: the token expired at {at}; nothing written (the CLI refreshes on its next API call; \
                     --allow-expired copies it anyway)"
                ),
            ),
        };
        log(
            if code == EXIT_SOURCE_INVALID && self.watch { Level::Warning } else { Level::Error },
            PROGRAM,
            format_args!("{message}"),
        );
        code
    }

    /// Logs each target, prints change lines (or dry-run lines), runs --exec-on-change and, when
    /// the gateway needs it, --nudge-cmd or --restart-cmd; returns the exit code.
    fn report(&self, reports: &[TargetReport]) -> u8 {
        let mut lines = Vec::new();
        let (mut written, mut downgrades, mut failures) = (0, 0, 0);
        let deliveries = reports.iter().filter(|r| r.outcome == Outcome::Written).map(|r| r.delivery);
        let store_holds = reports.iter().any(|r| r.kind.is_store() && !matches!(r.outcome, Outcome::Failed(_)));
        let action = GatewayAction::of(deliveries, store_holds);
        // What `compose-recreate --stdin` downstream is asked to do: a nudge nobody configured
        // falls back to the restart.
        let restart = action == GatewayAction::Restart || (action == GatewayAction::Nudge && self.nudge_cmd.is_none());
        for r in reports {
            match &r.outcome {
                Outcome::Unchanged => {
                    log(Level::Debug, PROGRAM, format_args!("{} ({}): already in sync", r.name, r.kind));
                }
                Outcome::Written => {
                    written += 1;
                    let what = describe(&r.wrote);
                    let verb = if self.dry_run { "would write" } else { "wrote" };
                    log(
                        Level::Info,
                        PROGRAM,
                        format_args!("{verb} {} ({}): {what}; gateway: {}", r.name, r.kind, r.delivery),
                    );
                    if let Some(line) = r.change_line(restart) {
                        lines.push(line.to_string());
                    }
                }
                Outcome::Downgrade { held, by } => {
                    downgrades += 1;
                    match by {
                        Some(other) if *other != r.name => log(
                            Level::Warning,
                            PROGRAM,
                            format_args!(
                                "{} ({}): not replaced: {other} holds a token expiring later ({held}), and every copy \
                                 stays on one token (--allow-downgrade)",
                                r.name, r.kind
                            ),
                        ),
                        _ => log(
                            Level::Warning,
                            PROGRAM,
                            format_args!(
                                "{} ({}): holds a token expiring later ({held}); not replaced (--allow-downgrade)",
                                r.name, r.kind
                            ),
                        ),
                    }
                }
                Outcome::Failed(problem) => {
                    failures += 1;
                    log(Level::Error, PROGRAM, format_args!("{problem}"));
                }
            }
        }
        if self.dry_run {
            let mut out = std::io::stdout().lock();
            for r in reports.iter().filter(|r| r.outcome == Outcome::Written) {
                let _ = writeln!(out, "would write {} ({}): {}", r.name, r.kind, describe(&r.wrote));
            }
        } else if !lines.is_empty() {
            let mut out = std::io::stdout().lock();
            // Flushed per batch: the reader downstream (compose-recreate --stdin) acts on it now.
            let _ = lines.iter().try_for_each(|l| writeln!(out, "{l}")).and_then(|()| out.flush());
            drop(out);
            self.run_hook("--exec-on-change", self.exec_on_change.as_deref(), &lines);
            self.tell_gateway(action, &lines);
        }
        log(
            if failures > 0 { Level::Error } else { Level::Info },
            PROGRAM,
            format_args!(
                "{} of {} target(s) {}, {downgrades} downgrade(s) refused, {failures} failed",
                written,
                reports.len(),
                if self.dry_run { "would change" } else { "written" }
            ),
        );
        if failures > 0 {
            EXIT_TARGET_FAILED
        } else if downgrades > 0 {
            EXIT_DOWNGRADE
        } else if written > 0 {
            EXIT_SYNCED
        } else {
            EXIT_NOTHING_TO_DO
        }
    }

    /// Runs --nudge-cmd or --restart-cmd when the batch's deliveries ask for it.
    fn tell_gateway(&self, action: GatewayAction, lines: &[String]) {
        let (flag, cmd, why) = match action {
            GatewayAction::Nothing => return,
            GatewayAction::Nudge if self.nudge_cmd.is_some() => {
                ("--nudge-cmd", self.nudge_cmd.as_deref(), "the copy it replaced had expired")
            }
            GatewayAction::Nudge => {
                ("--restart-cmd", self.restart_cmd.as_deref(), "the copy it replaced had expired; no --nudge-cmd")
            }
            GatewayAction::Restart => {
                ("--restart-cmd", self.restart_cmd.as_deref(), "it reads the token only at start")
            }
        };
        if cmd.is_none() {
            log(
                Level::Warning,
                PROGRAM,
                format_args!(
                    "the running gateway may not use the new token until it restarts ({why}); no {flag} given"
                ),
            );
            return;
        }
        log(Level::Info, PROGRAM, format_args!("telling the gateway ({why}): {flag}"));
        self.run_hook(flag, cmd, lines);
    }

    /// Runs a hook (sh -c CMD) with the batch's change lines on its stdin; logs its output,
    /// redacted.
    fn run_hook(&self, flag: &str, cmd: Option<&str>, lines: &[String]) {
        let Some(cmd) = cmd else { return };
        let mut input = lines.join("\n");
        input.push('\n');
        let mut command = Command::new("/bin/sh");
        command.args(["-c", cmd]);
        let name = flag.trim_start_matches('-');
        match keeper_core::process::run(command, Some(input.as_bytes()), self.exec_timeout) {
            Err(e) => log(Level::Error, PROGRAM, format_args!("{flag}: cannot run /bin/sh: {e}")),
            Ok(done) => {
                for line in
                    String::from_utf8_lossy(&done.stdout).lines().chain(String::from_utf8_lossy(&done.stderr).lines())
                {
                    log(Level::Info, PROGRAM, format_args!("{name}: {}", credmap::redact(line)));
                }
                if !done.success() {
                    log(Level::Error, PROGRAM, format_args!("{flag} `{cmd}` {}", done.describe()));
                }
            }
        }
    }

    fn check(&self) -> ExitCode {
        let now = keeper_core::clock::now_ms();
        let fresh = match source::read(&self.from, now, true) {
            Ok(fresh) => fresh,
            Err(unusable) => return ExitCode::from(self.refuse_source(&unusable)),
        };
        let cred = &fresh.credential;
        let rows = check::rows(&self.settings, cred);
        let mut out = std::io::stdout().lock();
        let source_state = if cred.is_expired(now) { "expired" } else { "ok" };
        if self.json {
            let source = serde_json::json!({
                "target": self.from.display().to_string(), "kind": "source", "state": source_state,
                "fingerprint": cred.access_token.to_string(), "expires": cred.expires_at.to_string(),
                "expires_ms": cred.expires_at.as_millis(), "detail": null,
            });
            let _ = writeln!(out, "{source}");
            for row in &rows {
                let _ = writeln!(out, "{}", row.to_json());
            }
        } else {
            let _ = writeln!(
                out,
                "{:<12} {:<17} {} {} {}",
                source_state,
                "source",
                self.from.display(),
                cred.access_token,
                cred.expires_at
            );
            for row in &rows {
                let _ = writeln!(out, "{}", row.to_text());
            }
        }
        let _ = out.flush();
        if rows.iter().any(|r| r.state != check::State::InSync) {
            ExitCode::from(EXIT_DRIFT)
        } else if cred.is_expired(now) {
            ExitCode::from(EXIT_EXPIRED)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// "token sk-ant-oat01-…(1a2b3c4d), expires 2026-…" or "removed anthropic:claude-code".
fn describe(wrote: &sync::Wrote) -> String {
    match wrote {
        sync::Wrote::Token { token, expires_at } => format!("token {token}, expires {expires_at}"),
        sync::Wrote::Removed(ids) => format!("removed {}", ids.join(", ")),
        sync::Wrote::Nothing => String::new(),
    }
}
