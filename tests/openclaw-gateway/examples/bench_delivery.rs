//! Benchmark: what a token rotation costs the user of a real OpenClaw gateway, per design, side
//! by side (run through `scripts/bench-delivery.sh`; needs root for the network namespace and
//! the OpenClaw installs of `scripts/install-openclaw-for-tests.sh`).
//!
//! Designs, each for 2026.9.6 (SQLite era) and 2026.6.1 (JSON era), with 1 and 3 agents:
//! - `restart`: the store written, then the gateway restarted, as today's default did on every
//!   rotation (user unit: `try-restart`; Docker: `compose-recreate`) and as the first seed's
//!   `down`/`up` does (which adds the container's own stop/create, measured by
//!   `scripts/bench-compose-recreate.sh`);
//! - `store`: the new default: `cred-sync` writes the store (2026.9.6: `paste-token`, which tells
//!   the gateway; 2026.6.1: `auth-profiles.json`) and nothing restarts.
//!
//! Per rotation: the gateway restarts; the seconds without a reply (from the end of the sync —
//! the gateway answers with the old, still valid token while the store is written — until every
//! agent has answered once, less the time those turns take when nothing happens); requests still
//! carrying the old token after the rotation; failed requests (turns that did not answer); how
//! long the sync itself took. Prints one table; asserts nothing.
//!
//! Usage: `bench_delivery --cred-sync PATH [--rotations N] [--agents 1,3] [--generations sqlite,json]
//! [--designs restart,store]`

use claude_stand_in::tokens::{access_token, refresh_token};
use keeper_anthropic_mock::fingerprint;
use keeper_gateway_test::{Gateway, GatewayOptions, Generation, OpenClawHome, isolated_mock, ms_from_now, run};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Design {
    Restart,
    Store,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    rotations: usize,
    restarts: usize,
    unavailable: Vec<f64>,
    stale: usize,
    failed: usize,
    sync_secs: Vec<f64>,
}

struct Args {
    cred_sync: PathBuf,
    rotations: usize,
    agents: Vec<usize>,
    generations: Vec<Generation>,
    designs: Vec<Design>,
}

fn args() -> Args {
    let mut a = Args {
        cred_sync: PathBuf::new(),
        rotations: 10,
        agents: vec![1, 3],
        generations: vec![],
        designs: vec![Design::Restart, Design::Store],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--cred-sync" => a.cred_sync = PathBuf::from(value),
            "--rotations" => a.rotations = value.parse().expect("--rotations N"),
            "--agents" => a.agents = value.split(',').map(|n| n.parse().expect("--agents 1,3")).collect(),
            "--generations" => {
                a.generations = value
                    .split(',')
                    .map(|g| match g {
                        "sqlite" => Generation::Sqlite,
                        "json" => Generation::Json,
                        other => panic!("unknown generation {other}"),
                    })
                    .collect();
            }
            "--designs" => {
                a.designs = value
                    .split(',')
                    .map(|d| match d {
                        "restart" => Design::Restart,
                        "store" => Design::Store,
                        other => panic!("unknown design {other}"),
                    })
                    .collect();
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.cred_sync.is_file(), "--cred-sync PATH (the built cred-sync)");
    if a.generations.is_empty() {
        a.generations = [Generation::Sqlite, Generation::Json].into_iter().filter(|g| g.program().is_some()).collect();
    }
    a
}

/// The CLI's credentials file, refreshed by rename.
fn refresh(creds: &Path, life: Duration) -> String {
    let access = access_token();
    let json = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{access}","refreshToken":"{}","expiresAt":{},"scopes":["user:inference"],"subscriptionType":"max"}}}}"#,
        refresh_token(),
        ms_from_now(life)
    );
    let tmp = creds.with_extension("tmp");
    std::fs::write(&tmp, json).unwrap();
    std::fs::rename(&tmp, creds).unwrap();
    access
}

fn sync(bin: &Path, home: &OpenClawHome<'_>, creds: &Path, state: &Path) {
    let mut cmd = Command::new(bin);
    cmd.env_clear();
    for (k, v) in home.openclaw(&[]).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("KEEPER_STATE_DIR", state).arg("--from").arg(creds).arg("--openclaw-cmd").arg(home.program());
    match home.generation() {
        Generation::Sqlite => cmd.args(["--to", "openclaw-paste"]),
        Generation::Json => cmd
            .arg("--to")
            .arg(format!("openclaw-profiles:{}", home.state_dir().join("agents/*/agent/auth-profiles.json").display())),
    };
    let out = run(cmd, None, Duration::from_secs(600));
    assert!(matches!(out.code, Some(0 | 1)), "cred-sync: {}", out.text());
}

