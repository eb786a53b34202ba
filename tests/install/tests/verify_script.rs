//! scripts/verify.sh without a service manager: usage, a staging root, a setup-token install's
//! rows, and that no token reaches its output. The running-install rows are exercised on a real
//! user manager in `user_systemd.rs`.

use keeper_install_tests::{access_token, fingerprint, has_token_shape, repo_root, row_status, run_verify_sh, systemd};
use std::fs;
use std::path::Path;
use std::process::Command;

fn verify(home: &Path, args: &[&str]) -> (i32, String) {
    run_verify_sh(|cmd| {
        cmd.args(args)
            .env("HOME", home)
            .env("PATH", "/usr/bin:/bin")
            // No manager to reach: systemctl --user fails fast.
            .env("XDG_RUNTIME_DIR", home.join("no-runtime"));
    })
}

#[test]
fn usage() {
    let home = tempfile::tempdir().unwrap();
    let (code, text) = verify(home.path(), &["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("CHECK | STATUS | DETAIL") && text.contains("Exit status"), "{text}");
    for bad in [&["--bogus"][..], &["--config"], &["--root", "/nonexistent/dir"]] {
        let (code, text) = verify(home.path(), bad);
        assert_eq!(code, 64, "{bad:?}: {text}");
    }
}

#[test]
fn a_missing_config_fails() {
    let home = tempfile::tempdir().unwrap();
    let (code, text) = verify(home.path(), &["--user"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(row_status(&text, "config"), Some("FAIL"), "{text}");
    assert!(text.contains(".config/openclaw-oauth-keeper/keeper.env"), "{text}");
}

#[test]
fn staging_root_checks_files_only() {
    let root = tempfile::tempdir().unwrap();
    let etc = root.path().join("etc/openclaw-oauth-keeper");
    fs::create_dir_all(&etc).unwrap();
    fs::write(
        etc.join("keeper.env"),
        "KEEPER_INSTALL=system\nKEEPER_GATEWAY=docker\nKEEPER_UNITS=openclaw-keeper-refresh.timer openclaw-keeper-sync-compose.service\n",
    )
    .unwrap();
    let units = root.path().join("etc/systemd/system");
    fs::create_dir_all(&units).unwrap();
    fs::copy(
        repo_root().join("systemd/system/openclaw-keeper-refresh.timer"),
        units.join("openclaw-keeper-refresh.timer"),
    )
    .unwrap();
    let root_arg = root.path().to_str().unwrap();
    let (code, text) = verify(root.path(), &["--system", "--root", root_arg]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(row_status(&text, "unit openclaw-keeper-refresh.timer"), Some("ok"), "{text}");
    assert_eq!(row_status(&text, "unit openclaw-keeper-sync-compose.service"), Some("FAIL"), "{text}");
    assert_eq!(row_status(&text, "REAUTH flag"), Some("skip"), "{text}");
    fs::copy(
        repo_root().join("systemd/system/openclaw-keeper-sync-compose.service"),
        units.join("openclaw-keeper-sync-compose.service"),
    )
    .unwrap();
    let (code, text) = verify(root.path(), &["--system", "--root", root_arg]);
    assert_eq!(code, 0, "{text}");
}

/// Setup-token mode: no credentials file; the copies must agree, and the token's age is read
/// from `KEEPER_SETUP_TOKEN_EXPIRES_MS` (warn under 30 days, FAIL once expired).
#[test]
fn setup_token_mode() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = access_token();
    let dropin = h.join(".config/systemd/user/openclaw-gateway.service.d/anthropic.conf");
    fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    fs::write(&dropin, format!("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={token}\n")).unwrap();
    fs::write(h.join(".openclaw-env"), format!("ANTHROPIC_OAUTH_TOKEN={token}\n")).unwrap();
    let bin = h.join(".local/bin");
    systemd::install_tools(&bin, false);
    let config = h.join(".config/openclaw-oauth-keeper/keeper.env");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let now_ms =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()).unwrap();
    let write_config = |expires_ms: i64| {
        fs::write(
            &config,
            format!(
                "KEEPER_INSTALL=user\nKEEPER_MODE=setup-token\nKEEPER_GATEWAY=user-unit\nKEEPER_UNITS=\n\
                 KEEPER_SETUP_TOKEN_EXPIRES_MS={expires_ms}\n\
                 KEEPER_TO=systemd-dropin:{} dotenv:~/.openclaw-env clear-stale:~/.openclaw/agents/*/agent/auth-profiles.json\n",
                dropin.display()
            ),
        )
        .unwrap();
    };
    let day = 86_400_000;
    write_config(now_ms + 300 * day);
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "token expiry"), Some("ok"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("copy ") && l.contains("| ok ")).count(), 2, "{text}");
    assert!(text.contains(&fingerprint(&token)), "{text}");
    // No gateway unit runs here: that row fails, the rest is what this test checks.
    assert_eq!(row_status(&text, "gateway token"), Some("FAIL"), "{text}");
    write_config(now_ms + 20 * day);
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "token expiry"), Some("warn"), "{text}");
    write_config(now_ms - day);
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "token expiry"), Some("FAIL"), "{text}");
    // The copies disagree.
    fs::write(h.join(".openclaw-env"), format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token())).unwrap();
    let (code, text) = verify(h, &["--user"]);
    assert_eq!(code, 1);
    assert_eq!(text.lines().filter(|l| l.starts_with("copy ") && l.contains("| FAIL |")).count(), 1, "{text}");
    assert!(!has_token_shape(&text), "{text}");
}

