//! Latency from the Claude CLI's rename of its credentials file to all three file targets
//! (`.env`, `oauth.json`, `auth-profiles.json`) holding the new token, for:
//!
//! - floor: a minimal program that only receives the inotify event and performs the same fsync'd
//!   atomic writes (`keeper_core::write::replace_atomically`) of hand-formatted contents;
//! - `cred-sync --watch` (release build);
//! - the first seed's pipeline (`scripts/bench/seed-sync-oauth-token.sh`: inotifywait + bash +
//!   python3 + sed, no fsync), when inotifywait and python3 are installed.
//!
//! The sides are measured interleaved, write by write: every side runs its syncer throughout, and
//! write i goes to each side in turn (the order rotating with i, so no side is always first), so
//! a disk or a machine that gets busier during the run slows every side alike rather than the one
//! measured then. Completion is seen by inotify on the targets' directory. The writes are split
//! into rounds; per round it prints each side's p50/p99 and the ratios, then each ratio's median
//! and its spread (min–max) across rounds, then the targets (p99 ≤ 1.5× floor, p50 ≥ 20× faster
//! than the seed) on all samples, and cred-sync's idle RSS (target ≤ 4 MiB).
//!
//! Run: `scripts/bench-cred-sync.sh` (or `cargo bench -p cred-sync --bench sync_latency`);
//! `BENCH_WRITES` sets the number of writes per side (default 500), `BENCH_ROUNDS` the rounds
//! they are split into (default 5).

use inotify::{Inotify, WatchMask};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const TARGET_NAMES: [&str; 3] = [".env", "oauth.json", "auth-profiles.json"];

fn main() {
    if std::env::var_os("SYNC_LATENCY_FLOOR").is_some() {
        return floor();
    }
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let writes = env("BENCH_WRITES", 500).max(1);
    let rounds = env("BENCH_ROUNDS", 5).clamp(1, writes);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed_script = root.join("scripts/bench/seed-sync-oauth-token.sh");
    let have_seed = which::which("inotifywait").is_ok() && which::which("python3").is_ok();

    println!(
        "cred-sync latency: source rename → 3 file targets hold the new token ({writes} writes per side, \
         interleaved write by write, in {rounds} rounds)"
    );
    let mut sides = vec![
        Side::start("floor", |b| {
            Command::new(std::env::current_exe().unwrap())
                .env("SYNC_LATENCY_FLOOR", "1")
                .args(b.args())
                .spawn()
                .unwrap()
        }),
        Side::start("cred-sync", |b| cred_sync_watch(b, &TARGET_NAMES)),
    ];
    if have_seed {
        sides.push(Side::start("seed pipeline", |b| {
            Command::new("bash")
                .arg(&seed_script)
                .arg(b.source())
                .arg(b.target("oauth.json"))
                .arg(b.target("auth-profiles.json"))
                .arg(b.target(".env"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap()
        }));
    }
    let n = sides.len();
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); rounds]; n];
    for i in 1..=writes {
        let round = (i - 1) * rounds / writes;
        for k in 0..n {
            let side = (i + k) % n;
            samples[side][round].push(sides[side].one_write(i));
        }
    }
    for side in sides {
        side.stop();
    }
    // Idle RSS of a fresh watcher (three targets, as measured) after its first sync.
    let rss_kib = {
        let b = Bench::new();
        b.write_source(&b.token(0), 0);
        let mut child = cred_sync_watch(&b, &TARGET_NAMES);
        std::thread::sleep(Duration::from_secs(1));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .map_or(0, |v| v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0))
    };

    print_report(&samples, rounds);
    let idle_mib = rss_kib as f64 / 1024.0;
    println!("cred-sync --watch idle RSS = {idle_mib:.2} MiB (target <= 4 MiB): {}", verdict(idle_mib <= 4.0));
}

