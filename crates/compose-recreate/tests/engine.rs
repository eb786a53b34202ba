//! Against a real Docker engine (private, started by the tests) and every Compose installed.
//! Without an engine these tests skip loudly; with `KEEPER_REQUIRE_DOCKER=1` (CI) they fail.

mod common;

use common::{
    ENV_FILE, ENVIRONMENT, HEALTHCHECK, KEY, Project, fingerprint, for_each_compose, idle_service, outcome,
    recording_service, run, token,
};
use keeper_docker_test_engine::{composes_or_skip, engine_or_skip};
use std::io::{BufRead, BufReader, Write as _};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

/// The seed's claim, proven: `docker compose restart` restarts the same container with the
/// environment it was created with; our recreation brings the new token.
#[test]
fn compose_restart_keeps_the_old_token_and_recreate_brings_the_new_one() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let (old, new) = (token(), token());
        let image = engine.busybox_image();
        let services = |p: &std::path::Path| format!("  gateway:\n{}", recording_service(image, p, ENV_FILE));
        let project = Project::new(engine, compose, "", &old);
        project.write_compose(&services(&project.rec()));
        project.compose_ok(&["up", "-d"]);
        let first = project.container_id("gateway");

        project.set_token(&new);
        project.compose_ok(&["restart", "--timeout", "5", "gateway"]);
        let label = compose.label();
        assert_eq!(project.container_id("gateway"), first, "{label}: restart keeps the container");
        assert_eq!(
            project.token_in_container("gateway"),
            Some(fingerprint(&old)),
            "{label}: restart kept the old token"
        );
        assert_eq!(
            project.recorded_starts(),
            [Some(fingerprint(&old)); 2],
            "{label}: the restarted process saw the old token"
        );

        let (code, stdout, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 0, "{label}: {stderr}");
        assert!(stdout.starts_with("gateway: recreated (recreate): container "), "{label}: {stdout}");
        assert!(stdout.contains(&format!("{KEY} sk-ant-oat01-…({}) matches the .env", fingerprint(&new))), "{stdout}");
        assert_ne!(project.container_id("gateway"), first, "{label}");
        assert_eq!(project.token_in_container("gateway"), Some(fingerprint(&new)), "{label}");
        assert_eq!(project.recorded_starts().last(), Some(&Some(fingerprint(&new))), "{label}: the new process has it");
    });
}

/// Both modes bring the new token, with `env_file:` and with an `environment:` entry, waiting
/// for the healthcheck.
#[test]
fn both_modes_bring_the_new_token_and_wait_for_healthy() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        for (mode, passing) in
            [("recreate", ENV_FILE), ("down-up", ENVIRONMENT), ("recreate", ENVIRONMENT), ("down-up", ENV_FILE)]
        {
            let label = format!("{} {mode} {}", compose.label(), passing.trim());
            let project = Project::new(engine, compose, "", &token());
            let extra = format!("{passing}{HEALTHCHECK}");
            project.write_compose(&format!(
                "  gateway:\n{}",
                recording_service(engine.busybox_image(), &project.rec(), &extra)
            ));
            project.compose_ok(&["up", "-d"]);
            let new = token();
            project.set_token(&new);

            let (code, stdout, stderr) = run(project.tool().args(["--mode", mode, "--json", "gateway"]));
            assert_eq!(code, 0, "{label}: {stderr}");
            let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
            assert_eq!(line["status"], "recreated", "{label}");
            assert_eq!(line["mode"], mode, "{label}");
            assert_eq!(line["state"], "running", "{label}");
            assert_eq!(line["health"], "healthy", "{label}: waited for the healthcheck");
            assert_eq!(line["fingerprint"], format!("sk-ant-oat01-…({})", fingerprint(&new)), "{label}");
            assert_eq!(project.token_in_container("gateway"), Some(fingerprint(&new)), "{label}");
            assert_eq!(project.recorded_starts().last(), Some(&Some(fingerprint(&new))), "{label}");
            assert_eq!(project.recorded_starts().len(), 2, "{label}: one new start");
        }
    });
}

/// An older compose file passes nothing: the .env only feeds interpolation. Verification
/// catches it and names the cause.
#[test]
fn verification_catches_a_compose_file_that_does_not_pass_the_variable() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let project = Project::new(engine, compose, "", &token());
        project
            .write_compose(&format!("  gateway:\n{}", recording_service(engine.busybox_image(), &project.rec(), "")));
        project.compose_ok(&["up", "-d"]);
        let (code, stdout, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 4, "{label}: {stderr}");
        assert!(stdout.is_empty(), "{label}: {stdout}");
        assert!(stderr.contains(&format!("has no {KEY} in its environment")), "{label}: {stderr}");
        assert!(stderr.contains("the compose file does not pass the variable"), "{label}: {stderr}");
        assert!(stderr.contains("env_file: .env"), "{label}: {stderr}");
        assert_eq!(project.recorded_starts(), [None, None], "{label}: it was recreated, without the token");

        // A literal value in `environment:` is a different token: also caught, with its own cause.
        let literal = format!("    environment:\n      {KEY}: not-the-env-token\n");
        project.write_compose(&format!(
            "  gateway:\n{}",
            recording_service(engine.busybox_image(), &project.rec(), &literal)
        ));
        let (code, _, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 4, "{label}: {stderr}");
        assert!(stderr.contains("sets it from elsewhere"), "{label}: {stderr}");
    });
}

