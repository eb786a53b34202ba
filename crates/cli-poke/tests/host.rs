//! Host mode through the `claude` stand-in: every exit code, both write styles, the CLI's
//! environment, the config file and the fake clock.

mod common;

use common::{Fixture, HOUR, MINUTE, SECOND, access_token, gone, now_ms, stand_in};
use credmap::{ExpiresAt, Secret};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn inode(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o777
}

/// Every field and key besides the two tokens and the expiry is as the fixture wrote it.
fn assert_rest_kept(f: &Fixture) {
    let v = f.creds_json();
    assert_eq!(v["mcpOAuth"], json!({"srv|1": {"accessToken": "mcp-opaque"}}));
    assert_eq!(v["trustedDeviceToken"], "opaque-device");
    let o = &v["claudeAiOauth"];
    assert_eq!(o["scopes"], json!(["user:inference", "user:profile"]));
    assert_eq!(o["subscriptionType"], "max");
    assert_eq!(o["rateLimitTier"], "default_claude_max_20x");
    assert_eq!(o["futureField"], json!({"kept": true}));
}

/// The CLI's arguments as the stand-in logged them, without the `--debug-file PATH` cli-poke
/// adds for a host CLI; checks that pair, when present, named a private file that is gone now.
fn poke_args(call: &serde_json::Value) -> serde_json::Value {
    let mut args: Vec<String> =
        call["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    if let Some(at) = args.iter().position(|a| a == "--debug-file") {
        let path = std::path::PathBuf::from(args.remove(at + 1));
        args.remove(at);
        let dir = path.parent().unwrap();
        assert!(dir.file_name().unwrap().to_string_lossy().starts_with("cli-poke-debug."), "{}", path.display());
        assert!(!dir.exists(), "the debug log's directory {} was left behind", dir.display());
    }
    json!(args)
}

fn shown(token: &str) -> String {
    Secret::new(token).to_string()
}

// ---- 0: refreshed -----------------------------------------------------------------------------

fn refreshes_in_the_window(write: &str) -> (u64, u64) {
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    let ino = inode(&f.creds);
    let t0 = now_ms();
    let out = f.run(f.cmd().env("CLAUDE_STAND_IN_WRITE", write));
    assert_eq!(out.code, 0, "{}", out.all());
    let (a1, r1, e1) = f.current();
    assert_ne!(a1, a0, "access token rotated");
    assert_ne!(r1, r0, "refresh token rotated");
    assert!((t0 + 8 * HOUR..=now_ms() + 8 * HOUR).contains(&e1), "expiresAt = now + 8 h");
    assert_rest_kept(&f);
    assert_eq!(mode(&f.creds), 0o600);
    assert!(out.stderr.contains(&format!("refreshed: {} -> {}", shown(&a0), shown(&a1))), "{}", out.stderr);
    let calls = f.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(poke_args(&calls[0]), json!(["-p", "say ok"]));
    assert!(calls[0]["args"].to_string().contains("--debug-file"), "a host CLI is asked for a debug log");
    assert_eq!(calls[0]["outcome"], "refreshed");
    assert_eq!(calls[0]["max_retries"], "1");
    assert_eq!(calls[0]["anthropic_base_url"], json!(null));
    (ino, inode(&f.creds))
}

#[test]
fn exit_0_refreshed_in_the_window_rename_write() {
    let (before, after) = refreshes_in_the_window("rename");
    assert_ne!(before, after, "2.1.197 replaces the file");
}

#[test]
fn exit_0_refreshed_in_the_window_in_place_write() {
    let (before, after) = refreshes_in_the_window("in-place");
    assert_eq!(before, after, "2.1.112 rewrites the same inode");
}

#[test]
fn exit_0_for_an_already_expired_token() {
    let f = Fixture::new();
    let (a0, _) = f.write_creds(now_ms() - HOUR);
    let out = f.run(&mut f.cmd());
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("expired 1h ago"), "{}", out.stderr);
    assert_ne!(f.current().0, a0);
}

