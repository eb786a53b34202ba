//! `cli-poke --direct`: the fallback for when the Claude CLI cannot be run. cli-poke refreshes
//! the token at the token endpoint itself, as a second pair of hands on the CLI's own file: the
//! same locks, taken in the CLI's order (`lockdir`, as for `--force`), the file re-read under
//! them, the same request the CLI sends, the answer written back into the same file. So the token
//! family stays one: whoever refreshes next (the CLI or this) reads the refresh token the last
//! refresh wrote (docs/HOW-TOKEN-REFRESH-WORKS.md, "The direct refresh").
//!
//! The request, as CLI 2.1.332 sends it (docs/UPSTREAM.md, "Claude Code CLI"): `POST` JSON
//! `{"grant_type":"refresh_token","refresh_token":…,"client_id":…,"scope":"…"}` to
//! `https://platform.claude.com/v1/oauth/token`; the client id is the file's `clientId` when it
//! records one, else the CLI's; the scopes are the CLI's list for a subscription login.
//!
//! Outcomes share cli-poke's: refreshed (0), not due (1), REAUTH on `invalid_grant` (3: the same
//! flag and webhook; no stub is ever written), locks or file unusable (4), "refresh failed, will
//! retry" (7: 429, 5xx, network, timeout after the retries, or an answer that is no token).

use crate::creds::{self, Creds};
use crate::lockdir::LockSet;
use crate::text::human_ms;
use crate::{EXIT_CREDENTIALS, EXIT_NOT_DUE, EXIT_REAUTH, EXIT_REFRESH_FAILED, EXIT_REFRESHED, Settings};
use credmap::{Credential, ExpiresAt, Secret};
use keeper_core::http::Client;
use keeper_core::log::{Level, log};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The CLI's token endpoint (2.1.7 and later; `TOKEN_URL` in 2.1.332's production config).
pub(crate) const DEFAULT_TOKEN_URL: &str = "https://platform.claude.com/v1/oauth/token";
/// The CLI's OAuth client id (`CLIENT_ID` in 2.1.332's production config), sent when the file
/// records no `clientId`.
pub(crate) const DEFAULT_CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
/// The scopes CLI 2.1.332 asks for when it refreshes a subscription login (its `uRn()`: the
/// Claude Code scopes, `user:plugins` with its production config).
pub(crate) const CLI_SCOPES: [&str; 6] = [
    "user:profile",
    "user:inference",
    "user:sessions:claude_code",
    "user:mcp_servers",
    "user:file_upload",
    "user:plugins",
];
/// Scopes of the file the CLI asks for again on top of [`CLI_SCOPES`] (granted later, by scope
/// expansion).
const KEPT_FILE_SCOPES: [&str; 3] = ["user:projects:read", "user:projects:write", "user:privacy_consents:write"];

/// One request's time limit: the CLI's own (30 s), or what is left of `--direct-deadline`.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries in all (the first and 3 more).
const MAX_ATTEMPTS: u32 = 4;
/// Pauses between tries: 1 s, 2 s, 4 s… (each up to half again, at random), at most 20 s…
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(20);
/// ...or what `Retry-After` asks for, at most this.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Not worth a try with less time left than this.
const MIN_ATTEMPT: Duration = Duration::from_millis(500);
/// A live CLI touches its locks every 5 s; so does the direct refresh while it holds them.
const TOUCH_EVERY: Duration = Duration::from_secs(5);