fn bench(args: &Args, generation: Generation, agents: usize, design: Design) -> Tally {
    let (_ca, mock) = isolated_mock();
    let names: Vec<String> =
        ["main", "ops", "nova", "sage", "ranger"].iter().take(agents).map(|s| (*s).to_owned()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let home = OpenClawHome::new(generation, &mock, &refs);
    for a in &refs {
        std::fs::create_dir_all(home.agent_dir(a)).unwrap();
    }
    let work = tempfile::tempdir().unwrap();
    let creds = work.path().join(".credentials.json");
    let state = work.path().join("state");
    let mut old = refresh(&creds, Duration::from_secs(8 * 3600));
    sync(&args.cred_sync, &home, &creds, &state);
    let mut gateway = Gateway::start(&home, GatewayOptions::default());
    // The healthy cost of one turn per agent: what a rotation's "without a reply" is measured against.
    let mut healthy = Vec::new();
    for a in &refs {
        let t = gateway.turn(a);
        assert!(t.ok, "warm-up turn: {}", t.summary());
    }
    for a in &refs {
        healthy.push(gateway.turn(a).took.as_secs_f64());
    }
    let healthy: f64 = healthy.iter().sum();
    let mut tally = Tally::default();
    for rotation in 0..args.rotations {
        let new = refresh(&creds, Duration::from_secs(8 * 3600 + 60 * (rotation as u64 + 1)));
        let synced = Instant::now();
        sync(&args.cred_sync, &home, &creds, &state);
        tally.sync_secs.push(synced.elapsed().as_secs_f64());
        // The gateway keeps answering (with the old token, valid for minutes more) while the
        // store is written: the clock for "without a reply" starts when the sync is done.
        let start = Instant::now();
        if design == Design::Restart {
            let _ = gateway.restart();
            tally.restarts += 1;
        }
        let (old_fp, new_fp) = (fingerprint(&old), fingerprint(&new));
        for a in &refs {
            // A turn that fails is tried again: the user waits for an answer.
            loop {
                let t = gateway.turn(a);
                tally.stale += t.fingerprints().iter().filter(|f| **f == old_fp).count();
                if t.ok {
                    break;
                }
                tally.failed += 1;
                assert!(start.elapsed() < Duration::from_secs(600), "no answer: {}", t.summary());
            }
        }
        let unavailable = (start.elapsed().as_secs_f64() - healthy).max(0.0);
        tally.unavailable.push(unavailable);
        tally.rotations += 1;
        eprintln!(
            "  {} {agents} agent(s) {design:?} rotation {}: {unavailable:.1} s without a reply (new {new_fp})",
            generation.version(),
            rotation + 1
        );
        old = new;
    }
    gateway.stop();
    tally
}

fn main() {
    let args = args();
    let mut rows = Vec::new();
    for &generation in &args.generations {
        for &agents in &args.agents {
            for &design in &args.designs {
                // Each run on a thread of its own: its own network namespace and mock.
                let t = std::thread::scope(|s| s.spawn(|| bench(&args, generation, agents, design)).join().unwrap());
                rows.push((generation, agents, design, t));
            }
        }
    }
    println!(
        "\n{:<10} {:>6} {:<32} {:>9} {:>9} {:>22} {:>14} {:>8}",
        "openclaw",
        "agents",
        "design",
        "rotations",
        "restarts",
        "s without reply (med/max)",
        "old-token reqs",
        "failed"
    );
    for (generation, agents, design, t) in rows {
        let mut u = t.unavailable.clone();
        u.sort_by(f64::total_cmp);
        let median = u.get(u.len() / 2).copied().unwrap_or(0.0);
        let max = u.last().copied().unwrap_or(0.0);
        let name = match design {
            Design::Restart => "restart per rotation (before)",
            Design::Store => "store delivery (new default)",
        };
        let mut sync = t.sync_secs.clone();
        sync.sort_by(f64::total_cmp);
        println!(
            "{:<10} {:>6} {:<32} {:>9} {:>9} {:>14.1} / {:>5.1} {:>14} {:>8} {:>10.1}",
            generation.version(),
            agents,
            name,
            t.rotations,
            t.restarts,
            median,
            max,
            t.stale,
            t.failed,
            sync.get(sync.len() / 2).copied().unwrap_or(0.0)
        );
    }
}
