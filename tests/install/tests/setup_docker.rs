//! `scripts/setup.sh` detecting a running Docker install on a real (private) engine: the compose
//! project found through the gateway container's labels, the CLI container found by the `claude`
//! inside it, its credentials through its bind mount, and its `ANTHROPIC_BASE_URL` proxy through
//! `docker inspect`. Everything it runs against the engine is a read-only query; `--root` stages.

mod wizard;

use keeper_docker_test_engine::{composes_or_skip, engine_or_skip, run_ok, unique_name};
use std::path::Path;
use wizard::{Era, Fixture, Gateway, chmod, mkdir, read, write};

#[test]
fn a_running_gateway_and_cli_container_are_detected_with_the_proxy_override() {
    let engine = engine_or_skip!();
    let compose = &composes_or_skip!(engine)[0];
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    // Container mode only: no claude on the host, the credentials in the CLI container's mount.
    std::fs::remove_file(f.path_dir().join("claude")).unwrap();
    let claude_home = f.path("cli-home/.claude");
    mkdir(&claude_home);
    std::fs::rename(f.credentials(), claude_home.join(".credentials.json")).unwrap();
    write(&f.path("cli-bin/claude"), "#!/bin/sh\necho ok\n");
    chmod(&f.path("cli-bin/claude"), 0o755);
    // The project lives where no default search looks: only the labels can find it.
    let project_dir = f.path("elsewhere/openclaw-stack");
    mkdir(&project_dir);
    let oc = f.openclaw_dir();
    let image = engine.busybox_image();
    let idle = r#"["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done"]"#;
    write(
        &project_dir.join("compose.yaml"),
        &format!(
            "services:\n  openclaw-gateway:\n    image: {image}\n    command: {idle}\n    env_file: .env\n    volumes:\n      - {oc}:/home/node/.openclaw\n  claude:\n    image: {image}\n    command: {idle}\n    environment:\n      ANTHROPIC_BASE_URL: http://litellm:4000\n    volumes:\n      - {ch}:/home/node/.claude\n      - {cb}:/usr/local/bin/claude:ro\n",
            oc = oc.display(),
            ch = claude_home.display(),
            cb = f.path("cli-bin/claude").display(),
        ),
    );
    write(&project_dir.join(".env"), "COMPOSE_HTTP_TIMEOUT=60\n");
    let name = unique_name("wizard");
    let up = |args: &[&str]| {
        let mut cmd = compose.command(engine);
        cmd.current_dir(&project_dir).args(["-p", &name]).args(args);
        run_ok(&mut cmd)
    };
    up(&["up", "-d"]);
    let _down = Down(Box::new(|| {
        let _ = up(&["down", "--timeout", "0"]);
    }));
    let containers = engine.docker_ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={name}"),
        "--format",
        "{{.Names}}",
    ]);
    let gateway_container =
        containers.lines().find(|n| n.contains("openclaw-gateway")).expect("gateway runs").to_owned();
    let cli_container = containers.lines().find(|n| !n.contains("openclaw-gateway")).expect("cli runs").to_owned();

    let mut cmd = std::process::Command::new(keeper_install_tests::repo_root().join("scripts/setup.sh"));
    f.env(&mut cmd);
    cmd.env("DOCKER_HOST", engine.docker_host());
    let docker_dir = engine.docker_bin().parent().unwrap();
    let path = format!("{}:{}:/usr/local/bin:/usr/bin:/bin", f.path_dir().display(), docker_dir.display());
    cmd.env("PATH", path);
    cmd.args(["--yes", "--root"])
        .arg(f.root())
        .arg("--bin-dir")
        .arg(keeper_install_tests::bin_dir())
        .arg("--units-dir")
        .arg(f.units_dir());
    let run = wizard::run(cmd, None);
    run.assert_code(0);
    assert!(run.stdout.contains(&format!("gateway container: {gateway_container} (running)")), "{}", run.stdout);
    assert!(run.stdout.contains("the container sets ANTHROPIC_BASE_URL to a proxy"), "{}", run.stdout);

    let cfg = f.config(Path::new("/etc/openclaw-oauth-keeper/keeper.env"));
    let want = [
        ("KEEPER_GATEWAY", "docker".to_owned()),
        ("KEEPER_PROJECT_DIR", project_dir.display().to_string()),
        ("KEEPER_GATEWAY_CONTAINER", gateway_container.clone()),
        ("KEEPER_OPENCLAW_DIR", oc.display().to_string()),
        ("KEEPER_CONTAINER", cli_container.clone()),
        ("KEEPER_CREDENTIALS", claude_home.join(".credentials.json").display().to_string()),
        ("KEEPER_BASE_URL_OVERRIDE", "always".to_owned()),
        ("KEEPER_SYNC_UNIT", "openclaw-keeper-sync-compose.service".to_owned()),
    ];
    for (key, value) in &want {
        assert_eq!(cfg.get(*key), Some(value), "{key}: {cfg:#?}");
    }
    assert!(!cfg.contains_key("KEEPER_CLI"), "{cfg:#?}");
    // Container mode: cli-poke --force writes the file and the lock beside the CLI's directory:
    // the directory holding it (systemd/README.md: dirname(dirname(KEEPER_CREDENTIALS)), which
    // covers the CLI's directory too), and the REAUTH flag's.
    let dropin =
        read(&f.staged(Path::new("/etc/systemd/system/openclaw-keeper-refresh.service.d/50-keeper-paths.conf")));
    let lines: Vec<&str> = dropin.lines().filter(|l| l.starts_with("ReadWritePaths=")).collect();
    let want = [claude_home.parent().unwrap().to_path_buf(), oc.clone()]
        .map(|dir| format!("ReadWritePaths=-{}", dir.display()));
    assert_eq!(lines, want, "{dropin}");
    // Read-only: the containers are the ones started above, still running.
    let after = engine.docker_ok(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={name}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(after, containers);
}

/// Runs the closure on drop (compose down, even when an assertion failed).
struct Down<'a>(Box<dyn Fn() + 'a>);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        (self.0)();
    }
}