/// The direct refresh's options (flattened into cli-poke's).
// Reason: these doc comments are --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DirectArgs {
    /// Refresh at the token endpoint instead of running the CLI (the fallback for when the CLI
    /// cannot run)
    ///
    /// Under the CLI's locks (taken as --force takes them), inside --direct-window (or with
    /// --force), cli-poke POSTs the CLI's refresh request to --token-url and writes the new tokens
    /// into the CLI's file (atomically, owner, mode and every other key kept). No environment
    /// variable: set in the shared config file it would turn the CLI timer into a direct one.
    /// A third-party program presenting the subscription's refresh token to Anthropic: read the
    /// terms-of-use note in README before choosing it.
    #[arg(long, help_heading = "Direct refresh")]
    direct: bool,

    /// --direct refreshes only when this much or less is left (--force: whatever is left)
    #[arg(long, value_name = "DURATION", env = "KEEPER_DIRECT_WINDOW", help_heading = "Direct refresh")]
    #[arg(default_value = "55m", value_parser = humantime::parse_duration)]
    direct_window: Duration,

    /// The token endpoint --direct posts to (the CLI's)
    #[arg(long, value_name = "URL", env = "KEEPER_TOKEN_URL", help_heading = "Direct refresh")]
    #[arg(default_value = DEFAULT_TOKEN_URL)]
    token_url: String,

    /// The OAuth client id --direct sends when the credentials file records no clientId (the
    /// CLI's)
    #[arg(long, value_name = "ID", env = "KEEPER_CLIENT_ID", help_heading = "Direct refresh")]
    #[arg(default_value = DEFAULT_CLIENT_ID)]
    client_id: String,

    /// Give up a --direct refresh after this long in all (each request: at most 30 s; 429, 5xx
    /// and network errors tried 4 times in all, backing off 1 s, 2 s, 4 s with jitter, or as
    /// Retry-After says, up to 60 s)
    #[arg(long, value_name = "DURATION", env = "KEEPER_DIRECT_DEADLINE", help_heading = "Direct refresh")]
    #[arg(default_value = "90s", value_parser = humantime::parse_duration)]
    direct_deadline: Duration,
}

/// The checked direct-refresh settings.
#[derive(Debug, Clone)]
pub(crate) struct Direct {
    window_ms: i64,
    token_url: String,
    client_id: String,
    deadline: Duration,
}

impl DirectArgs {
    /// The settings, when `--direct` is on.
    pub(crate) fn settings(self) -> Result<Option<Direct>, String> {
        if !self.direct {
            return Ok(None);
        }
        let url = self.token_url.trim();
        let host = url.get(..8).filter(|p| p.eq_ignore_ascii_case("https://")).map(|_| &url[8..]);
        if host.is_none_or(|h| h.is_empty() || h.starts_with(['/', '?', '#'])) {
            return Err("--token-url must be an https:// URL with a host (the refresh token goes in its body)".into());
        }
        let client_id = self.client_id.trim();
        if client_id.is_empty() {
            return Err("--client-id is empty".into());
        }
        if self.direct_deadline < Duration::from_secs(1) {
            return Err("--direct-deadline must be at least 1s".into());
        }
        Ok(Some(Direct {
            window_ms: i64::try_from(self.direct_window.as_millis()).map_err(|_| "--direct-window is too long")?,
            token_url: url.to_owned(),
            client_id: client_id.to_owned(),
            deadline: self.direct_deadline,
        }))
    }
}

fn info(args: std::fmt::Arguments<'_>) {
    log(Level::Info, crate::PROGRAM, args);
}

fn warn(args: std::fmt::Arguments<'_>) {
    log(Level::Warning, crate::PROGRAM, args);
}

fn error(args: std::fmt::Arguments<'_>) {
    log(Level::Error, crate::PROGRAM, args);
}

/// The User-Agent of every token request.
pub(crate) fn user_agent() -> String {
    format!("openclaw-oauth-keeper/{} cli-poke", env!("CARGO_PKG_VERSION"))
}

/// What happened under the locks; acted on (logs, flag, webhook) after they are released.
enum Outcome {
    Refreshed(Box<Refreshed>),
    /// The token changed while we waited for the locks (the CLI refreshed): nothing to do.
    RefreshedMeanwhile(Box<Credential>),
    /// Under the locks the token is no longer due (the clock moved back): nothing to do.
    NotDue,
    LoggedOut(Option<String>),
    Dead {
        why: String,
        refresh: Option<String>,
    },
    Failed {
        why: String,
        refresh: Option<String>,
        expired_for_ms: i64,
    },
    /// The file cannot be used or written (exit 4).
    Unusable(String),
}

struct Refreshed {
    before: Credential,
    access: Secret,
    refresh: Option<Secret>,
    expires_at: ExpiresAt,
    login_end: Option<(ExpiresAt, bool)>,
}

