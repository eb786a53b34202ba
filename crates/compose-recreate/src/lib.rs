//! `compose-recreate`: make a running Docker Compose service (the OpenClaw gateway) take the
//! token `cred-sync` wrote into the compose `.env`, and prove it did: recreate the service's
//! container (never `restart`, which keeps the old environment), wait until the new one runs
//! (healthy, when it has a healthcheck), and compare the variable inside it, read with
//! `docker inspect`, with the `.env` by fingerprint. With `--stdin` it reads `cred-sync`'s change
//! lines and recreates once per burst.
//!
//! The binary's `main` only calls [`main`].

mod batch;
mod docker;
mod inspect;
mod recreate;
mod redact;

use clap::{Parser, ValueEnum};
use credmap::Secret;
use docker::{Programs, Runner, shell_line};
use keeper_core::log::{Level, log};
use recreate::{Plan, Verified};
use redact::Redactor;
use serde_json::json;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

pub(crate) const PROGRAM: &str = "compose-recreate";

/// Recreated and verified (also: `--dry-run` printed its plan).
const EXIT_OK: u8 = 0;
/// `--if-stale`: every container already runs with the .env's token.
const EXIT_NOTHING_TO_DO: u8 = 1;
/// Docker or Compose is missing or failed.
pub(crate) const EXIT_DOCKER: u8 = 2;
/// A new container does not run (or is not healthy) in time.
pub(crate) const EXIT_NOT_RUNNING: u8 = 3;
/// The token in the container is missing or differs from the .env's.
pub(crate) const EXIT_MISMATCH: u8 = 4;
/// The .env cannot be read, is invalid, or holds no token.
pub(crate) const EXIT_ENV_FILE: u8 = 5;

const AFTER_HELP: &str = "\
Why never `docker compose restart`: restart stops and starts the same container, which keeps the
environment it was created with, so the gateway would go on sending the old token. Only a new
container (`up --force-recreate`, or `down` then `up`) reads the .env again.

Exit status:
  0   recreated, and every new container runs (healthy, when it has a healthcheck) with the
      .env's token; --dry-run: the plan was printed; --stdin: input ended and the last batch
      succeeded or found nothing to do
  1   nothing to do (--if-stale): every service already runs a container with the .env's token
  2   docker or compose is missing or failed, or a command did not finish within
      --command-timeout (its process group killed: a hung daemon): the failing step, its exit
      status and its output (tokens redacted) are shown
  3   a new container did not run (or become healthy) within --timeout, or stopped
  4   the variable in the new container is missing or differs from the .env's: the compose file
      does not pass it (no `env_file:`, no `environment:` entry: older OpenClaw compose files),
      or sets it from elsewhere
  5   the .env is missing, unreadable or invalid, or has no value for the variable
  64  usage error
With --stdin, failures are logged and the loop goes on; the exit status is the last batch's.

