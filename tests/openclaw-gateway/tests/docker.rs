//! Docker, for real: OpenClaw 2026.9.6's gateway runs in a container on the private engine (an
//! image built here from the test set-up's Node runtime and OpenClaw install, glibc and busybox;
//! nothing pulled), and `cred-sync` pastes through `docker compose exec -T openclaw-gateway
//! openclaw …`, as `setup.sh` installs it for the SQLite era. The verdict is the token the
//! containerised gateway sends to the mock, for two agents, and that the container is neither
//! recreated nor restarted for a rotation.
//!
//! The test isolates its thread's network first, so the private engine (started from this
//! thread, the only test in this binary) and its host-network container live in that namespace
//! with the mock: nothing leaves the machine.

use claude_stand_in::tokens::{access_token, refresh_token};
use keeper_anthropic_mock::fingerprint;
use keeper_docker_test_engine::{Engine, composes_or_skip, engine_or_skip, run_ok, unique_name};
use keeper_gateway_test::{GATEWAY_TOKEN, Generation, OpenClawHome, isolated_mock, ms_from_now, openclaw_or_skip, run};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "keeper-test-openclaw:2026.9.6";
const SERVICE: &str = "openclaw-gateway";
const LIMIT: Duration = Duration::from_secs(600);

/// The shared objects (and the program interpreter) `ldd` lists for `binary`.
fn shared_objects(binary: &Path) -> Vec<PathBuf> {
    let out = run_ok(Command::new("ldd").arg(binary));
    out.lines()
        .filter_map(|line| {
            let path = line.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// The directory `scripts/install-openclaw-for-tests.sh` installed into (DEST of
/// `DEST/bin/openclaw-sqlite`), and the Node binary its wrapper runs.
fn install_dir_and_node(program: &Path) -> (PathBuf, PathBuf) {
    let dest = program.parent().and_then(Path::parent).expect("DEST/bin/openclaw-sqlite").to_path_buf();
    let wrapper = std::fs::read_to_string(program).expect("the openclaw wrapper script");
    let node = wrapper
        .lines()
        .find_map(|l| l.strip_prefix("exec \"").and_then(|rest| rest.split('"').next()))
        .map(PathBuf::from)
        .expect("the wrapper's exec line names node");
    (dest, node)
}

/// Builds [`IMAGE`]: busybox, then the install (Node and OpenClaw at the same absolute paths,
/// streamed in with `docker cp -`), the glibc files Node links, and `/usr/local/bin/openclaw`.
fn build_image(engine: &Engine, program: &Path) -> Duration {
    let start = Instant::now();
    let (dest, node) = install_dir_and_node(program);
    let node_dist = node.parent().and_then(Path::parent).expect("node in <dist>/bin").to_path_buf();
    let prefix = dest.join("openclaw-2026.9.6");
    assert!(prefix.is_dir(), "{} is not installed", prefix.display());
    let builder = unique_name("openclaw-image");
    let _ = engine.docker_ok(&["create", "--name", &builder, engine.busybox_image(), "true"]);
    let copy = |tar_args: &[&str], paths: &[PathBuf]| {
        let mut tar = Command::new("tar");
        tar.args(["-c", "-C", "/"]).args(tar_args);
        for p in paths {
            tar.arg(p.strip_prefix("/").expect("absolute"));
        }
        let mut tar = tar.stdout(Stdio::piped()).spawn().expect("tar runs");
        let mut cp = engine.docker();
        cp.args(["cp", "-", &format!("{builder}:/")]).stdin(tar.stdout.take().unwrap());
        let out = cp.output().expect("docker cp runs");
        assert!(tar.wait().unwrap().success(), "tar failed");
        assert!(out.status.success(), "docker cp: {}", String::from_utf8_lossy(&out.stderr));
    };
    copy(&[], &[node_dist, prefix, program.to_path_buf()]);
    // The libraries as regular files (a symlink's target would be missing).
    copy(&["--dereference"], &shared_objects(&node));
    let link = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(link.path().join("usr/local/bin")).unwrap();
    std::os::unix::fs::symlink(program, link.path().join("usr/local/bin/openclaw")).unwrap();
    let _ = engine.docker_ok(&["cp", &format!("{}/.", link.path().display()), &format!("{builder}:/")]);
    let _ = engine.docker_ok(&["commit", &builder, IMAGE]);
    let _ = engine.docker_ok(&["rm", &builder]);
    start.elapsed()
}

/// `docker compose … exec -T openclaw-gateway openclaw agent …` would run the turn inside the
/// container; the host's `openclaw agent` reaches the same gateway (host network, shared state
/// directory) and is the judge's own tool, so the turn is sent from the host. Returns the
/// fingerprints the mock recorded during it, and whether it succeeded.
fn turn(home: &OpenClawHome<'_>, agent: &str) -> (bool, Vec<String>) {
    let mock = home.mock();
    let before = mock.messages().len();
    let mut cmd = home.openclaw(&["agent", "--agent", agent, "-m", "hi", "--json", "--timeout", "180"]);
    cmd.env("OPENCLAW_GATEWAY_TOKEN", GATEWAY_TOKEN);
    // Never an embedded run in this process: its requests would not be the gateway's.
    for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        cmd.env(var, "http://127.0.0.1:9");
    }
    let out = run(cmd, None, LIMIT);
    let json: Value = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    let fps: Vec<String> = mock.messages()[before..].iter().filter_map(|r| r.token_fingerprint.clone()).collect();
    let ok = out.success() && json["status"] == "ok";
    eprintln!("turn (agent {agent}) in {:.1} s: ok={ok} {fps:?}", out.took.as_secs_f64());
    (ok, fps)
}

/// `COMPOSE --project-directory DIR -p NAME ARGS` through `sh -c` (the words as cred-sync's
/// `--openclaw-cmd` gets them), the engine's `DOCKER_HOST` set.
fn compose_sh(engine: &Engine, words: &str, args: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("{words} {args}")]);
    engine.apply_env(&mut cmd);
    cmd
}