/// `cli-poke --direct`.
pub(crate) fn run(s: &Settings, d: &Direct) -> u8 {
    let now = keeper_core::clock::now_ms();
    let before = match crate::read_and_judge(s, now, d.window_ms, "--direct") {
        Ok((before, _)) => before,
        Err(code) => return code,
    };

    let locks = match LockSet::for_credentials(&s.creds) {
        Ok(l) => l,
        Err(e) => {
            error(format_args!("--direct: {}: {e}", s.creds.display()));
            return EXIT_CREDENTIALS;
        }
    };
    let waiting = |lock: &std::path::Path, holder: &str| {
        info(format_args!(
            "waiting for the CLI's lock {} ({holder}; another refresh or write is running)",
            lock.display()
        ));
    };
    let held = match locks.acquire(creds::LOCK_PATIENCE, waiting) {
        Ok(h) => h,
        Err(e) => {
            error(format_args!("--direct: {e}; nothing was sent, nothing written"));
            return EXIT_CREDENTIALS;
        }
    };
    let outcome = std::thread::scope(|scope| {
        let (stop, stopped) = mpsc::channel::<()>();
        let paths = [locks.refresh.clone(), locks.legacy.clone(), locks.storage.clone()];
        scope.spawn(move || keep_fresh(&paths, &stopped));
        let outcome = under_locks(s, d, &before);
        drop(stop);
        outcome
    });
    drop(held);
    report(s, outcome)
}

/// Touches the held lock directories every [`TOUCH_EVERY`] until `stop` is dropped, as a live
/// CLI does: the CLI takes a lock over once its mtime is older than its stale time (60 s; 15 s for
/// `.storage-write.lock`), and a direct refresh may hold them longer (retries, `Retry-After`).
fn keep_fresh(paths: &[PathBuf], stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(TOUCH_EVERY) {
        for p in paths {
            if let Err(e) = std::fs::File::open(p).and_then(|f| f.set_modified(SystemTime::now())) {
                warn(format_args!("cannot touch the lock {}: {e}", p.display()));
            }
        }
    }
}

/// Re-reads the file under the locks, refreshes, writes.
fn under_locks(s: &Settings, d: &Direct, first: &Credential) -> Outcome {
    let (mut doc, cred) = match creds::read(&s.creds) {
        Ok((doc, Creds::Credential(c))) => (doc, *c),
        Ok((_, Creds::LoggedOut { login_ended })) => return Outcome::LoggedOut(login_ended),
        Err(e) => return Outcome::Unusable(e),
    };
    let now = keeper_core::clock::now_ms();
    if cred.access_token != first.access_token {
        return Outcome::RefreshedMeanwhile(Box::new(cred));
    }
    if !s.force && cred.expires_at.remaining_ms(now) > d.window_ms {
        return Outcome::NotDue;
    }
    let refresh_fp = crate::refresh_fingerprint(&cred);
    let Some(refresh_token) = cred.refresh_token.clone() else {
        return Outcome::Unusable(format!("{}: no refresh token to refresh with", s.creds.display()));
    };
    let client_id = cred.client_id.clone().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| d.client_id.clone());
    let scope = scope_for(&cred);
    let body = json!({
        "grant_type": "refresh_token",
        "refresh_token": refresh_token.expose(),
        "client_id": client_id,
        "scope": scope,
    })
    .to_string();
    info(format_args!(
        "due: {} {}; refreshing directly at {} with {} (client_id {client_id}, scope \"{scope}\")",
        cred.access_token,
        left_text(cred.expires_at.remaining_ms(now)),
        d.token_url,
        refresh_token
    ));
    let expired_for_ms = -cred.expires_at.remaining_ms(now);
    let tokens = match exchange(d, body.as_bytes()) {
        Answer::Tokens(t) => t,
        Answer::Dead(why) => return Outcome::Dead { why, refresh: refresh_fp },
        Answer::Failed(why) => return Outcome::Failed { why, refresh: refresh_fp, expired_for_ms },
    };
    drop(body);
    let answered = keeper_core::clock::now_ms();
    let expires_at = match ExpiresAt::from_millis(answered.saturating_add(tokens.expires_in_ms)) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Failed {
                why: format!("the token endpoint's expires_in gives no valid expiry ({e})"),
                refresh: refresh_fp,
                expired_for_ms,
            };
        }
    };
    // As the CLI (2.1.332): the earlier of the file's end and the answer's; never added to a file
    // that records none; kept when the answer says nothing. A refresh never extends a login.
    let login_end = match (cred.refresh_token_expires_at, tokens.refresh_expires_in_ms) {
        (Some(old), Some(ms)) => {
            let new = answered.saturating_add(ms);
            Some(if new < old.as_millis() { (ExpiresAt::from_millis(new).unwrap_or(old), true) } else { (old, false) })
        }
        (Some(old), None) => Some((old, false)),
        (None, _) => None,
    };
    let Some(Value::Object(oauth)) = doc.root.get_mut(credmap::claude::KEY) else {
        return Outcome::Unusable(format!("{}: claudeAiOauth vanished", s.creds.display()));
    };
    set(oauth, "accessToken", Value::from(tokens.access.expose()));
    if let Some(r) = &tokens.refresh {
        set(oauth, "refreshToken", Value::from(r.expose()));
    }
    set(oauth, "expiresAt", expires_at.to_json());
    if let Some((end, true)) = login_end {
        set(oauth, "refreshTokenExpiresAt", end.to_json());
    }
    if let Err(e) = creds::write(&s.creds, s.force_write, &doc.to_bytes()) {
        // The endpoint has rotated the refresh token: the one in the file is used up.
        return Outcome::Unusable(format!(
            "{}: the token endpoint issued new tokens ({}{}) but they cannot be written: {e}; the refresh token in \
             the file has been used up, so the next refresh will likely fail (invalid_grant)",
            s.creds.display(),
            tokens.access,
            tokens.refresh.as_ref().map(|r| format!(", {r}")).unwrap_or_default()
        ));
    }
    Outcome::Refreshed(Box::new(Refreshed {
        before: cred,
        access: tokens.access,
        refresh: tokens.refresh,
        expires_at,
        login_end,
    }))
}