--stdin reads cred-sync's change lines: one JSON object per line, such as
  {\"target\": \"/srv/openclaw/.env\", \"kind\": \"dotenv\", \"fingerprint\": \"sk-ant-oat01-…(3f2a9c1e)\"}
(unknown fields are fine). Every object line is a trigger, except one with \"restart\": false:
cred-sync says so when OpenClaw's store already delivered the token to the running gateway, so a
new container would only cost a restart. A line that is not a JSON object is logged as a warning
and ignored. A burst becomes one batch once no line came for
--quiet-period, and recreations start at least --min-interval apart. Like --if-stale, a batch
does nothing when every service already runs a container with the .env's token; one that fails
with status 2 or 3 (a hung daemon included) is tried again after --min-interval, up to --retries
times. At the end of
input the pending batch runs, then the program exits.

The variable (--key) is removed from the environment of docker and compose, so the .env is the
only source of the token; tokens never appear in arguments or output: only fingerprints
(the first 8 hex digits of the SHA-256). Everything docker and compose print or report (names
included) is redacted before it is shown.

Examples:
  compose-recreate --project-dir /srv/openclaw openclaw-gateway
  compose-recreate --dry-run --mode down-up openclaw-gateway
  cred-sync --watch | compose-recreate --stdin --project-dir /srv/openclaw";

/// Make a Compose service take the new token from .env: recreate, never restart; verify.
///
/// Recreates SERVICE's container so it reads the .env again, waits until the new container runs
/// (healthy, when it has a healthcheck), and checks that the token variable inside it (docker
/// inspect) has the same fingerprint as the .env's value.
#[derive(Debug, Parser)]
#[command(name = "compose-recreate", version = keeper_core::LONG_VERSION, after_help = AFTER_HELP, max_term_width = 100)]
// Reason: these doc comments are --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
struct Cli {
    /// Compose services to recreate and verify [default: openclaw-gateway]
    ///
    /// KEEPER_SERVICES holds them separated by blanks.
    #[arg(value_name = "SERVICE", env = "KEEPER_SERVICES", value_delimiter = ' ')]
    #[arg(default_value = "openclaw-gateway", hide_default_value = true)]
    services: Vec<String>,

    /// Directory of the compose project (Compose runs there) [default: .]
    #[arg(long, value_name = "DIR", env = "KEEPER_PROJECT_DIR", help_heading = "Compose project")]
    project_dir: Option<PathBuf>,

    /// Compose file; repeat for several (KEEPER_COMPOSE_FILES: separated by `:`) [default: Compose's own search]
    #[arg(short = 'f', long = "file", value_name = "FILE", env = "KEEPER_COMPOSE_FILES", value_delimiter = ':')]
    #[arg(help_heading = "Compose project")]
    files: Vec<PathBuf>,

    /// The .env holding the token; also passed to compose as --env-file [default: DIR/.env]
    #[arg(long, value_name = "FILE", env = "KEEPER_ENV_FILE", help_heading = "Compose project")]
    env_file: Option<PathBuf>,

    /// Compose project name (compose -p) [default: Compose's own: COMPOSE_PROJECT_NAME, else the directory name]
    #[arg(short = 'p', long, value_name = "NAME", env = "KEEPER_COMPOSE_PROJECT", help_heading = "Compose project")]
    project_name: Option<String>,

    /// How to replace the container
    ///
    /// recreate: `up -d --force-recreate --no-deps SERVICE…`; other services and networks are
    /// untouched. down-up: `down` then `up -d`, the whole project (the first seed's way;
    /// longer downtime).
    #[arg(long, value_enum, value_name = "MODE", env = "KEEPER_RECREATE_MODE", default_value_t = Mode::Recreate)]
    #[arg(help_heading = "Recreation")]
    mode: Mode,

    /// Seconds compose gives the old container to stop before killing it (compose --timeout) [default: Compose's: the service's stop_grace_period when set, else 10]
    #[arg(long, value_name = "SECONDS", env = "KEEPER_RECREATE_STOP_TIMEOUT", help_heading = "Recreation")]
    stop_timeout: Option<u32>,

    /// Do nothing (exit 1) when every service already runs a container with the .env's token
    #[arg(long, env = "KEEPER_RECREATE_IF_STALE", help_heading = "Recreation")]
    if_stale: bool,

    /// Print the commands instead of running them (the .env is still read and checked)
    #[arg(long, env = "KEEPER_RECREATE_DRY_RUN", help_heading = "Recreation")]
    dry_run: bool,

    /// Variable holding the token, in the .env and in the container
    #[arg(long, value_name = "KEY", env = "KEEPER_ENV_KEY", default_value = "ANTHROPIC_OAUTH_TOKEN")]
    #[arg(help_heading = "Verification")]
    key: String,

    /// How long a new container may take to run, and to become healthy when it has a healthcheck
    #[arg(long, value_name = "DURATION", env = "KEEPER_RECREATE_TIMEOUT", default_value = "60s")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Verification")]
    timeout: Duration,

    /// How long any one docker or compose command may run; then it and its process group are killed (exit 2)
    ///
    /// A hung Docker daemon would otherwise hang the run for good. Raise it when a service's
    /// stop_grace_period (or --stop-timeout) is longer: `up` and `down` wait for the old
    /// container to stop.
    #[arg(long, value_name = "DURATION", env = "KEEPER_RECREATE_COMMAND_TIMEOUT", default_value = "2m")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Verification")]
    command_timeout: Duration,

    /// Read cred-sync's change lines from stdin and recreate once per burst, until stdin closes
    #[arg(long, env = "KEEPER_RECREATE_STDIN", help_heading = "Watching stdin")]
    stdin: bool,

    /// --stdin: a burst ends when no line came for this long
    #[arg(long, value_name = "DURATION", env = "KEEPER_RECREATE_QUIET_PERIOD", default_value = "2s")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Watching stdin")]
    quiet_period: Duration,

    /// --stdin: at most one recreation per this interval
    #[arg(long, value_name = "DURATION", env = "KEEPER_RECREATE_MIN_INTERVAL", default_value = "30s")]
    #[arg(value_parser = humantime::parse_duration, help_heading = "Watching stdin")]
    min_interval: Duration,

    /// --stdin: attempts after a batch failed with status 2 or 3
    #[arg(long, value_name = "N", env = "KEEPER_RECREATE_RETRIES", default_value_t = 3)]
    #[arg(help_heading = "Watching stdin")]
    retries: u32,

    /// The docker client [default: `docker` on PATH]; DOCKER_HOST is honoured
    #[arg(long, value_name = "PATH", env = "KEEPER_DOCKER", help_heading = "Programs")]
    docker: Option<PathBuf>,

    /// The Compose command, words separated by blanks [default: `docker compose` when it works, else `docker-compose`]
    #[arg(long, value_name = "COMMAND", env = "KEEPER_COMPOSE_CMD", help_heading = "Programs")]
    compose_cmd: Option<String>,

    /// One JSON object per service and batch on stdout instead of a text line
    #[arg(long, env = "KEEPER_RECREATE_JSON", help_heading = "Output")]
    json: bool,

    #[command(flatten)]
    config: keeper_core::config::ConfigArg,
}

/// How the container is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `up -d --force-recreate --no-deps SERVICE…`.
    Recreate,
    /// `down`, then `up -d`.
    DownUp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Recreate => "recreate",
            Self::DownUp => "down-up",
        }
    }
}

