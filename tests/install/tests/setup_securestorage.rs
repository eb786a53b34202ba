//! `scripts/setup.sh` for a Claude CLI that keeps its credentials in
//! `CLAUDE_SECURESTORAGE_CONFIG_DIR` (CLI 2.1.332, docs/UPSTREAM.md "Claude Code CLI"): the
//! credentials file, its two locks and the `<dir>.lock` beside it live there, while the CLI still
//! writes `~/.claude/` and `~/.claude.json`. Into a staging root (`--root`), then
//! `systemd-analyze --user verify` on what it staged.

mod wizard;

use keeper_install_tests::repo_root;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use wizard::{Era, Fixture, Gateway, read};

/// The non-comment lines of a staged drop-in.
fn dropin_lines(f: &Fixture, unit: &str) -> Vec<String> {
    let path = f.home().join(format!(".config/systemd/user/{unit}.d/50-keeper-paths.conf"));
    read(&f.staged(&path)).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect()
}

/// The units' sandbox (`ProtectHome=read-only`) left the CLI unable to write its credentials
/// and take its locks when `CLAUDE_SECURESTORAGE_CONFIG_DIR` moved them out of the home: setup
/// neither looked there for the file nor listed the directory in `ReadWritePaths=`, and the
/// units' CLI did not get the variable.
#[test]
fn regression_setup_ignored_claude_securestorage_config_dir() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    // The CLI's file where 2.1.332 keeps it with the variable set: outside the home.
    let secure = f.path("secure/claude");
    fs::create_dir_all(&secure).unwrap();
    let creds = secure.join(".credentials.json");
    fs::rename(f.credentials(), &creds).unwrap();
    fs::set_permissions(&creds, fs::Permissions::from_mode(0o600)).unwrap();

    let root = f.root();
    let (bins, units) = (keeper_install_tests::bin_dir().to_path_buf(), f.units_dir());
    let mut cmd = Command::new(repo_root().join("scripts/setup.sh"));
    cmd.args(["--yes", "--sync", "path", "--root"])
        .arg(&root)
        .arg("--bin-dir")
        .arg(&bins)
        .arg("--units-dir")
        .arg(&units);
    f.env(&mut cmd);
    cmd.env("CLAUDE_SECURESTORAGE_CONFIG_DIR", &secure);
    let run = wizard::run(cmd, None);
    run.assert_code(0);

    let cfg = f.config(&f.home().join(".config/openclaw-oauth-keeper/keeper.env"));
    assert_eq!(cfg["KEEPER_CREDENTIALS"], creds.display().to_string(), "{}", run.stdout);
    assert_eq!(cfg["CLAUDE_SECURESTORAGE_CONFIG_DIR"], secure.display().to_string(), "the units' CLI looks there too");
    // refresh: the secure directory's parent (the file's temp + rename, .oauth_refresh.lock,
    // .storage-write.lock inside it, and <dir>.lock beside it), the REAUTH flag's directory, and
    // the home (~/.claude/, ~/.claude.json, ~/.claude.lock), each once.
    let want: Vec<String> = ["[Service]".to_owned()]
        .into_iter()
        .chain(
            [f.path("secure"), f.openclaw_dir(), f.home()].iter().map(|p| format!("ReadWritePaths=-{}", p.display())),
        )
        .collect();
    assert_eq!(dropin_lines(&f, "openclaw-keeper-refresh.service"), want);
    // The path unit watches the file where it now is.
    let path_dropin =
        read(&f.staged(&f.home().join(".config/systemd/user/openclaw-keeper-sync.path.d/50-keeper-paths.conf")));
    assert!(path_dropin.contains(&format!("\nPathChanged={}\n", creds.display())), "{path_dropin}");

    // What setup staged verifies silently (the units with their drop-ins, the tools in place).
    let home = f.staged(&f.home());
    let runtime = f.path("runtime");
    fs::create_dir_all(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let unit_dir = home.join(".config/systemd/user");
    let files: Vec<PathBuf> =
        ["openclaw-keeper-refresh.service", "openclaw-keeper-sync-once.service", "openclaw-keeper-sync.path"]
            .iter()
            .map(|u| unit_dir.join(u))
            .collect();
    assert!(files.iter().all(|p| p.is_file()), "{files:?}");
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        assert!(!keeper_install_tests::systemd::required(), "KEEPER_REQUIRE_SYSTEMD=1 but systemd-analyze is missing");
        eprintln!("SKIPPED the systemd-analyze part: systemd-analyze is not installed");
        return;
    }
    let out = Command::new("systemd-analyze")
        .arg("--user")
        .arg("verify")
        .args(&files)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.is_empty(), "systemd-analyze verify: {}\n{text}", out.status);
    assert!(Path::new(&unit_dir).join("openclaw-keeper-refresh.service.d/50-keeper-paths.conf").is_file());
}
