//! Container mode against a real Docker engine (tests/docker-engine): the `claude` stand-in runs in
//! a busybox container whose config directory is a bind-mounted host directory, and `cli-poke`
//! pokes it through `docker exec`, reading the credentials file on the host.
//!
//! `docker` is reached through a wrapper that records every argv and environment it gets, so the
//! tests see exactly what cli-poke ran (and that no token was on a command line).

mod common;

use common::{Fixture, HOUR, MINUTE, has_token_shape, now_ms, stand_in};
use keeper_docker_test_engine::{Engine, engine_or_skip, run_ok, unique_name};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The image: busybox + the stand-in as `/usr/local/bin/claude` + the glibc it is linked with.
const CLAUDE_IMAGE: &str = "keeper-test-claude:latest";
/// Where the host's config directory is mounted, and the container's `CLAUDE_CONFIG_DIR`.
const CONFIG_IN_CONTAINER: &str = "/claude";
/// Where the fixture's directory (holding the stand-in's call log) is mounted.
const FIXTURE_IN_CONTAINER: &str = "/fixture";

/// Builds [`CLAUDE_IMAGE`] once per test process: a root file system holding the stand-in and
/// every shared object `ldd` names (copied to the same paths), copied into a container made from
/// the busybox image, committed.
fn claude_image(engine: &Engine) -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let rootfs = tempfile::tempdir().unwrap();
        let bin = rootfs.path().join("usr/local/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(stand_in(), bin.join("claude")).unwrap();
        for lib in shared_objects(stand_in()) {
            let inside = rootfs.path().join(lib.strip_prefix("/").unwrap());
            std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
            // Follows symlinks: /lib64/ld-linux-x86-64.so.2 becomes a regular file.
            std::fs::copy(&lib, &inside).unwrap_or_else(|e| panic!("{}: {e}", lib.display()));
        }
        let builder = unique_name("claude-image");
        let _ = engine.docker_ok(&["create", "--name", &builder, engine.busybox_image(), "true"]);
        let source = format!("{}/.", rootfs.path().display());
        let _ = engine.docker_ok(&["cp", &source, &format!("{builder}:/")]);
        let _ = engine.docker_ok(&["commit", &builder, CLAUDE_IMAGE]);
        let _ = engine.docker_ok(&["rm", &builder]);
        let version = engine.docker_ok(&["run", "--rm", "--network", "none", CLAUDE_IMAGE, "claude", "--version"]);
        assert!(version.contains(claude_stand_in::VERSION), "{version}");
    });
    CLAUDE_IMAGE
}

/// The shared objects (and the program interpreter) `ldd` lists for `binary`.
fn shared_objects(binary: &Path) -> Vec<PathBuf> {
    let out = run_ok(Command::new("ldd").arg(binary));
    let libs: Vec<PathBuf> = out
        .lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    assert!(libs.iter().any(|l| l.to_string_lossy().contains("libc.so")), "ldd found no libc: {out}");
    libs
}

/// A running container of [`CLAUDE_IMAGE`], removed on drop.
struct Container<'e> {
    engine: &'e Engine,
    name: String,
}