/// `--stdin`: 50 change lines in a burst make one recreation; a later line with the .env
/// unchanged makes none.
#[test]
fn stdin_turns_fifty_change_lines_into_one_recreation() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let old = token();
        let project = Project::running_gateway(engine, compose, &old);
        let new = token();
        project.set_token(&new);

        let mut child = project
            .tool()
            .args(["--stdin", "--quiet-period", "1s", "--min-interval", "0s", "gateway"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let change = format!(
            "{{\"target\":\"{}\",\"kind\":\"dotenv\",\"fingerprint\":\"sk-ant-oat01-…({})\"}}\n",
            project.path().join(".env").display(),
            fingerprint(&new)
        );
        // Five bursts of ten lines, 20 ms apart: well inside the quiet period.
        for _ in 0..5 {
            stdin.write_all(change.repeat(10).as_bytes()).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        let first = rx.recv_timeout(Duration::from_secs(90)).expect("a result line");
        assert!(first.starts_with("gateway: recreated"), "{label}: {first}");

        // The .env did not change again: another line finds every container current.
        stdin.write_all(change.as_bytes()).unwrap();
        let second = rx.recv_timeout(Duration::from_secs(60)).expect("a second result line");
        assert!(second.starts_with("gateway: already current"), "{label}: {second}");
        drop(stdin);

        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        let stdout = reader.join().unwrap();
        common::assert_no_token(&stdout);
        common::assert_no_token(&stderr);
        assert_eq!(status.code(), Some(0), "{label}: {stderr}");
        assert_eq!(stdout.matches("recreated").count(), 1, "{label}: {stdout}");
        assert!(stderr.contains("batch of 50 change line(s)"), "{label}: {stderr}");
        assert_eq!(
            project.recorded_starts(),
            [Some(fingerprint(&old)), Some(fingerprint(&new))],
            "{label}: one new start"
        );
    });
}

/// `recreate` mode leaves the project's other services and its network alone (`down-up`, for
/// contrast, replaces them).
#[test]
fn recreate_mode_leaves_other_services_and_networks_untouched() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let project = Project::new(engine, compose, "", &token());
        let image = engine.busybox_image();
        project.write_compose(&format!(
            "  gateway:\n{}  cli:\n{}    env_file: .env\n  worker:\n{}    depends_on: [gateway]\n",
            recording_service(image, &project.rec(), ENV_FILE),
            idle_service(image),
            idle_service(image),
        ));
        project.compose_ok(&["up", "-d"]);
        let state = |service: &str| {
            let id = project.container_id(service);
            let started = project.inspect(&id, "{{.State.StartedAt}}");
            let network = project.inspect(&id, "{{range .NetworkSettings.Networks}}{{.NetworkID}}{{end}}");
            (id, started, network)
        };
        let before = [state("cli"), state("worker")];
        let gateway_before = state("gateway");
        project.set_token(&token());

        let (code, _, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 0, "{label}: {stderr}");
        assert_eq!([state("cli"), state("worker")], before, "{label}: cli and worker untouched");
        let gateway_after = state("gateway");
        assert_ne!(gateway_after.0, gateway_before.0, "{label}: gateway recreated");
        assert_eq!(gateway_after.2, gateway_before.2, "{label}: on the same network");

        let (code, _, stderr) = run(project.tool().args(["--mode", "down-up", "gateway"]));
        assert_eq!(code, 0, "{label}: {stderr}");
        let after = [state("cli"), state("worker")];
        assert!(after[0].0 != before[0].0 && after[1].0 != before[1].0, "{label}: down-up replaces everything");
    });
}

/// `--if-stale` exits 1 without touching a container that already has the token.
#[test]
fn if_stale_does_nothing_when_the_container_is_current() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let project = Project::running_gateway(engine, compose, &token());
        let id = project.container_id("gateway");
        let (code, stdout, stderr) = run(project.tool().args(["--if-stale", "gateway"]));
        assert_eq!(code, 1, "{label}: {stderr}");
        assert!(stdout.starts_with("gateway: already current"), "{label}: {stdout}");
        assert_eq!(project.container_id("gateway"), id, "{label}");

        project.set_token(&token());
        let (code, stdout, stderr) = run(project.tool().args(["--if-stale", "gateway"]));
        assert_eq!(code, 0, "{label}: {stderr}");
        assert!(stdout.starts_with("gateway: recreated"), "{label}: {stdout}");
    });
}

