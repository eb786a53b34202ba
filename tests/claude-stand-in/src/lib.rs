//! A stand-in for the Claude Code CLI (`claude`): a **test fixture**, never installed.
//!
//! It behaves as docs/UPSTREAM.md ("Claude Code CLI") describes the real CLI, as far as the credentials file is concerned:
//!
//! - `claude --version` and `claude auth status` never refresh.
//! - `claude -p PROMPT` (or `--print PROMPT`) reads `$CLAUDE_CONFIG_DIR/.credentials.json`
//!   (default `~/.claude/.credentials.json`). When `now + 5 min < expiresAt` it just answers
//!   (`ok` on stdout, exit 0). Otherwise it takes the lock directories
//!   `$CLAUDE_CONFIG_DIR/.oauth_refresh.lock`, then `${CLAUDE_CONFIG_DIR}.lock`, as 2.1.332 does
//!   (`mkdir`; stale after 10 s by its mtime; retried while a live holder has it), re-reads the
//!   file under the lock, and refreshes at the simulated token endpoint ([`server`]): both tokens
//!   rotate, `expiresAt = now + expires_in`, every other field and top-level key is kept. Then it
//!   answers. Every write of the file is made under `$CLAUDE_CONFIG_DIR/.storage-write.lock`.
//! - When the refresh fails (`invalid_grant`): by default (2.1.197) it writes the logged-out stub
//!   (empty tokens, `expiresAt: 0`, scopes and subscription type kept; only if the file still holds
//!   the refresh token that failed), prints the `invalid_grant` error and `Not logged in · Please
//!   run /login` on stdout and exits 1. With `CLAUDE_STAND_IN_ON_FAILURE=keep` (2.1.112) it leaves
//!   the file alone and, once the access token has expired, prints the `401 … OAuth token has
//!   expired` error and exits 1 (while the access token is still valid it answers).
//! - When the token endpoint fails (`CLAUDE_STAND_IN_ENDPOINT_DOWN=1`: HTTP 500) every build
//!   leaves the file alone and, once the access token has expired, prints the same `401 … OAuth
//!   token has expired` as 2.1.112 does for a dead token, exit 1: a transient failure looks like
//!   a lost login in the output.
//! - `--debug-file PATH` (as the real CLI) appends debug lines to PATH; a failed token request is
//!   logged as 2.1.112 does, `[ERROR] AxiosError: [url=https://platform.claude.com/v1/oauth/token,status=400]`
//!   (or `status=500`): the only place that build tells a dead login from a failing endpoint.
//! - With a missing file or the stub on disk it prints `Not logged in · Please run /login`, exit 1.
//!
//! "Now" is `keeper_core::clock::now_ms()`, so `KEEPER_FAKE_CLOCK_FILE` moves its clock together
//! with the tools'. Lock staleness and the delay knobs use real time.
//!
//! # Knobs (environment variables)
//!
//! | variable | effect |
//! |---|---|
//! | `CLAUDE_CONFIG_DIR` | config dir, as the real CLI (default `~/.claude`) |
//! | `CLAUDE_SECURESTORAGE_CONFIG_DIR` | where the credentials file and its locks live instead, as 2.1.332 |
//! | `CLAUDE_STAND_IN_WRITE` | `rename` (default; 2.1.197: `.credentials.json.tmp.<8 hex>`, mode 0600, renamed over the file) or `in-place` (2.1.112: `O_TRUNC`, one `write`, then `chmod 0600`). Neither fsyncs. |
//! | `CLAUDE_STAND_IN_ON_FAILURE` | `stub` (default, 2.1.197) or `keep` (2.1.112), see above |
//! | `CLAUDE_STAND_IN_QUIET_FAILURE=1` | print nothing when the refresh fails (only the file tells) |
//! | `CLAUDE_STAND_IN_DEAD=1` | the refresh token is dead: every refresh is `invalid_grant` |
//! | `CLAUDE_STAND_IN_ENDPOINT_DOWN=1` | the token endpoint answers 500: no refresh, the file untouched (whatever `CLAUDE_STAND_IN_ON_FAILURE` says) |
//! | `CLAUDE_STAND_IN_EXPIRES_IN` | access-token lifetime in seconds (default 28800); the server state's `expires_in` wins |
//! | `CLAUDE_STAND_IN_SERVER` | state file of the simulated token endpoint ([`server`]: rotation, reuse counting, 30-day family expiry); unset: every refresh succeeds |
//! | `CLAUDE_STAND_IN_DELAY_MS` | the token endpoint takes this long: the lock is held that long during a refresh (its mtime kept fresh) |
//! | `CLAUDE_STAND_IN_SLEEP_MS` | sleep this long before doing anything (a hung CLI) |
//! | `CLAUDE_STAND_IN_CHILD_PIDFILE` | first start a grandchild (`sleep 3600`, same process group, holding stdout) and write its pid here |
//! | `CLAUDE_STAND_IN_LOCK_WAIT_MS` | how long to wait for a busy lock (default 5000); then no refresh: 401 if expired, else answer |
//! | `CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API=1` | when `ANTHROPIC_BASE_URL` points anywhere but `api.anthropic.com`, fail with a connection error before refreshing (a proxy that does not pass the CLI through) |
//! | `CLAUDE_STAND_IN_LOG` | append one JSON line per invocation (below) |
//!
//! # The call log
//!
//! One JSON object per line, written when the stand-in exits: `pid`, `at_ms` (its clock),
//! `args`, `config_dir`, `anthropic_base_url` (or null), `max_retries` (`CLAUDE_CODE_MAX_RETRIES`
//! or null), `token_env` (names of token-carrying variables present, such as
//! `CLAUDE_CODE_OAUTH_TOKEN`), `token_shaped_env` (names of variables whose value holds an
//! `sk-ant-` string), `token_shaped_args` (bool), `outcome` and `exit`. `outcome` is one of
//! `version`, `auth-status`, `answered`, `refreshed`, `refresh-failed`, `refresh-failed-answered`,
//! `lock-busy`, `lock-busy-answered`, `not-logged-in`, `invalid-credentials`, `api-unreachable`,
//! `error`, `usage`.