/// Why a run failed: the exit code and a message (already free of tokens).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// The clap definition of `compose-recreate`'s command line, the one `--help` shows: the man page and the
/// shell completions are generated from it (`crates/keeper-dist`).
#[must_use]
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Runs `compose-recreate` with the process's arguments and returns its exit code.
#[must_use]
pub fn main() -> ExitCode {
    match keeper_core::config::parse_args::<Cli>(std::env::args_os()) {
        Ok(cli) => run(&cli),
        Err(e) => keeper_core::clap_exit(&e),
    }
}

/// Everything a batch needs, resolved from the command line.
struct Job {
    plan: Plan,
    env_file: PathBuf,
    runner: Runner,
    if_stale: bool,
    dry_run: bool,
    json: bool,
}

fn run(cli: &Cli) -> ExitCode {
    let job = match job(cli) {
        Ok(job) => job,
        Err(failure) => return fail(&failure),
    };
    if cli.stdin {
        return watch_stdin(job, cli);
    }
    let code = match batch(&job) {
        Ok(code) => code,
        Err(failure) => return fail(&failure),
    };
    ExitCode::from(code)
}

fn fail(failure: &Failure) -> ExitCode {
    log(Level::Error, PROGRAM, format_args!("{}", failure.message));
    ExitCode::from(failure.code)
}

fn usage(message: &str) -> Failure {
    Failure::new(keeper_core::EXIT_USAGE, format!("usage: {message}"))
}

fn job(cli: &Cli) -> Result<Job, Failure> {
    if cli.services.iter().any(|s| s.is_empty() || s.starts_with('-')) || cli.services.is_empty() {
        return Err(usage("SERVICE names must be non-empty and not start with `-`"));
    }
    if cli.key.is_empty() || cli.key.contains(['=', '\0']) {
        return Err(usage("--key must be a variable name"));
    }
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| usage(&format!("{}: {e}", p.display())));
    let dir = absolute(cli.project_dir.as_deref().unwrap_or(Path::new(".")))?;
    if !dir.is_dir() {
        return Err(usage(&format!("--project-dir {}: not a directory", dir.display())));
    }
    let env_file = match &cli.env_file {
        Some(file) => absolute(file)?,
        None => dir.join(".env"),
    };
    let mut global: Vec<OsString> = Vec::new();
    for file in &cli.files {
        global.extend(["-f".into(), absolute(file)?.into_os_string()]);
    }
    global.extend(["--env-file".into(), env_file.clone().into_os_string()]);
    if let Some(name) = &cli.project_name {
        global.extend(["-p".into(), name.into()]);
    }
    global.extend(["--project-directory".into(), dir.clone().into_os_string()]);
    if cli.command_timeout.is_zero() {
        return Err(usage("--command-timeout must be more than 0"));
    }
    let programs = Programs::find(cli.docker.as_deref(), cli.compose_cmd.as_deref(), cli.command_timeout)?;
    Ok(Job {
        plan: Plan {
            mode: cli.mode,
            services: cli.services.clone(),
            key: cli.key.clone(),
            timeout: cli.timeout,
            stop_timeout: cli.stop_timeout,
        },
        env_file,
        runner: Runner {
            programs,
            global,
            dir,
            scrub: cli.key.clone(),
            deadline: cli.command_timeout,
            redactor: Redactor::default(),
        },
        if_stale: cli.if_stale,
        dry_run: cli.dry_run,
        json: cli.json,
    })
}