/// Compose's own error message holds the token (here: an image named after it); what we show is
/// the step, its exit status and the message with a fingerprint in the token's place.
#[test]
fn compose_errors_are_shown_with_their_step_and_status_and_redacted() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let secret = token();
        let project =
            Project::new(engine, compose, &format!("  gateway:\n    image: \"keeper-${{{KEY}}}\"\n"), &secret);
        let (code, _, stderr) = outcome(&project.tool().arg("gateway").output().unwrap()); // fails on a leak
        assert_eq!(code, 2, "{label}: {stderr}");
        assert!(stderr.contains("compose up --force-recreate failed (exit status 1)"), "{label}: {stderr}");
        assert!(stderr.contains(&format!("keeper-sk-ant-oat01-…({})", fingerprint(&secret))), "{label}: {stderr}");

        let (code, _, stderr) = run(project.tool().arg("no-such-service"));
        assert_eq!(code, 2, "{label}: {stderr}");
        // v1 fails at `ps`, v2 at `up`: either way the step, the status and Compose's message.
        assert!(stderr.contains(" failed (exit status 1): `"), "{label}: {stderr}");
        assert!(stderr.to_lowercase().contains("no such service: no-such-service"), "{label}: {stderr}");
    });
}

/// A container that never becomes healthy, or exits, is reported with exit status 3.
#[test]
fn a_container_that_is_not_healthy_in_time_or_exits_gives_3() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let project = Project::new(engine, compose, "", &token());
        let never_healthy = HEALTHCHECK.replace("/tmp/ready", "/tmp/never");
        let extra = format!("{ENV_FILE}{never_healthy}");
        project.write_compose(&format!(
            "  gateway:\n{}",
            recording_service(engine.busybox_image(), &project.rec(), &extra)
        ));
        let (code, _, stderr) = run(project.tool().args(["--timeout", "2s", "gateway"]));
        assert_eq!(code, 3, "{label}: {stderr}");
        assert!(stderr.contains("not ready after 2s: running, starting"), "{label}: {stderr}");

        project.write_compose(&format!(
            "  gateway:\n    image: {}\n    command: [\"sh\", \"-c\", \"exit 7\"]\n{ENV_FILE}",
            engine.busybox_image()
        ));
        let (code, _, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 3, "{label}: {stderr}");
        assert!(stderr.contains("stopped: exited (status 7)"), "{label}: {stderr}");
    });
}

/// A container named after `${ANTHROPIC_OAUTH_TOKEN}` printed the whole token in the "recreated"
/// line, in --json's `name` and in errors: only the stderr of a failing command was redacted.
/// Now everything that comes back from docker and compose is, whether the token has the
/// `sk-ant-` shape (redacted by shape) or not (redacted as the .env's known value).
#[test]
fn regression_a_container_named_after_the_token_printed_it_whole() {
    let engine = engine_or_skip!();
    for_each_compose(composes_or_skip!(engine), |compose| {
        let label = compose.label();
        let named = format!("    container_name: \"gw-${{{KEY}}}\"\n{ENV_FILE}");
        let shaped = token();
        let project = Project::new(engine, compose, "", &shaped);
        project.write_compose(&format!(
            "  gateway:\n{}",
            recording_service(engine.busybox_image(), &project.rec(), &named)
        ));
        // outcome() fails the test on any leak, in stdout or stderr.
        let (code, stdout, stderr) = run(project.tool().arg("gateway"));
        assert_eq!(code, 0, "{label}: {stderr}");
        let shown = format!("gw-sk-ant-oat01-…({})", fingerprint(&shaped));
        assert!(stdout.contains(&format!("container {shown} (")), "{label}: {stdout}");
        let (code, stdout, stderr) = run(project.tool().args(["--json", "gateway"]));
        assert_eq!(code, 0, "{label}: {stderr}");
        let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(line["name"], shown, "{label}");

        // A token without the shape, known only as the .env's value; and an error naming the
        // container (the compose file sets the variable from elsewhere).
        let plain = format!("TEST{}", &token()[17..57]);
        project.set_token(&plain);
        let literal = format!("    container_name: \"gw-${{{KEY}}}\"\n    environment:\n      {KEY}: other\n");
        project.write_compose(&format!(
            "  gateway:\n{}",
            recording_service(engine.busybox_image(), &project.rec(), &literal)
        ));
        let (code, _, stderr) = run(project.tool().args(["--json", "gateway"]));
        assert_eq!(code, 4, "{label}: {stderr}");
        let shown = format!("container gw-{} has {KEY}=", credmap::Secret::new(plain.as_str()));
        assert!(stderr.contains(&shown), "{label}: {stderr}");
    });
}