mod lock;
pub mod server;
pub mod tokens;

use credmap::claude::{self, OauthState};
use credmap::json::Document;
use credmap::{Credential, ExpiresAt, Secret};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The version `--version` reports.
pub const VERSION: &str = "2.1.197";
/// The CLI refreshes when `now + REFRESH_WINDOW_MS >= expiresAt`.
pub const REFRESH_WINDOW_MS: i64 = 5 * 60 * 1000;
/// What a logged-out CLI prints (2.1.197).
pub const NOT_LOGGED_IN: &str = "Not logged in · Please run /login";
/// The token endpoint's answer to a dead refresh token, as the CLI reports it.
pub const INVALID_GRANT: &str =
    r#"OAuth token refresh failed: 400 {"error":"invalid_grant","error_description":"Invalid refresh token"}"#;
/// What 2.1.112 prints when its access token expired and the refresh failed.
pub const EXPIRED_401: &str = r#"Failed to authenticate. API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired. Please obtain a new token or refresh your existing token."},"request_id":"req_011CStandIn"}"#;

/// How the credentials file is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStyle {
    /// 2.1.112: truncate and write the same inode.
    InPlace,
    /// 2.1.197: temp file and rename.
    Rename,
}

/// What a failed refresh does to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStyle {
    /// 2.1.197: write the logged-out stub.
    Stub,
    /// 2.1.112: leave the file as it was.
    Keep,
}