impl<'e> Container<'e> {
    /// `docker run -d` with the fixture's config directory and call log mounted, plus `env`.
    fn start(engine: &'e Engine, f: &Fixture, env: &[(&str, &str)]) -> Self {
        let image = claude_image(engine);
        let name = unique_name("cli-poke");
        let mut args: Vec<String> = ["run", "-d", "--name", &name, "--network", "none"].map(str::to_owned).to_vec();
        args.push("-v".into());
        args.push(format!("{}:{CONFIG_IN_CONTAINER}", f.claude_dir.display()));
        args.push("-v".into());
        args.push(format!("{}:{FIXTURE_IN_CONTAINER}", f.dir.path().display()));
        let log = format!("{FIXTURE_IN_CONTAINER}/{}", f.call_log.file_name().unwrap().to_str().unwrap());
        for (k, v) in [("CLAUDE_CONFIG_DIR", CONFIG_IN_CONTAINER), ("CLAUDE_STAND_IN_LOG", log.as_str())]
            .into_iter()
            .chain(env.iter().copied())
        {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.extend([image, "sleep", "3600"].map(str::to_owned));
        let _ = engine.docker_ok(&args);
        Self { engine, name }
    }

    /// The container's own environment, as `docker inspect` shows it.
    fn env(&self) -> Vec<String> {
        let out = self.engine.docker_ok(&["inspect", "--format", "{{json .Config.Env}}", &self.name]);
        serde_json::from_str(out.trim()).unwrap()
    }

    fn stop(&self) {
        // `sleep` as PID 1 ignores SIGTERM: kill it.
        let _ = self.engine.docker_ok(&["kill", &self.name]);
        let state = self.engine.docker_ok(&["inspect", "--format", "{{.State.Running}}", &self.name]);
        assert_eq!(state.trim(), "false");
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.engine.docker().args(["rm", "-f", &self.name]).stdin(Stdio::null()).output();
    }
}

/// A `docker` that appends its argv (one `ARGV` line, arguments in brackets) and environment to
/// a log, then runs the engine's client.
struct DockerSpy {
    program: PathBuf,
    log: PathBuf,
}

impl DockerSpy {
    fn new(engine: &Engine, f: &Fixture) -> Self {
        let program = f.dir.path().join("docker-spy");
        let log = f.dir.path().join("docker-spy.log");
        let script = format!(
            "#!/bin/sh\n{{ printf ARGV; for a in \"$@\"; do printf ' [%s]' \"$a\"; done; echo; env | sed 's/^/ENV /'; }} >>'{}'\nexec '{}' \"$@\"\n",
            log.display(),
            engine.docker_bin().display()
        );
        std::fs::write(&program, script).unwrap();
        std::fs::set_permissions(&program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Self { program, log }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Each docker invocation's arguments.
    fn argvs(&self) -> Vec<Vec<String>> {
        self.text()
            .lines()
            .filter_map(|l| l.strip_prefix("ARGV"))
            .map(|l| {
                l.split(" [")
                    .skip(1)
                    .map(|a| a.strip_suffix(']').unwrap_or(a).trim_end_matches(']').to_owned())
                    .collect()
            })
            .collect()
    }

    /// The one `docker exec` of the CLI cli-poke ran, without its run marker (`-e
    /// KEEPER_CLI_POKE_RUN=…`, which it must carry).
    fn exec(&self) -> Vec<String> {
        let (exec, _) = self.exec_and_marker();
        exec
    }

    /// The one `docker exec` of the CLI without its run marker, and the marker's value.
    fn exec_and_marker(&self) -> (Vec<String>, String) {
        let execs: Vec<Vec<String>> = self
            .argvs()
            .into_iter()
            .filter(|a| a.first().is_some_and(|a| a == "exec") && !a.iter().any(|w| w == "-c"))
            .collect();
        assert_eq!(execs.len(), 1, "{:?}", self.argvs());
        let mut exec = execs.into_iter().next().unwrap();
        let at = exec.iter().position(|a| a.starts_with("KEEPER_CLI_POKE_RUN=")).expect("the run marker");
        assert_eq!(exec[at - 1], "-e", "{exec:?}");
        let marker = exec.remove(at).split_once('=').unwrap().1.to_owned();
        exec.remove(at - 1);
        (exec, marker)
    }

    /// No token (of those given, or anything token-shaped) in any argv or environment docker got.
    fn assert_no_token(&self, tokens: &[&str]) {
        let text = self.text();
        assert!(!has_token_shape(&text), "something token-shaped reached docker:\n{text}");
        for t in tokens {
            assert!(!text.contains(t), "a token reached docker's argv or environment");
        }
    }
}

/// cli-poke in container mode: the engine's `DOCKER_HOST`, docker through the spy.
fn poke(engine: &Engine, f: &Fixture, spy: &DockerSpy, container: &str) -> Command {
    let mut cmd = f.bare_cmd();
    engine.apply_env(&mut cmd);
    cmd.arg("--container").arg(container).arg("--creds").arg(&f.creds).arg("--docker").arg(&spy.program);
    cmd
}

#[test]
fn container_due_token_refreshes_through_docker_exec() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let c = Container::start(engine, &f, &[]);
    let spy = DockerSpy::new(engine, &f);

    let t0 = now_ms();
    let out = f.run(&mut poke(engine, &f, &spy, &c.name));
    assert_eq!(out.code, 0, "{}", out.all());
    let (a1, r1, e1) = f.current();
    assert_ne!(a1, a0, "the host file holds a new access token");
    assert_ne!(r1, r0, "and a new refresh token");
    assert!((t0 + 8 * HOUR..=now_ms() + 8 * HOUR).contains(&e1), "expiresAt = now + 8 h");
    assert_eq!(f.creds_json()["mcpOAuth"], json!({"srv|1": {"accessToken": "mcp-opaque"}}), "other keys kept");
    assert!(out.stderr.contains("refreshed:"), "{}", out.stderr);

    let calls = f.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0]["outcome"], "refreshed");
    assert_eq!(calls[0]["config_dir"], CONFIG_IN_CONTAINER, "the CLI inside wrote the bind-mounted file");
    assert_eq!(calls[0]["args"], json!(["-p", "say ok"]));
    assert_eq!(calls[0]["max_retries"], "1");
    assert_eq!(calls[0]["anthropic_base_url"], json!(null), "no override without a proxy");

