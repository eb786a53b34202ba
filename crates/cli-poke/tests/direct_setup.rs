//! `scripts/setup.sh --refresh direct` for real (no `--root`) into a temporary HOME with no
//! Claude CLI at all: the user set with the direct timer to enable instead of the CLI's, its
//! `ReadWritePaths=` drop-in, the config naming it, and the install's test refresh
//! (`cli-poke --direct --force`, through the installed binary) against `tests/anthropic-mock`. As
//! root it runs in a network namespace of its own.

mod common;

use common::{MINUTE, has_token_shape, now_ms};
use keeper_anthropic_mock::{Mock, RequestKind, fingerprint, isolate_network};
use serde_json::json;
use std::process::Command;

#[test]
fn setup_refresh_direct_installs_the_direct_timer_and_its_test_refresh_rotates_through_the_endpoint() {
    std::thread::spawn(|| {
        if nix::unistd::geteuid().is_root() {
            isolate_network().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let claude = home.join(".claude");
        let openclaw = home.join(".openclaw");
        std::fs::create_dir_all(&claude).unwrap();
        std::fs::create_dir_all(openclaw.join("agents/main/agent")).unwrap();
        std::fs::write(openclaw.join("openclaw.json"), "{}").unwrap();
        let mock = Mock::start(dir.path()).unwrap();
        let (access, refresh) = (common::access_token(), common::refresh_token());
        let creds = claude.join(".credentials.json");
        let doc = json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
            "expiresAt": now_ms() + 6 * 60 * MINUTE, "scopes": ["user:inference"], "subscriptionType": "max"}});
        std::fs::write(&creds, doc.to_string()).unwrap();
        std::fs::set_permissions(&creds, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        mock.add_refresh_token(&refresh);

        let mut cmd = Command::new(keeper_install_tests::repo_root().join("scripts/setup.sh"));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["KEEPER_", "CLAUDE_", "ANTHROPIC_", "XDG_", "OPENCLAW_"].iter().any(|p| k.starts_with(p)) {
                cmd.env_remove(&*k);
            }
        }
        // No claude anywhere on PATH or in HOME: --refresh direct needs none.
        cmd.env("HOME", &home).env("PATH", "/usr/bin:/bin").env_remove("SUDO_USER");
        mock.apply_env(&mut cmd);
        cmd.args(["--yes", "--user", "--no-enable", "--no-verify", "--cli-test", "--refresh", "direct"])
            .args(["--gateway", "user-unit", "--gateway-unit", "openclaw-gateway.service", "--generation", "json"])
            .arg("--openclaw-dir")
            .arg(&openclaw)
            .arg("--bin-dir")
            .arg(keeper_install_tests::bin_dir())
            .stdin(std::process::Stdio::null());
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let all = format!("{stdout}{stderr}");
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(!has_token_shape(&all), "{all}");
        assert!(all.contains("Claude CLI: not found (--refresh direct refreshes without it)"), "{all}");
        assert!(all.contains("refresh:      direct"), "{all}");
        assert!(all.contains("enable:       none now (openclaw-keeper-refresh-direct.timer"), "{all}");
        assert!(all.contains("test one direct refresh (cli-poke --direct --force)"), "{all}");
        assert!(all.contains("the token endpoint refreshed it"), "{all}");

        // The test refresh went to the endpoint, once, with the file's refresh token, and its
        // answer is in the file.
        let reqs: Vec<_> =
            mock.requests().into_iter().filter(|r| matches!(r.kind, RequestKind::OAuthToken { .. })).collect();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let RequestKind::OAuthToken { refresh_fingerprint, .. } = &reqs[0].kind else { unreachable!() };
        assert_eq!(refresh_fingerprint.as_deref(), Some(fingerprint(&refresh).as_str()));
        let [issued] = mock.issued().try_into().unwrap();
        let now: serde_json::Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
        assert_eq!(now["claudeAiOauth"]["accessToken"], issued.access.as_str());

        // The units, the drop-in and the config.
        let units = home.join(".config/systemd/user");
        let service = std::fs::read_to_string(units.join("openclaw-keeper-refresh-direct.service")).unwrap();
        assert!(service.contains("\nExecStart=%h/.local/bin/cli-poke --direct --not-due-ok\n"), "{service}");
        assert!(units.join("openclaw-keeper-refresh-direct.timer").is_file());
        let dropin =
            std::fs::read_to_string(units.join("openclaw-keeper-refresh-direct.service.d/50-keeper-paths.conf"))
                .unwrap();
        for p in [&home, &openclaw] {
            assert!(dropin.contains(&format!("ReadWritePaths=-{}\n", p.display())), "{dropin}");
        }
        let config = std::fs::read_to_string(home.join(".config/openclaw-oauth-keeper/keeper.env")).unwrap();
        // --no-enable: nothing enabled, so none recorded (the plan above named the direct timer).
        assert!(config.lines().any(|l| l == "KEEPER_UNITS="), "{config}");
        assert!(config.contains(&format!("KEEPER_CREDENTIALS={}", creds.display())), "{config}");
        assert!(!has_token_shape(&config));
    })
    .join()
    .unwrap();
}
