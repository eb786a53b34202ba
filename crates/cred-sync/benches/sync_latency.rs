//! Latency from the Claude CLI's rename of its credentials file to all three file targets
//! (`.env`, `oauth.json`, `auth-profiles.json`) holding the new token, for:
//!
//! - floor: a minimal program that only receives the inotify event and performs the same fsync'd
//!   atomic writes (`keeper_core::write::replace_atomically`) of hand-formatted contents;
//! - `cred-sync --watch` (release build);
//! - the first seed's pipeline (`scripts/bench/seed-sync-oauth-token.sh`: inotifywait + bash +
//!   python3 + sed, no fsync), when inotifywait and python3 are installed.
//!
//! Each side gets the same writes, one at a time; completion is seen by inotify on the targets'
//! directory. Prints p50/p99/mean, the ratios against the targets (p99 ≤ 1.5× floor, p50 ≥ 20×
//! faster than the seed), and cred-sync's idle RSS (target ≤ 4 MiB).
//!
//! Run: `scripts/bench-cred-sync.sh` (or `cargo bench -p cred-sync --bench sync_latency`);
//! `BENCH_WRITES` sets the number of writes per side (default 500).

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
    let writes: usize = std::env::var("BENCH_WRITES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let seed_script = root.join("scripts/bench/seed-sync-oauth-token.sh");
    let have_seed = which::which("inotifywait").is_ok() && which::which("python3").is_ok();

    println!("cred-sync latency: source rename → 3 file targets hold the new token ({writes} writes per side)");
    let floor = measure("floor", writes, |b| {
        Command::new(std::env::current_exe().unwrap()).env("SYNC_LATENCY_FLOOR", "1").args(b.args()).spawn().unwrap()
    });
    let ours = measure("cred-sync", writes, |b| cred_sync_watch(b, &TARGET_NAMES));
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
    let seed = have_seed.then(|| {
        measure("seed pipeline", writes, |b| {
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
        })
    });

    println!();
    println!("{:<14} {:>10} {:>10} {:>10}", "", "p50 ms", "p99 ms", "mean ms");
    for (name, s) in [("floor", Some(&floor)), ("cred-sync", Some(&ours)), ("seed pipeline", seed.as_ref())] {
        match s {
            Some(s) => println!("{name:<14} {:>10.3} {:>10.3} {:>10.3}", s.p50, s.p99, s.mean),
            None => println!("{name:<14} (skipped: needs inotifywait and python3)"),
        }
    }
    println!();
    let p99_ratio = ours.p99 / floor.p99;
    println!("cred-sync p99 / floor p99 = {p99_ratio:.2}x (target <= 1.5x): {}", verdict(p99_ratio <= 1.5));
    if let Some(seed) = &seed {
        let speedup = seed.p50 / ours.p50;
        println!("seed p50 / cred-sync p50 = {speedup:.1}x (target >= 20x): {}", verdict(speedup >= 20.0));
    }
    let idle_mib = rss_kib as f64 / 1024.0;
    println!("cred-sync --watch idle RSS = {idle_mib:.2} MiB (target <= 4 MiB): {}", verdict(idle_mib <= 4.0));
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

/// Starts a syncer, then times `writes` source writes, each until all targets hold it.
fn measure(name: &str, writes: usize, start: impl FnOnce(&Bench) -> Child) -> Stats {
    let b = Bench::new();
    let mut inotify = Inotify::init().unwrap();
    inotify.watches().add(b.dir.join("targets"), WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO).unwrap();
    b.write_source(&b.token(0), 0);
    let mut child = start(&b);
    let mut buffer = [0u8; 4096];
    let wait_all = |inotify: &mut Inotify, buffer: &mut [u8], token: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !b.all_hold(token) {
            assert!(Instant::now() < deadline, "{name}: targets never got the token");
            // Sleeps until a target is written.
            inotify.read_events_blocking(buffer).unwrap();
        }
    };
    // The first sync (and the syncer's start-up) is not measured. The seed's watcher does no
    // initial sync: write the first token again until it is taken.
    let started = Instant::now();
    while !b.all_hold(&b.token(0)) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        if !b.all_hold(&b.token(0)) {
            b.write_source(&b.token(0), 0);
        }
    }
    wait_all(&mut inotify, &mut buffer, &b.token(0));
    std::thread::sleep(Duration::from_millis(200));
    let _ = inotify.read_events(&mut buffer);
    let mut samples = Vec::with_capacity(writes);
    for i in 1..=writes {
        let token = b.token(i);
        b.write_source(&token, i);
        let t0 = Instant::now();
        wait_all(&mut inotify, &mut buffer, &token);
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        // Let the syncer finish its trailing directory fsync before the next write.
        std::thread::sleep(Duration::from_millis(2));
        while inotify.read_events(&mut buffer).is_ok_and(|e| e.count() > 0) {}
    }
    // The seed's pipeline is a process group (bash, inotifywait, python3).
    let _ = nix_kill_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
    samples.sort_by(f64::total_cmp);
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let stats = Stats { p50: pct(0.50), p99: pct(0.99), mean: samples.iter().sum::<f64>() / samples.len() as f64 };
    println!("  {name}: {} writes, p50 {:.3} ms, p99 {:.3} ms", samples.len(), stats.p50, stats.p99);
    stats
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