/// Sets `key` in place (keeping its position) or appends it.
fn set(obj: &mut serde_json::Map<String, Value>, key: &str, value: Value) {
    match obj.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            obj.insert(key.to_owned(), value);
        }
    }
}

fn left_text(left: i64) -> String {
    if left > 0 { format!("has {} left", human_ms(left)) } else { format!("expired {} ago", human_ms(-left)) }
}

/// Logs the outcome, raises or clears the flag, records or ends the failure streak; the exit code.
fn report(s: &Settings, outcome: Outcome) -> u8 {
    let now = keeper_core::clock::now_ms();
    match outcome {
        Outcome::Refreshed(r) => {
            let refresh = match &r.refresh {
                Some(new) => format!(
                    "refresh token {} -> {new}",
                    r.before.refresh_token.as_ref().map_or_else(|| "(none)".to_owned(), ToString::to_string)
                ),
                None => "refresh token kept (the answer had none)".to_owned(),
            };
            let login = match r.login_end {
                Some((end, true)) => format!("; the login now ends {end} (the answer's end, earlier than the file's)"),
                Some((end, false)) => format!("; the login still ends {end}"),
                None => String::new(),
            };
            info(format_args!(
                "refreshed directly: {} -> {}, {refresh}, expires {} ({} left){login}",
                r.before.access_token,
                r.access,
                r.expires_at,
                human_ms(r.expires_at.remaining_ms(now))
            ));
            s.reauth.clear_after_refresh();
            s.failing.clear("the token refreshed again");
            EXIT_REFRESHED
        }
        Outcome::RefreshedMeanwhile(c) => {
            info(format_args!(
                "refreshed meanwhile by whoever held the lock: {} expires {} ({}); nothing sent",
                c.access_token,
                c.expires_at,
                left_text(c.expires_at.remaining_ms(now))
            ));
            s.reauth.check_when_not_due(&c);
            s.failing.clear("the token refreshed again");
            EXIT_REFRESHED
        }
        Outcome::NotDue => {
            info(format_args!("not due any more under the lock; nothing sent"));
            if s.not_due_ok { EXIT_REFRESHED } else { EXIT_NOT_DUE }
        }
        Outcome::LoggedOut(login_ended) => {
            let why = creds::logged_out_reason(
                login_ended.as_deref(),
                "the credentials file holds the logged-out stub: the last refresh failed",
            );
            s.reauth.raise(&why, None, now);
            EXIT_REAUTH
        }
        Outcome::Dead { why, refresh } => {
            s.reauth.raise(&why, refresh.as_deref(), now);
            EXIT_REAUTH
        }
        Outcome::Failed { why, refresh, expired_for_ms } => {
            s.failing.record(&format!("direct refresh: {why}"), refresh.as_deref(), expired_for_ms, now);
            EXIT_REFRESH_FAILED
        }
        Outcome::Unusable(why) => {
            error(format_args!("--direct: {why}"));
            EXIT_CREDENTIALS
        }
    }
}