/// One pass: read the .env, then print the plan, or skip, or recreate and verify. Returns the exit
/// code; `Err` for failures.
fn batch(job: &Job) -> Result<u8, Failure> {
    let expected = recreate::expected_token(&job.env_file, &job.plan.key)?;
    // Everything docker and compose say (their output, the names and states they report) is shown
    // redacted of this token even when it lacks the shape; and, as the last guard, so is every
    // line and message this batch prints.
    let runner = Runner { redactor: Redactor::new([expected.clone()]), ..job.runner.clone() };
    run_batch(job, &runner, &expected)
        .map_err(|failure| Failure::new(failure.code, runner.redactor.redact(&failure.message)))
}

fn run_batch(job: &Job, runner: &Runner, expected: &Secret) -> Result<u8, Failure> {
    let (runner, expected) = (runner.clone(), expected.clone());
    if job.dry_run {
        print_plan(&runner, job, &expected);
        return Ok(EXIT_OK);
    }
    if job.if_stale && recreate::is_current(&runner, &job.plan, &expected)? {
        for service in &job.plan.services {
            emit(job.json, &current_line(job, service, &expected), &runner.redactor);
        }
        log(Level::Info, PROGRAM, format_args!("already current with {expected}: nothing to do"));
        return Ok(EXIT_NOTHING_TO_DO);
    }
    log(
        Level::Info,
        PROGRAM,
        format_args!(
            "{} {} for {expected} ({})",
            job.plan.mode.name(),
            job.plan.services.join(" "),
            compose_name(&runner)
        ),
    );
    let started = Instant::now();
    let verified = recreate::recreate(&runner, &job.plan, &expected).map_err(|failure| {
        // cred-sync may have written a newer token meanwhile: say so rather than blame the compose file.
        match recreate::expected_token(&job.env_file, &job.plan.key) {
            Ok(now) if failure.code == EXIT_MISMATCH && now != expected => Failure::new(
                EXIT_MISMATCH,
                format!(
                    "the .env changed during the recreation (from {expected} to {now}): the new container \
                     may hold either; run again"
                ),
            ),
            _ => failure,
        }
    })?;
    let elapsed = started.elapsed();
    for v in &verified {
        emit(job.json, &verified_line(job, v, &expected, elapsed), &runner.redactor);
    }
    Ok(EXIT_OK)
}

fn compose_name(runner: &Runner) -> String {
    let words: Vec<String> = runner
        .programs
        .compose
        .iter()
        .map(|w| Path::new(w).file_name().unwrap_or(w).to_string_lossy().into_owned())
        .collect();
    words.join(" ")
}

