//! `scripts/demo.sh`: the whole loop in a temporary directory, with the real tools and the
//! `claude` stand-in; without Docker, and against a private Docker engine.

use keeper_docker_test_engine::engine_or_skip;
use keeper_install_tests::{bin_dir, has_token_shape, repo_root};
use std::path::PathBuf;
use std::process::{Command, Output};

const STEPS: [&str; 11] = [
    "credentials",
    "token-expiry",
    "layout",
    "watch",
    "cli-poke",
    "sync",
    "check",
    "not-due",
    "docker",
    "reauth",
    "no-stub",
];

const BANNER: &str = "[DEMO] openclaw-oauth-keeper demo in ";

fn demo() -> Command {
    let mut cmd = Command::new(repo_root().join("scripts/demo.sh"));
    cmd.arg("--bin-dir").arg(bin_dir());
    // The demo must ignore whatever the caller has configured.
    cmd.env("KEEPER_TO", "dotenv:/nonexistent/should-not-be-used.env");
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every step announced and passed, in order, and no token in the output.
fn assert_all_steps_ok(out: &Output) -> String {
    let all = text(out);
    println!("{all}"); // shown with --nocapture
    assert!(out.status.success(), "demo.sh failed ({}):\n{all}", out.status);
    let mut from = 0;
    for (i, step) in STEPS.iter().enumerate() {
        let announced = format!("[DEMO] step {} {step}: ", i + 1);
        let at = all[from..].find(&announced).unwrap_or_else(|| panic!("no line {announced:?} in order:\n{all}"));
        from += at;
        let passed = format!("[DEMO] ok {step}: ");
        let at = all[from..].find(&passed).unwrap_or_else(|| panic!("no line {passed:?} after its step:\n{all}"));
        from += at;
    }
    assert!(all.contains("[DEMO] every step behaved as expected"), "{all}");
    assert!(!all.contains("FAILED"), "{all}");
    assert!(!has_token_shape(&all), "a token in the demo's output:\n{all}");
    all
}

/// The temporary directory the banner names.
fn demo_dir(all: &str) -> PathBuf {
    let line = all.lines().find_map(|l| l.strip_prefix(BANNER)).expect("the banner line");
    line.split(" (tools from").next().expect("a path").into()
}

#[test]
fn demo_runs_every_step_without_docker_and_cleans_up() {
    let out = demo().arg("--no-docker").output().expect("demo.sh runs");
    let all = assert_all_steps_ok(&out);
    for expected in [
        "[DEMO] ok token-expiry: exit 1",
        "[DEMO] ok layout: 4 targets written",
        "[DEMO] ok cli-poke: exit 0: refreshed",
        "[DEMO] ok check: exit 0: 4 of 4 copies current",
        "[DEMO] ok not-due: exit 1",
        "[DEMO] ok docker: skipped",
        "[DEMO] ok reauth: exit 3 and the REAUTH_NEEDED flag",
        "[DEMO] ok no-stub: 4 of 4 targets keep",
    ] {
        assert!(all.contains(expected), "no {expected:?}:\n{all}");
    }
    let dir = demo_dir(&all);
    assert!(dir.starts_with(std::env::temp_dir()) || dir.starts_with("/tmp"), "{}", dir.display());
    assert!(!dir.exists(), "{} was left behind", dir.display());
}

#[test]
fn demo_keep_leaves_the_synced_layout_and_no_process() {
    let out = demo().args(["--no-docker", "--keep"]).output().expect("demo.sh runs");
    let all = assert_all_steps_ok(&out);
    let dir = demo_dir(&all);
    assert!(all.contains(&format!("[DEMO] kept {}", dir.display())), "{all}");
    assert!(dir.join("openclaw/REAUTH_NEEDED").is_file(), "no REAUTH flag in the kept directory");
    for agent in ["main", "research"] {
        let profiles = dir.join(format!("openclaw/agents/{agent}/agent/auth-profiles.json"));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&profiles).unwrap()).unwrap();
        let profile = &json["profiles"]["anthropic:claude-code"];
        assert_eq!(profile["type"], "token", "{agent}: {json}");
        assert!(profile.get("refresh").is_none(), "{agent}: a refresh token was copied");
    }
    // The trap stopped the watcher: no process mentions the directory any more.
    let needle = dir.to_string_lossy().into_owned();
    let leftovers: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect();
    assert!(leftovers.is_empty(), "processes left running: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_usage_errors_exit_64_and_help_says_demo() {
    let out = demo().arg("--frobnicate").output().expect("demo.sh runs");
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert!(text(&out).contains("--frobnicate"), "{}", text(&out));
    let help = demo().arg("--help").output().expect("demo.sh runs");
    assert!(help.status.success(), "{}", text(&help));
    assert!(String::from_utf8_lossy(&help.stdout).contains("DEMO"), "{}", text(&help));
}

#[test]
fn demo_names_the_failing_step_and_exits_1() {
    // A `claude` that answers but never refreshes: cli-poke exits 2, so the cli-poke step fails.
    let bins = tempfile::tempdir().unwrap();
    for tool in keeper_install_tests::TOOLS {
        std::os::unix::fs::symlink(bin_dir().join(tool), bins.path().join(tool)).unwrap();
    }
    let claude = bins.path().join("claude");
    std::fs::write(&claude, "#!/bin/sh\necho ok\n").unwrap();
    std::fs::set_permissions(&claude, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new(repo_root().join("scripts/demo.sh"))
        .arg("--bin-dir")
        .arg(bins.path())
        .arg("--no-docker")
        .output()
        .expect("demo.sh runs");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("[DEMO] FAILED at step cli-poke: cli-poke exited 2, expected 0"), "{all}");
    assert!(!all.contains("[DEMO] ok cli-poke"), "{all}");
    assert!(!has_token_shape(&all), "a token in the demo's output:\n{all}");
    let dir = demo_dir(&all);
    assert!(!dir.exists(), "{} was left behind after the failure", dir.display());
}

#[test]
fn demo_with_docker_keeps_the_gateway_the_store_delivered_to() {
    let engine = engine_or_skip!();
    let docker_dir = engine.docker_bin().parent().expect("docker's directory");
    let path = format!("{}:{}", docker_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = demo();
    engine.apply_env(&mut cmd);
    let out =
        cmd.env("PATH", path).args(["--docker", "--image", engine.busybox_image()]).output().expect("demo.sh runs");
    let all = assert_all_steps_ok(&out);
    assert!(all.contains("[DEMO] ok docker: no restart: the store delivered sk-ant-oat01-…("), "{all}");
    assert!(all.contains("took it live; no recreation"), "{all}");
    assert!(!all.contains("openclaw-gateway: recreated"), "{all}");
    // The trap took the project down: no gateway container is left on the engine.
    let left = engine.docker_ok(&["ps", "-a", "-q", "--filter", "label=com.docker.compose.service=openclaw-gateway"]);
    assert!(left.trim().is_empty(), "containers left: {left}");
}