/// The knobs, read from the environment.
#[derive(Debug, Clone)]
struct Knobs {
    config_dir: PathBuf,
    write: WriteStyle,
    on_failure: FailureStyle,
    quiet_failure: bool,
    dead: bool,
    endpoint_down: bool,
    expires_in: u64,
    server: Option<PathBuf>,
    delay: Duration,
    sleep: Duration,
    child_pidfile: Option<PathBuf>,
    lock_wait: Duration,
    require_anthropic_api: bool,
    call_log: Option<PathBuf>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn flag(name: &str) -> bool {
    var(name).is_some_and(|v| v != "0")
}

fn millis(name: &str, default: u64) -> Result<Duration, String> {
    var(name).map_or(Ok(Duration::from_millis(default)), |v| {
        v.parse().map(Duration::from_millis).map_err(|_| format!("{name}={v}: not a number of milliseconds"))
    })
}

impl Knobs {
    fn from_env() -> Result<Self, String> {
        let write = match var("CLAUDE_STAND_IN_WRITE").as_deref() {
            None | Some("rename") => WriteStyle::Rename,
            Some("in-place") => WriteStyle::InPlace,
            Some(other) => return Err(format!("CLAUDE_STAND_IN_WRITE={other}: want rename or in-place")),
        };
        let on_failure = match var("CLAUDE_STAND_IN_ON_FAILURE").as_deref() {
            None | Some("stub") => FailureStyle::Stub,
            Some("keep") => FailureStyle::Keep,
            Some(other) => return Err(format!("CLAUDE_STAND_IN_ON_FAILURE={other}: want stub or keep")),
        };
        let expires_in = match var("CLAUDE_STAND_IN_EXPIRES_IN") {
            None => server::DEFAULT_EXPIRES_IN,
            Some(v) => v.parse().map_err(|_| format!("CLAUDE_STAND_IN_EXPIRES_IN={v}: not a number of seconds"))?,
        };
        Ok(Self {
            // As 2.1.332: the credentials file and its locks live in CLAUDE_SECURESTORAGE_CONFIG_DIR
            // when that is set.
            config_dir: var("CLAUDE_SECURESTORAGE_CONFIG_DIR")
                .or_else(|| var("CLAUDE_CONFIG_DIR"))
                .map_or_else(|| keeper_core::paths::home().join(".claude"), PathBuf::from),
            write,
            on_failure,
            quiet_failure: flag("CLAUDE_STAND_IN_QUIET_FAILURE"),
            dead: flag("CLAUDE_STAND_IN_DEAD"),
            endpoint_down: flag("CLAUDE_STAND_IN_ENDPOINT_DOWN"),
            expires_in,
            server: var("CLAUDE_STAND_IN_SERVER").map(PathBuf::from),
            delay: millis("CLAUDE_STAND_IN_DELAY_MS", 0)?,
            sleep: millis("CLAUDE_STAND_IN_SLEEP_MS", 0)?,
            child_pidfile: var("CLAUDE_STAND_IN_CHILD_PIDFILE").map(PathBuf::from),
            lock_wait: millis("CLAUDE_STAND_IN_LOCK_WAIT_MS", 5000)?,
            require_anthropic_api: flag("CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API"),
            call_log: var("CLAUDE_STAND_IN_LOG").map(PathBuf::from),
        })
    }

