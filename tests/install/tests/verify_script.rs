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

/// The login's hard end (issue 15, item 5): verify.sh read only the access token's expiry, so a
/// Max login's 30-day end (`refreshTokenExpiresAt`, never moved by a refresh) showed nowhere
/// until the login was dead. The "login end" row shows the date from token-expiry's JSON, warns
/// within `KEEPER_WARN_LOGIN_WITHIN` (default 3d, as cli-poke), FAILs once it has passed, and is
/// skipped for a file that records none (CLI before 2.1.203).
#[test]
fn regression_verify_did_not_show_the_logins_end() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let bin = h.join(".local/bin");
    systemd::install_tools(&bin, false);
    let creds = h.join(".claude/.credentials.json");
    fs::create_dir_all(creds.parent().unwrap()).unwrap();
    let config = h.join(".config/openclaw-oauth-keeper/keeper.env");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let now_s =
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap();
    let day = 86_400;
    let (access, refresh) = (access_token(), keeper_install_tests::refresh_token());
    // The access token is fine (5 h); `login_end` is whole seconds from now, None: not recorded.
    let write = |login_end: Option<i64>, extra: &str| {
        let mut oauth = serde_json::json!({"accessToken": access, "refreshToken": refresh,
            "expiresAt": (now_s + 5 * 3600) * 1000, "scopes": ["user:inference"], "subscriptionType": "max"});
        if let Some(s) = login_end {
            oauth["refreshTokenExpiresAt"] = serde_json::json!((now_s + s) * 1000);
        }
        fs::write(&creds, serde_json::json!({ "claudeAiOauth": oauth }).to_string()).unwrap();
        fs::write(
            &config,
            format!(
                "KEEPER_INSTALL=user\nKEEPER_MODE=refresh\nKEEPER_GATEWAY=user-unit\nKEEPER_UNITS=\nKEEPER_TO=\n\
                 KEEPER_CREDENTIALS={}\n{extra}",
                creds.display()
            ),
        )
        .unwrap();
    };
    let rfc3339 = |s: i64| {
        let out = Command::new("date").args(["-u", "-d", &format!("@{}", now_s + s), "+%Y-%m-%dT%H:%M:%SZ"]).output();
        String::from_utf8(out.unwrap().stdout).unwrap().trim().to_owned()
    };
    let login_row = |text: &str| text.lines().find(|l| l.starts_with("login end")).unwrap_or_default().to_owned();

    write(Some(20 * day), "");
    let (_, text) = verify(h, &["--user"]);
    assert!(!has_token_shape(&text), "{text}");
    assert_eq!(row_status(&text, "token expiry"), Some("ok"), "{text}");
    assert_eq!(row_status(&text, "login end"), Some("ok"), "{text}");
    assert!(login_row(&text).contains(&rfc3339(20 * day)), "the date is shown:\n{text}");
    assert!(login_row(&text).contains("(in 19d 23h)") || login_row(&text).contains("(in 20d 0h)"), "{text}");

    // Near: two days left, the default 3d warns; the detail says when and what to do.
    write(Some(2 * day), "");
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "login end"), Some("warn"), "{text}");
    let row = login_row(&text);
    assert!(
        row.contains(&rfc3339(2 * day)) && row.contains("claude auth login") && row.contains("setup-token"),
        "{row}"
    );
    assert_eq!(row_status(&text, "token expiry"), Some("ok"), "the token itself is fine:\n{text}");

    // The config's threshold, as cli-poke reads it; a token-expiry threshold in the config
    // (status login-ending) keeps the token row ok.
    write(Some(10 * day), "KEEPER_WARN_LOGIN_WITHIN=2weeks\nKEEPER_LOGIN_WITHIN=12d\n");
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "login end"), Some("warn"), "{text}");
    assert_eq!(row_status(&text, "token expiry"), Some("ok"), "{text}");
    write(Some(10 * day), "KEEPER_WARN_LOGIN_WITHIN=0\n");
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "login end"), Some("ok"), "0 turns the warning off:\n{text}");
    write(Some(10 * day), "KEEPER_WARN_LOGIN_WITHIN=soon\n");
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "login end"), Some("ok"), "{text}");
    assert!(login_row(&text).contains("is not a duration: 3d used"), "{text}");

    // Passed: the access token still works for hours, but no refresh will.
    write(Some(-3600), "");
    let (code, text) = verify(h, &["--user"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(row_status(&text, "token expiry"), Some("ok"), "{text}");
    assert_eq!(row_status(&text, "login end"), Some("FAIL"), "{text}");
    assert!(login_row(&text).contains(&format!("ended {}", rfc3339(-3600))), "{text}");

    // Not recorded (CLI 2.1.112, 2.1.197): skipped, saying why.
    write(None, "");
    let (_, text) = verify(h, &["--user"]);
    assert_eq!(row_status(&text, "login end"), Some("skip"), "{text}");
    assert!(login_row(&text).contains("refreshTokenExpiresAt"), "{text}");
    assert!(!has_token_shape(&text), "{text}");
}
