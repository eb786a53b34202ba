//! What needs no Docker engine: help, usage errors, a bad .env, the dry-run plan, and the
//! coalescing of change lines (shown with --dry-run).

mod common;

use common::{KEY, assert_no_token, fingerprint, run, token, tool};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The tool with programs named (so nothing is looked up) and a project directory.
fn dry(dir: &Path) -> Command {
    let mut cmd = tool();
    cmd.arg("--project-dir").arg(dir).args(["--docker", "/usr/bin/docker", "--compose-cmd", "docker compose"]);
    cmd
}

fn project_with_env(env: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), env).unwrap();
    dir
}

#[test]
fn help_says_why_never_restart_and_lists_the_exit_codes() {
    let (code, stdout, _) = run(tool().arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("Why never `docker compose restart`"), "{stdout}");
    assert!(stdout.contains("keeps the\nenvironment it was created with"), "{stdout}");
    for code in ["\n  0 ", "\n  1 ", "\n  2 ", "\n  3 ", "\n  4 ", "\n  5 ", "\n  64 "] {
        assert!(stdout.contains(code), "exit code {code:?} missing from --help");
    }
    for var in
        ["KEEPER_PROJECT_DIR", "KEEPER_COMPOSE_FILES", "KEEPER_ENV_FILE", "KEEPER_RECREATE_MODE", "KEEPER_SERVICES"]
    {
        assert!(stdout.contains(var), "{var} missing from --help");
    }
}

#[test]
fn usage_errors_exit_64() {
    let dir = project_with_env(&format!("{KEY}={}\n", token()));
    for args in [&["--mode", "restart"][..], &["--timeout", "soon"], &["--no-such-flag"]] {
        let (code, _, stderr) = run(dry(dir.path()).args(args));
        assert_eq!(code, 64, "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run(tool().args(["--project-dir", "/nonexistent/dir", "gw"]));
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("/nonexistent/dir: not a directory"), "{stderr}");
}

#[test]
fn env_file_problems_exit_5_naming_the_file() {
    let cases = [
        (None, "no such file"),
        (Some("A=1\nthis is not an assignment\n".to_owned()), "line 2"),
        (Some("A=1\n".to_owned()), "no ANTHROPIC_OAUTH_TOKEN= line"),
        (Some(format!("{KEY}=\n")), "ANTHROPIC_OAUTH_TOKEN is empty"),
        (Some(format!("{KEY}='{}\n", token())), "quoted value not closed"),
    ];
    for (env, problem) in cases {
        let dir = tempfile::tempdir().unwrap();
        if let Some(env) = &env {
            std::fs::write(dir.path().join(".env"), env).unwrap();
        }
        let (code, stdout, stderr) = run(dry(dir.path()).arg("--dry-run"));
        assert_eq!(code, 5, "{problem}: {stderr}");
        assert!(stdout.is_empty());
        let shown = format!("{}: ", dir.path().join(".env").display());
        assert!(stderr.contains(&shown) && stderr.contains(problem), "{problem}: {stderr}");
    }
}

#[test]
fn dry_run_prints_the_commands_of_each_mode_and_the_fingerprint() {
    let secret = token();
    let dir = project_with_env(&format!("{KEY}={secret}\n"));
    let env_file = dir.path().join(".env");
    let d = dir.path().display();
    let (code, stdout, _) = run(dry(dir.path()).args(["--dry-run", "-f", "/srv/a.yml", "openclaw-gateway", "cli"]));
    assert_eq!(code, 0);
    let commands: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        commands,
        [format!(
            "docker compose -f /srv/a.yml --env-file {} --project-directory {d} up -d --force-recreate --no-deps openclaw-gateway cli",
            env_file.display()
        )]
    );
    assert!(stdout.contains(&format!("sk-ant-oat01-…({})", fingerprint(&secret))), "{stdout}");

    let (code, stdout, _) = run(dry(dir.path()).args([
        "--dry-run",
        "--mode",
        "down-up",
        "--stop-timeout",
        "3",
        "-p",
        "oc",
        "openclaw-gateway",
    ]));
    assert_eq!(code, 0);
    let commands: Vec<&str> = stdout.lines().filter(|l| !l.starts_with('#')).collect();
    let global = format!("--env-file {} -p oc --project-directory {d}", env_file.display());
    assert_eq!(
        commands,
        [format!("docker compose {global} down --timeout 3"), format!("docker compose {global} up -d")]
    );
    assert!(!stdout.contains("restart"), "{stdout}");
}

