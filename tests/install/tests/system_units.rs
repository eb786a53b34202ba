//! The system set's Docker chain, run for real: its units (paths rewritten as setup.sh does for a
//! staging prefix) on a private service manager (`systemd --user` as root: the same unit
//! semantics, sandboxing included), against a private real Docker engine and Compose.
//!
//! - `openclaw-keeper-sync-once.service`: cred-sync once, then `compose-recreate --if-stale`
//!   (`KEEPER_RECREATE=yes`); a second run has nothing to do and still succeeds (exit 1 of both
//!   counts as success), leaving the container alone.
//! - `openclaw-keeper-sync-compose.service`: `cred-sync --watch | compose-recreate --stdin`: a
//!   new credentials file reaches the .env and a recreated gateway container.

use keeper_docker_test_engine::{Engine, engine_or_skip, run_ok, unique_name};
use keeper_install_tests::systemd::{self, UserManager};
use keeper_install_tests::{access_token, fingerprint, has_token_shape, now_ms, refresh_token, write_file};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

fn write_creds(path: &Path, access: &str, expires_ms: i64) {
    let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh_token(),
        "expiresAt": expires_ms, "scopes": ["user:inference"]}});
    let tmp = path.with_extension("json.tmp.1a2b3c4d");
    fs::write(&tmp, doc.to_string()).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The gateway container's id and the fingerprint of its token variable.
fn container_token(engine: &Engine, project: &Path, name: &str) -> Option<(String, String)> {
    let mut ps = engine.docker();
    ps.args(["compose", "-p", name, "ps", "-q", "openclaw-gateway"]).current_dir(project);
    let out = ps.output().ok()?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if id.is_empty() {
        return None;
    }
    let env = engine
        .docker()
        .args(["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", &id])
        .output()
        .ok()?;
    let env = String::from_utf8_lossy(&env.stdout).into_owned();
    let token = env.lines().find_map(|l| l.strip_prefix("ANTHROPIC_OAUTH_TOKEN="))?;
    Some((id, fingerprint(token)))
}