/// The scope list the CLI (2.1.332) sends: for a subscription login without a client id of its
/// own, its list plus the file's later-granted scopes; otherwise the file's scopes, or its list
/// when the file records none.
pub(crate) fn scope_for(c: &Credential) -> String {
    let subscription = c.scopes.iter().any(|s| s == "user:inference") || c.subscription_type.is_some();
    let mut list: Vec<String> = if c.client_id.is_none() && subscription {
        CLI_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(c.scopes.iter().filter(|s| KEPT_FILE_SCOPES.contains(&s.as_str())).cloned())
            .collect()
    } else if c.scopes.is_empty() {
        CLI_SCOPES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        c.scopes.clone()
    };
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.clone()));
    list.join(" ")
}

/// What the token endpoint's answers came to.
enum Answer {
    Tokens(Tokens),
    /// `invalid_grant`: the refresh token is dead.
    Dead(String),
    /// Anything else: no new token; the file is untouched.
    Failed(String),
}

/// A token answer.
#[derive(Debug)]
pub(crate) struct Tokens {
    pub(crate) access: Secret,
    pub(crate) refresh: Option<Secret>,
    pub(crate) expires_in_ms: i64,
    pub(crate) refresh_expires_in_ms: Option<i64>,
}

/// POSTs `body`, retrying 429, 5xx and network failures with backoff and jitter (or as
/// `Retry-After` says), within `--direct-deadline`.
fn exchange(d: &Direct, body: &[u8]) -> Answer {
    let started = Instant::now();
    let mut last = String::from("no attempt fitted in --direct-deadline");
    let mut unanswered = false;
    let mut attempts = 0;
    while attempts < MAX_ATTEMPTS {
        let left = d.deadline.saturating_sub(started.elapsed());
        if left < MIN_ATTEMPT {
            break;
        }
        attempts += 1;
        let client = match Client::new(&user_agent(), left.min(ATTEMPT_TIMEOUT)) {
            Ok(c) => c,
            Err(e) => return Answer::Failed(format!("the HTTP client: {e}")),
        };
        let wait = match client.post_json(&d.token_url, body) {
            Ok(r) if r.status == 200 => {
                return match parse_tokens(&r.body) {
                    Ok(t) => Answer::Tokens(t),
                    Err(why) => Answer::Failed(format!(
                        "the token endpoint answered HTTP 200 but {why}; the file is untouched (if the endpoint did \
                         rotate the refresh token, the next refresh fails with invalid_grant)"
                    )),
                };
            }
            Ok(r) if r.status == 429 || r.status >= 500 => {
                last = format!("the token endpoint answered HTTP {}{}", r.status, error_text(&r.body));
                r.retry_after.map_or_else(|| backoff(attempts), |ra| ra.min(RETRY_AFTER_CAP))
            }
            Ok(r) if matches!(r.status, 400 | 401) && oauth_error(&r.body).as_deref() == Some("invalid_grant") => {
                let maybe = if unanswered {
                    "; an earlier try got no answer: if it reached the endpoint, it used the refresh token up"
                } else {
                    ""
                };
                return Answer::Dead(format!(
                    "the token endpoint answered HTTP {}{} to the direct refresh: the refresh token is dead{maybe}",
                    r.status,
                    error_text(&r.body)
                ));
            }
            Ok(r) => {
                return Answer::Failed(format!(
                    "the token endpoint answered HTTP {}{} (not retried: no sign that the login is dead, but the \
                     request was refused; check --token-url and --client-id)",
                    r.status,
                    error_text(&r.body)
                ));
            }
            Err(e) if e.is_transient() => {
                unanswered = true;
                last = format!("the token endpoint: {e}");
                backoff(attempts)
            }
            Err(e) => return Answer::Failed(format!("the token endpoint: {e}")),
        };
        if attempts == MAX_ATTEMPTS {
            break;
        }
        if started.elapsed() + wait + MIN_ATTEMPT > d.deadline {
            let _ = write!(
                last,
                " (no time for another try within --direct-deadline {})",
                humantime::format_duration(d.deadline)
            );
            break;
        }
        warn(format_args!(
            "{last}; trying again in {:.1}s (try {} of {MAX_ATTEMPTS})",
            wait.as_secs_f64(),
            attempts + 1
        ));
        std::thread::sleep(wait);
    }
    Answer::Failed(format!(
        "{last}; gave up after {attempts} {} in {:.1}s",
        if attempts == 1 { "try" } else { "tries" },
        started.elapsed().as_secs_f64()
    ))
}

