//! scripts/verify.sh's gateway row for a Docker install, on a private real Docker engine: the
//! container's environment (`docker inspect`) holds the current token's fingerprint, found by
//! container name or through the compose project; a container left on an old token fails.

use keeper_docker_test_engine::{engine_or_skip, unique_name};
use keeper_install_tests::{
    access_token, fingerprint, has_token_shape, now_ms, refresh_token, row_status, run_verify_sh, systemd,
};
use std::fs;
use std::path::Path;
use std::process::Command;

fn write_creds(path: &Path, access: &str) {
    let doc = serde_json::json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh_token(),
        "expiresAt": now_ms() + 3_600_000, "scopes": ["user:inference"]}});
    fs::write(path, doc.to_string()).unwrap();
}

fn verify(engine: &keeper_docker_test_engine::Engine, home: &Path, config: &Path) -> (i32, String) {
    let docker_dir = engine.docker_bin().parent().unwrap().display().to_string();
    let (code, text) = run_verify_sh(|cmd| {
        cmd.args(["--system", "--config"])
            .arg(config)
            .env("HOME", home)
            .env("PATH", format!("{docker_dir}:{}:/usr/local/bin:/usr/bin:/bin", home.join("bin").display()));
        engine.apply_env(cmd);
    });
    assert!(!has_token_shape(&text), "a token in verify's output:\n{text}");
    (code, text)
}

#[test]
fn gateway_row_reads_the_containers_environment() {
    let engine = engine_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    systemd::install_tools(&home.join("bin"), false);
    let project = home.join("openclaw");
    fs::create_dir_all(&project).unwrap();
    let creds = home.join(".credentials.json");
    let token = access_token();
    write_creds(&creds, &token);
    let env_file = project.join(".env");
    fs::write(&env_file, format!("ANTHROPIC_OAUTH_TOKEN={token}\n")).unwrap();

    // The token reaches the container through --env-file, never the command line.
    let name = unique_name("keeper-verify-gw");
    let _ = engine.docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--env-file",
        env_file.to_str().unwrap(),
        engine.busybox_image(),
        "sleep",
        "3600",
    ]);
    let config = home.join("keeper.env");
    let write_config = |gateway: &str| {
        fs::write(
            &config,
            format!(
                "KEEPER_INSTALL=system\nKEEPER_GATEWAY=docker\n{gateway}\nKEEPER_UNITS=\n\
                 KEEPER_CREDENTIALS={}\nKEEPER_TO=dotenv:{}\nKEEPER_OPENCLAW_DIR={}\n",
                creds.display(),
                env_file.display(),
                home.join("oc").display()
            ),
        )
        .unwrap();
    };
    write_config(&format!("KEEPER_GATEWAY_CONTAINER={name}"));
    let (code, table) = verify(engine, home, &config);
    assert_eq!(row_status(&table, "gateway token"), Some("ok"), "{table}");
    assert!(table.contains(&format!("container {name} holds {}", fingerprint(&token))), "{table}");
    assert_eq!(code, 0, "{table}");

    // A new token in the credentials and the .env, the container not recreated.
    let new = access_token();
    write_creds(&creds, &new);
    fs::write(&env_file, format!("ANTHROPIC_OAUTH_TOKEN={new}\n")).unwrap();
    let (code, table) = verify(engine, home, &config);
    assert_eq!(code, 1, "{table}");
    assert_eq!(row_status(&table, "gateway token"), Some("FAIL"), "{table}");
    assert!(
        table.contains(&format!("holds {}, the current token is {}", fingerprint(&token), fingerprint(&new))),
        "{table}"
    );
    let _ = engine.docker_ok(&["rm", "-f", &name]);

    // Found through the compose project instead of a name.
    if Command::new(engine.docker_bin()).args(["compose", "version"]).output().is_ok_and(|o| o.status.success()) {
        fs::write(
            project.join("docker-compose.yml"),
            format!(
                "services:\n  openclaw-gateway:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    network_mode: none\n    \
                 env_file: .env\n",
                engine.busybox_image()
            ),
        )
        .unwrap();
        let compose_project = unique_name("keeper-verify");
        let mut up = engine.docker();
        up.args(["compose", "-p", &compose_project, "up", "-d"]).current_dir(&project);
        let _ = keeper_docker_test_engine::run_ok(&mut up);
        write_config(&format!(
            "KEEPER_PROJECT_DIR={}\nKEEPER_SERVICES=openclaw-gateway\nKEEPER_COMPOSE_PROJECT={compose_project}",
            project.display()
        ));
        let (code, table) = verify(engine, home, &config);
        assert_eq!(row_status(&table, "gateway token"), Some("ok"), "{table}");
        assert!(table.contains(&fingerprint(&new)), "{table}");
        assert_eq!(code, 0, "{table}");
        let mut down = engine.docker();
        down.args(["compose", "-p", &compose_project, "down", "-t", "0"]).current_dir(&project);
        let _ = keeper_docker_test_engine::run_ok(&mut down);
    }
}
