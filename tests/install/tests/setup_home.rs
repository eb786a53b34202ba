//! `scripts/setup.sh` for real (no `--root`) into a temporary HOME: the user set, units installed
//! but not enabled (no user manager here), and the CLI test run: `cli-poke --force` against the
//! `claude` stand-in, which refreshes like the real CLI.

mod wizard;

use keeper_install_tests::{bin_dir, has_token_shape};
use std::process::Command;
use wizard::{Era, Fixture, Gateway, Run, read};

fn setup_for_real(f: &Fixture, extra_env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(keeper_install_tests::repo_root().join("scripts/setup.sh"));
    f.env(&mut cmd);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.args(["--yes", "--user", "--no-enable", "--no-verify", "--cli-test", "--bin-dir"])
        .arg(bin_dir())
        .arg("--units-dir")
        .arg(f.units_dir());
    wizard::run(cmd, None)
}

#[test]
fn the_cli_test_rotates_the_token_once_through_the_installed_cli_poke() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let before = read(&f.credentials());
    let run = setup_for_real(&f, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("step 8: test one CLI refresh (cli-poke --force)"), "{}", run.stdout);
    assert!(run.stdout.contains("the CLI refreshed its token"), "{}", run.stdout);
    let after = read(&f.credentials());
    assert!(!after.contains(&f.access_token) && !after.contains(&f.refresh_token), "both tokens rotated");
    assert_ne!(before, after);
    // Installed for real under HOME: the tools run from there.
    let installed = f.home().join(".local/bin/token-expiry");
    let out = Command::new(&installed).arg("--version").output().unwrap();
    assert!(out.status.success());
    let config = f.home().join(".config/openclaw-oauth-keeper/keeper.env");
    assert!(!has_token_shape(&read(&config)));

    // Uninstall removes it all again (systemctl --user has no manager here: only warned about).
    let mut cmd = Command::new(keeper_install_tests::repo_root().join("scripts/uninstall.sh"));
    f.env(&mut cmd);
    cmd.args(["--yes", "--user"]);
    wizard::run(cmd, None).assert_code(0);
    assert!(!installed.exists() && !config.exists());
    assert!(f.credentials().exists(), "credentials stay");
}

#[test]
fn a_failing_cli_test_exits_3_and_keeps_the_install() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let run = setup_for_real(&f, &[("CLAUDE_STAND_IN_DEAD", "1")]);
    run.assert_code(3);
    assert!(run.stderr.contains("cli-poke --force failed"), "{}", run.stderr);
    assert!(run.stdout.contains("installed, but a check failed"), "{}", run.stdout);
    assert!(f.home().join(".config/openclaw-oauth-keeper/installed.list").exists(), "the install stays");
}

/// Regression: with `--prefix` the tools are off the default `~/.local/bin` and off PATH, and
/// verify.sh (run on its own) could not find them: "token expiry | FAIL | token-expiry gave no
/// answer". setup now records `KEEPER_BIN_DIR` and verify.sh looks there first.
#[test]
fn regression_verify_did_not_find_the_tools_installed_under_a_prefix() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let prefix = f.home().join("opt/keeper");
    let mut cmd = Command::new(keeper_install_tests::repo_root().join("scripts/setup.sh"));
    f.env(&mut cmd);
    cmd.args(["--yes", "--user", "--no-enable", "--no-verify", "--skip-cli-test", "--bin-dir"])
        .arg(bin_dir())
        .arg("--units-dir")
        .arg(f.units_dir())
        .arg("--prefix")
        .arg(&prefix);
    wizard::run(cmd, None).assert_code(0);
    let config = read(&f.home().join(".config/openclaw-oauth-keeper/keeper.env"));
    assert!(config.contains(&format!("KEEPER_BIN_DIR={}\n", prefix.join("bin").display())), "{config}");
    let mut verify = Command::new(keeper_install_tests::repo_root().join("scripts/verify.sh"));
    f.env(&mut verify);
    verify.arg("--user");
    let run = wizard::run(verify, None);
    assert!(!has_token_shape(&run.all()), "a token in verify's output");
    let row = run.stdout.lines().find(|l| l.starts_with("token expiry")).unwrap_or_default();
    assert!(row.contains("| ok "), "{}", run.stdout);
}
