//! What bad input and a careful reader found (issue 12): no hangs on a FIFO, one token in every
//! copy, a byte-order mark named, in-place for every file kind, and `--detect`.

mod common;

use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` to completion within `limit` (killing it after that and failing the test): the
/// bug under test is a hang.
fn run_within(cmd: &mut Command, limit: Duration) -> Ran {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_token(&ran.stdout, "stdout");
    assert_no_token(&ran.stderr, "stderr");
    ran
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// `cred-sync --from FIFO --to …` never returned: open(2) of a FIFO waits for a writer.
#[test]
fn regression_a_fifo_as_source_blocked_forever() {
    let home = Home::new();
    let fifo = home.source();
    mkfifo(&fifo);
    let target = home.path(".env");
    std::fs::write(&target, "A=1\n").unwrap();
    let mut cmd = home.cred_sync();
    cmd.arg("--to").arg(format!("dotenv:{}", target.display()));
    let ran = run_within(&mut cmd, Duration::from_secs(10));
    assert_eq!(ran.code, Some(2), "the documented invalid-source code: {}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!("{}: is a FIFO (named pipe), not a regular file", fifo.display())),
        "{}",
        ran.stderr
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "A=1\n", "nothing written");
    // --check and --watch's first read take the same reader.
    let mut cmd = home.cred_sync();
    cmd.arg("--check").arg("--to").arg(format!("dotenv:{}", target.display()));
    assert_eq!(run_within(&mut cmd, Duration::from_secs(10)).code, Some(2));
}

/// A FIFO (or a directory, a device) as a target blocked the read before the write, or was
/// replaced by a regular file. It is refused, left as it is, and the other targets still synced.
#[test]
fn regression_a_fifo_as_target_blocked_forever() {
    let home = Home::new();
    let access = home.fresh_source();
    let fifo = home.path("fifo.env");
    mkfifo(&fifo);
    let good = home.path("good.env");
    for in_place in ["", ",in-place"] {
        let mut cmd = home.cred_sync();
        cmd.arg("--to")
            .arg(format!("dotenv{in_place}:{}", fifo.display()))
            .arg("--to")
            .arg(format!("dotenv:{}", good.display()))
            .arg("--to")
            .arg("systemd-dropin:/dev/null");
        let ran = run_within(&mut cmd, Duration::from_secs(10));
        assert_eq!(ran.code, Some(6), "a target failed: {}", ran.stderr);
        assert!(
            ran.stderr.contains(&format!("{}: is a FIFO (named pipe), not a regular file", fifo.display())),
            "{}",
            ran.stderr
        );
        assert!(ran.stderr.contains("/dev/null: is a character device, not a regular file"), "{}", ran.stderr);
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO stays a FIFO");
        assert_eq!(held_token(&good), Some(access.clone()), "the other target is synced");
    }
}

/// The downgrade guard covered only targets that record an expiry: a source whose token expires
/// earlier than the copies hold was refused for oauth.json but written into .env and the drop-in,
/// leaving the copies on two tokens.
#[test]
fn regression_the_downgrade_guard_covered_only_targets_that_record_an_expiry() {
    let home = Home::new();
    let oauth = home.path("oauth.json");
    let env = home.path(".env");
    let dropin = home.path("anthropic.conf");
    let all = |cmd: &mut Command| {
        for spec in [
            format!("openclaw-oauth:{}", oauth.display()),
            format!("dotenv:{}", env.display()),
            format!("systemd-dropin:{}", dropin.display()),
        ] {
            cmd.arg("--to").arg(spec);
        }
    };
    let newer = access_token();
    write_source(
        &home.source(),
        &claude_json(&newer, &refresh_token(), now_ms() + 8 * HOUR_MS, "a"),
        WriteStyle::Rename,
    );
    let mut cmd = home.cred_sync();
    all(&mut cmd);
    assert_eq!(run(&mut cmd).code, Some(0));

    // A stale source: every copy keeps the newer token.
    let older = access_token();
    let older_expiry = now_ms() + HOUR_MS;
    write_source(&home.source(), &claude_json(&older, &refresh_token(), older_expiry, "b"), WriteStyle::Rename);
    let mut cmd = home.cred_sync();
    all(&mut cmd);
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(5), "{}", ran.stderr);
    for p in [&oauth, &env, &dropin] {
        assert_eq!(held_token(p), Some(newer.clone()), "{} stays on the newer token", p.display());
    }
    assert!(ran.stderr.contains("expiring later"), "{}", ran.stderr);

    // Without the JSON target, the remembered expiry alone guards .env and the drop-in.
    let mut cmd = home.cred_sync();
    cmd.arg("--to")
        .arg(format!("dotenv:{}", env.display()))
        .arg("--to")
        .arg(format!("systemd-dropin:{}", dropin.display()));
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(5), "{}", ran.stderr);
    assert_eq!((held_token(&env), held_token(&dropin)), (Some(newer.clone()), Some(newer.clone())));

    // A .env edited by hand (not the token cred-sync wrote there) has no remembered expiry.
    let by_hand = access_token();
    std::fs::write(&env, format!("ANTHROPIC_OAUTH_TOKEN={by_hand}\n")).unwrap();
    let ran = run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", env.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&env), Some(older.clone()));

    // --allow-downgrade: every copy moves to the source's token, together.
    let mut cmd = home.cred_sync();
    cmd.arg("--allow-downgrade");
    all(&mut cmd);
    assert_eq!(run(&mut cmd).code, Some(0));
    for p in [&oauth, &env, &dropin] {
        assert_eq!(held_token(p), Some(older.clone()), "{}", p.display());
    }
    // --check shows the remembered expiry of what a .env holds.
    let ran = run(home.cred_sync().arg("--check").arg("--json").arg("--to").arg(format!("dotenv:{}", env.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stdout);
    let row: serde_json::Value = serde_json::from_str(ran.stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!((row["state"].as_str(), row["expires_ms"].as_i64()), (Some("in-sync"), Some(older_expiry)));
}

/// A `.credentials.json` saved with a UTF-8 byte-order mark was "line 1: invalid character in
/// variable name" (taken for a KEY=value file). It is refused, naming the mark.
#[test]
fn regression_a_bom_made_the_source_a_dotenv_syntax_error() {
    let home = Home::new();
    let access = access_token();
    let json = claude_json(&access, &refresh_token(), now_ms() + 8 * HOUR_MS, "a");
    std::fs::write(home.source(), format!("\u{feff}{json}")).unwrap();
    let target = home.path(".env");
    let ran = run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", target.display())));
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!("{}: JSON with a UTF-8 byte-order mark", home.source().display())),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("variable name"), "{}", ran.stderr);
    assert!(!target.exists());
    // A .env target with a byte-order mark is text: written, the mark kept.
    std::fs::write(home.source(), &json).unwrap();
    std::fs::write(&target, "\u{feff}OTHER=1\n").unwrap();
    assert_eq!(run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", target.display()))).code, Some(0));
    let text = std::fs::read_to_string(&target).unwrap();
    assert!(text.starts_with("\u{feff}OTHER=1\n"), "mark and line kept");
    assert_eq!(held_token(&target), Some(access));
}

/// `openclaw-profiles,in-place:` exited 64 ("never bind-mounted singly"); users do bind-mount
/// single agent files.
#[test]
fn regression_in_place_was_refused_for_profile_targets() {
    let home = Home::new();
    let access = home.fresh_source();
    let mut inodes = Vec::new();
    for agent in ["main", "nova"] {
        let dir = home.path(&format!("agents/{agent}/agent"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("auth-profiles.json");
        std::fs::write(&file, r#"{"version":1,"profiles":{}}"#).unwrap();
        inodes.push((file.clone(), std::fs::metadata(&file).unwrap().ino()));
    }
    let glob = home.path("agents/*/agent/auth-profiles.json");
    let ran = run(home.cred_sync().arg("--to").arg(format!("openclaw-profiles,in-place:{}", glob.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    for (file, ino) in inodes {
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), ino, "{}: same inode", file.display());
        assert_eq!(held_token(&file), Some(access.clone()));
    }
}

/// `cred-sync --detect DIR`: the generation and its evidence as JSON, for setup.sh.
#[test]
fn detect_prints_the_generation_and_its_evidence() {
    let home = Home::new();
    let dir = home.path("openclaw");
    std::fs::create_dir_all(dir.join("agents/main/agent")).unwrap();
    std::fs::write(dir.join("openclaw.json"), r#"{"meta":{"lastTouchedVersion":"2026.6.1"}}"#).unwrap();
    let detect = |extra: &[&str]| {
        let ran = run(home.cred_sync().arg("--openclaw-cmd").arg("").arg("--detect").arg(&dir).args(extra));
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        serde_json::from_str::<serde_json::Value>(ran.stdout.trim()).unwrap()
    };
    let json = detect(&[]);
    assert_eq!(json["generation"], "json");
    assert!(json["evidence"][0].as_str().unwrap().ends_with("was last written by OpenClaw 2026.6.1"), "{json}");
    assert_eq!(detect(&["--openclaw-version", "2026.9.6"])["generation"], "sqlite");
    std::fs::write(dir.join("agents/main/agent/openclaw-agent.sqlite"), b"").unwrap();
    let json = detect(&[]);
    assert_eq!(json["generation"], "sqlite");
    assert!(json["evidence"][0].as_str().unwrap().ends_with("openclaw-agent.sqlite exists"), "{json}");
    let bad = run(home.cred_sync().arg("--detect").arg(&dir).arg("--openclaw-version").arg("soon"));
    assert_eq!(bad.code, Some(64));
}

/// The default source is where CLI 2.1.332 keeps it: `CLAUDE_SECURESTORAGE_CONFIG_DIR` first.
#[test]
fn the_default_source_honours_claude_securestorage_config_dir() {
    let home = Home::new();
    let secure = home.path("secure");
    std::fs::create_dir_all(&secure).unwrap();
    let access = access_token();
    let json = claude_json(&access, &refresh_token(), now_ms() + 8 * HOUR_MS, "a");
    std::fs::write(secure.join(".credentials.json"), json).unwrap();
    let target = home.path(".env");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cred-sync"));
    cmd.env_clear()
        .env("HOME", home.dir.path())
        .env("XDG_CONFIG_HOME", home.path(".config"))
        .env("KEEPER_STATE_DIR", home.path(".local/state/keeper"))
        .env("CLAUDE_SECURESTORAGE_CONFIG_DIR", &secure)
        .arg("--to")
        .arg(format!("dotenv:{}", target.display()));
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&target), Some(access));
}
