//! The control-loop simulation: 30 simulated days of 8-hour tokens, the real binaries, one fake
//! clock (`KEEPER_FAKE_CLOCK_FILE`) shared by `cli-poke`, `cred-sync` and the `claude` stand-in,
//! one simulated token endpoint (the stand-in's server state: rotation, reuse detection,
//! revoke-the-family-on-reuse). Two policies run in worlds of their own:
//!
//! - **ours**: a timer every 2 minutes (`AccuracySec=1s`: each run 0–1 s late) runs
//!   `cli-poke --not-due-ok`, which runs the CLI only in its 5-minute window; after every CLI write
//!   `cred-sync` copies the **access token only** into OpenClaw's `oauth.json` (the shipped unit
//!   runs `cred-sync --watch`; here it runs once right after the write, at the same instant).
//! - **the first seed**: a timer every 30 minutes (an arbitrary phase against the login) runs
//!   `claude -p 'say ok'` when under 1.5 h remain; the CLI call reaches the token endpoint 1–5 s
//!   after the timer fires (the trigger script's expiry check, the CLI's start-up: without it
//!   every refresh would land exactly on the 30-minute grid and the race below would be a tie).
//!   After every CLI write the sync copies **both tokens** (`cred-sync --share-refresh-token`, the
//!   seed's field mapping), and OpenClaw refreshes by itself the moment its copy expires (a busy
//!   gateway), with the refresh token it holds, at the same endpoint.
//!
//! The consumer is the `oauth.json` file. Its copy counts as expired from the moment the token in
//! it expires (by the endpoint's record of what it issued) until a valid one replaces it; the
//! copy changes only at the simulated instants below, so the integral between them is exact.
//!
//! REAUTH: an episode opens when the CLI's file holds the logged-out stub, `cli-poke` exits 3, or
//! the consumer's own refresh is refused; a human logs in 1–3 h later (a new refresh-token family),
//! which ends it. The login's family lives 31 days: the family's absolute end (~30 days after a
//! browser login) needs a human under any policy and is tested in `tests/reauth.rs`; here it lies
//! just past the simulated month, so the figures measure the policies, not the calendar.
//!
//! Time jumps from one instant that can change something to the next: a timer run, the
//! consumer's expiry (when it holds a refresh token), a human login. Every timer run of both
//! policies is executed with the real binaries — none is skipped: 21 600 `cli-poke` runs for ours.

mod common;

use claude_stand_in::server::{self, State};
use claude_stand_in::tokens;
use common::{HOUR, MINUTE, SECOND, cred_sync, has_token_shape, stand_in};
use credmap::Fingerprint;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DAY: i64 = 24 * HOUR;
/// The login: 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
/// How long, unless `KEEPER_SIM_DAYS` says otherwise (for exploring; the acceptance is 30).
const SIMULATED_DAYS: i64 = 30;
/// The stand-in's `expires_in` (28 800 s, as measured from the real endpoint).
const TOKEN_LIFETIME: i64 = 8 * HOUR;
const FAMILY_LIFETIME: i64 = 31 * DAY;
const HUMAN_RESPONSE: (i64, i64) = (HOUR, 3 * HOUR);
/// The random generator's seed, unless `KEEPER_SIM_SEED` gives another (for exploring).
const SEED: u64 = 0x5eed_2026_0104;

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().filter(|v| !v.is_empty()).map_or(default, |v| {
        let v = v.trim();
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        };
        parsed.unwrap_or_else(|_| panic!("{name}={v}: not a number"))
    })
}

/// The simulated span.
fn simulated() -> i64 {
    i64::try_from(knob("KEEPER_SIM_DAYS", SIMULATED_DAYS.unsigned_abs())).expect("KEEPER_SIM_DAYS: too many") * DAY
}

/// A small xorshift generator: a fixed seed makes every run the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[lo, hi)`.
    fn between(&mut self, (lo, hi): (i64, i64)) -> i64 {
        lo + i64::try_from(self.next() % (hi - lo) as u64).expect("below hi - lo")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Ours,
    Seed,
}

impl Policy {
    fn short(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Seed => "first seed",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Ours => {
                "cli-poke --not-due-ok every 2 min (+0-1 s), cred-sync after each CLI write, access token only"
            }
            Self::Seed => {
                "claude -p every 30 min (+1-5 s) when < 1.5 h left, sync of both tokens, OpenClaw refreshes at expiry"
            }
        }
    }

    /// Timer period and how late each run lands after its grid point.
    fn timer(self) -> (i64, (i64, i64)) {
        match self {
            Self::Ours => (2 * MINUTE, (0, SECOND)),
            Self::Seed => (30 * MINUTE, (SECOND, 5 * SECOND)),
        }
    }
}

