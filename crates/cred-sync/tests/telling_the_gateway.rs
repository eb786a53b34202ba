//! cred-sync tells the running gateway only what its store did not: `--nudge-cmd` when a store
//! write may go unseen (the copy it replaced had expired or was missing), `--restart-cmd` when the
//! environment is all that reaches the gateway, nothing when the store delivered the token. The
//! rules come from the real gateway (tests/openclaw-gateway judges them end to end); here the
//! real binary runs against real files, with hooks that record that they ran.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A home with one JSON-era agent, a compose `.env`, and two hooks that append their stdin to a
/// file each.
struct Setup {
    home: Home,
    nudged: PathBuf,
    restarted: PathBuf,
}

impl Setup {
    fn new() -> Self {
        let home = Home::new();
        std::fs::create_dir_all(home.path(".openclaw/agents/main/agent")).unwrap();
        let nudged = home.path("nudged.log");
        let restarted = home.path("restarted.log");
        Self { home, nudged, restarted }
    }

    fn profiles(&self) -> PathBuf {
        self.home.path(".openclaw/agents/main/agent/auth-profiles.json")
    }

    fn sync(&self, targets: &[String]) -> Ran {
        let mut cmd = self.home.cred_sync();
        for t in targets {
            cmd.arg("--to").arg(t);
        }
        cmd.arg("--nudge-cmd")
            .arg(format!("cat >> '{}'", self.nudged.display()))
            .arg("--restart-cmd")
            .arg(format!("cat >> '{}'", self.restarted.display()));
        run(&mut cmd)
    }

    fn store_and_env(&self) -> Vec<String> {
        vec![format!("openclaw-profiles:{}", self.profiles().display()), format!("dotenv:{}", self.env().display())]
    }

    fn env(&self) -> PathBuf {
        self.home.path(".env")
    }

    /// The change lines each hook was given, in order.
    fn hook_lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn new_source(&self, expires_in_ms: i64) -> String {
        let access = access_token();
        write_source(
            &self.home.source(),
            &claude_json(&access, &refresh_token(), now_ms() + expires_in_ms, "a"),
            WriteStyle::Rename,
        );
        access
    }
}

fn lines(ran: &Ran) -> Vec<Value> {
    ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn field<'a>(lines: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &lines.iter().find(|l| l["kind"] == kind).unwrap_or_else(|| panic!("no {kind} line: {lines:?}"))[name]
}

/// The normal rotation: the CLI refreshed minutes before the old token expired. The store
/// delivers it to the running gateway; the `.env` copy is the fallback for the next start. No
/// hook runs, and the lines tell compose-recreate not to recreate.
#[test]
fn a_rotation_over_a_valid_copy_restarts_nothing() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    let first = s.sync(&s.store_and_env());
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    std::fs::remove_file(&s.nudged).ok();

    s.new_source(8 * HOUR_MS + 60_000);
    let ran = s.sync(&s.store_and_env());
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let out = lines(&ran);
    assert_eq!(field(&out, "openclaw-profiles", "delivery"), "live", "{out:?}");
    assert_eq!(field(&out, "dotenv", "delivery"), "at-start", "{out:?}");
    assert!(out.iter().all(|l| l["restart"] == false), "{out:?}");
    assert!(Setup::hook_lines(&s.nudged).is_empty(), "no nudge: {}", ran.stderr);
    assert!(Setup::hook_lines(&s.restarted).is_empty(), "no restart: {}", ran.stderr);
}