#[test]
fn custom_command_runs_the_cli_with_its_arguments_appended() {
    let f = Fixture::new();
    let (a0, _) = f.write_creds(now_ms() + MINUTE);
    let ino = inode(&f.creds);
    let cmd_line = format!("env CLAUDE_STAND_IN_WRITE=in-place '{}'", stand_in().display());
    let out = f.run(f.bare_cmd().args(["--cli-cmd", &cmd_line, "--prompt", "hi there", "--creds"]).arg(&f.creds));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_ne!(f.current().0, a0);
    assert_eq!(inode(&f.creds), ino, "the wrapper's variable reached the CLI");
    assert_eq!(poke_args(&f.calls()[0]), json!(["-p", "hi there"]));
}

#[test]
fn claude_is_found_where_its_installer_puts_it_when_path_lacks_it() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let bin = f.home.join(".local/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(stand_in(), bin.join("claude")).unwrap();
    let out = f.run(f.bare_cmd().env("PATH", "/usr/bin:/bin"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains(&format!("running CLAUDE_CODE_MAX_RETRIES=1 {}", bin.join("claude").display())));
}

// ---- 1: not due -------------------------------------------------------------------------------

#[test]
fn exit_1_not_due_says_when_the_window_opens_and_runs_nothing() {
    let f = Fixture::new();
    let expires = now_ms() + 3 * HOUR;
    f.write_creds(expires);
    let before = std::fs::read(&f.creds).unwrap();
    let out = f.run(&mut f.cmd());
    assert_eq!(out.code, 1, "{}", out.all());
    let opens = ExpiresAt::from_millis(expires - 5 * MINUTE).unwrap();
    assert!(out.stderr.contains(&format!("from {opens} (in 2h 54m ")), "{}", out.stderr);
    assert!(out.stderr.contains("not due: sk-ant-oat01-…("), "{}", out.stderr);
    assert!(f.calls().is_empty(), "the CLI was not run");
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
    // for timer units
    assert_eq!(f.run(f.cmd().arg("--not-due-ok")).code, 0);
    assert!(f.calls().is_empty());
}

#[test]
fn exit_1_just_outside_the_window_and_0_just_inside() {
    let f = Fixture::new();
    f.write_creds(now_ms() + 5 * MINUTE + 30 * SECOND);
    assert_eq!(f.run(&mut f.cmd()).code, 1);
    f.write_creds(now_ms() + 5 * MINUTE - 30 * SECOND);
    assert_eq!(f.run(&mut f.cmd()).code, 0);
}

// ---- 2: ran but did not refresh ---------------------------------------------------------------

#[test]
fn exit_2_when_the_cli_answers_without_refreshing() {
    // A wider window than the CLI's: cli-poke pokes at 8 minutes left, the CLI does not refresh.
    let f = Fixture::new();
    f.write_creds(now_ms() + 8 * MINUTE);
    let before = std::fs::read(&f.creds).unwrap();
    let out = f.run(f.cmd().args(["--refresh-window", "10m"]));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("the CLI exited successfully but did not refresh the token"), "{}", out.stderr);
    assert!(out.stderr.contains("claude stdout: ok"), "{}", out.stderr);
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
    assert_eq!(f.calls()[0]["outcome"], "answered");
}

#[test]
fn exit_2_when_a_valid_token_fails_to_refresh_quietly() {
    // 2.1.112 with a still-valid access token answers from it (exit 0). Without its debug log
    // there is no sign of a dead token yet; with it, the token endpoint's 400 is the sign.
    let f = Fixture::new();
    f.write_creds(now_ms() + 2 * MINUTE);
    let dead_keep = |cmd: &mut std::process::Command| {
        cmd.env("CLAUDE_STAND_IN_DEAD", "1").env("CLAUDE_STAND_IN_ON_FAILURE", "keep");
    };
    let mut cmd = f.cmd();
    dead_keep(&mut cmd);
    let out = f.run(cmd.arg("--no-debug-log"));
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(!f.flag.exists());
    let mut cmd = f.cmd();
    dead_keep(&mut cmd);
    let out = f.run(&mut cmd);
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(out.stderr.contains("debug log shows the token endpoint answered HTTP 400"), "{}", out.stderr);
}

#[test]
fn exit_7_no_false_reauth_when_the_cli_fails_without_a_sign() {
    let f = Fixture::new();
    f.write_creds(now_ms() - MINUTE);
    let out = f.run(
        f.cmd()
            .arg("--no-debug-log")
            .env("CLAUDE_STAND_IN_DEAD", "1")
            .env("CLAUDE_STAND_IN_ON_FAILURE", "keep")
            .env("CLAUDE_STAND_IN_QUIET_FAILURE", "1"),
    );
    assert_eq!(out.code, 7, "{}", out.all());
    assert!(
        out.stderr.contains("refresh failed, will retry: the CLI exited with status 1 without refreshing"),
        "{}",
        out.stderr
    );
    assert!(!f.flag.exists());
}