    let argvs = spy.argvs();
    assert_eq!(argvs.len(), 2, "docker inspect, then docker exec: {argvs:?}");
    assert_eq!(argvs[0][..3], ["inspect", "--type", "container"]);
    assert_eq!(spy.exec(), ["exec", "-e", "CLAUDE_CODE_MAX_RETRIES=1", &c.name, "claude", "-p", "say ok"]);
    spy.assert_no_token(&[&a0, &r0, &a1, &r1]);
}

#[test]
fn container_base_url_override_never_does_not_refresh() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let proxy = [("ANTHROPIC_BASE_URL", "http://proxy.invalid"), ("CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API", "1")];
    let c = Container::start(engine, &f, &proxy);
    let spy = DockerSpy::new(engine, &f);

    let out = f.run(poke(engine, &f, &spy, &c.name).args(["--base-url-override", "never"]));
    // The CLI could not connect: refresh failed, will retry.
    assert_eq!(out.code, 7, "{}", out.all());
    assert!(out.stderr.contains("Connection error"), "the CLI's output is logged: {}", out.stderr);
    assert_eq!(f.current().0, a0, "not refreshed");
    let calls = f.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["outcome"], "api-unreachable");
    assert_eq!(calls[0]["anthropic_base_url"], "http://proxy.invalid");
    assert!(!spy.exec().iter().any(|a| a.starts_with("ANTHROPIC_BASE_URL")), "{:?}", spy.exec());
    spy.assert_no_token(&[&a0, &r0]);
}

#[test]
fn container_base_url_override_auto_refreshes_and_leaves_the_container_env_unchanged() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let proxy = [("ANTHROPIC_BASE_URL", "http://proxy.invalid"), ("CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API", "1")];
    let c = Container::start(engine, &f, &proxy);
    let env_before = c.env();
    assert!(env_before.contains(&"ANTHROPIC_BASE_URL=http://proxy.invalid".to_owned()), "{env_before:?}");
    let spy = DockerSpy::new(engine, &f);

    // auto is the default
    let out = f.run(&mut poke(engine, &f, &spy, &c.name));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("ANTHROPIC_BASE_URL points elsewhere: overriding it for this one command"));
    let (a1, r1, _) = f.current();
    assert_ne!(a1, a0);
    let calls = f.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["outcome"], "refreshed");
    assert_eq!(calls[0]["anthropic_base_url"], "https://api.anthropic.com", "the CLI saw the API for this exec");
    assert_eq!(
        spy.exec(),
        [
            "exec",
            "-e",
            "ANTHROPIC_BASE_URL=https://api.anthropic.com",
            "-e",
            "CLAUDE_CODE_MAX_RETRIES=1",
            &c.name,
            "claude",
            "-p",
            "say ok"
        ]
    );
    assert_eq!(c.env(), env_before, "the container's own environment is unchanged");
    // And a later command in the container still sees the proxy.
    let seen = engine.docker_ok(&["exec", &c.name, "sh", "-c", "echo $ANTHROPIC_BASE_URL"]);
    assert_eq!(seen.trim(), "http://proxy.invalid");
    spy.assert_no_token(&[&a0, &r0, &a1, &r1]);
}

#[test]
fn container_not_due_exits_1_without_running_docker() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, _) = f.write_creds(now_ms() + 2 * HOUR);
    let c = Container::start(engine, &f, &[]);
    let spy = DockerSpy::new(engine, &f);

    let out = f.run(&mut poke(engine, &f, &spy, &c.name));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("not due"), "{}", out.stderr);
    assert!(spy.argvs().is_empty(), "docker was run: {:?}", spy.argvs());
    assert!(f.calls().is_empty());
    assert_eq!(f.current().0, a0);
}

#[test]
fn container_missing_exits_5() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let spy = DockerSpy::new(engine, &f);
    let missing = unique_name("no-such-container");

    let out = f.run(&mut poke(engine, &f, &spy, &missing));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains(&format!("docker inspect {missing}")), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("no such"), "docker's reason is shown: {}", out.stderr);
    let argvs = spy.argvs();
    assert_eq!(argvs.len(), 1, "only the inspect: {argvs:?}");
    assert_eq!(argvs[0][0], "inspect");
    assert_eq!(f.current().0, a0);
    spy.assert_no_token(&[&a0, &r0]);
}