/// The pause before try `attempt + 1`: 1 s, 2 s, 4 s… up to [`BACKOFF_CAP`], each made up to half
/// longer at random so that two refreshers drift apart.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(10)).min(BACKOFF_CAP);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let frac = f64::from((nanos ^ std::process::id().rotate_left(attempt)) % 1000) / 2000.0;
    base + base.mul_f64(frac)
}

/// The OAuth `error` of an error answer.
fn oauth_error(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match v.get("error")? {
        Value::String(s) => Some(s.clone()),
        // Anthropic's API shape: {"error": {"type": …}}.
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

/// ` invalid_grant (description)` for the log: the error and its description, tokens redacted,
/// cut short.
fn error_text(body: &[u8]) -> String {
    let Some(code) = oauth_error(body) else { return String::new() };
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let description = v.get("error_description").and_then(Value::as_str).map(|d| {
        let d = crate::redact::redact(d);
        let cut = d.char_indices().nth(200).map_or(d.as_str(), |(i, _)| &d[..i]).to_owned();
        format!(" ({cut})")
    });
    let code = crate::redact::redact(&code);
    format!(" {}{}", code.chars().take(60).collect::<String>(), description.unwrap_or_default())
}

/// Checks a 200 answer: `access_token` (a non-empty string), `expires_in` (seconds, > 0),
/// `refresh_token` (absent, or a non-empty string), `refresh_token_expires_in` (absent or
/// seconds). The error never quotes the body.
pub(crate) fn parse_tokens(body: &[u8]) -> Result<Tokens, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_eof() { "cut short" } else { "not JSON" };
        format!("its answer is {what} ({} bytes)", body.len())
    })?;
    let o = v.as_object().ok_or("its answer is not a JSON object")?;
    let token = |key: &str| -> Result<Option<Secret>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(t)) if !t.is_empty() && !t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Ok(Some(Secret::new(t.as_str())))
            }
            Some(_) => Err(format!("its {key} is not a token")),
        }
    };
    let seconds = |key: &str| -> Result<Option<i64>, String> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(f) if f > 0.0 && f < 1e10 => Ok(Some((f * 1000.0).round() as i64)),
                _ => Err(format!("its {key} is not a positive number of seconds")),
            },
            Some(_) => Err(format!("its {key} is not a number")),
        }
    };
    let access = token("access_token")?.ok_or("it has no access_token")?;
    let refresh = token("refresh_token")?;
    let expires_in_ms = seconds("expires_in")?.ok_or("it has no expires_in")?;
    let refresh_expires_in_ms = seconds("refresh_token_expires_in")?;
    Ok(Tokens { access, refresh, expires_in_ms, refresh_expires_in_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(scopes: &[&str], subscription: Option<&str>, client_id: Option<&str>) -> Credential {
        let mut c = Credential::new(
            Secret::new("fake-access-a"),
            Some(Secret::new("fake-refresh-r")),
            ExpiresAt::from_millis(1_767_225_600_000).unwrap(),
        );
        c.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        c.subscription_type = subscription.map(str::to_owned);
        c.client_id = client_id.map(str::to_owned);
        c
    }

    #[test]
    fn scopes_are_the_clis() {
        let all = CLI_SCOPES.join(" ");
        assert_eq!(scope_for(&cred(&["user:inference", "user:profile"], Some("max"), None)), all);
        assert_eq!(
            scope_for(&cred(&["user:inference", "user:projects:read", "user:other"], None, None)),
            format!("{all} user:projects:read")
        );
        // a client id of its own: the file's scopes as they are
        assert_eq!(scope_for(&cred(&["user:inference"], Some("max"), Some("c"))), "user:inference");
        assert_eq!(scope_for(&cred(&[], None, Some("c"))), all);
        assert_eq!(scope_for(&cred(&["org:create_api_key"], None, None)), "org:create_api_key");
    }

    #[test]
    fn answers_are_checked_and_never_quoted() {
        let t = parse_tokens(br#"{"access_token":"fake-access-n","expires_in":28800,"refresh_token":"fake-refresh-m","refresh_token_expires_in":86400}"#).unwrap();
        assert_eq!((t.access.expose(), t.expires_in_ms), ("fake-access-n", 28_800_000));
        assert_eq!((t.refresh.unwrap().expose(), t.refresh_expires_in_ms), ("fake-refresh-m", Some(86_400_000)));
        let t = parse_tokens(br#"{"access_token":"fake-access-n","expires_in":600}"#).unwrap();
        assert!(t.refresh.is_none() && t.refresh_expires_in_ms.is_none());
        for (body, why) in [
            (&br#"{"token_type":"Bearer","access_token":"fake-access-secret"#[..], "cut short"),
            (b"<html>fake-access-secret</html>", "not JSON"),
            (br#"["fake-access-secret"]"#, "not a JSON object"),
            (br#"{"access_token":"fake-access-secret"}"#, "no expires_in"),
            (br#"{"access_token":"","expires_in":1}"#, "access_token is not a token"),
            (br#"{"access_token":"fake-access-secret","expires_in":"8h"}"#, "expires_in is not a number"),
            (br#"{"access_token":"fake-access-secret","expires_in":0}"#, "not a positive"),
            (br#"{"access_token":"fake-access-secret","expires_in":1,"refresh_token":7}"#, "refresh_token"),
        ] {
            let err = parse_tokens(body).unwrap_err();
            assert!(err.contains(why), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn errors_are_read_from_both_shapes_and_redacted() {
        assert_eq!(oauth_error(br#"{"error":"invalid_grant"}"#).as_deref(), Some("invalid_grant"));
        assert_eq!(oauth_error(br#"{"error":{"type":"rate_limit_error"}}"#).as_deref(), Some("rate_limit_error"));
        assert_eq!(oauth_error(b"oops"), None);
        let t = error_text(br#"{"error":"invalid_grant","error_description":"sk-ant-ort01-abcdefghijklmnopqrstuvwxyz0123456789 is dead"}"#);
        assert!(t.starts_with(" invalid_grant (") && !t.contains("abcdefghij"), "{t}");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for (n, lo) in [(1, 1), (2, 2), (3, 4), (9, 20)] {
            let d = backoff(n);
            let lo = Duration::from_secs(lo);
            assert!(d >= lo && d <= lo + lo / 2, "{n}: {d:?}");
        }
    }

    #[test]
    fn the_token_url_must_be_https() {
        let args = |url: &str| DirectArgs {
            direct: true,
            direct_window: Duration::from_secs(3300),
            token_url: url.to_owned(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            direct_deadline: Duration::from_secs(90),
        };
        assert!(args("http://platform.claude.com/v1/oauth/token").settings().is_err());
        assert!(args("https:///v1/oauth/token").settings().is_err());
        let d = args(DEFAULT_TOKEN_URL).settings().unwrap().unwrap();
        assert_eq!(d.window_ms, 3_300_000);
        assert!(DirectArgs { direct: false, ..args("nonsense") }.settings().unwrap().is_none());
    }
}