#[test]
fn exit_7_and_tokens_hidden_when_the_cli_prints_them() {
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + MINUTE);
    let script = f.dir.path().join("leaky.sh");
    // prints the whole credentials file on both streams, refreshes nothing
    std::fs::write(&script, "cat \"$1\"; echo; cat \"$1\" >&2; exit 1\n").unwrap();
    let cmd_line = format!("/bin/sh {} {}", script.display(), f.creds.display());
    let out = f.run(f.bare_cmd().args(["--cli-cmd", &cmd_line, "--cli-args", "", "--creds"]).arg(&f.creds));
    assert_eq!(out.code, 7, "{}", out.all());
    for stream in ["stdout", "stderr"] {
        let line = out.stderr.lines().find(|l| l.contains(&format!("claude {stream}: {{"))).unwrap();
        assert!(line.contains(&shown(&a0)) && line.contains(&shown(&r0)), "{line}");
    }
}

// ---- 4: credentials ---------------------------------------------------------------------------

#[test]
fn exit_4_for_missing_invalid_and_directory_credentials() {
    let f = Fixture::new();
    let out = f.run(&mut f.cmd());
    assert_eq!(out.code, 4);
    assert!(out.stderr.contains(&format!("{}: no such file", f.creds.display())), "{}", out.stderr);
    for (content, what) in
        [("{\"claudeAiOauth\":", "truncated"), ("[]", "an object"), ("{\"mcpOAuth\":{}}", "claudeAiOauth")]
    {
        std::fs::write(&f.creds, content).unwrap();
        let out = f.run(&mut f.cmd());
        assert_eq!(out.code, 4, "{content}: {}", out.all());
        assert!(out.stderr.contains(&f.creds.display().to_string()) && out.stderr.contains(what), "{}", out.stderr);
    }
    let out = f.run(f.cmd().arg("--creds").arg(&f.claude_dir));
    assert_eq!(out.code, 4);
    assert!(out.stderr.contains("is a directory"), "{}", out.stderr);
    assert!(f.calls().is_empty());
}

// ---- 5: the CLI cannot be run -----------------------------------------------------------------

#[test]
fn exit_5_for_a_missing_or_non_executable_cli() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let missing = f.dir.path().join("no-claude");
    let out = f.run(f.bare_cmd().arg("--cli").arg(&missing));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains("cannot run the CLI") && out.stderr.contains("No such file"), "{}", out.stderr);
    let plain = f.dir.path().join("claude");
    std::fs::write(&plain, "#!/bin/sh\necho ok\n").unwrap();
    let out = f.run(f.bare_cmd().arg("--cli").arg(&plain));
    assert_eq!(out.code, 5);
    assert!(out.stderr.contains("not executable"), "{}", out.stderr);
    let out = f.run(f.bare_cmd().env("PATH", f.dir.path()));
    assert_eq!(out.code, 5);
    assert!(out.stderr.contains("claude not found in PATH"), "{}", out.stderr);
}

#[test]
fn exit_5_when_a_wrapper_cannot_find_the_cli() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let out = f.run(
        f.bare_cmd().args(["--cli-cmd", "/bin/sh -c 'exec /nonexistent/claude \"$@\"' sh", "--creds"]).arg(&f.creds),
    );
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains("exit 127: the CLI was not found"), "{}", out.stderr);
}

#[test]
fn exit_7_timeout_kills_the_cli_and_its_children() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let before = std::fs::read(&f.creds).unwrap();
    let pidfile = f.dir.path().join("grandchild.pid");
    let out = f.run(
        f.cmd()
            .args(["--timeout", "1s"])
            .env("CLAUDE_STAND_IN_SLEEP_MS", "60000")
            .env("CLAUDE_STAND_IN_CHILD_PIDFILE", &pidfile),
    );
    // A CLI that never finishes did not refresh, and nothing says the login is dead.
    assert_eq!(out.code, 7, "{}", out.all());
    assert!(out.stderr.contains("did not finish within 1s: killed its process group"), "{}", out.stderr);
    let grandchild = std::fs::read_to_string(&pidfile).unwrap();
    assert!(gone(grandchild.trim()), "the CLI's child {grandchild} survived the timeout");
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
}

