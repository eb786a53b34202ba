//! cred-sync in its default mode: one sync, then exit with a code saying what happened.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_file_kind_receives_the_access_token_in_its_own_format() {
    let home = Home::new();
    let access = home.fresh_source();
    for agent in ["main", "nova"] {
        std::fs::create_dir_all(home.path(&format!(".openclaw/agents/{agent}/agent"))).unwrap();
    }
    std::fs::create_dir_all(home.path(".openclaw/credentials")).unwrap();
    std::fs::write(home.path(".openclaw/credentials/oauth.json"), r#"{"openai":{"access":"o","expires":1}}"#).unwrap();
    std::fs::write(home.path(".env"), "# compose\nOPENCLAW_IMAGE=openclaw:latest\n").unwrap();
    std::fs::create_dir_all(home.path(".config/systemd/user")).unwrap();
    let profiles = home.path(".openclaw/agents/*/agent/auth-profiles.json");
    let dropin = home.path(".config/systemd/user/openclaw-gateway.service.d/anthropic.conf");

    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", profiles.display()))
        .arg("--to")
        .arg(format!("openclaw-oauth:{}", home.path(".openclaw/credentials/oauth.json").display()))
        .arg("--to")
        .arg(format!("dotenv:{}", home.path(".env").display()))
        .arg("--to")
        .arg(format!("systemd-dropin:{}", dropin.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(ran.stdout.lines().count(), 5, "one change line per file: {}", ran.stdout);

    let expires = json(&home.source())["claudeAiOauth"]["expiresAt"].clone();
    for agent in ["main", "nova"] {
        let p = json(&home.path(&format!(".openclaw/agents/{agent}/agent/auth-profiles.json")));
        let profile = &p["profiles"]["anthropic:claude-code"];
        assert_eq!(profile["type"], "token");
        assert_eq!(profile["provider"], "anthropic");
        assert_eq!(profile["token"], access.as_str());
        assert_eq!(profile["expires"], expires);
        assert!(profile.get("refresh").is_none(), "access only by default");
    }
    let oauth = json(&home.path(".openclaw/credentials/oauth.json"));
    assert_eq!(oauth["anthropic"]["access"], access.as_str());
    assert_eq!(oauth["openai"]["access"], "o", "other providers kept");
    assert!(oauth["anthropic"].get("refresh").is_none());
    let env = std::fs::read_to_string(home.path(".env")).unwrap();
    assert_eq!(env, format!("# compose\nOPENCLAW_IMAGE=openclaw:latest\nANTHROPIC_OAUTH_TOKEN={access}\n"));
    let unit = std::fs::read_to_string(&dropin).unwrap();
    assert_eq!(unit, format!("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={access}\n"));
    assert_eq!(std::fs::metadata(&dropin).unwrap().mode() & 0o777, 0o600, "a new file is private");

    for line in ran.stdout.lines() {
        let change: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(change["fingerprint"].as_str().unwrap().starts_with("sk-ant-oat01-…("));
        assert_eq!(change["expires_ms"], expires);
        assert!(change["target"].as_str().unwrap().starts_with(home.dir.path().to_str().unwrap()));
    }

    // Nothing left to do: no write, no change line, exit 1.
    let inode = std::fs::metadata(home.path(".env")).unwrap().ino();
    let again = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", profiles.display()))
        .arg("--to")
        .arg(format!("dotenv:{}", home.path(".env").display())));
    assert_eq!(again.code, Some(1), "{}", again.stderr);
    assert_eq!(again.stdout, "");
    assert_eq!(std::fs::metadata(home.path(".env")).unwrap().ino(), inode, "an in-sync target is not rewritten");
}

#[test]
fn share_refresh_token_writes_the_seeds_oauth_profile() {
    let home = Home::new();
    let access = home.fresh_source();
    let refresh = json(&home.source())["claudeAiOauth"]["refreshToken"].clone();
    let target = home.path("auth-profiles.json");
    let ran = run(home
        .cred_sync()
        .arg("--share-refresh-token")
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", target.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let profile = &json(&target)["profiles"]["anthropic:claude-code"];
    assert_eq!(profile["type"], "oauth");
    assert_eq!(profile["access"], access.as_str());
    assert_eq!(profile["refresh"], refresh);
}

#[test]
fn a_fresh_token_clears_the_profiles_cooldown() {
    let home = Home::new();
    home.fresh_source();
    let target = home.path("auth-profiles.json");
    std::fs::write(
        &target,
        r#"{"version":1,"profiles":{"anthropic:claude-code":{"type":"token","provider":"anthropic","token":"sk-ant-oat01-old","expires":1700000000000}},"usageStats":{"anthropic:claude-code":{"lastUsed":1,"cooldownUntil":4102444800000,"errorCount":7}}}"#,
    )
    .unwrap();
    let ran = run(home.cred_sync().arg("--to").arg(format!("openclaw-profiles:{}", target.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let stats = &json(&target)["usageStats"]["anthropic:claude-code"];
    assert_eq!(stats, &serde_json::json!({"lastUsed": 1, "errorCount": 0}));
}

#[test]
fn clear_stale_removes_subscription_profiles_so_the_env_var_is_used() {
    let home = Home::new();
    let access = home.fresh_source();
    let agent = home.path(".openclaw/agents/main/agent");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(
        agent.join("auth-profiles.json"),
        r#"{"version":1,"profiles":{"anthropic:claude-code":{"type":"oauth","provider":"anthropic","access":"a","refresh":"r","expires":1},"openai:default":{"type":"api_key","provider":"openai","key":"k"}},"order":{"anthropic":["anthropic:claude-code"]}}"#,
    )
    .unwrap();
    let glob = home.path(".openclaw/agents/*/agent/auth-profiles.json");
    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("clear-stale:{}", glob.display()))
        .arg("--to")
        .arg(format!("dotenv:{}", home.path(".openclaw/.env").display())));
    // The dotenv's directory exists (~/.openclaw); the file is created.
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let after = json(&agent.join("auth-profiles.json"));
    assert_eq!(
        after["profiles"],
        serde_json::json!({"openai:default": {"type":"api_key","provider":"openai","key":"k"}})
    );
    assert_eq!(after["order"]["anthropic"], serde_json::json!([]));
    assert!(ran.stdout.contains(r#""removed":["anthropic:claude-code"]"#), "{}", ran.stdout);
    assert_eq!(
        std::fs::read_to_string(home.path(".openclaw/.env")).unwrap(),
        format!("ANTHROPIC_OAUTH_TOKEN={access}\n")
    );

    let conflict = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("clear-stale:{}", glob.display()))
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", glob.display())));
    assert_eq!(conflict.code, Some(64));
    assert!(conflict.stderr.contains("clear-stale removes the profiles openclaw-profiles writes"));
}

/// Every refused source leaves every target byte for byte as it was, with its own exit code.
#[test]
fn refused_sources_never_reach_a_target() {
    let home = Home::new();
    let target = home.path(".env");
    std::fs::write(&target, "KEEP=1\n").unwrap();
    let refresh = refresh_token();
    let cases: Vec<(&str, String, i32, &str)> = vec![
        ("logged-out stub", LOGGED_OUT_STUB.to_owned(), 3, "logged-out stub"),
        ("expired", claude_json(&access_token(), &refresh, now_ms() - 1000, "a"), 4, "expired at"),
        ("empty token", claude_json("", &refresh, now_ms() + HOUR_MS, "a"), 2, "empty string"),
        (
            "half-written",
            claude_json(&access_token(), &refresh, now_ms() + HOUR_MS, "a")[..90].to_owned(),
            2,
            "truncated",
        ),
        ("empty file", String::new(), 2, "empty"),
        ("not JSON", "claudeAiOauth=1".to_owned(), 2, "line 1"),
        ("no oauth section", r#"{"mcpOAuth":{}}"#.to_owned(), 2, "claudeAiOauth"),
        ("over 1 MiB", format!("{{\"pad\":\"{}\"}}", "x".repeat(1 << 20)), 2, "larger than"),
    ];
    for (what, contents, code, needle) in cases {
        write_source(&home.source(), &contents, WriteStyle::Rename);
        let ran = run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", target.display())));
        assert_eq!(ran.code, Some(code), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains(needle), "{what}: {}", ran.stderr);
        assert!(ran.stderr.contains(home.source().to_str().unwrap()), "{what}: the message names the file");
        assert_eq!(ran.stdout, "", "{what}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "KEEP=1\n", "{what}");
    }
    std::fs::remove_file(home.source()).unwrap();
    let ran = run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", target.display())));
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("no such file"), "{}", ran.stderr);

    // --allow-expired lets an expired token through.
    let access = access_token();
    write_source(&home.source(), &claude_json(&access, &refresh, now_ms() - 1000, "a"), WriteStyle::InPlace);
    let ran = run(home.cred_sync().arg("--allow-expired").arg("--to").arg(format!("dotenv:{}", target.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&target), Some(access));
}

#[test]
fn a_token_expiring_earlier_than_the_targets_is_a_refused_downgrade() {
    let home = Home::new();
    let target = home.path("oauth.json");
    let newer = access_token();
    std::fs::write(&target, format!(r#"{{"anthropic":{{"access":"{newer}","expires":{}}}}}"#, now_ms() + 8 * HOUR_MS))
        .unwrap();
    let older = access_token();
    write_source(&home.source(), &claude_json(&older, &refresh_token(), now_ms() + HOUR_MS, "a"), WriteStyle::Rename);
    let spec = format!("openclaw-oauth:{}", target.display());
    let ran = run(home.cred_sync().arg("--to").arg(&spec));
    assert_eq!(ran.code, Some(5), "{}", ran.stderr);
    assert!(ran.stderr.contains("expiring later"), "{}", ran.stderr);
    assert_eq!(held_token(&target), Some(newer));
    let ran = run(home.cred_sync().arg("--allow-downgrade").arg("--to").arg(&spec));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&target), Some(older));
}

#[test]
fn an_unreadable_target_is_left_alone_and_the_others_still_synced() {
    let home = Home::new();
    let access = home.fresh_source();
    let broken = home.path("oauth.json");
    std::fs::write(&broken, "{\"anthropic\": {\"access\": ").unwrap();
    let good = home.path(".env");
    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("openclaw-oauth:{}", broken.display()))
        .arg("--to")
        .arg(format!("dotenv:{}", good.display())));
    assert_eq!(ran.code, Some(6), "{}", ran.stderr);
    assert!(ran.stderr.contains(&format!("{}: truncated JSON", broken.display())), "{}", ran.stderr);
    assert!(ran.stderr.contains("left as it is"), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "{\"anthropic\": {\"access\": ");
    assert_eq!(held_token(&good), Some(access));
    let missing_dir = run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", home.path("nope/.env").display())));
    assert_eq!(missing_dir.code, Some(6));
    assert!(missing_dir.stderr.contains("does not exist"), "{}", missing_dir.stderr);
}

#[test]
fn symlinked_targets_are_refused_unless_followed() {
    let home = Home::new();
    let access = home.fresh_source();
    let real = home.path("real.env");
    std::fs::write(&real, "A=1\n").unwrap();
    let link = home.path("link.env");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let spec = format!("dotenv:{}", link.display());
    let ran = run(home.cred_sync().arg("--to").arg(&spec));
    assert_eq!(ran.code, Some(6), "{}", ran.stderr);
    assert!(ran.stderr.contains("is a symbolic link"), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "A=1\n");
    let ran = run(home.cred_sync().arg("--follow-symlinks").arg("--to").arg(&spec));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link itself stays a link");
    assert_eq!(held_token(&real), Some(access));
}

#[test]
fn in_place_targets_keep_their_inode_and_others_get_a_new_one() {
    let home = Home::new();
    home.fresh_source();
    let bind_mounted = home.path("single.env");
    let renamed = home.path("dir.env");
    for p in [&bind_mounted, &renamed] {
        std::fs::write(p, "A=1\n").unwrap();
    }
    let (a, b) = (std::fs::metadata(&bind_mounted).unwrap().ino(), std::fs::metadata(&renamed).unwrap().ino());
    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("dotenv,in-place:{}", bind_mounted.display()))
        .arg("--to")
        .arg(format!("dotenv:{}", renamed.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(std::fs::metadata(&bind_mounted).unwrap().ino(), a);
    assert_ne!(std::fs::metadata(&renamed).unwrap().ino(), b);
}

#[test]
fn owner_and_mode_are_kept_when_root_writes_a_users_files() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED owner_and_mode_are_kept_when_root_writes_a_users_files: needs root to chown");
        return;
    }
    let home = Home::new();
    home.fresh_source();
    let agent_dir = home.path("openclaw-config");
    std::fs::create_dir(&agent_dir).unwrap();
    std::os::unix::fs::chown(&agent_dir, Some(1000), Some(1000)).unwrap();
    let existing = agent_dir.join(".env");
    std::fs::write(&existing, "A=1\n").unwrap();
    std::os::unix::fs::chown(&existing, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o600)).unwrap();
    let created = agent_dir.join("oauth.json");
    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("dotenv:{}", existing.display()))
        .arg("--to")
        .arg(format!("openclaw-oauth:{}", created.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    for p in [&existing, &created] {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o600), "{}", p.display());
    }
}

#[test]
fn json_targets_in_a_sqlite_era_openclaw_are_refused() {
    let home = Home::new();
    home.fresh_source();
    let agent = home.path(".openclaw/agents/main/agent");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::create_dir_all(home.path(".openclaw/credentials")).unwrap();
    std::fs::write(agent.join("openclaw-agent.sqlite"), b"SQLite format 3\0").unwrap();
    let profiles = format!("openclaw-profiles:{}", agent.join("auth-profiles.json").display());
    let ran = run(home.cred_sync().arg("--to").arg(&profiles));
    assert_eq!(ran.code, Some(6), "{}", ran.stderr);
    assert!(ran.stderr.contains("AUTH_PROFILE_MIGRATION_REQUIRED"), "{}", ran.stderr);
    assert!(ran.stderr.contains("openclaw-paste"), "says what to use instead: {}", ran.stderr);
    assert!(!agent.join("auth-profiles.json").exists(), "the retired file is not created");

    // A config last written by a SQLite-era release marks the whole directory, oauth.json included;
    // state/openclaw.sqlite alone does not (2026.6.1 creates it too).
    let oauth = home.path(".openclaw/credentials/oauth.json");
    let spec = format!("openclaw-oauth:{}", oauth.display());
    std::fs::create_dir_all(home.path(".openclaw/state")).unwrap();
    std::fs::write(home.path(".openclaw/state/openclaw.sqlite"), b"SQLite format 3\0").unwrap();
    assert_eq!(run(home.cred_sync().arg("--to").arg(&spec)).code, Some(0), "JSON era");
    std::fs::write(home.path(".openclaw/openclaw.json"), r#"{"meta":{"lastTouchedVersion":"2026.9.6"}}"#).unwrap();
    let before = std::fs::read(&oauth).unwrap();
    home.fresh_source();
    let ran = run(home.cred_sync().arg("--to").arg(&spec));
    assert_eq!(ran.code, Some(6), "{}", ran.stderr);
    assert!(ran.stderr.contains("last written by OpenClaw 2026.9.6"), "{}", ran.stderr);
    assert_eq!(std::fs::read(&oauth).unwrap(), before);
    let check = run(home.cred_sync().arg("--check").arg("--to").arg(&spec));
    assert_eq!(check.code, Some(7));
    assert!(check.stdout.lines().nth(1).unwrap().starts_with("retired-file"), "{}", check.stdout);

    let forced = run(home.cred_sync().arg("--force-legacy").arg("--to").arg(&profiles));
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
}

#[test]
fn check_reports_each_target_and_exits_7_on_drift() {
    let home = Home::new();
    let access = home.fresh_source();
    let synced = home.path("synced.env");
    let stale = home.path("stale.env");
    let missing = home.path("missing.env");
    run(home.cred_sync().arg("--to").arg(format!("dotenv:{}", synced.display())));
    std::fs::write(&stale, format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token())).unwrap();
    let before = std::fs::read(&stale).unwrap();

    let ran = run(home.cred_sync().arg("--check").arg("--to").arg(format!("dotenv:{}", synced.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = run(home
        .cred_sync()
        .arg("--check")
        .arg("--json")
        .args([&synced, &stale, &missing].map(|p| format!("--to=dotenv:{}", p.display()))));
    assert_eq!(ran.code, Some(7), "{}", ran.stderr);
    let rows: Vec<serde_json::Value> = ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["ok", "in-sync", "stale", "missing"]);
    assert_eq!(rows[0]["fingerprint"], rows[1]["fingerprint"]);
    assert_ne!(rows[2]["fingerprint"], rows[1]["fingerprint"]);
    assert_eq!(std::fs::read(&stale).unwrap(), before, "--check writes nothing");
    assert!(!missing.exists());
    assert_eq!(held_token(&synced), Some(access));
}

#[test]
fn dry_run_says_what_would_change_and_writes_nothing() {
    let home = Home::new();
    home.fresh_source();
    let target = home.path(".env");
    std::fs::write(&target, "A=1\n").unwrap();
    let ran = run(home.cred_sync().arg("--dry-run").arg("--to").arg(format!("dotenv:{}", target.display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with(&format!("would write {} (dotenv): token sk-ant-oat01-…(", target.display())),
        "{}",
        ran.stdout
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "A=1\n");
}

#[test]
fn options_come_from_the_config_file_and_flags_override_it() {
    let home = Home::new();
    let access = home.fresh_source();
    let target = home.path(".env");
    let config = home.path("keeper.env");
    std::fs::write(
        &config,
        format!(
            "KEEPER_TO=dotenv:{} dotenv:{}\nKEEPER_ENV_KEY=CLAUDE_TOKEN\n",
            target.display(),
            home.path("two.env").display()
        ),
    )
    .unwrap();
    let ran = run(home.cred_sync().arg("--config").arg(&config));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), format!("CLAUDE_TOKEN={access}\n"));
    assert_eq!(held_token(&home.path("two.env")), Some(access.clone()));
    let ran = run(home.cred_sync().arg("--config").arg(&config).args(["--key", "OTHER"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(std::fs::read_to_string(&target).unwrap().contains(&format!("OTHER={access}")));
}

#[test]
fn exec_on_change_gets_the_batch_on_stdin_once() {
    let home = Home::new();
    home.fresh_source();
    let record = home.path("batches");
    let hook = format!("cat >> {0}; echo --- >> {0}", record.display());
    let targets = ["a.env", "b.env"].map(|n| format!("--to=dotenv:{}", home.path(n).display()));
    let ran = run(home.cred_sync().args(&targets).arg("--exec-on-change").arg(&hook));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let batches = std::fs::read_to_string(&record).unwrap();
    assert_eq!(batches.matches("---").count(), 1);
    assert_eq!(batches.lines().filter(|l| l.starts_with('{')).count(), 2);
    assert_no_token(&batches, "hook input");
    // Nothing changed: the hook does not run.
    run(home.cred_sync().args(&targets).arg("--exec-on-change").arg(&hook));
    assert_eq!(std::fs::read_to_string(&record).unwrap().matches("---").count(), 1);
}

#[test]
fn usage_errors_exit_64_and_name_the_problem() {
    let home = Home::new();
    for (args, needle) in [
        (vec!["--to", "dotnev:/x"], "unknown target kind"),
        (vec![], "--to"),
        (vec!["--to", "dotenv:/x", "--watch", "--check"], "cannot be used with"),
    ] {
        let ran = run(home.cred_sync().args(&args));
        assert_eq!(ran.code, Some(64), "{args:?}");
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
    }
}

/// Regression (issue 15, item 3): `cli-poke --force` sets `expiresAt` to now; a one-shot
/// cred-sync reading the file before the CLI refreshed (the `.path` unit always does: the forced
/// write itself triggers it) exited 4 ("expired"), failing the unit and firing `OnFailure=`. The
/// targets already hold that very token with its true expiry: nothing to do. An expired token the
/// targets do not hold is still refused.
#[test]
fn regression_a_forced_refresh_marking_the_held_token_due_failed_the_sync() {
    let home = Home::new();
    let access = home.fresh_source();
    let env = home.path(".openclaw-env");
    let profiles = home.path("agents/main/agent/auth-profiles.json");
    std::fs::create_dir_all(profiles.parent().unwrap()).unwrap();
    let targets = |cmd: &mut std::process::Command| {
        cmd.arg("--to").arg(format!("dotenv:{}", env.display()));
        cmd.arg("--to").arg(format!("openclaw-profiles:{}", profiles.display()));
    };
    let mut cmd = home.cred_sync();
    targets(&mut cmd);
    assert_eq!(run(&mut cmd).code, Some(0));
    let before = (std::fs::read(&env).unwrap(), std::fs::read(&profiles).unwrap());

    // cli-poke --force: the same token, marked due.
    write_source(&home.source(), &claude_json(&access, &refresh_token(), now_ms() - 1, "a"), WriteStyle::Rename);
    let mut cmd = home.cred_sync();
    targets(&mut cmd);
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(1), "nothing to do, not an error: {}", ran.stderr);
    assert!(ran.stderr.contains("marked due"), "{}", ran.stderr);
    assert!(!ran.stderr.contains("error"), "{}", ran.stderr);
    assert_eq!((std::fs::read(&env).unwrap(), std::fs::read(&profiles).unwrap()), before, "targets untouched");

    // A different, expired token is still refused.
    write_source(
        &home.source(),
        &claude_json(&access_token(), &refresh_token(), now_ms() - 1, "a"),
        WriteStyle::Rename,
    );
    let mut cmd = home.cred_sync();
    targets(&mut cmd);
    let ran = run(&mut cmd);
    assert_eq!(ran.code, Some(4), "{}", ran.stderr);
    assert_eq!((std::fs::read(&env).unwrap(), std::fs::read(&profiles).unwrap()), before, "targets untouched");
}

/// Regression (found by the real 2026.6.1 gateway, tests/openclaw-gateway/tests/delivery.rs):
/// after a 401 on the old token the provider sat in a cooldown kept in the agent's
/// `auth-state.json`, not in `auth-profiles.json`, so the new token was skipped ("Provider
/// anthropic has auth issue (skipping all models)") even after the gateway's in-process restart.
/// Writing a new token clears that profile's cooldown there too, keeping everything else.
#[test]
fn regression_the_new_token_inherited_the_cooldown_kept_in_auth_state_json() {
    let home = Home::new();
    let access = home.fresh_source();
    let agent = home.path("agents/main/agent");
    std::fs::create_dir_all(&agent).unwrap();
    let state = agent.join("auth-state.json");
    std::fs::write(
        &state,
        r#"{"version":1,"lastGood":{"anthropic":"anthropic:claude-code"},"usageStats":{"anthropic:claude-code":{"lastUsed":1,"errorCount":3,"cooldownUntil":4102444800000,"failureCounts":{"auth":3}},"openai:default":{"errorCount":2,"cooldownUntil":4102444800000}}}"#,
    )
    .unwrap();
    let ran = run(home
        .cred_sync()
        .arg("--to")
        .arg(format!("openclaw-profiles:{}", agent.join("auth-profiles.json").display())));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(held_token(&agent.join("auth-profiles.json")).as_deref(), Some(access.as_str()));
    let after = json(&state);
    let ours = &after["usageStats"]["anthropic:claude-code"];
    assert!(ours.get("cooldownUntil").is_none() && ours["errorCount"] == 0, "{after}");
    assert_eq!(ours["lastUsed"], 1, "the rest of the entry is kept: {after}");
    assert_eq!(after["usageStats"]["openai:default"]["cooldownUntil"], 4_102_444_800_000_i64, "other providers kept");
    assert_eq!(after["lastGood"]["anthropic"], "anthropic:claude-code");
    assert!(ran.stderr.contains("cleared the cooldown"), "{}", ran.stderr);
}
