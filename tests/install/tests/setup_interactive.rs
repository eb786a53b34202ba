//! `scripts/setup.sh` through a real pseudo-terminal (tmux): the questions are asked on the
//! terminal and answered there, the setup-token is typed at a no-echo prompt and never shows.
//! The token reaches tmux through `load-buffer` on stdin, never through an argument.

mod wizard;

use keeper_install_tests::{access_token, bin_dir, fingerprint, has_token_shape, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use wizard::{Era, Fixture, Gateway, read, write};

/// A tmux server of our own (its own socket), killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts `script` in a detached session `wiz`.
    fn start(dir: &Path, script: &Path) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(std::env::var("CI").is_err(), "tmux is not installed (apt-get install tmux; .ci/run installs it)");
            eprintln!("SKIPPED: tmux is not installed");
            return None;
        }
        let tmux = Self { socket: dir.join("tmux.sock") };
        tmux.ok(&["new-session", "-d", "-s", "wiz", "-x", "200", "-y", "50", script.to_str().unwrap()]);
        tmux.ok(&["set-option", "-t", "wiz", "history-limit", "10000"]);
        Some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).args(args).env_remove("TMUX");
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).stdin(Stdio::null()).output().expect("tmux runs");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole pane, history included.
    fn pane(&self) -> String {
        self.ok(&["capture-pane", "-p", "-J", "-S", "-", "-t", "wiz"])
    }

    /// Waits until the pane shows `text` (at most 60 s: only a hang trips it).
    fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let pane = self.pane();
            if pane.contains(text) {
                return pane;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the pane never showed {text:?}:\n{pane}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "wiz"];
        args.extend(keys);
        self.ok(&args);
    }

    /// Types `secret` into the pane: into a tmux buffer from stdin, then pasted.
    fn type_secret(&self, secret: &str) {
        use std::io::Write as _;
        let mut child = self.cmd(&["load-buffer", "-b", "secret", "-"]).stdin(Stdio::piped()).spawn().expect("tmux");
        child.stdin.take().unwrap().write_all(secret.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
        self.ok(&["paste-buffer", "-d", "-b", "secret", "-t", "wiz"]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).stdin(Stdio::null()).output();
    }
}

/// A script the pane runs: setup.sh with the fixture's clean environment, then its exit status.
fn pane_script(f: &Fixture, args: &[&str]) -> PathBuf {
    let mut probe = Command::new("true");
    f.env(&mut probe);
    let env: Vec<String> =
        probe.get_envs().filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, shell_quote(v?.to_str()?)))).collect();
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let script = f.path("pane.sh");
    write(
        &script,
        &format!(
            "#!/bin/bash\ncd {dir}\nenv -i TERM=\"$TERM\" {env} {setup} {args}\necho \"EXIT=$?\"\nsleep 600\n",
            dir = shell_quote(f.dir.path().to_str().unwrap()),
            env = env.join(" "),
            setup = shell_quote(repo_root().join("scripts/setup.sh").to_str().unwrap()),
            args = quoted.join(" "),
        ),
    );
    wizard::chmod(&script, 0o755);
    script
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn root_args(f: &Fixture) -> Vec<String> {
    vec![
        "--root".into(),
        f.root().display().to_string(),
        "--bin-dir".into(),
        bin_dir().display().to_string(),
        "--units-dir".into(),
        f.units_dir().display().to_string(),
    ]
}