    fn credentials(&self) -> PathBuf {
        self.config_dir.join(".credentials.json")
    }
}

const TOKEN_VARS: [&str; 5] = [
    "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_REFRESH_TOKEN",
];

fn log_call(knobs: &Knobs, args: &[OsString], outcome: &str, exit: u8) {
    let Some(path) = &knobs.call_log else { return };
    let holds_token = |s: &str| s.contains("sk-ant-");
    let record = json!({
        "pid": std::process::id(),
        "at_ms": keeper_core::clock::now_ms(),
        "args": args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "config_dir": knobs.config_dir,
        "anthropic_base_url": std::env::var("ANTHROPIC_BASE_URL").ok(),
        "max_retries": std::env::var("CLAUDE_CODE_MAX_RETRIES").ok(),
        "token_env": TOKEN_VARS.iter().filter(|v| std::env::var_os(v).is_some()).collect::<Vec<_>>(),
        "token_shaped_env": std::env::vars_os()
            .filter(|(_, v)| holds_token(&v.to_string_lossy()))
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect::<Vec<_>>(),
        "token_shaped_args": args.iter().any(|a| holds_token(&a.to_string_lossy())),
        "outcome": outcome,
        "exit": exit,
    });
    let line = format!("{record}\n");
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Runs the stand-in with the process's arguments and environment.
#[must_use]
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let knobs = match Knobs::from_env() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("claude stand-in: {e}");
            return ExitCode::from(2);
        }
    };
    let strs: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let (exit, outcome) = match strs.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--version" | "-v", ..] => {
            println!("{VERSION} (Claude Code stand-in)");
            (0, "version")
        }
        ["auth", "status", ..] => auth_status(&knobs),
        rest if prompt_of(rest).is_some() => print_mode(&knobs, debug_file_of(rest).as_deref()).unwrap_or_else(|e| {
            println!("Error: {e}");
            (1, "error")
        }),
        _ => {
            eprintln!("claude stand-in: supports only -p PROMPT, --version and auth status");
            (2, "usage")
        }
    };
    let _ = io::stdout().flush();
    log_call(&knobs, &args, outcome, exit);
    ExitCode::from(exit)
}