fn wait_for(what: &str, logs: &Path, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            let mut text = String::new();
            for e in fs::read_dir(logs).into_iter().flatten().flatten() {
                let _ =
                    writeln!(text, "==> {}\n{}", e.path().display(), fs::read_to_string(e.path()).unwrap_or_default());
            }
            assert!(!has_token_shape(&text));
            panic!("timed out waiting for {what}\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[allow(clippy::too_many_lines)] // Reason: one scenario; its steps build on each other.
fn system_sync_units_recreate_the_gateway_container() {
    if let Some(why) = systemd::user_manager_unavailable() {
        systemd::skip(&why);
        return;
    }
    let engine = engine_or_skip!();
    if !engine.docker().args(["compose", "version"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: the system set's compose chain needs Compose v2 (`docker compose`) for this test");
        return;
    }
    let root = systemd::service_visible_tempdir("system-units-");
    let base = root.path();
    let (home, work, logs) = (base.join("home"), base.join("work"), base.join("logs"));
    for d in [&home, &work, &logs] {
        fs::create_dir_all(d).unwrap();
    }
    let bin = base.join("prefix/bin");
    systemd::install_tools(&bin, false);
    let config = base.join("etc/openclaw-oauth-keeper/keeper.env");
    let creds = home.join(".claude/.credentials.json");
    fs::create_dir_all(creds.parent().unwrap()).unwrap();
    let project = base.join("openclaw");
    let compose_name = unique_name("keeper-system-units");
    let env_file = project.join(".env");

    // The gateway: a compose service that takes the token from .env.
    write_file(
        &project.join("docker-compose.yml"),
        &format!(
            "services:\n  openclaw-gateway:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    network_mode: none\n    \
             stop_grace_period: 1s\n    env_file: .env\n",
            engine.busybox_image()
        ),
    );
    let old = access_token();
    write_file(&env_file, &format!("ANTHROPIC_OAUTH_TOKEN={old}\n"));
    let mut up = engine.docker();
    up.args(["compose", "-p", &compose_name, "up", "-d"]).current_dir(&project);
    let _ = run_ok(&mut up);
    let (first_id, fp) = container_token(engine, &project, &compose_name).expect("the gateway runs");
    assert_eq!(fp, fingerprint(&old));

    write_file(
        &config,
        &format!(
            "KEEPER_INSTALL=system\nKEEPER_GATEWAY=docker\nKEEPER_MODE=refresh\n\
             KEEPER_CREDENTIALS={creds}\nKEEPER_TO=dotenv:{env}\n\
             KEEPER_PROJECT_DIR={project}\nKEEPER_SERVICES=openclaw-gateway\nKEEPER_COMPOSE_PROJECT={compose_name}\n\
             KEEPER_COMPOSE_CMD={docker} compose\nKEEPER_DOCKER={docker}\nKEEPER_RECREATE=yes\n\
             KEEPER_RECREATE_QUIET_PERIOD=200ms\nKEEPER_RECREATE_MIN_INTERVAL=1s\nKEEPER_RECREATE_TIMEOUT=30s\n\
             KEEPER_OPENCLAW_DIR={home}/.openclaw\nDOCKER_HOST={host}\n",
            creds = creds.display(),
            env = env_file.display(),
            project = project.display(),
            docker = engine.docker_bin().display(),
            home = home.display(),
            host = engine.docker_host(),
        ),
    );

    let mut mgr = match UserManager::start(&home, &work) {
        Ok(m) => m,
        Err(why) => {
            systemd::skip(&format!("the service manager did not start: {why}"));
            return;
        }
    };
    let unit_dir = home.join(".config/systemd/user");
    let unsupported = mgr.unsupported_sandboxing(&unit_dir);
    // The system set, with its paths rewritten to this staging root.
    for src in systemd::unit_sources("system") {
        let text = fs::read_to_string(&src)
            .unwrap()
            .replace("/usr/local/bin/", &format!("{}/", bin.display()))
            .replace("/etc/openclaw-oauth-keeper/keeper.env", &config.display().to_string());
        write_file(&unit_dir.join(src.file_name().unwrap()), &text);
    }
    for unit in ["openclaw-keeper-sync-once.service", "openclaw-keeper-sync-compose.service"] {
        let dropins = unit_dir.join(format!("{unit}.d"));
        // systemd/README.md's rules: the target's directory (the compose project directory).
        write_file(
            &dropins.join("50-keeper-paths.conf"),
            &format!("[Service]\nReadWritePaths=-{}\n", project.display()),
        );
        // Test only: output to files; the private engine's socket lives under /tmp, which
        // PrivateTmp=yes replaces, so it is bound in.
        let log = logs.join(format!("{unit}.log"));
        write_file(
            &dropins.join("90-test.conf"),
            &format!(
                "[Service]\nStandardOutput=append:{0}\nStandardError=append:{0}\nReadWritePaths=-{1}\nBindPaths={2}\n",
                log.display(),
                logs.display(),
                engine.root().display()
            ),
        );
        if let Some(off) = systemd::sandbox_off_dropin(&unsupported) {
            write_file(&dropins.join("99-test-sandbox.conf"), &off);
        }
    }
    let _ = mgr.systemctl_ok(&["daemon-reload"]);

    // sync-once: writes the .env, recreates the container.
    let first = access_token();
    write_creds(&creds, &first, now_ms() + 3_600_000);
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync-once.service"]);
    assert_eq!(mgr.property("openclaw-keeper-sync-once.service", "Result"), "success");
    assert!(fs::read_to_string(&env_file).unwrap().contains(&first), ".env not written");
    let (second_id, fp) = container_token(engine, &project, &compose_name).expect("the gateway runs");
    assert_eq!(fp, fingerprint(&first), "the container was not recreated with the new token");
    assert_ne!(second_id, first_id);
    // Again: nothing to do for either tool (exit 1), and that is success.
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync-once.service"]);
    assert_eq!(mgr.property("openclaw-keeper-sync-once.service", "Result"), "success");
    assert_eq!(container_token(engine, &project, &compose_name).unwrap().0, second_id, "recreated for nothing");
    let once_log = fs::read_to_string(logs.join("openclaw-keeper-sync-once.service.log")).unwrap_or_default();
    assert!(once_log.contains("compose-recreate"), "{once_log}");

    // sync-compose: the watcher chained to compose-recreate --stdin.
    let _ = mgr.systemctl_ok(&["start", "openclaw-keeper-sync-compose.service"]);
    let second = access_token();
    write_creds(&creds, &second, now_ms() + 2 * 3_600_000);
    wait_for("the gateway container runs with the new token", &logs, Duration::from_secs(60), || {
        container_token(engine, &project, &compose_name).is_some_and(|(_, fp)| fp == fingerprint(&second))
    });
    assert_eq!(mgr.property("openclaw-keeper-sync-compose.service", "ActiveState"), "active");
    let _ = mgr.systemctl_ok(&["stop", "openclaw-keeper-sync-compose.service"]);
    assert_eq!(mgr.property("openclaw-keeper-sync-compose.service", "Result"), "success", "a clean stop");

    let (clean, leftovers) = mgr.stop();
    assert!(clean && leftovers.is_empty(), "clean exit: {clean}, left: {leftovers:?}");
    let mut down = engine.docker();
    down.args(["compose", "-p", &compose_name, "down", "-t", "0"]).current_dir(&project);
    let _ = run_ok(&mut down);
    let mut all = String::new();
    for e in
        fs::read_dir(&logs).into_iter().flatten().flatten().chain(fs::read_dir(&work).into_iter().flatten().flatten())
    {
        all.push_str(&fs::read_to_string(e.path()).unwrap_or_default());
    }
    assert!(!has_token_shape(&all), "a token in the services' output");
}