/// Per round each side's p50/p99 and the ratios; then all samples, and each ratio's median and
/// spread across the rounds, against the targets. `samples[side][round]`: floor, ours, seed.
fn print_report(samples: &[Vec<Vec<f64>>], rounds: usize) {
    let n = samples.len();
    let names = ["floor", "cred-sync", "seed pipeline"];
    let all: Vec<Stats> = samples.iter().map(|rounds| Stats::of(rounds.concat())).collect();
    let per_round: Vec<Vec<Stats>> =
        samples.iter().map(|rounds| rounds.iter().map(|r| Stats::of(r.clone())).collect()).collect();
    let (floor, ours) = (0, 1);
    let seed = (n > 2).then_some(2);

    println!();
    println!("per round, p50 / p99 ms:");
    print!("{:<7}", "round");
    for name in &names[..n] {
        print!(" {name:>22}");
    }
    println!(" {:>18} {:>18}", "ours/floor p99", "seed/ours p50");
    for r in 0..rounds {
        print!("{:<7}", r + 1);
        for side in &per_round {
            print!(" {:>22}", format!("{:.3} / {:.3}", side[r].p50, side[r].p99));
        }
        let p99_ratio = per_round[ours][r].p99 / per_round[floor][r].p99;
        let speedup = seed.map(|s| per_round[s][r].p50 / per_round[ours][r].p50);
        println!(" {:>17.2}x {:>18}", p99_ratio, speedup.map_or("-".to_owned(), |x| format!("{x:.1}x")));
    }

    println!();
    println!("{:<14} {:>10} {:>10} {:>10}   (all rounds)", "", "p50 ms", "p99 ms", "mean ms");
    for (i, name) in names.iter().enumerate() {
        match all.get(i) {
            Some(s) => println!("{name:<14} {:>10.3} {:>10.3} {:>10.3}", s.p50, s.p99, s.mean),
            None => println!("{name:<14} (skipped: needs inotifywait and python3)"),
        }
    }
    println!();
    let spread = |ratios: Vec<f64>| {
        let mut r = ratios;
        r.sort_by(f64::total_cmp);
        (r[r.len() / 2], r[0], r[r.len() - 1])
    };
    let p99_ratio = all[ours].p99 / all[floor].p99;
    let (median, min, max) = spread((0..rounds).map(|r| per_round[ours][r].p99 / per_round[floor][r].p99).collect());
    println!(
        "cred-sync p99 / floor p99 = {p99_ratio:.2}x (target <= 1.5x): {}; per round median {median:.2}x (min {min:.2}x, max {max:.2}x)",
        verdict(p99_ratio <= 1.5)
    );
    let (median, min, max) = spread((0..rounds).map(|r| per_round[ours][r].p50 / per_round[floor][r].p50).collect());
    println!(
        "cred-sync p50 / floor p50 = {:.2}x; per round median {median:.2}x (min {min:.2}x, max {max:.2}x)",
        all[ours].p50 / all[floor].p50
    );
    if let Some(seed) = seed {
        let speedup = all[seed].p50 / all[ours].p50;
        let (median, min, max) = spread((0..rounds).map(|r| per_round[seed][r].p50 / per_round[ours][r].p50).collect());
        println!(
            "seed p50 / cred-sync p50 = {speedup:.1}x (target >= 20x): {}; per round median {median:.1}x (min {min:.1}x, max {max:.1}x)",
            verdict(speedup >= 20.0)
        );
    }
}