/// The copy the gateway held had expired (the keeper was down past the token's end): a gateway
/// whose turn failed stops looking at its store, so the nudge runs, once, with the batch's
/// lines; not the restart.
#[test]
fn a_write_over_an_expired_copy_nudges_the_gateway() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    assert_eq!(s.sync(&s.store_and_env()).code, Some(0));
    std::fs::remove_file(&s.nudged).ok();
    // The copy in the store has expired.
    let mut profiles: Value = serde_json::from_slice(&std::fs::read(s.profiles()).unwrap()).unwrap();
    profiles["profiles"]["anthropic:claude-code"]["expires"] = (now_ms() - 60_000).into();
    std::fs::write(s.profiles(), profiles.to_string()).unwrap();

    let access = s.new_source(8 * HOUR_MS);
    let ran = s.sync(&s.store_and_env());
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let out = lines(&ran);
    assert_eq!(field(&out, "openclaw-profiles", "delivery"), "needs-nudge", "{out:?}");
    assert!(out.iter().all(|l| l["restart"] == false), "a configured nudge is not a restart: {out:?}");
    let nudged = Setup::hook_lines(&s.nudged);
    assert_eq!(nudged.len(), 2, "one run, the batch's two lines: {nudged:?}");
    assert_eq!(nudged[0]["fingerprint"].as_str(), Some(credmap::Secret::new(access).to_string().as_str()));
    assert!(Setup::hook_lines(&s.restarted).is_empty(), "{}", ran.stderr);
}

/// A first install has no copy at all: the gateway never had a token to use, so it is nudged.
/// Without a nudge command, the restart stands in for it, and the lines ask compose-recreate for
/// a new container.
#[test]
fn a_first_write_without_a_nudge_command_restarts() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    let mut cmd = s.home.cred_sync();
    cmd.arg("--to")
        .arg(format!("openclaw-profiles:{}", s.profiles().display()))
        .arg("--restart-cmd")
        .arg(format!("cat >> '{}'", s.restarted.display()));
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let out = lines(&ran);
    assert_eq!(out[0]["delivery"], "needs-nudge");
    assert_eq!(out[0]["restart"], true, "{out:?}");
    assert_eq!(Setup::hook_lines(&s.restarted).len(), 1, "{}", ran.stderr);
}

/// setup-token mode and env-only installs: the variable is all that reaches the gateway, so every
/// change restarts it, as before.
#[test]
fn variables_alone_restart_the_gateway() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    let ran = s.sync(&[format!("dotenv:{}", s.env().display())]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let out = lines(&ran);
    assert_eq!((&out[0]["delivery"], &out[0]["restart"]), (&"at-start".into(), &true.into()), "{out:?}");
    assert_eq!(Setup::hook_lines(&s.restarted).len(), 1, "{}", ran.stderr);
    assert!(Setup::hook_lines(&s.nudged).is_empty());

    // Nothing changed: nothing runs.
    let again = s.sync(&[format!("dotenv:{}", s.env().display())]);
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert_eq!(Setup::hook_lines(&s.restarted).len(), 1, "{}", again.stderr);
}

/// Without any hook the user is told, once per batch, that the gateway may keep the old token.
#[test]
fn a_needed_restart_without_a_command_is_a_warning() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    let ran = run(s.home.cred_sync().arg("--to").arg(format!("dotenv:{}", s.env().display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("may not use the new token until it restarts") && ran.stderr.contains("--restart-cmd"),
        "{}",
        ran.stderr
    );
}

/// Regression: the store refused an older token (it holds one expiring later) while the `.env`,
/// which records no expiry, took it; nothing was written to the store, so the batch looked
/// "environment only" and the restart hook put the gateway onto the older token.
#[test]
fn regression_a_downgrade_refused_by_the_store_restarted_the_gateway_for_the_env_copy() {
    let s = Setup::new();
    s.new_source(8 * HOUR_MS);
    assert_eq!(s.sync(&s.store_and_env()).code, Some(0));
    std::fs::remove_file(&s.nudged).ok();
    s.new_source(3 * 60_000);
    let ran = s.sync(&s.store_and_env());
    assert_eq!(ran.code, Some(5), "the store refused the downgrade: {}", ran.stderr);
    assert!(Setup::hook_lines(&s.restarted).is_empty(), "no restart: {}", ran.stderr);
    assert!(Setup::hook_lines(&s.nudged).is_empty(), "no nudge: {}", ran.stderr);
}