fn print_plan(runner: &Runner, job: &Job, expected: &Secret) {
    let mut text = format!("# in {}:\n", runner.dir.display());
    if job.if_stale {
        text.push_str(
            "# only when a running container lacks the .env's token (checked with compose ps, docker inspect):\n",
        );
    }
    for (_, cmd) in recreate::commands(runner, &job.plan) {
        text.push_str(&shell_line(&cmd));
        text.push('\n');
    }
    let _ = write!(
        text,
        "# then wait up to {} for each new {} container to run (healthy, when it has a healthcheck)\n\
         # and check its {} (docker inspect) against the .env's {expected}\n",
        humantime::format_duration(job.plan.timeout),
        job.plan.services.join("/"),
        job.plan.key,
    );
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Prints a result: the JSON object, or its `text` field, redacted.
fn emit(json: bool, line: &serde_json::Value, redactor: &Redactor) {
    let text = if json { line.to_string() } else { line["text"].as_str().unwrap_or_default().to_owned() };
    let text = redactor.redact(&text);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

fn verified_line(job: &Job, v: &Verified, expected: &Secret, elapsed: Duration) -> serde_json::Value {
    let c = &v.container;
    let text = format!(
        "{}: recreated ({}): container {} ({}) {}; {} {expected} matches the .env ({:.1} s)",
        v.service,
        job.plan.mode.name(),
        c.name,
        c.short_id(),
        c.state(),
        job.plan.key,
        elapsed.as_secs_f64()
    );
    json!({
        "service": v.service, "status": "recreated", "mode": job.plan.mode.name(), "container": c.id,
        "name": c.name, "state": c.status, "health": c.health, "started_at": c.started_at,
        "key": job.plan.key, "fingerprint": expected.to_string(), "elapsed_ms": elapsed.as_millis() as u64,
        "text": text,
    })
}

fn current_line(job: &Job, service: &str, expected: &Secret) -> serde_json::Value {
    let text = format!("{service}: already current: every running container has {} {expected}", job.plan.key);
    json!({"service": service, "status": "current", "key": job.plan.key, "fingerprint": expected.to_string(), "text": text})
}

/// `--stdin`: batches of change lines until stdin closes.
fn watch_stdin(job: Job, cli: &Cli) -> ExitCode {
    let job = Job { if_stale: true, ..job };
    let input = batch::read_stdin();
    let mut batcher = batch::Batcher::new(cli.quiet_period, cli.min_interval);
    let redactor = Redactor::default();
    let mut input_ended = false;
    let mut last_code = EXIT_OK;
    let mut failed_attempts = 0;
    loop {
        let now = Instant::now();
        if let Some(lines) = batcher.take_due(now, input_ended) {
            log(Level::Info, PROGRAM, format_args!("batch of {lines} change line(s)"));
            let result = batch(&job);
            // A batch that found nothing to do, or could not read the .env, recreated nothing.
            let attempted = match &result {
                Ok(code) => *code == EXIT_OK,
                Err(failure) => failure.code != EXIT_ENV_FILE,
            };
            if attempted {
                batcher.ran(now);
            }
            last_code = match result {
                Ok(_) => {
                    failed_attempts = 0;
                    EXIT_OK
                }
                Err(failure) => {
                    log(Level::Error, PROGRAM, format_args!("{}", failure.message));
                    if matches!(failure.code, EXIT_DOCKER | EXIT_NOT_RUNNING) && failed_attempts < cli.retries {
                        failed_attempts += 1;
                        let wait = humantime::format_duration(cli.min_interval);
                        log(
                            Level::Warning,
                            PROGRAM,
                            format_args!("retry {failed_attempts} of {} in {wait}", cli.retries),
                        );
                        batcher.retry(Instant::now());
                    } else {
                        failed_attempts = 0;
                    }
                    failure.code
                }
            };
            continue;
        }
        let due = batcher.due_at(input_ended);
        if input_ended {
            match due {
                None => break,
                Some(due) => std::thread::sleep(due.saturating_duration_since(now)),
            }
            continue;
        }
        let event = match due {
            Some(due) => match input.recv_timeout(due.saturating_duration_since(now)) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => batch::Input::End,
            },
            None => input.recv().unwrap_or(batch::Input::End),
        };
        match event {
            batch::Input::Line(line) => match batch::parse_change(&line, &redactor) {
                Ok(Some(change)) if !change.restart => log(
                    Level::Info,
                    PROGRAM,
                    format_args!("change: {}: the running gateway took it live; no recreation", change.summary),
                ),
                Ok(Some(change)) => {
                    log(Level::Info, PROGRAM, format_args!("change: {}", change.summary));
                    batcher.line(Instant::now());
                }
                Ok(None) => {}
                Err(problem) => log(Level::Warning, PROGRAM, format_args!("ignoring a stdin line: {problem}")),
            },
            batch::Input::TooLong => {
                let max = batch::MAX_LINE_BYTES / 1024;
                log(Level::Warning, PROGRAM, format_args!("ignoring a stdin line longer than {max} KiB"));
            }
            batch::Input::Error(e) => {
                log(Level::Error, PROGRAM, format_args!("cannot read stdin: {e}"));
                input_ended = true;
            }
            batch::Input::End => input_ended = true,
        }
    }
    ExitCode::from(last_code)
}