#[derive(Debug, Default)]
struct Figures {
    expired_ms: i64,
    /// Expired, or issued by a family the endpoint has revoked (if revoking a family kills its
    /// access tokens too, which is not known for Anthropic's endpoint).
    unusable_ms: i64,
    cli_invocations: usize,
    refreshes: u64,
    /// Of those, by OpenClaw itself.
    consumer_refreshes: u64,
    reuses: u64,
    rejections: u64,
    reauth_episodes: u32,
    timer_runs: u64,
    syncs: u64,
    /// Least time left on the consumer's copy when a new token replaced it.
    least_left_at_handover_ms: Option<i64>,
    /// Unexpected exit codes, with the simulated time and the program's last lines.
    anomalies: Vec<String>,
    wall: Duration,
}

/// What the consumer (`oauth.json`) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consumer {
    access: String,
    refresh: Option<String>,
    expires: i64,
}

/// One policy's files: the CLI's home, OpenClaw's store, the endpoint's state, the clock.
struct World {
    _dir: tempfile::TempDir,
    home: PathBuf,
    clock: PathBuf,
    server: PathBuf,
    creds: PathBuf,
    openclaw: PathBuf,
    consumer: PathBuf,
    call_log: PathBuf,
    policy: Policy,
    /// Expiry of the tokens a human login brought (the endpoint never issued them), by fingerprint.
    login_expiry: HashMap<String, i64>,
}

fn fp(token: &str) -> String {
    Fingerprint::of(token).to_string()
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("sim-tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Milliseconds during `[from, to)` at or after `valid_until`.
fn expired_between(from: i64, to: i64, valid_until: i64) -> i64 {
    (to - from.max(valid_until)).max(0)
}

fn day(t: i64) -> String {
    format!("day {:.3}", (t - T0) as f64 / DAY as f64)
}

impl World {
    fn new(policy: Policy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let openclaw = home.join(".openclaw");
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        std::fs::create_dir_all(openclaw.join("credentials")).unwrap();
        Self {
            clock: dir.path().join("clock"),
            server: dir.path().join("server.json"),
            creds: home.join(".claude/.credentials.json"),
            consumer: openclaw.join("credentials/oauth.json"),
            call_log: dir.path().join("claude-calls.jsonl"),
            openclaw,
            home,
            _dir: dir,
            policy,
            login_expiry: HashMap::new(),
        }
    }

    fn set_now(&self, ms: i64) {
        keeper_core::clock::set_fake_now_ms(&self.clock, ms).unwrap();
    }

    /// `program` with a clean environment: this world's HOME, clock, endpoint and call log.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("KEEPER_CONFIG", "/dev/null")
            .env("KEEPER_STATE_DIR", self.home.join(".local/state/keeper"))
            .env(keeper_core::clock::FAKE_CLOCK_ENV, &self.clock)
            .env("CLAUDE_STAND_IN_SERVER", &self.server)
            .env("CLAUDE_STAND_IN_LOG", &self.call_log);
        cmd
    }

    /// Runs to completion; returns the exit code and the output (checked for tokens).
    fn run(cmd: &mut Command) -> (i32, String) {
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!has_token_shape(&text), "a token in the output of {cmd:?}:\n{text}");
        (out.status.code().expect("exited"), text)
    }

    /// A human `claude auth login` at `now`: new tokens in the CLI's file, a new family at the
    /// endpoint (the old family's tokens become unknown there).
    fn login(&mut self, now: i64) {
        let (access, refresh) = (tokens::access_token(), tokens::refresh_token());
        let doc = json!({"claudeAiOauth": {
            "accessToken": access, "refreshToken": refresh, "expiresAt": now + TOKEN_LIFETIME,
            "scopes": ["user:inference", "user:profile"], "subscriptionType": "max"}});
        write_atomically(&self.creds, doc.to_string().as_bytes());
        self.login_expiry.insert(fp(&access), now + TOKEN_LIFETIME);
        server::update(&self.server, |s| {
            s.refresh_token_fp = Some(fp(&refresh));
            s.family_expires_at = Some(now + FAMILY_LIFETIME);
            s.family_lifetime_ms = FAMILY_LIFETIME;
            s.revoked = false;
            s.revoke_family_on_reuse = true;
            s.rotated_fps.clear();
        })
        .unwrap();
    }

    /// `cred-sync` once from the CLI's file into `oauth.json`. `--force-legacy`: the consumer is a
    /// JSON-era store by construction, whatever OpenClaw this host may have installed.
    fn sync(&self) -> (i32, String) {
        let mut cmd = self.command(cred_sync());
        cmd.arg("--from").arg(&self.creds).arg("--to").arg(format!("openclaw-oauth:{}", self.consumer.display()));
        cmd.arg("--force-legacy");
        if self.policy == Policy::Seed {
            cmd.arg("--share-refresh-token");
        }
        Self::run(&mut cmd)
    }

    fn creds_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.creds).unwrap()
    }

    fn cli_oauth(&self) -> Value {
        serde_json::from_slice::<Value>(&self.creds_bytes()).unwrap()["claudeAiOauth"].clone()
    }

    /// The CLI's file holds the logged-out stub.
    fn cli_logged_out(&self) -> bool {
        self.cli_oauth()["accessToken"].as_str() == Some("")
    }

    fn consumer(&self) -> Consumer {
        let v: Value = serde_json::from_slice(&std::fs::read(&self.consumer).unwrap()).unwrap();
        let a = &v["anthropic"];
        Consumer {
            access: a["access"].as_str().unwrap().to_owned(),
            refresh: a.get("refresh").and_then(Value::as_str).map(str::to_owned),
            expires: a["expires"].as_i64().unwrap(),
        }
    }

    /// OpenClaw refreshed by itself: it rewrites its own entry.
    fn consumer_refreshed(&self, grant: &server::Grant, now: i64) {
        let mut v: Value = serde_json::from_slice(&std::fs::read(&self.consumer).unwrap()).unwrap();
        v["anthropic"] = json!({
            "access": grant.access_token, "refresh": grant.refresh_token,
            "expires": now + server::secs_to_ms(grant.expires_in)});
        write_atomically(&self.consumer, v.to_string().as_bytes());
    }

    /// Until when the endpoint honours this access token.
    fn valid_until(&self, access: &str, state: &State) -> i64 {
        let fp = fp(access);
        if let Some(t) = self.login_expiry.get(&fp) {
            return *t;
        }
        state.access_tokens.iter().find(|a| a.fp == fp).map_or_else(
            || panic!("the consumer holds an access token the endpoint never issued ({fp})"),
            |a| a.expires_at,
        )
    }

    fn cli_invocations(&self) -> usize {
        std::fs::read_to_string(&self.call_log).map_or(0, |t| t.lines().count())
    }

    fn flag_raised(&self) -> bool {
        self.openclaw.join("REAUTH_NEEDED").exists()
    }
}