fn write_source(path: &Path, life: Duration) -> String {
    let access = access_token();
    let json = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"{access}","refreshToken":"{}","expiresAt":{},"scopes":["user:inference"],"subscriptionType":"max"}}}}"#,
        refresh_token(),
        ms_from_now(life)
    );
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    access
}

#[test]
fn sqlite_era_in_docker_paste_through_compose_exec_reaches_every_agent_without_a_recreation() {
    openclaw_or_skip!(Generation::Sqlite);
    let program = Generation::Sqlite.program().expect("installed");
    let (mock_dir, mock) = isolated_mock();
    let engine = engine_or_skip!();
    let Some(compose) = composes_or_skip!(engine).first().cloned() else { return };
    let took = build_image(engine, &program);
    eprintln!("image {IMAGE} built in {:.1} s", took.as_secs_f64());

    let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main", "second"]);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    // The gateway's environment: what the host's OpenClaw commands get (this home, the mock as
    // proxy and CA, the telemetry opt-outs), the gateway token as compose files pass it.
    let mut env: Vec<(String, String)> = home
        .openclaw(&[])
        .get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .filter(|(k, _)| k != "PATH")
        .collect();
    env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    env.push(("OPENCLAW_GATEWAY_TOKEN".into(), GATEWAY_TOKEN.into()));
    let environment = env.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "      {k}: {}", serde_json::json!(v));
        out
    });
    let home_dir = home.home().display().to_string();
    let ca_dir = mock_dir.path().display().to_string();
    std::fs::write(dir.join(".env"), "# compose\n").unwrap();
    std::fs::write(
        dir.join("docker-compose.yml"),
        format!(
            "services:\n  {SERVICE}:\n    image: {IMAGE}\n    network_mode: host\n    init: true\n    env_file: .env\n    \
             environment:\n{environment}    volumes:\n      - {home_dir}:{home_dir}\n      - {ca_dir}:{ca_dir}:ro\n    \
             command: [\"openclaw\", \"gateway\", \"run\", \"--bind\", \"loopback\", \"--auth\", \"token\"]\n"
        ),
    )
    .unwrap();
    let project_name = unique_name("oc").replace(['_', '.'], "-").to_lowercase();
    let compose_words = format!("{} --project-directory {} -p {project_name}", compose.command_line(), dir.display());
    let up = Instant::now();
    let _ = run_ok(&mut compose_sh(engine, &compose_words, "up -d"));
    let logs = || {
        let out = compose_sh(engine, &compose_words, &format!("logs --no-color {SERVICE} 2>&1")).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    while !logs().contains("http server listening") {
        assert!(
            up.elapsed() < LIMIT,
            "the containerised gateway did not listen:\n{}",
            keeper_gateway_test::redact(&logs())
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("containerised gateway ready after {:.1} s", up.elapsed().as_secs_f64());
    let container = |engine: &Engine| {
        run_ok(&mut compose_sh(engine, &compose_words, &format!("ps -q {SERVICE}"))).trim().to_owned()
    };
    let id = container(engine);
    assert!(!id.is_empty(), "no gateway container");

    // cred-sync as the system set's sync service runs it for a SQLite-era Docker install.
    let claude = tempfile::tempdir().unwrap();
    let creds = claude.path().join(".credentials.json");
    let cred_sync = keeper_install_tests::build_workspace_packages(&["cred-sync"]).join("cred-sync");
    let sync = || {
        let mut cmd = Command::new(&cred_sync);
        cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        engine.apply_env(&mut cmd);
        cmd.env("KEEPER_STATE_DIR", claude.path().join("state"))
            .arg("--from")
            .arg(&creds)
            .args(["--to", "openclaw-paste", "--to"])
            .arg(format!("dotenv:{}", dir.join(".env").display()))
            .arg("--openclaw-cmd")
            .arg(format!("{compose_words} exec -T {SERVICE} openclaw"))
            // paste-token through compose exec: seconds idle, up to minutes on 2 loaded cores.
            .args(["--paste-timeout", "300s"]);
        let start = Instant::now();
        let out = run(cmd, None, LIMIT);
        eprintln!("cred-sync through compose exec: {:.1} s, exit {:?}", start.elapsed().as_secs_f64(), out.code);
        let lines: Vec<Value> = out.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (out, lines)
    };

    for round in 0..2 {
        let token = write_source(&creds, Duration::from_secs(8 * 3600 + 60 * round));
        let (out, lines) = sync();
        assert_eq!(out.code, Some(0), "{}", out.text());
        let paste = lines.iter().find(|l| l["kind"] == "openclaw-paste").unwrap_or_else(|| panic!("{lines:?}"));
        assert_eq!(paste["delivery"], "told", "paste-token inside the container told the gateway: {lines:?}");
        assert!(lines.iter().all(|l| l["restart"] == false), "no recreation asked for: {lines:?}");
        for agent in ["main", "second"] {
            let (ok, fps) = turn(&home, agent);
            assert!(ok && !fps.is_empty(), "round {round}, agent {agent}: {fps:?}");
            assert!(fps.iter().all(|f| *f == fingerprint(&token)), "round {round}, agent {agent}: {fps:?}");
        }
    }
    assert_eq!(container(engine), id, "the gateway container was not recreated");
    let _ = run_ok(&mut compose_sh(engine, &compose_words, "down -t 5"));
}