/// The `openclaw models status` row against the real SQLite-era OpenClaw
/// (`KEEPER_OPENCLAW_SQLITE`, installed by scripts/install-openclaw-for-tests.sh): ok with a pasted
/// token; FAIL with `AUTH_PROFILE_MIGRATION_REQUIRED` when a retired `auth-profiles.json` sits
/// beside the store.
#[test]
fn openclaw_models_status_row_with_the_real_openclaw() {
    let Some(program) = std::env::var_os("KEEPER_OPENCLAW_SQLITE").filter(|p| !p.is_empty()) else {
        assert!(
            std::env::var_os("KEEPER_REQUIRE_OPENCLAW").is_none_or(|v| v != "1"),
            "KEEPER_REQUIRE_OPENCLAW=1 but KEEPER_OPENCLAW_SQLITE is not set"
        );
        eprintln!("SKIPPED: KEEPER_OPENCLAW_SQLITE is not set (scripts/install-openclaw-for-tests.sh)");
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let token = access_token();
    let mut paste = Command::new(&program)
        .args(["models", "auth", "paste-token", "--provider", "anthropic", "--expires-in", "8h"])
        .env_clear()
        .env("HOME", h)
        .env("PATH", "/usr/bin:/bin")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut paste.stdin.take().unwrap(), token.as_bytes()).unwrap();
    assert!(paste.wait().unwrap().success(), "paste-token");
    let config = h.join(".config/openclaw-oauth-keeper/keeper.env");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        format!(
            "KEEPER_INSTALL=user\nKEEPER_GATEWAY=user-unit\nKEEPER_OPENCLAW_GENERATION=sqlite\nKEEPER_UNITS=\n\
             KEEPER_TO=openclaw-paste\nKEEPER_OPENCLAW_CMD={}\n",
            Path::new(&program).display()
        ),
    )
    .unwrap();
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "openclaw models status"), Some("ok"), "{text}");
    assert!(!has_token_shape(&text), "{text}");

    let retired = h.join(".openclaw/agents/main/agent/auth-profiles.json");
    fs::create_dir_all(retired.parent().unwrap()).unwrap();
    fs::write(&retired, r#"{"version":1,"profiles":{}}"#).unwrap();
    let (code, text) = verify(h, &["--user"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(row_status(&text, "openclaw models status"), Some("FAIL"), "{text}");
    assert!(text.contains("AUTH_PROFILE_MIGRATION_REQUIRED"), "{text}");
}