/// The prompt of `-p PROMPT` / `--print PROMPT` / `--print=PROMPT`.
fn prompt_of<'a>(args: &[&'a str]) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-p" | "--print" => return Some(it.next().copied().unwrap_or("")),
            _ => {
                if let Some(p) = a.strip_prefix("--print=") {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// The path of `--debug-file PATH` / `--debug-file=PATH`.
fn debug_file_of(args: &[&str]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if *a == "--debug-file" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--debug-file=") {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// Appends one line to the debug file, as `[ERROR] …` lines look in 2.1.112's.
fn debug_line(file: Option<&Path>, line: &str) {
    let Some(file) = file else { return };
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).mode(0o600).open(file) {
        let _ = writeln!(
            f,
            "{} [ERROR] {line}",
            ExpiresAt::from_millis(keeper_core::clock::now_ms()).map_or_else(|_| "?".into(), |e| e.to_string())
        );
    }
}

fn auth_status(knobs: &Knobs) -> (u8, &'static str) {
    let logged_in = matches!(load(&knobs.credentials()), Loaded::Credential(..));
    println!("{}", json!({"loggedIn": logged_in, "authMethod": if logged_in { "claude.ai" } else { "none" }}));
    (u8::from(!logged_in), "auth-status")
}

enum Loaded {
    Credential(Document, Box<Credential>),
    LoggedOut,
    Missing,
    Invalid(String),
}

/// The credentials, or what the CLI prints and the (exit code, outcome) it ends with when there
/// are none to use.
fn load_logged_in(path: &Path) -> Result<(Document, Box<Credential>), (u8, &'static str)> {
    match load(path) {
        Loaded::Credential(doc, cred) => Ok((doc, cred)),
        Loaded::LoggedOut | Loaded::Missing => {
            println!("{NOT_LOGGED_IN}");
            Err((1, "not-logged-in"))
        }
        Loaded::Invalid(e) => {
            println!("Error: cannot read credentials: {e}");
            Err((1, "invalid-credentials"))
        }
    }
}

fn load(path: &Path) -> Loaded {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(e) => return Loaded::Invalid(e.to_string()),
    };
    let doc = match claude::parse(&bytes) {
        Ok(d) => d,
        Err(e) => return Loaded::Invalid(e.to_string()),
    };
    match claude::read(&doc) {
        Ok(OauthState::Credential(c)) => Loaded::Credential(doc, Box::new(c)),
        Ok(OauthState::LoggedOut { .. }) => Loaded::LoggedOut,
        Err(e) => Loaded::Invalid(e.to_string()),
    }
}

fn due(cred: &Credential, now_ms: i64) -> bool {
    now_ms + REFRESH_WINDOW_MS >= cred.expires_at.as_millis()
}

fn base_url_elsewhere() -> bool {
    let Some(url) = var("ANTHROPIC_BASE_URL") else { return false };
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let host = rest.split(['/', ':', '?']).next().unwrap_or("");
    !host.eq_ignore_ascii_case("api.anthropic.com")
}

/// `-p PROMPT`: refresh when due, then answer.
fn print_mode(knobs: &Knobs, debug_file: Option<&Path>) -> io::Result<(u8, &'static str)> {
    if let Some(pidfile) = &knobs.child_pidfile {
        let child = std::process::Command::new("sleep").arg("3600").stdin(std::process::Stdio::null()).spawn()?;
        fs::write(pidfile, format!("{}\n", child.id()))?;
    }
    std::thread::sleep(knobs.sleep);
    let path = knobs.credentials();
    let (_, cred) = match load_logged_in(&path) {
        Ok(loaded) => loaded,
        Err(outcome) => return Ok(outcome),
    };
    if knobs.require_anthropic_api && base_url_elsewhere() {
        println!("API Error: Connection error.");
        return Ok((1, "api-unreachable"));
    }
    if !due(&cred, keeper_core::clock::now_ms()) {
        println!("ok");
        return Ok((0, "answered"));
    }

    let Some(held) = lock::acquire_refresh(&knobs.config_dir, knobs.lock_wait)? else {
        // Someone else is refreshing: carry on with what is on disk.
        return Ok(match load(&path) {
            Loaded::Credential(_, c) if !c.is_expired(keeper_core::clock::now_ms()) => {
                println!("ok");
                (0, "lock-busy-answered")
            }
            _ => {
                println!("{EXPIRED_401}");
                (1, "lock-busy")
            }
        });
    };
    // Re-read under the lock: another process may have refreshed meanwhile.
    let (doc, cred) = match load_logged_in(&path) {
        Ok(loaded) => loaded,
        Err(outcome) => return Ok(outcome),
    };
    if !due(&cred, keeper_core::clock::now_ms()) {
        drop(held);
        println!("ok");
        return Ok((0, "answered"));
    }
    refresh(knobs, debug_file, &path, (doc, cred), held)
}

/// Under the lock, with the file due: asks the endpoint and writes what the build writes.
fn refresh(
    knobs: &Knobs,
    debug_file: Option<&Path>,
    path: &Path,
    (mut doc, cred): (Document, Box<Credential>),
    held: lock::RefreshLocks,
) -> io::Result<(u8, &'static str)> {
    held.hold_for(knobs.delay);
    let presented = cred.refresh_token.clone().unwrap_or_else(|| Secret::new(""));
    let now = keeper_core::clock::now_ms();
    let answer = request_refresh(knobs, &presented, now)?;
    if let Err(status) = &answer {
        debug_line(
            debug_file,
            &format!(
                "AxiosError: [url=https://platform.claude.com/v1/oauth/token,status={status}] AxiosError: Request failed with status code {status}"
            ),
        );
    }
    if answer.as_ref().is_err_and(|status| *status >= 500) {
        // Every build leaves the file alone when the endpoint fails.
        drop(held);
        return Ok(if cred.is_expired(keeper_core::clock::now_ms()) {
            if !knobs.quiet_failure {
                println!("{EXPIRED_401}");
            }
            (1, "refresh-failed")
        } else {
            println!("ok");
            (0, "refresh-failed-answered")
        });
    }
    match answer {
        Ok(grant) => {
            let mut fresh = (*cred).clone();
            fresh.access_token = Secret::new(grant.access_token);
            fresh.refresh_token = Some(Secret::new(grant.refresh_token));
            fresh.expires_at = ExpiresAt::from_millis(now.saturating_add(server::secs_to_ms(grant.expires_in)))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            claude::write(&mut doc, &fresh);
            locked_write(knobs, path, &doc.to_bytes())?;
            drop(held);
            println!("ok");
            Ok((0, "refreshed"))
        }
        Err(_) => match knobs.on_failure {
            FailureStyle::Stub => {
                // Only when the file still holds the refresh token that failed.
                if let Loaded::Credential(mut doc, c) = load(path) {
                    if c.refresh_token.as_ref() == Some(&presented) {
                        write_stub(&mut doc);
                        locked_write(knobs, path, &doc.to_bytes())?;
                    }
                }
                drop(held);
                if !knobs.quiet_failure {
                    println!("{INVALID_GRANT}");
                    println!("{NOT_LOGGED_IN}");
                }
                Ok((1, "refresh-failed"))
            }
            FailureStyle::Keep => {
                drop(held);
                if cred.is_expired(keeper_core::clock::now_ms()) {
                    if !knobs.quiet_failure {
                        println!("{EXPIRED_401}");
                    }
                    Ok((1, "refresh-failed"))
                } else {
                    println!("ok");
                    Ok((0, "refresh-failed-answered"))
                }
            }
        },
    }
}

/// Asks the simulated endpoint: a grant, or the HTTP status it failed with (400 for a dead
/// refresh token, 500 when the endpoint is down). The outer error is an I/O problem with the
/// state file.
fn request_refresh(knobs: &Knobs, presented: &Secret, now: i64) -> io::Result<Result<server::Grant, u16>> {
    if knobs.endpoint_down {
        return Ok(Err(500));
    }
    let answer = match &knobs.server {
        None if knobs.dead => Ok(Err("refresh token dead".to_owned())),
        None => Ok(Ok(server::Grant {
            access_token: tokens::access_token(),
            refresh_token: tokens::refresh_token(),
            expires_in: knobs.expires_in,
        })),
        Some(state) => server::update(state, |s| {
            if knobs.dead {
                s.record_dead(presented.expose(), now);
                Err("refresh token dead".into())
            } else {
                s.refresh(presented.expose(), now, knobs.expires_in)
            }
        }),
    };
    answer.map(|r| r.map_err(|_| 400))
}

/// The logged-out stub: empty tokens, `expiresAt: 0`, scopes and subscription type kept.
fn write_stub(doc: &mut Document) {
    if let Some(Value::Object(oauth)) = doc.root.get_mut(claude::KEY) {
        oauth.retain(|k, _| {
            matches!(k.as_str(), "accessToken" | "refreshToken" | "expiresAt" | "scopes" | "subscriptionType")
        });
        oauth.insert("accessToken".into(), json!(""));
        oauth.insert("refreshToken".into(), json!(""));
        oauth.insert("expiresAt".into(), json!(0));
    }
}

/// Writes the credentials file the way the chosen CLI version does; no fsync, like both.
/// Writes the credentials file under `.storage-write.lock`, as 2.1.332 does.
fn locked_write(knobs: &Knobs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let _storage = lock::acquire_storage(&knobs.config_dir, knobs.lock_wait)?;
    write_file(knobs.write, path, bytes)
}

fn write_file(style: WriteStyle, path: &Path, bytes: &[u8]) -> io::Result<()> {
    match style {
        WriteStyle::InPlace => {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
            f.write_all(bytes)?;
            drop(f);
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        }
        WriteStyle::Rename => {
            let mut tmp = path.as_os_str().to_owned();
            tmp.push(format!(".tmp.{}", tokens::hex8()));
            let tmp = PathBuf::from(tmp);
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(bytes)?;
            drop(f);
            fs::rename(&tmp, path).inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_forms() {
        assert_eq!(prompt_of(&["-p", "say ok"]), Some("say ok"));
        assert_eq!(prompt_of(&["--model", "x", "--print", "hi"]), Some("hi"));
        assert_eq!(prompt_of(&["--print=hi"]), Some("hi"));
        assert_eq!(prompt_of(&["chat"]), None);
    }
}