// ---- the CLI's environment --------------------------------------------------------------------

#[test]
fn token_variables_never_reach_the_cli() {
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    let out = f.run(
        f.cmd()
            .env("CLAUDE_CODE_OAUTH_TOKEN", access_token())
            .env("ANTHROPIC_API_KEY", "sk-ant-api03-not-really")
            .env("OPENCLAW_TOKEN_COPY", access_token())
            .env("UNRELATED", "kept"),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    // Fixture::run checked the call log: no token variable, no token-shaped value, no token argv.
    assert_eq!(f.calls().len(), 1);
}

#[test]
fn claude_config_dir_follows_the_credentials_file() {
    let f = Fixture::new();
    let other = f.dir.path().join("claude-work");
    std::fs::create_dir(&other).unwrap();
    let creds = other.join(".credentials.json");
    let (a0, _) = f.write_creds_at(&creds, now_ms() + MINUTE);
    let out = f.run(f.cmd().arg("--creds").arg(&creds));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(f.calls()[0]["config_dir"], json!(other));
    let now: serde_json::Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_ne!(now["claudeAiOauth"]["accessToken"], json!(a0));
    // CLAUDE_CONFIG_DIR in cli-poke's environment names the default file, and the CLI inherits it
    f.write_creds_at(&creds, now_ms() + MINUTE);
    let out = f.run(f.cmd().env("CLAUDE_CONFIG_DIR", &other));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(f.calls()[1]["config_dir"], json!(other));
    assert!(!out.stderr.contains("CLAUDE_CONFIG_DIR="), "not set again when inherited: {}", out.stderr);
    // the default directory is never set explicitly (it would move ~/.claude.json)
    f.write_creds(now_ms() + MINUTE);
    let out = f.run(&mut f.cmd());
    assert!(!out.stderr.contains("CLAUDE_CONFIG_DIR="), "{}", out.stderr);
}

#[test]
fn base_url_override_on_the_host() {
    let f = Fixture::new();
    let proxy = |cmd: &mut std::process::Command| {
        cmd.env("ANTHROPIC_BASE_URL", "http://litellm.internal:4000").env("CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API", "1");
    };
    f.write_creds(now_ms() + MINUTE);
    let mut cmd = f.cmd();
    proxy(&mut cmd);
    let out = f.run(cmd.args(["--base-url-override", "never"]));
    assert_eq!(out.code, 7, "the CLI failed to connect: refresh failed, will retry: {}", out.all());
    assert_eq!(f.calls()[0]["anthropic_base_url"], "http://litellm.internal:4000");
    assert_eq!(f.calls()[0]["outcome"], "api-unreachable");
    let mut cmd = f.cmd();
    proxy(&mut cmd);
    let out = f.run(&mut cmd);
    assert_eq!(out.code, 0, "auto overrides a base URL pointing elsewhere: {}", out.all());
    assert_eq!(f.calls()[1]["anthropic_base_url"], "https://api.anthropic.com");
    f.write_creds(now_ms() + MINUTE);
    f.run(f.cmd().args(["--base-url-override", "always"]));
    assert_eq!(f.calls()[2]["anthropic_base_url"], "https://api.anthropic.com");
    f.write_creds(now_ms() + MINUTE);
    let out = f.run(f.cmd().env("ANTHROPIC_BASE_URL", "https://api.anthropic.com"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stderr.contains("ANTHROPIC_BASE_URL="), "no override needed: {}", out.stderr);
}

// ---- configuration ----------------------------------------------------------------------------

#[test]
fn options_come_from_the_config_file() {
    let f = Fixture::new();
    f.write_creds(now_ms() + 3 * HOUR);
    let config = f.dir.path().join("keeper.env");
    let text = format!(
        "KEEPER_CLI={}\nKEEPER_CREDENTIALS={}\nKEEPER_NOT_DUE_OK=yes\nKEEPER_PROMPT=\"ping me\"\n",
        stand_in().display(),
        f.creds.display()
    );
    std::fs::write(&config, &text).unwrap();
    let out = f.run(f.bare_cmd().arg("--config").arg(&config));
    assert_eq!(out.code, 0, "not due, and --not-due-ok from the file: {}", out.all());
    assert!(f.calls().is_empty());
    std::fs::write(&config, format!("{text}KEEPER_FORCE=1\n")).unwrap();
    let out = f.run(f.bare_cmd().arg("--config").arg(&config));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(poke_args(&f.calls()[0]), json!(["-p", "ping me"]));
    assert_eq!(f.calls()[0]["outcome"], "refreshed");
}

#[test]
fn a_mode_on_the_command_line_wins_over_the_other_mode_in_the_config_file() {
    let f = Fixture::new();
    let (a0, _) = f.write_creds(now_ms() + MINUTE);
    let config = f.dir.path().join("keeper.env");
    std::fs::write(&config, format!("KEEPER_CONTAINER=no-such-container\nKEEPER_CREDENTIALS={}\n", f.creds.display()))
        .unwrap();
    let cmd_line = format!("'{}'", stand_in().display());
    let out = f.run(f.bare_cmd().arg("--config").arg(&config).args(["--cli-cmd", &cmd_line]));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_ne!(f.current().0, a0);
    // both in the file: no guessing
    std::fs::write(
        &config,
        format!("KEEPER_CONTAINER=c\nKEEPER_CLI_CMD=x\nKEEPER_CREDENTIALS={}\n", f.creds.display()),
    )
    .unwrap();
    let out = f.run(f.bare_cmd().arg("--config").arg(&config));
    assert_eq!(out.code, 64, "{}", out.all());
    assert!(out.stderr.contains("exclude each other"), "{}", out.stderr);
}

#[test]
fn usage_errors_exit_64() {
    let f = Fixture::new();
    for args in [
        &["--container", "c"][..],
        &["--cli-cmd", "x", "--container", "c"],
        &["--cli-cmd", "'unclosed", "--creds", "/c"],
        &["--timeout", "soon"],
        &["--notify-url", "mattermost.example/hooks/x"],
        &["--force-write", "sideways"],
    ] {
        let out = f.run(f.bare_cmd().args(args));
        assert_eq!(out.code, 64, "{args:?}: {}", out.all());
    }
    let out = f.run(f.bare_cmd().arg("--help"));
    assert_eq!(out.code, 0);
    for needle in ["Exit status:", "KEEPER_CONTAINER", "KEEPER_NOTIFY_URL", "--force-write"] {
        assert!(out.stdout.contains(needle), "--help lacks {needle}");
    }
}

// ---- the fake clock ---------------------------------------------------------------------------

#[test]
fn the_fake_clock_decides_for_cli_poke_and_the_stand_in_alike() {
    let f = Fixture::new();
    let clock = f.dir.path().join("clock");
    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z, whatever the real time is
    keeper_core::clock::set_fake_now_ms(&clock, t0).unwrap();
    f.write_creds(t0 + 3 * HOUR);
    let fake = |f: &Fixture| {
        let mut cmd = f.cmd();
        cmd.env("KEEPER_FAKE_CLOCK_FILE", &clock);
        cmd
    };
    let out = f.run(&mut fake(&f));
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("has 3h left (expires 2026-01-01T03:00:00Z)"), "{}", out.stderr);
    let t1 = t0 + 3 * HOUR - 4 * MINUTE;
    keeper_core::clock::set_fake_now_ms(&clock, t1).unwrap();
    let out = f.run(&mut fake(&f));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(f.current().2, t1 + 8 * HOUR, "the stand-in read the same clock");
    assert_eq!(f.calls()[0]["at_ms"], json!(t1));
    keeper_core::clock::set_fake_now_ms(&clock, t1 + MINUTE).unwrap();
    let out = f.run(fake(&f).arg("--force"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(f.current().2, t1 + MINUTE + 8 * HOUR);
}

#[test]
fn exit_5_rather_than_run_the_cli_on_another_users_file() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to chown");
        return;
    }
    let f = Fixture::new();
    f.write_creds(now_ms() + MINUTE);
    std::os::unix::fs::chown(&f.creds, Some(1000), Some(1000)).unwrap();
    let before = std::fs::read(&f.creds).unwrap();
    let out = f.run(f.cmd().arg("--force"));
    assert_eq!(out.code, 5, "{}", out.all());
    assert!(out.stderr.contains("belongs to uid 1000"), "{}", out.stderr);
    assert!(f.calls().is_empty());
    assert_eq!(std::fs::read(&f.creds).unwrap(), before);
}
