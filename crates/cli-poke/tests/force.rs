//! `--force`: the expiry moved to now under the CLI's lock, then the poke.

mod common;

use claude_stand_in::server::{FAMILY_LIFETIME_MS, State};
use common::{Fixture, HOUR, MINUTE, now_ms, stand_in};
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

#[test]
fn force_refreshes_a_token_that_is_not_due() {
    let f = Fixture::new();
    let (a0, r0) = f.write_creds(now_ms() + 5 * HOUR);
    let t0 = now_ms();
    let out = f.run(f.cmd().arg("--force"));
    assert_eq!(out.code, 0, "{}", out.all());
    let (a1, r1, e1) = f.current();
    assert!(a1 != a0 && r1 != r0);
    assert!(e1 >= t0 + 8 * HOUR, "a fresh 8-hour token");
    assert!(out.stderr.contains("--force: expiresAt set to now"), "{}", out.stderr);
    assert_eq!(f.calls()[0]["outcome"], "refreshed");
    let v = f.creds_json();
    assert_eq!(v["mcpOAuth"]["srv|1"]["accessToken"], "mcp-opaque", "other keys kept");
    assert!(!f.home.join(".claude.lock").exists(), "the lock is released");
}

#[test]
fn force_waits_while_the_stand_in_holds_its_lock_and_rereads_under_it() {
    let f = Fixture::new();
    let (_, r0) = f.write_creds(now_ms() + 2 * MINUTE);
    State::for_login(&r0, now_ms() + FAMILY_LIFETIME_MS).save(&f.server).unwrap();
    // A CLI refreshing with a slow token endpoint: it holds ~/.claude.lock for 1.5 s.
    let mut busy = std::process::Command::new(stand_in())
        .args(["-p", "busy"])
        .env("HOME", &f.home)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env("CLAUDE_STAND_IN_SERVER", &f.server)
        .env("CLAUDE_STAND_IN_DELAY_MS", "1500")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = f.home.join(".claude.lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lock.exists() {
        assert!(Instant::now() < deadline, "the stand-in never took its lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    // For cli-poke the token is not due (window 1 s), so --force rewrites the file: it must wait
    // for the lock and re-read, or it would write back the refresh token the stand-in is rotating.
    let out = f.run(f.cmd().args(["--force", "--refresh-window", "1s"]).env("CLAUDE_STAND_IN_SERVER", &f.server));
    assert!(busy.wait().unwrap().success());
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("waiting for the CLI's lock"), "{}", out.stderr);
    let server = f.server_state();
    assert_eq!((server.refreshes, server.reuses, server.rejections), (2, 0, 0), "{:?}", server.events);
    let (_, r2, _) = f.current();
    assert_eq!(server.refresh_token_fp.as_deref(), Some(credmap::Fingerprint::of(&r2).to_string().as_str()));
    assert!(!lock.exists());
}

#[test]
fn force_takes_over_a_stale_lock() {
    let f = Fixture::new();
    f.write_creds(now_ms() + 5 * HOUR);
    let lock = f.home.join(".claude.lock");
    std::fs::create_dir(&lock).unwrap();
    // The CLI's stale time is 60 s (a live holder touches its lock every 5 s).
    let dead_holder = SystemTime::now() - Duration::from_secs(61);
    std::fs::File::open(&lock).unwrap().set_modified(dead_holder).unwrap();
    let out = f.run(f.cmd().arg("--force"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stderr.contains("waiting for the CLI's lock"), "a stale lock is not waited for: {}", out.stderr);
    assert!(!lock.exists());
}

#[test]
fn force_puts_the_expiry_back_when_the_poke_does_not_refresh() {
    let f = Fixture::new();
    f.write_creds(now_ms() + 5 * HOUR);
    let before = std::fs::read(&f.creds).unwrap();
    let out = f.run(
        f.cmd()
            .args(["--force", "--base-url-override", "never"])
            .env("ANTHROPIC_BASE_URL", "http://proxy.internal:4000")
            .env("CLAUDE_STAND_IN_REQUIRE_ANTHROPIC_API", "1"),
    );
    // The CLI failed (a connection error) without refreshing: "refresh failed, will retry".
    assert_eq!(out.code, 7, "{}", out.all());
    assert!(out.stderr.contains("put the original expiry"), "{}", out.stderr);
    assert_eq!(std::fs::read(&f.creds).unwrap(), before, "the file is as it was");
}

#[test]
fn force_in_place_keeps_the_inode_for_single_file_bind_mounts() {
    let f = Fixture::new();
    let (a0, _) = f.write_creds(now_ms() + 5 * HOUR);
    let ino = std::fs::metadata(&f.creds).unwrap().ino();
    let out = f.run(f.cmd().args(["--force", "--force-write", "in-place"]).env("CLAUDE_STAND_IN_WRITE", "in-place"));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_ne!(f.current().0, a0);
    assert_eq!(std::fs::metadata(&f.creds).unwrap().ino(), ino);
}

#[test]
fn force_with_the_stub_on_disk_is_reauth_without_running_the_cli() {
    let f = Fixture::new();
    std::fs::write(&f.creds, r#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0,"scopes":[]}}"#)
        .unwrap();
    let out = f.run(f.cmd().arg("--force"));
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(f.calls().is_empty());
    assert!(f.flag.exists());
}

/// With `CLAUDE_SECURESTORAGE_CONFIG_DIR` set, CLI 2.1.332 keeps the credentials file and its locks
/// there; `--force` read `~/.claude/.credentials.json` and locked `~/.claude.lock`, and a CLI
/// run with `CLAUDE_CONFIG_DIR` pointed at the secure-storage dir would have moved its state.
#[test]
fn regression_force_ignored_claude_securestorage_config_dir() {
    let f = Fixture::new();
    let secure = f.dir.path().join("secure");
    std::fs::create_dir(&secure).unwrap();
    let creds = secure.join(".credentials.json");
    let (access, _) = f.write_creds_at(&creds, now_ms() + 5 * HOUR);
    let out = f.run(f.cmd().arg("--force").env("CLAUDE_SECURESTORAGE_CONFIG_DIR", &secure));
    assert_eq!(out.code, 0, "{}", out.all());
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_ne!(after["claudeAiOauth"]["accessToken"], access.as_str(), "the secure-storage file refreshed");
    assert!(!f.creds.exists(), "nothing written to ~/.claude");
    let call = &f.calls()[0];
    assert_eq!(call["config_dir"], secure.display().to_string(), "{call}");
    assert!(out.stderr.contains(&secure.display().to_string()), "{}", out.stderr);
    for lock in
        [secure.join(".oauth_refresh.lock"), secure.join(".storage-write.lock"), f.dir.path().join("secure.lock")]
    {
        assert!(!lock.exists(), "{} left", lock.display());
    }
}