/// `cred-sync --watch` (release build) into the named targets, hermetic: no config, no inherited
/// `KEEPER_*` variables.
fn cred_sync_watch(b: &Bench, targets: &[&str]) -> Child {
    let kind = |name: &str| match name {
        ".env" => "dotenv",
        "oauth.json" => "openclaw-oauth",
        _ => "openclaw-profiles",
    };
    Command::new(env!("CARGO_BIN_EXE_cred-sync"))
        .env_clear()
        .env("KEEPER_CONFIG", "/dev/null")
        .env("KEEPER_STATE_DIR", b.dir.join("state"))
        .arg("--watch")
        .arg("--from")
        .arg(b.source())
        .args(targets.iter().map(|n| format!("--to={}:{}", kind(n), b.target(n).display())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

trait ProcessGroup {
    fn process_group(&mut self, pgid: i32) -> &mut Self;
}

impl ProcessGroup for Command {
    fn process_group(&mut self, pgid: i32) -> &mut Self {
        std::os::unix::process::CommandExt::process_group(self, pgid)
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    mean: f64,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
        Self { p50: pct(0.50), p99: pct(0.99), mean: samples.iter().sum::<f64>() / samples.len() as f64 }
    }
}

/// One side's source and target directories.
struct Bench {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    run: u64,
}

impl Bench {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("claude")).unwrap();
        std::fs::create_dir_all(dir.join("targets")).unwrap();
        std::fs::write(dir.join("targets/.env"), "OPENCLAW_IMAGE=openclaw:latest\nANTHROPIC_OAUTH_TOKEN=none\n")
            .unwrap();
        let run = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
        Self { _tmp: tmp, dir, run }
    }

    fn source(&self) -> PathBuf {
        self.dir.join("claude/.credentials.json")
    }

    fn target(&self, name: &str) -> PathBuf {
        self.dir.join("targets").join(name)
    }

    /// Arguments for the floor program.
    fn args(&self) -> Vec<PathBuf> {
        vec![self.source(), self.dir.join("targets")]
    }

    /// A distinct fake token per write (108 characters, like the CLI's).
    fn token(&self, i: usize) -> String {
        format!("sk-ant-oat01-BENCH{:016x}{:08x}{}", self.run, i, "x".repeat(66))
    }

    /// Writes the source as Claude CLI 2.1.197 does: temp file, then rename.
    fn write_source(&self, token: &str, i: usize) {
        let expires =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 8 * 3_600_000 + i as u64;
        let text = format!(
            r#"{{"claudeAiOauth":{{"accessToken":"{token}","refreshToken":"sk-ant-ort01-BENCH{i:08x}","expiresAt":{expires},"scopes":["user:inference","user:profile"],"subscriptionType":"max"}},"mcpOAuth":{{}}}}"#
        );
        let tmp = self.dir.join(format!("claude/.credentials.json.tmp.{i:08x}"));
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        drop(f);
        std::fs::rename(&tmp, self.source()).unwrap();
    }

    fn all_hold(&self, token: &str) -> bool {
        TARGET_NAMES.iter().all(|n| std::fs::read_to_string(self.target(n)).is_ok_and(|t| t.contains(token)))
    }
}

/// One side: its directories, its syncer (running throughout), and inotify on its targets.
struct Side {
    name: &'static str,
    b: Bench,
    child: Child,
    inotify: Inotify,
    buffer: [u8; 4096],
}

impl Side {
    /// Starts the syncer and waits for its first sync (start-up is not measured).
    fn start(name: &'static str, start: impl FnOnce(&Bench) -> Child) -> Self {
        let b = Bench::new();
        let inotify = Inotify::init().unwrap();
        inotify.watches().add(b.dir.join("targets"), WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO).unwrap();
        b.write_source(&b.token(0), 0);
        let child = start(&b);
        let mut side = Self { name, b, child, inotify, buffer: [0u8; 4096] };
        // The seed's watcher does no initial sync: write the first token again until it is taken.
        let started = Instant::now();
        while !side.b.all_hold(&side.b.token(0)) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(300));
            if !side.b.all_hold(&side.b.token(0)) {
                side.b.write_source(&side.b.token(0), 0);
            }
        }
        side.wait_all(&side.b.token(0));
        std::thread::sleep(Duration::from_millis(200));
        side.drain();
        side
    }

    /// Sleeps on inotify until every target holds `token`.
    fn wait_all(&mut self, token: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.b.all_hold(token) {
            assert!(Instant::now() < deadline, "{}: targets never got the token", self.name);
            self.inotify.read_events_blocking(&mut self.buffer).unwrap();
        }
    }

    fn drain(&mut self) {
        while self.inotify.read_events(&mut self.buffer).is_ok_and(|e| e.count() > 0) {}
    }

    /// Writes token `i` and times it until every target holds it: milliseconds.
    fn one_write(&mut self, i: usize) -> f64 {
        let token = self.b.token(i);
        self.b.write_source(&token, i);
        let t0 = Instant::now();
        self.wait_all(&token);
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        // Let the syncer finish its trailing directory fsync before the next write anywhere.
        std::thread::sleep(Duration::from_millis(2));
        self.drain();
        ms
    }

    fn stop(mut self) {
        // The seed's pipeline is a process group (bash, inotifywait, python3).
        let _ = nix_kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nix_kill_group(pid: u32) -> nix::Result<()> {
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX)),
        nix::sys::signal::Signal::SIGTERM,
    )
}

/// The floor: receive the inotify event, read the token, write three files atomically and
/// durably. Nothing else: no checks, no format preservation, no locking, no logging.
fn floor() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let (source, targets) = (args.next().unwrap(), args.next().unwrap());
    let name = source.file_name().unwrap().to_owned();
    let mut inotify = Inotify::init().unwrap();
    inotify.watches().add(source.parent().unwrap(), WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO).unwrap();
    let mut buffer = [0u8; 4096];
    let sync = || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&source).unwrap()).unwrap();
        let token = v["claudeAiOauth"]["accessToken"].as_str().unwrap();
        let expires = v["claudeAiOauth"]["expiresAt"].as_i64().unwrap();
        let write = keeper_core::write::replace_atomically;
        write(
            &targets.join(".env"),
            format!("OPENCLAW_IMAGE=openclaw:latest\nANTHROPIC_OAUTH_TOKEN={token}\n").as_bytes(),
        )
        .unwrap();
        write(
            &targets.join("oauth.json"),
            format!(r#"{{"anthropic":{{"access":"{token}","expires":{expires}}}}}"#).as_bytes(),
        )
        .unwrap();
        let profiles = format!(
            r#"{{"version":1,"profiles":{{"anthropic:claude-code":{{"type":"token","provider":"anthropic","token":"{token}","expires":{expires}}}}}}}"#
        );
        write(&targets.join("auth-profiles.json"), profiles.as_bytes()).unwrap();
    };
    sync();
    loop {
        let events = inotify.read_events_blocking(&mut buffer).unwrap();
        if events.into_iter().any(|e| e.name == Some(name.as_os_str())) {
            sync();
        }
    }
}