#[test]
fn container_stopped_exits_5() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let c = Container::start(engine, &f, &[]);
    c.stop();
    let spy = DockerSpy::new(engine, &f);

    let out = f.run(&mut poke(engine, &f, &spy, &c.name));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains(&format!("container {} is not running", c.name)), "{}", out.stderr);
    assert!(spy.argvs().iter().all(|a| a[0] == "inspect"), "no exec into a stopped container: {:?}", spy.argvs());
    assert!(f.calls().is_empty());
    assert_eq!(f.current().0, a0);
    spy.assert_no_token(&[&a0, &r0]);
}

#[test]
fn container_dead_refresh_token_is_reauth_with_the_stub_on_the_host() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let c = Container::start(engine, &f, &[("CLAUDE_STAND_IN_DEAD", "1")]);
    let spy = DockerSpy::new(engine, &f);

    let out = f.run(poke(engine, &f, &spy, &c.name).arg("--openclaw-dir").arg(&f.openclaw));
    assert_eq!(out.code, 3, "{}", out.all());
    let oauth = &f.creds_json()["claudeAiOauth"];
    assert_eq!((oauth["accessToken"].as_str(), oauth["expiresAt"].as_i64()), (Some(""), Some(0)), "stub on the host");
    let flag = std::fs::read_to_string(&f.flag).expect("the REAUTH flag is raised");
    assert!(flag.contains(&format!("credentials={}", f.creds.display())), "the host path: {flag}");
    assert!(!flag.contains(&r0) && !has_token_shape(&flag), "{flag}");
    assert_eq!(f.calls()[0]["outcome"], "refresh-failed");
    spy.assert_no_token(&[&a0, &r0]);
}

/// At --timeout only the `docker exec` client was killed: the CLI went on inside the container,
/// holding its refresh lock, past the timeout and into the next run. Now cli-poke stops it there
/// too (by its run marker), and nothing of it outlives the timeout.
#[test]
fn regression_the_cli_inside_the_container_outlived_the_timeout() {
    let engine = engine_or_skip!();
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let pidfile = format!("{FIXTURE_IN_CONTAINER}/grandchild.pid");
    // The token endpoint takes a minute: the CLI holds its lock that long; and it has a child.
    let hung = [("CLAUDE_STAND_IN_DELAY_MS", "60000"), ("CLAUDE_STAND_IN_CHILD_PIDFILE", pidfile.as_str())];
    let c = Container::start(engine, &f, &hung);
    let spy = DockerSpy::new(engine, &f);
    // The container's living processes, `PID ARGS…` (a zombie is dead: the container's PID 1,
    // `sleep`, never reaps the orphans it inherits).
    let living = r#"for d in /proc/[0-9]*; do
        s=$(cat "$d/stat" 2>/dev/null) || continue
        case "$s" in *") Z "*|*") X "*) continue;; esac
        echo "${d#/proc/} $(tr '\0' ' ' <"$d/cmdline")"
    done"#;
    let processes = || engine.docker_ok(&["exec", &c.name, "sh", "-c", living]);

    let started = std::time::Instant::now();
    let out = f.run(poke(engine, &f, &spy, &c.name).args(["--timeout", "3s"]));
    let elapsed = started.elapsed();
    assert_eq!(out.code, 7, "refresh failed, will retry: {}", out.all());
    assert!(elapsed < std::time::Duration::from_secs(30), "returned after {elapsed:?}");
    assert!(out.stderr.contains("did not finish within 3s"), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("stopped the CLI inside container {} too (", c.name)), "{}", out.stderr);
    let grandchild = std::fs::read_to_string(f.dir.path().join("grandchild.pid")).expect("the CLI started its child");
    let ps = processes();
    assert!(!ps.contains("claude"), "the CLI still runs inside the container:\n{ps}");
    assert!(
        !ps.lines().any(|l| l.split_whitespace().next() == Some(grandchild.trim())),
        "its child {} still runs inside the container:\n{ps}",
        grandchild.trim()
    );
    assert!(ps.contains("sleep 3600"), "the container's own process is left alone:\n{ps}");
    let (_, marker) = spy.exec_and_marker();
    let kills: Vec<Vec<String>> = spy.argvs().into_iter().filter(|a| a.iter().any(|w| w == "-c")).collect();
    assert_eq!(kills.len(), 1, "{:?}", spy.argvs());
    assert_eq!(kills[0][..3], ["exec", c.name.as_str(), "sh"]);
    // The script spans lines in the spy's log: its last argument is on the script's last line.
    assert!(spy.text().contains(&format!(" [sh] [{marker}]\n")), "the kill names this run's marker");
    assert_eq!(f.current().0, a0, "nothing refreshed");
    // Nothing inside finishes the refresh later either.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(f.current().0, a0);
    spy.assert_no_token(&[&a0, &r0]);
}