/// The last few lines of a program's output, for an anomaly report.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(4)..].join(" | ")
}

/// One timer run of the policy at `now`; returns whether the CLI's file changed.
fn timer_run(w: &World, now: i64, fig: &mut Figures) -> bool {
    let before = w.creds_bytes();
    match w.policy {
        Policy::Ours => {
            let mut cmd = w.command(Path::new(common::BIN));
            cmd.args(["--not-due-ok", "--creds"]).arg(&w.creds).arg("--cli").arg(stand_in());
            cmd.arg("--openclaw-dir").arg(&w.openclaw);
            let (code, text) = World::run(&mut cmd);
            if code != 0 && code != 3 {
                fig.anomalies.push(format!("{}: cli-poke exit {code}: {}", day(now), tail(&text)));
            }
        }
        Policy::Seed => {
            let left = w.cli_oauth()["expiresAt"].as_i64().unwrap() - now;
            if left < 90 * MINUTE {
                let mut cmd = w.command(stand_in());
                cmd.args(["-p", "say ok"]);
                World::run(&mut cmd);
            }
        }
    }
    w.creds_bytes() != before
}

/// `KEEPER_SIM_TRACE=1`: one line per event that changed something, on stderr.
struct Trace {
    policy: Policy,
    on: bool,
}

impl Trace {
    fn new(policy: Policy) -> Self {
        Self { policy, on: std::env::var_os("KEEPER_SIM_TRACE").is_some_and(|v| !v.is_empty()) }
    }

    fn say(&self, now: i64, what: &str) {
        if self.on {
            let _ = writeln!(std::io::stderr().lock(), "{} {}: {what}", self.policy.short(), day(now));
        }
    }
}

/// OpenClaw refreshes its expired copy with the refresh token it holds; false when refused.
fn consumer_refresh(w: &World, presented: &str, now: i64, fig: &mut Figures, trace: &Trace) -> bool {
    match server::update(&w.server, |s| s.refresh(presented, now, server::DEFAULT_EXPIRES_IN)).unwrap() {
        Ok(grant) => {
            trace.say(now, "OpenClaw refreshed its expired copy by itself");
            w.consumer_refreshed(&grant, now);
            fig.consumer_refreshes += 1;
            true
        }
        Err(e) => {
            trace.say(now, &format!("OpenClaw's refresh refused: {e}"));
            false
        }
    }
}