#[test]
fn options_come_from_the_config_file_and_the_environment() {
    let dir = project_with_env(&format!("{KEY}={}\n", token()));
    let config = dir.path().join("keeper.env");
    std::fs::write(&config, "KEEPER_RECREATE_MODE=down-up\nKEEPER_SERVICES=\"gw cli\"\nKEEPER_RECREATE_DRY_RUN=yes\n")
        .unwrap();
    let (code, stdout, stderr) = run(dry(dir.path()).env("KEEPER_CONFIG", &config));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(" down\n") && stdout.contains(" up -d\n"), "{stdout}");
    assert!(stdout.contains("each new gw/cli container"), "{stdout}");
    // The environment wins over the file.
    let (_, stdout, _) = run(dry(dir.path()).env("KEEPER_CONFIG", &config).env("KEEPER_RECREATE_MODE", "recreate"));
    assert!(stdout.contains("up -d --force-recreate --no-deps gw cli\n"), "{stdout}");
}

#[test]
fn missing_compose_exits_2() {
    let dir = project_with_env(&format!("{KEY}={}\n", token()));
    let (code, _, stderr) = run(tool().arg("--project-dir").arg(dir.path()).env("PATH", "/nonexistent"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("docker not found"), "{stderr}");
}

/// With --dry-run, each batch prints its plan: 50 change lines (and a garbage line) make one.
#[test]
fn stdin_coalesces_fifty_change_lines_into_one_batch() {
    let dir = project_with_env(&format!("{KEY}={}\n", token()));
    let mut child = dry(dir.path())
        .args(["--stdin", "--dry-run", "--quiet-period", "300ms", "--min-interval", "0s"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = String::new();
    for i in 0..50 {
        let fp = fingerprint(&token());
        let _ = writeln!(
            lines,
            "{{\"target\":\"/srv/oc/target-{i}\",\"kind\":\"dotenv\",\"fingerprint\":\"sk-ant-oat01-…({fp})\",\"expires_at_ms\":1,\"extra\":{{}}}}"
        );
        if i == 25 {
            lines.push_str("this is not JSON\n\n");
        }
    }
    child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert_no_token(&stdout);
    assert_no_token(&stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.matches("up -d --force-recreate").count(), 1, "{stdout}");
    assert_eq!(stderr.matches("change: /srv/oc/target-").count(), 50, "{stderr}");
    assert!(stderr.contains("warning: ignoring a stdin line: not JSON"), "{stderr}");
    assert!(stderr.contains("batch of 50 change line(s)"), "{stderr}");
}

/// `--help` said the stop timeout defaults to "Compose's, 10"; Compose uses the service's
/// `stop_grace_period` when the compose file sets one.
#[test]
fn regression_help_said_the_stop_timeout_defaults_to_10_ignoring_stop_grace_period() {
    let (code, stdout, _) = run(tool().arg("--help"));
    assert_eq!(code, 0);
    let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!flat.contains("Compose's, 10"), "{stdout}");
    assert!(flat.contains("[default: Compose's: the service's stop_grace_period when set, else 10]"), "{stdout}");
    assert!(flat.contains("--command-timeout <DURATION>"), "{stdout}");
    assert!(flat.contains("KEEPER_RECREATE_COMMAND_TIMEOUT"), "{stdout}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(tool().arg("--project-dir").arg(dir.path()).args(["--command-timeout", "0s"]));
    assert_eq!(code, 64, "{stderr}");
}