#[test]
fn questions_are_answered_on_the_terminal_and_the_setup_token_never_shows() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc_json = f.openclaw_dir().join("openclaw.json");
    write(&oc_json, r#"{"models":{"providers":{"anthropic":{"baseUrl":"https://api.anthropic.com/v1"}}}}"#);
    let seed_unit = f.staged(&f.home().join(".config/systemd/user/sync-oauth-token.service"));
    write(&seed_unit, "[Unit]\nDescription=the first seed's watcher\n");
    let token = access_token();

    let mut args = vec!["--setup-token".to_owned()];
    args.extend(root_args(&f));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(tmux) = Tmux::start(f.dir.path(), &pane_script(&f, &args)) else { return };

    tmux.wait_for("Remove models.providers.anthropic from openclaw.json (a backup is kept)? [Y/n]");
    tmux.keys(&["y", "Enter"]);
    tmux.wait_for("Replace them (stop, disable, move aside");
    tmux.keys(&["n", "Enter"]);
    tmux.wait_for("Webhook URL to tell when a human must log in again");
    tmux.keys(&["http://127.0.0.1:9/hook", "Enter"]);
    tmux.wait_for("Paste the token from `claude setup-token` (input hidden):");
    tmux.type_secret(&token);
    tmux.keys(&["Enter"]);
    tmux.wait_for("Apply this plan? [Y/n]");
    tmux.keys(&["Enter"]);
    let pane = tmux.wait_for("EXIT=");

    assert!(pane.contains("EXIT=0"), "{pane}");
    let shown = pane.replace(&token, "<THE TOKEN>");
    assert!(!pane.contains(&token[..30]), "the token showed on the terminal:\n{shown}");
    assert!(!has_token_shape(&pane), "a token showed on the terminal:\n{shown}");
    assert!(pane.contains(&format!("setup-token: sk-ant-oat01-…({})", fingerprint(&token))), "{pane}");

    // The answers took effect.
    let edited: serde_json::Value = serde_json::from_str(&read(&f.staged(&oc_json))).unwrap();
    assert!(edited["models"]["providers"].get("anthropic").is_none(), "{edited}");
    assert!(seed_unit.exists(), "answered no: the seed unit stays");
    let cfg = f.config(&f.home().join(".config/openclaw-oauth-keeper/keeper.env"));
    assert_eq!(cfg["KEEPER_NOTIFY_URL"], "http://127.0.0.1:9/hook");
    assert_eq!(cfg["KEEPER_MODE"], "setup-token");
    let dropin = f.staged(&f.home().join(".config/systemd/user/openclaw-gateway.service.d/anthropic.conf"));
    assert!(read(&dropin).contains(&format!("ANTHROPIC_OAUTH_TOKEN={token}")), "the typed token was written");
}

#[test]
fn declining_the_plan_changes_nothing_and_exits_4() {
    let f = Fixture::new(Gateway::Docker { passes_var: false }, Era::Json);
    let before = f.snapshot(f.dir.path());
    let args = root_args(&f);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(tmux) = Tmux::start(f.dir.path(), &pane_script(&f, &args)) else { return };
    // Without --root the CLI test would be asked too; with it, the webhook is the first question.
    tmux.wait_for("Webhook URL to tell when a human must log in again");
    tmux.keys(&["Enter"]);
    let pane = tmux.wait_for("Apply this plan? [Y/n]");
    assert!(pane.contains("the compose file does not pass ANTHROPIC_OAUTH_TOKEN"), "{pane}");
    tmux.keys(&["n", "Enter"]);
    let pane = tmux.wait_for("EXIT=");
    assert!(pane.contains("cancelled; nothing changed") && pane.contains("EXIT=4"), "{pane}");
    assert!(!f.root().exists());
    let after = f.snapshot(f.dir.path());
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{} changed", k.display());
    }
}

#[test]
fn an_unclear_answer_is_asked_again() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let config =
        r#"{"agents":{"defaults":{"model":{"primary":"openai/gpt-5"}}},"models":{"providers":{"anthropic":{}}}}"#;
    write(&f.openclaw_dir().join("openclaw.json"), config);
    let args = root_args(&f);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(tmux) = Tmux::start(f.dir.path(), &pane_script(&f, &args)) else { return };
    tmux.wait_for("Remove models.providers.anthropic");
    tmux.keys(&["perhaps", "Enter"]);
    tmux.wait_for("please answer y or n");
    tmux.keys(&["n", "Enter"]);
    tmux.wait_for("Webhook URL");
    tmux.keys(&["Enter"]);
    tmux.wait_for("Apply this plan?");
    tmux.keys(&["y", "Enter"]);
    let pane = tmux.wait_for("EXIT=");
    assert!(pane.contains("EXIT=0"), "{pane}");
    assert!(!f.staged(&f.openclaw_dir().join("openclaw.json")).exists(), "answered no: openclaw.json not edited");
}