/// The sync after a write of the CLI's file (the shipped unit's `cred-sync --watch`).
fn sync_after_write(w: &World, now: i64, fig: &mut Figures, trace: &Trace) {
    let logged_out = w.cli_logged_out();
    let left = w.cli_oauth()["expiresAt"].as_i64().unwrap_or(0) - now;
    let what = if logged_out {
        "the CLI wrote the logged-out stub".to_owned()
    } else {
        format!("the CLI wrote a token, {}s left", left / 1000)
    };
    trace.say(now, &what);
    fig.syncs += 1;
    let (code, text) = w.sync();
    let expected = if logged_out { 3 } else { 0 };
    if code != expected {
        fig.anomalies.push(format!("{}: cred-sync exit {code}: {}", day(now), tail(&text)));
    }
}

fn simulate(policy: Policy, span: i64, rng: &mut Rng) -> Figures {
    let started = Instant::now();
    let mut fig = Figures::default();
    let mut w = World::new(policy);
    let end = T0 + span;
    w.set_now(T0);
    w.login(T0);
    assert_eq!(w.sync().0, 0, "the first sync");

    let (period, late) = policy.timer();
    let phase = rng.between((0, period));
    let mut k = 0;
    let mut next_timer = T0 + phase + rng.between(late);
    // When the open REAUTH episode's human login happens.
    let mut login_at: Option<i64> = None;
    // The consumer's refresh token whose refresh was refused (it does not retry that one).
    let mut refused: Option<String> = None;
    let mut consumer = w.consumer();
    let mut valid_until = w.valid_until(&consumer.access, &State::load(&w.server).unwrap());
    let mut prev = T0;
    // Since when the family that issued the consumer's copy is revoked.
    let mut revoked_since: Option<i64> = None;
    let trace = Trace::new(policy);
    let account = |fig: &mut Figures, from: i64, to: i64, valid_until: i64, revoked: bool| {
        let expired = expired_between(from, to, valid_until);
        fig.expired_ms += expired;
        fig.unusable_ms += if revoked { to - from } else { expired };
    };

    loop {
        let consumer_due =
            consumer.refresh.as_deref().filter(|r| refused.as_deref() != Some(&fp(r))).map(|_| consumer.expires);
        let now = [Some(next_timer), consumer_due, login_at].into_iter().flatten().min().unwrap();
        if now >= end {
            break;
        }
        account(&mut fig, prev, now, valid_until, revoked_since.is_some());
        prev = now;
        w.set_now(now);

        let mut cli_wrote = false;
        let mut refusal = false;
        if login_at == Some(now) {
            w.login(now);
            trace.say(now, "a human logged in");
            login_at = None;
            cli_wrote = true;
        } else if next_timer == now {
            fig.timer_runs += 1;
            cli_wrote = timer_run(&w, now, &mut fig);
            refusal = w.cli_logged_out() || w.flag_raised();
            k += 1;
            next_timer = T0 + phase + k * period + rng.between(late);
        } else {
            // OpenClaw's copy expired and it holds a refresh token: it refreshes by itself.
            let presented = consumer.refresh.clone().unwrap();
            if !consumer_refresh(&w, &presented, now, &mut fig, &trace) {
                refused = Some(fp(&presented));
                refusal = true;
            }
        }
        if cli_wrote {
            sync_after_write(&w, now, &mut fig, &trace);
        }
        if refusal {
            if login_at.is_none() {
                trace.say(now, "REAUTH episode opens");
                fig.reauth_episodes += 1;
                login_at = Some(now + rng.between(HUMAN_RESPONSE));
            }
            if revoked_since.is_none() && State::load(&w.server).unwrap().revoked {
                revoked_since = Some(now);
            }
        }
        let held = w.consumer();
        if held != consumer {
            if policy == Policy::Ours {
                assert_eq!(held.refresh, None, "ours never gives OpenClaw the refresh token");
            }
            let left = valid_until - now;
            fig.least_left_at_handover_ms = Some(fig.least_left_at_handover_ms.map_or(left, |l| l.min(left)));
            let state = State::load(&w.server).unwrap();
            valid_until = w.valid_until(&held.access, &state);
            if !state.revoked {
                revoked_since = None;
            }
            consumer = held;
        }
    }
    account(&mut fig, prev, end, valid_until, revoked_since.is_some());

    let state = State::load(&w.server).unwrap();
    fig.cli_invocations = w.cli_invocations();
    fig.refreshes = state.refreshes;
    fig.reuses = state.reuses;
    fig.rejections = state.rejections;
    fig.wall = started.elapsed();
    fig
}

