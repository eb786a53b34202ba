//! Benchmark: gateway downtime per token change, `down-up` against `recreate`, side by side.
//!
//! Run by `scripts/bench-compose-recreate.sh` (as root: it starts a private Docker engine).
//! For every Compose installed, a project with an `openclaw-gateway` service (healthcheck; ready
//! 0.5 s after start, checked every 0.5 s) and an idle `openclaw-cli` is recreated ROUNDS times
//! per mode by the `compose-recreate` binary, the two modes alternating. The probe is the
//! engine's event stream (`docker events`, nanosecond timestamps): downtime runs from the stop
//! signal to the old gateway container (`kill`) to the new one's `start` ("running") and its
//! `health_status: healthy` ("healthy"). "wall" is the whole `compose-recreate` run, verification
//! included.
//!
//! Usage: `bench_downtime --bin PATH/compose-recreate [--rounds N]`

use keeper_docker_test_engine::{Compose, Engine, run_ok, unique_name};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const GATEWAY: &str = "openclaw-gateway";
const MODES: [&str; 2] = ["down-up", "recreate"];

/// One container event of the gateway service.
#[derive(Debug)]
struct Event {
    nanos: i64,
    action: String,
    id: String,
}

/// Downtimes of one round, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Round {
    to_running: f64,
    to_healthy: f64,
    wall: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let bin = PathBuf::from(value("--bin").expect("--bin PATH/compose-recreate"));
    let rounds: usize = value("--rounds").map_or(5, |r| r.parse().expect("--rounds N"));
    let Some(engine) = keeper_docker_test_engine::engine() else {
        eprintln!("bench_downtime: no Docker engine (see the banner above)");
        std::process::exit(1);
    };
    println!(
        "compose-recreate downtime per token change: docker {}, {rounds} rounds per mode, modes alternating",
        engine.server_version()
    );
    println!("probe: docker events; downtime = stop signal to the old gateway -> new gateway started / healthy");
    println!("gateway: ready 0.5 s after start, healthcheck every 0.5 s; one idle sibling service\n");
    println!(
        "{:<22} {:<9} {:>26} {:>26} {:>26}",
        "compose", "mode", "to running ms med (min-max)", "to healthy ms med (min-max)", "wall ms med (min-max)"
    );
    for compose in engine.composes() {
        let results = bench(engine, compose, &bin, rounds);
        for (mode, rounds) in MODES.iter().zip(&results) {
            let column = |f: fn(&Round) -> f64| summary(&rounds.iter().map(f).collect::<Vec<_>>());
            println!(
                "{:<22} {:<9} {:>26} {:>26} {:>26}",
                compose.label(),
                mode,
                column(|r| r.to_running),
                column(|r| r.to_healthy),
                column(|r| r.wall)
            );
        }
    }
}

fn summary(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return "-".to_owned();
    }
    format!("{:.0} ({:.0}-{:.0})", v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Runs the rounds for one Compose; one list of rounds per mode, in [`MODES`] order.
fn bench(engine: &'static Engine, compose: &Compose, bin: &Path, rounds: usize) -> Vec<Vec<Round>> {
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("bench");
    let image = engine.busybox_image();
    let idle = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done\"]";
    let gateway = "[\"sh\", \"-c\", \"trap 'exit 0' TERM; (sleep 0.5; touch /tmp/ready) & while :; do sleep 3600 & wait $$!; done\"]";
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        format!(
            "services:\n  {GATEWAY}:\n    image: {image}\n    command: {gateway}\n    env_file: .env\n    healthcheck:\n      \
             test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n      interval: 500ms\n      timeout: 2s\n      retries: 10\n  \
             openclaw-cli:\n    image: {image}\n    command: {idle}\n"
        ),
    )
    .unwrap();
    set_token(dir.path(), 0);
    let compose_cmd = |args: &[&str]| {
        let mut cmd = compose.command(engine);
        cmd.current_dir(dir.path()).args(["-p", &name]).args(args);
        cmd
    };
    let _ = run_ok(&mut compose_cmd(&["up", "-d"]));
    let events = watch_events(engine, &name);
    let mut results = vec![Vec::new(), Vec::new()];
    for round in 0..rounds {
        for k in 0..MODES.len() {
            let m = (k + round) % MODES.len(); // alternate which mode goes first
            set_token(dir.path(), round * MODES.len() + k + 1);
            std::thread::sleep(Duration::from_millis(300)); // let the previous round's events pass
            while events.try_recv().is_ok() {}
            let started = Instant::now();
            let mut tool = Command::new(bin);
            engine.apply_env(&mut tool);
            let out = tool
                .env("KEEPER_CONFIG", "/dev/null")
                .arg("--project-dir")
                .arg(dir.path())
                .args(["-p", &name, "--compose-cmd", &compose.command_line(), "--mode", MODES[m], GATEWAY])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let wall = started.elapsed().as_secs_f64() * 1000.0;
            assert!(out.status.success(), "compose-recreate failed: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(300));
            let seen: Vec<Event> = events.try_iter().collect();
            results[m].push(downtime(&seen, wall).unwrap_or_else(|| panic!("events incomplete: {seen:?}")));
        }
    }
    let _ = run_ok(&mut compose_cmd(&["down", "--timeout", "0"]));
    results
}

/// Writes a new fake token (never printed; the benchmark only needs it to change).
fn set_token(dir: &Path, n: usize) {
    let mut body = String::new();
    for i in 0..6 {
        let _ = write!(body, "{:016x}", (n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i * 7));
    }
    std::fs::write(dir.join(".env"), format!("ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-bench{body}\n")).unwrap();
}

/// From the stop signal to the old gateway to the new one's start and health.
fn downtime(events: &[Event], wall: f64) -> Option<Round> {
    let stop = events.iter().find(|e| e.action == "kill" || e.action == "die")?;
    let start = events.iter().find(|e| e.action == "start" && e.id != stop.id && e.nanos >= stop.nanos)?;
    let healthy = events.iter().find(|e| e.action == "health_status: healthy" && e.id == start.id)?;
    let ms = |from: i64, to: i64| (to - from) as f64 / 1e6;
    Some(Round { to_running: ms(stop.nanos, start.nanos), to_healthy: ms(stop.nanos, healthy.nanos), wall })
}

/// The gateway service's container events, as they happen.
fn watch_events(engine: &Engine, project: &str) -> Receiver<Event> {
    let mut child = engine
        .docker()
        .args(["events", "--format", "{{json .}}", "--filter", "type=container"])
        .arg("--filter")
        .arg(format!("label=com.docker.compose.project={project}"))
        .arg("--filter")
        .arg(format!("label=com.docker.compose.service={GATEWAY}"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            let event = Event {
                nanos: v["timeNano"].as_i64().unwrap_or(0),
                action: v["Action"].as_str().unwrap_or_default().to_owned(),
                id: v["id"].as_str().unwrap_or_default().to_owned(),
            };
            if tx.send(event).is_err() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    });
    rx
}
