//! A hung Docker daemon, for real: the private engine's `dockerd` frozen with SIGSTOP (it still
//! accepts connections, the kernel does, and answers none). A test binary of its own, because the
//! engine is the whole test process's: freezing it would stall every other test sharing it.

mod common;

use common::{KEY, Project, fingerprint, outcome, token};
use keeper_docker_test_engine::{Engine, composes_or_skip, engine_or_skip};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Each docker or compose call may take this long in the tests.
const COMMAND_TIMEOUT: &str = "3s";
/// The call's deadline, the runner's SIGTERM→SIGKILL grace (2 s), and slack for a loaded machine.
const RETURNS_WITHIN: Duration = Duration::from_secs(3 + 2 + 6);

/// With dockerd frozen, `compose-recreate --timeout 5s` was still running after 25 s (it waited
/// for `compose ps` for good), and `--stdin` would have blocked silently until the daemon came
/// back. Now every call has a deadline: the run fails with exit 2 naming the step that hung, and
/// `--stdin` logs it and retries after its interval, which works once the daemon is back.
#[test]
fn regression_a_hung_docker_daemon_hung_compose_recreate_for_good() {
    let engine = engine_or_skip!();
    let composes = composes_or_skip!(engine);
    let projects: Vec<(Project, String)> = composes
        .iter()
        .map(|compose| {
            let old = token();
            let project = Project::running_gateway(engine, compose, &old);
            (project, old)
        })
        .collect();

    // A one-shot run returns within its deadline, every Compose at once.
    let frozen = engine.freeze();
    std::thread::scope(|scope| {
        for (project, _) in &projects {
            scope.spawn(move || {
                let label = project.compose.label();
                let started = Instant::now();
                let out = project
                    .tool()
                    .args(["--timeout", "5s", "--command-timeout", COMMAND_TIMEOUT, "gateway"])
                    .output()
                    .unwrap();
                let elapsed = started.elapsed();
                let (code, stdout, stderr) = outcome(&out);
                assert!(elapsed < RETURNS_WITHIN, "{label}: returned after {elapsed:?}: {stderr}");
                assert_eq!(code, 2, "{label}: the documented status for docker failing: {stderr}");
                assert!(stdout.is_empty(), "{label}: {stdout}");
                assert!(
                    stderr.contains(&format!(
                        "compose ps did not finish within {COMMAND_TIMEOUT} (is the Docker daemon answering?)"
                    )),
                    "{label}: {stderr}"
                );
            });
        }
    });
    frozen.thaw();
    for (project, old) in &projects {
        let label = project.compose.label();
        assert_eq!(project.token_in_container("gateway"), Some(fingerprint(old)), "{label}: nothing changed");
    }

    // --stdin: a batch that hits the frozen daemon is logged and retried after --min-interval;
    // the daemon is back by then, and the retry recreates. One Compose at a time: one freeze each.
    for (project, old) in &projects {
        stdin_retries_once_the_daemon_is_back(engine, project, old);
    }
}

/// `--stdin`: a batch that hits the frozen daemon fails within its deadline, is logged and retried
/// after --min-interval; the daemon is back by then, and the retry recreates.
fn stdin_retries_once_the_daemon_is_back(engine: &Engine, project: &Project, old: &str) {
    let label = project.compose.label();
    let new = token();
    project.set_token(&new);
    let mut child = project
        .tool()
        .args(["--stdin", "--quiet-period", "100ms", "--min-interval", "10s", "--retries", "1"])
        .args(["--command-timeout", COMMAND_TIMEOUT, "gateway"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    for (stream, pipe) in [
        ("stdout", Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>),
        ("stderr", Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let _ = tx.send((stream, line.unwrap()));
            }
        });
    }
    drop(tx);
    let mut seen = String::new();
    let mut wait_for = |what: &str, within: Duration| {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let (stream, line) = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{label}: no {what:?} within {within:?}; so far:\n{seen}"));
            common::assert_no_token(&line);
            let _ = writeln!(seen, "{stream}: {line}");
            if line.contains(what) {
                return Instant::now();
            }
        }
    };
    {
        let _frozen = engine.freeze();
        stdin.write_all(b"{\"target\":\"/x/.env\",\"kind\":\"dotenv\"}\n").unwrap();
        let sent = Instant::now();
        let failed = wait_for("compose ps did not finish within", RETURNS_WITHIN + Duration::from_secs(1));
        assert!(failed - sent < RETURNS_WITHIN, "{label}: the batch took {:?} to fail", failed - sent);
        wait_for("retry 1 of 1 in 10s", Duration::from_secs(5));
    } // thawed: the retry finds the daemon answering
    wait_for("gateway: recreated", Duration::from_secs(60));
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{label}: the last batch succeeded:\n{seen}");
    assert_eq!(project.token_in_container("gateway"), Some(fingerprint(&new)), "{label}");
    assert_ne!(fingerprint(old), fingerprint(&new));
    assert!(seen.contains(&format!("{KEY} sk-ant-oat01-…({}) matches the .env", fingerprint(&new))), "{seen}");
}