fn table(span: i64, seed: u64, rows: &[(Policy, &Figures)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let line = "-".repeat(112);
    let _ = writeln!(
        out,
        "\n{line}\ncontrol-loop simulation: {} days of {} h tokens ({} token lifetimes), rng seed {seed:#x}\n{line}",
        span / DAY,
        TOKEN_LIFETIME / HOUR,
        span / TOKEN_LIFETIME
    );
    let _ = writeln!(
        out,
        "{:<11} {:>9} {:>10} {:>8} {:>14} {:>6} {:>6} {:>10} {:>6} {:>10} {:>7}",
        "policy",
        "expired s",
        "unusable s",
        "CLI runs",
        "refreshes (OC)",
        "reuses",
        "REAUTH",
        "timer runs",
        "syncs",
        "least left",
        "wall s"
    );
    for (policy, f) in rows {
        let least = f.least_left_at_handover_ms.map_or("-".to_owned(), |ms| format!("{}s", ms / 1000));
        let _ = writeln!(
            out,
            "{:<11} {:>9} {:>10} {:>8} {:>14} {:>6} {:>6} {:>10} {:>6} {:>10} {:>7.1}",
            policy.short(),
            f.expired_ms / 1000,
            f.unusable_ms / 1000,
            f.cli_invocations,
            format!("{} ({})", f.refreshes, f.consumer_refreshes),
            f.reuses,
            f.reauth_episodes,
            f.timer_runs,
            f.syncs,
            least,
            f.wall.as_secs_f64()
        );
    }
    for (policy, _) in rows {
        let _ = writeln!(out, "{}: {}", policy.short(), policy.name());
    }
    let _ = writeln!(
        out,
        "expired s: OpenClaw's copy had expired; unusable s: expired, or its family revoked (should revocation kill\n\
         issued access tokens too); CLI runs: `claude` started; refreshes: all rotations at the endpoint, (OC) = by\n\
         OpenClaw itself; reuses: rotated refresh tokens presented again (each revokes the family); REAUTH: episodes,\n\
         a human logs in 1-3 h after one opens; least left: least time left on OpenClaw's copy when a new token\n\
         replaced it; family lifetime {} days.\n{line}",
        FAMILY_LIFETIME / DAY
    );
    out
}

#[test]
fn thirty_days_of_eight_hour_tokens_ours_beside_the_first_seed() {
    let (span, rng_seed) = (simulated(), knob("KEEPER_SIM_SEED", SEED));
    let mut rng = Rng(rng_seed.max(1));
    let ours = simulate(Policy::Ours, span, &mut rng);
    let seed = simulate(Policy::Seed, span, &mut rng);
    let report = table(span, rng_seed, &[(Policy::Ours, &ours), (Policy::Seed, &seed)]);
    // Straight to the stderr handle: libtest captures only the print macros.
    let _ = std::io::stderr().lock().write_all(report.as_bytes());
    for (policy, f) in [(Policy::Ours, &ours), (Policy::Seed, &seed)] {
        for a in &f.anomalies {
            let _ = writeln!(std::io::stderr().lock(), "{}: {a}", policy.name());
        }
    }

    let lifetimes = (span / TOKEN_LIFETIME) as u64;
    assert!(ours.anomalies.is_empty(), "every cli-poke and cred-sync run of ours ended as expected");
    assert_eq!(ours.expired_ms, 0, "OpenClaw's copy never expired{report}");
    assert!(ours.refreshes.abs_diff(lifetimes) <= 1, "one refresh per token lifetime{report}");
    assert_eq!(ours.cli_invocations as u64, ours.refreshes, "the CLI ran only to refresh{report}");
    assert_eq!((ours.reuses, ours.rejections), (0, 0), "no refresh token was ever refused{report}");
    assert_eq!(ours.reauth_episodes, 0, "{report}");
    assert!(ours.timer_runs >= (span / (2 * MINUTE)) as u64 - 1, "every 2-minute run executed");
    assert!(ours.least_left_at_handover_ms.is_some_and(|ms| ms > 0), "replaced before it expired{report}");
    // The seed is the comparison: its figures are computed, not judged.
    assert!(seed.timer_runs > 0 && seed.cli_invocations > 0);
}
