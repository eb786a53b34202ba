//! A one-shot run re-checks its source before it exits: a write landing while it runs (which a
//! systemd `.path` unit would never report, systemd#5770) is synced by the same run.
//!
//! The window is made deterministic with a slow --exec-on-change: it says it has started, then
//! waits for a file the test creates only after the second write has landed.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// A hook that records each batch, then blocks until `go` exists (the first time only).
struct SlowHook {
    started: PathBuf,
    go: PathBuf,
    batches: PathBuf,
}

impl SlowHook {
    fn new(home: &Home) -> Self {
        Self { started: home.path("hook-started"), go: home.path("go"), batches: home.path("batches") }
    }

    fn command(&self) -> String {
        format!(
            "cat >> {b}; echo --- >> {b}; if [ ! -e {s} ]; then : > {s}; while [ ! -e {g} ]; do sleep 0.01; done; fi",
            b = self.batches.display(),
            s = self.started.display(),
            g = self.go.display()
        )
    }

    fn batch_count(&self) -> usize {
        std::fs::read_to_string(&self.batches).unwrap_or_default().matches("---").count()
    }
}

fn new_source(home: &Home) -> String {
    let access = access_token();
    write_source(
        &home.source(),
        &claude_json(&access, &refresh_token(), now_ms() + 8 * HOUR_MS, "a"),
        WriteStyle::Rename,
    );
    access
}

/// Runs cred-sync once with the slow hook; while the hook waits, the CLI writes a new token (by
/// rename, as 2.1.197 does). Returns the run, the first and the second token.
fn run_with_a_write_mid_run(home: &Home, extra: &[&str]) -> (Ran, String, String) {
    let first = home.fresh_source();
    let hook = SlowHook::new(home);
    let target = home.path("a.env");
    let child = home
        .cred_sync()
        .arg(format!("--to=dotenv:{}", target.display()))
        .arg("--exec-on-change")
        .arg(hook.command())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_for(Duration::from_secs(30), || hook.started.exists()), "the hook never started");
    assert_eq!(held_token(&target), Some(first.clone()), "the first round wrote the first token");
    let second = new_source(home);
    std::fs::write(&hook.go, "").unwrap();
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_no_token(&ran.stdout, "stdout");
    assert_no_token(&ran.stderr, "stderr");
    (ran, first, second)
}

#[test]
fn a_write_landing_during_the_run_is_synced_before_it_exits() {
    let home = Home::new();
    let (ran, _first, second) = run_with_a_write_mid_run(&home, &[]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&home.path("a.env")), Some(second), "the last token reached the target");
    assert!(ran.stderr.contains("changed during the run; syncing again (round 2 of at most 5)"), "{}", ran.stderr);
    assert_eq!(ran.stdout.lines().count(), 2, "one change line per round: {}", ran.stdout);
    assert_eq!(SlowHook::new(&home).batch_count(), 2, "the hook ran for each round that wrote");
}

#[test]
fn max_rounds_1_is_the_old_one_shot_that_loses_the_write() {
    let home = Home::new();
    let (ran, first, second) = run_with_a_write_mid_run(&home, &["--max-rounds", "1"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&home.path("a.env")), Some(first), "no re-check: the second write is lost");
    assert_ne!(held_token(&home.source()), None);
    assert!(!ran.stderr.contains("syncing again"), "{}", ran.stderr);
    // The same through the environment, as a unit's config file sets it.
    let ran = run(home
        .cred_sync()
        .env("KEEPER_MAX_ROUNDS", "1")
        .arg(format!("--to=dotenv:{}", home.path("a.env").display())));
    assert_eq!(ran.code, Some(0), "a later run syncs it: {}", ran.stderr);
    assert_eq!(held_token(&home.path("a.env")), Some(second));
}

#[test]
fn an_unrelated_rewrite_during_the_run_is_not_another_round() {
    let home = Home::new();
    let access = home.fresh_source();
    let target = home.path("a.env");
    // The hook rewrites only the MCP section (the CLI does that for MCP logins).
    let contents = std::fs::read_to_string(home.source()).unwrap().replace(r#""state":"a""#, r#""state":"b""#);
    let replacement = home.path("mcp-only.json");
    std::fs::write(&replacement, contents).unwrap();
    let hook =
        format!("cat > /dev/null; cp {} {1}.tmp && mv {1}.tmp {1}", replacement.display(), home.source().display());
    let ran = run(home.cred_sync().arg(format!("--to=dotenv:{}", target.display())).arg("--exec-on-change").arg(hook));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(std::fs::read_to_string(home.source()).unwrap().contains(r#""state":"b""#), "the hook ran");
    assert!(!ran.stderr.contains("syncing again"), "{}", ran.stderr);
    assert_eq!(held_token(&target), Some(access));
}

#[test]
fn a_source_that_keeps_changing_stops_after_max_rounds_with_a_warning() {
    let home = Home::new();
    home.fresh_source();
    // Five later versions of the file, one per round: the hook installs the next each time.
    let versions: Vec<(PathBuf, String)> = (1..=5)
        .map(|i| {
            let access = access_token();
            let path = home.path(&format!("v{i}.json"));
            std::fs::write(&path, claude_json(&access, &refresh_token(), now_ms() + 8 * HOUR_MS, "a")).unwrap();
            (path, access)
        })
        .collect();
    let counter = home.path("n");
    std::fs::write(&counter, "0").unwrap();
    let hook = format!(
        "cat > /dev/null; n=$(( $(cat {n}) + 1 )); echo $n > {n}; cp {v}$n.json {s}.tmp && mv {s}.tmp {s}",
        n = counter.display(),
        v = home.path("v").display(),
        s = home.source().display()
    );
    let target = home.path("a.env");
    let ran = run(home
        .cred_sync()
        .arg(format!("--to=dotenv:{}", target.display()))
        .args(["--max-rounds", "3", "--exec-on-change"])
        .arg(hook));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("still changing after 3 rounds; stopping (--max-rounds)"), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "3", "three rounds, three hook runs");
    assert_eq!(held_token(&target), Some(versions[1].1.clone()), "round 3 synced the version round 2's hook wrote");
}

#[test]
fn a_round_with_nothing_to_do_after_one_that_wrote_still_exits_0() {
    let home = Home::new();
    let access = home.fresh_source();
    let target = home.path("a.env");
    // The hook changes the refresh token only: the section changed, the access token did not.
    let contents = std::fs::read_to_string(home.source()).unwrap();
    let refresh = serde_json::from_str::<serde_json::Value>(&contents).unwrap()["claudeAiOauth"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let replacement = home.path("new-refresh.json");
    std::fs::write(&replacement, contents.replace(&refresh, &refresh_token())).unwrap();
    let hook =
        format!("cat > /dev/null; cp {} {1}.tmp && mv {1}.tmp {1}", replacement.display(), home.source().display());
    let ran = run(home.cred_sync().arg(format!("--to=dotenv:{}", target.display())).arg("--exec-on-change").arg(hook));
    assert!(ran.stderr.contains("syncing again (round 2"), "{}", ran.stderr);
    assert_eq!(ran.code, Some(0), "round 1 wrote: {}", ran.stderr);
    assert_eq!(held_token(&target), Some(access));
    // A run with nothing to do at all still says so.
    let ran = run(home.cred_sync().arg(format!("--to=dotenv:{}", target.display())));
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
}
