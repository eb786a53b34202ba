//! `scripts/setup.sh` non-interactively into a staging root (`--root`), one OpenClaw layout per
//! test: every file, unit, drop-in and config line it writes; `--dry-run`; rollback; uninstall.

mod wizard;

use keeper_install_tests::{TOOLS, access_token, fingerprint, has_token_shape};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use wizard::{Era, Fixture, Gateway, Run, mode, read, write};

const SYSTEM_CONFIG: &str = "/etc/openclaw-oauth-keeper/keeper.env";
const SYSTEM_MANIFEST: &str = "/etc/openclaw-oauth-keeper/installed.list";
const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// The compose command setup found (the words before `--project-directory` in a command it wrote).
fn compose_cmd(cfg: &std::collections::BTreeMap<String, String>) -> String {
    let written = cfg.get("KEEPER_NUDGE_CMD").or(cfg.get("KEEPER_RESTART_CMD")).expect("a compose command");
    written.split(" --project-directory").next().unwrap().to_owned()
}

fn user_config(f: &Fixture) -> PathBuf {
    f.home().join(".config/openclaw-oauth-keeper/keeper.env")
}
fn user_manifest(f: &Fixture) -> PathBuf {
    f.home().join(".config/openclaw-oauth-keeper/installed.list")
}
fn user_unit_dir(f: &Fixture) -> PathBuf {
    f.home().join(".config/systemd/user")
}

fn manifest(f: &Fixture, manifest: &Path) -> BTreeSet<PathBuf> {
    read(&f.staged(manifest)).lines().map(PathBuf::from).collect()
}

/// installed.list names exactly what the root holds, apart from `others` (copies of the user's
/// own files that --root staged to edit, and their backups).
#[track_caller]
fn assert_manifest_is_the_root(f: &Fixture, manifest_path: &Path, others: &[PathBuf]) {
    let listed = manifest(f, manifest_path);
    let mut on_disk = BTreeSet::new();
    for rel in f.snapshot(&f.root()).keys() {
        let final_path = Path::new("/").join(rel);
        let trimmed = PathBuf::from(final_path.to_str().expect("utf-8").trim_end_matches('/'));
        on_disk.insert(trimmed);
    }
    let others: BTreeSet<PathBuf> = others.iter().cloned().collect();
    let is_other = |p: &PathBuf| others.iter().any(|o| o == p || o.starts_with(p));
    for p in &listed {
        assert!(on_disk.contains(p), "installed.list names {} but the root does not hold it", p.display());
    }
    for p in &on_disk {
        assert!(
            listed.contains(p) || is_other(p),
            "the root holds {} but installed.list does not name it:\n{listed:#?}",
            p.display()
        );
    }
}

#[track_caller]
fn assert_tools_installed(f: &Fixture, bin: &Path) {
    for tool in TOOLS {
        let staged = f.staged(&bin.join(tool));
        assert_eq!(mode(&staged), 0o755, "{}", staged.display());
        assert_eq!(std::fs::read(&staged).unwrap(), std::fs::read(keeper_install_tests::bin_dir().join(tool)).unwrap());
    }
}

#[track_caller]
fn assert_paths_dropin(f: &Fixture, unit_dir: &Path, unit: &str, expected: &[PathBuf]) {
    let text = read(&f.staged(&unit_dir.join(format!("{unit}.d/50-keeper-paths.conf"))));
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut want = vec!["[Service]".to_owned()];
    want.extend(expected.iter().map(|p| format!("ReadWritePaths=-{}", p.display())));
    assert_eq!(lines, want, "{unit} drop-in");
}

fn no_token_in(f: &Fixture, file: &Path) {
    let text = read(&f.staged(file));
    assert!(!has_token_shape(&text), "{} holds a token:\n{text}", file.display());
}

#[test]
fn docker_json_era_with_env_file_installs_the_system_set_and_the_compose_sync() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("the compose file passes ANTHROPIC_OAUTH_TOKEN to openclaw-gateway"), "{}", run.stdout);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    let oc = f.openclaw_dir();
    let compose = f.compose_dir();
    let expect = [
        ("KEEPER_INSTALL", "system".to_owned()),
        ("KEEPER_MODE", "refresh".to_owned()),
        ("KEEPER_GATEWAY", "docker".to_owned()),
        ("KEEPER_PROJECT_DIR", compose.display().to_string()),
        ("KEEPER_COMPOSE_FILES", compose.join("docker-compose.yml").display().to_string()),
        ("KEEPER_ENV_FILE", compose.join(".env").display().to_string()),
        ("KEEPER_SERVICES", "openclaw-gateway".to_owned()),
        ("KEEPER_OPENCLAW_GENERATION", "json".to_owned()),
        ("KEEPER_OPENCLAW_DIR", oc.display().to_string()),
        ("KEEPER_CREDENTIALS", f.credentials().display().to_string()),
        ("KEEPER_CLI", f.path_dir().join("claude").display().to_string()),
        ("KEEPER_BASE_URL_OVERRIDE", "auto".to_owned()),
        (
            "KEEPER_TO",
            format!(
                "openclaw-oauth:{0}/credentials/oauth.json openclaw-profiles:{0}/agents/*/agent/auth-profiles.json dotenv:{1}/.env",
                oc.display(),
                compose.display()
            ),
        ),
        ("KEEPER_SYNC_UNIT", "openclaw-keeper-sync-compose.service".to_owned()),
        ("KEEPER_UNITS", "openclaw-keeper-refresh.timer openclaw-keeper-sync-compose.service".to_owned()),
        ("KEEPER_RECREATE", "yes".to_owned()),
        ("KEEPER_BIN_DIR", "/usr/local/bin".to_owned()),
        // JSON era: SIGUSR1 (an in-process restart) when a store write may go unseen; no restart
        // command: compose-recreate behind the watcher recreates only for "restart": true.
        (
            "KEEPER_NUDGE_CMD",
            format!("{} --project-directory {} kill -s SIGUSR1 openclaw-gateway", compose_cmd(&cfg), compose.display()),
        ),
    ];
    for (key, value) in &expect {
        assert_eq!(cfg.get(*key), Some(value), "{key} in keeper.env: {cfg:#?}");
    }
    assert!(!cfg.contains_key("KEEPER_OPENCLAW_CMD") && !cfg.contains_key("KEEPER_EXEC_ON_CHANGE"), "{cfg:#?}");
    assert!(!cfg.contains_key("KEEPER_RESTART_CMD"), "the store delivers: no restart per rotation: {cfg:#?}");
    assert!(!cfg.contains_key("KEEPER_STATE_DIR") && !cfg.contains_key("OPENCLAW_STATE_DIR"), "{cfg:#?}");
    assert_eq!(mode(&f.staged(Path::new(SYSTEM_CONFIG))), 0o600);
    no_token_in(&f, Path::new(SYSTEM_CONFIG));

    assert_tools_installed(&f, Path::new("/usr/local/bin"));
    for unit in wizard::SYSTEM_UNITS {
        let staged = f.staged(&Path::new(SYSTEM_UNIT_DIR).join(unit));
        assert_eq!(read(&staged), read(&f.units_dir().join("system").join(unit)), "{unit} copied unchanged");
    }
    let sync_paths = [oc.join("credentials"), oc.join("agents"), compose.clone()];
    for unit in
        ["openclaw-keeper-sync.service", "openclaw-keeper-sync-compose.service", "openclaw-keeper-sync-once.service"]
    {
        assert_paths_dropin(&f, Path::new(SYSTEM_UNIT_DIR), unit, &sync_paths);
    }
    assert_paths_dropin(&f, Path::new(SYSTEM_UNIT_DIR), "openclaw-keeper-refresh.service", &[f.home(), oc.clone()]);
    // The model: no primary was set, so it is now, without a models.providers entry.
    let json: serde_json::Value = serde_json::from_str(&read(&f.staged(&oc.join("openclaw.json")))).unwrap();
    assert_eq!(json["agents"]["defaults"]["model"]["primary"], "anthropic/claude-opus-4-6");
    assert_eq!(json["agents"]["defaults"]["models"]["anthropic/claude-sonnet-4-6"]["alias"], "Claude Sonnet 4.6 (Max)");
    assert!(json.get("models").is_none(), "{json}");
    assert_eq!(json["gateway"]["port"], 18789, "the rest of the file is kept");
    // The original is untouched: --root stages a copy.
    assert!(!read(&oc.join("openclaw.json")).contains("claude-opus"));
    let backup = backups(&f.staged(&oc.join("openclaw.json")));
    assert_eq!(backups_content(&backup), read(&oc.join("openclaw.json")));

    // The oauth.json target's directory did not exist: created for the sync services, not listed.
    assert!(f.staged(&oc.join("credentials")).is_dir());
    let mut others = vec![f.staged(&oc.join("openclaw.json")), backup[0].clone(), f.staged(&oc.join("credentials"))];
    for p in &mut others {
        *p = Path::new("/").join(p.strip_prefix(f.root()).unwrap());
    }
    assert_manifest_is_the_root(&f, Path::new(SYSTEM_MANIFEST), &others);
    assert!(run.stdout.contains("--root: not running systemctl daemon-reload / enable --now"), "{}", run.stdout);
}

fn backups(staged_file: &Path) -> Vec<PathBuf> {
    let name = staged_file.file_name().unwrap().to_str().unwrap().to_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(staged_file.parent().unwrap())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&format!("{name}.keeper-backup-")))
        .collect();
    found.sort();
    assert_eq!(found.len(), 1, "one backup of {}: {found:?}", staged_file.display());
    found
}
fn backups_content(b: &[PathBuf]) -> String {
    read(&b[0])
}

#[test]
fn docker_json_era_without_the_variable_warns_how_to_fix_and_syncs_the_files_only() {
    let f = Fixture::new(Gateway::Docker { passes_var: false }, Era::Json);
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("the compose file does not pass ANTHROPIC_OAUTH_TOKEN to openclaw-gateway"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("add 'env_file: .env'"), "{}", run.stderr);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    let oc = f.openclaw_dir();
    assert_eq!(
        cfg["KEEPER_TO"],
        format!(
            "openclaw-oauth:{0}/credentials/oauth.json openclaw-profiles:{0}/agents/*/agent/auth-profiles.json",
            oc.display()
        )
    );
    assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync.service");
    assert_eq!(cfg["KEEPER_UNITS"], "openclaw-keeper-refresh.timer openclaw-keeper-sync.service");
    assert!(!cfg.contains_key("KEEPER_RECREATE"), "no recreation without the variable: {cfg:#?}");
    // The store is read at start too: when the store cannot be told, a plain restart reaches it.
    let compose = f.compose_dir();
    assert_eq!(
        cfg["KEEPER_RESTART_CMD"],
        format!("{} --project-directory {} restart openclaw-gateway", compose_cmd(&cfg), compose.display())
    );
    assert!(cfg["KEEPER_NUDGE_CMD"].ends_with("kill -s SIGUSR1 openclaw-gateway"), "{cfg:#?}");
    // Nothing is written in the compose project (no dotenv target, no recreation).
    for unit in ["openclaw-keeper-sync.service", "openclaw-keeper-sync-once.service"] {
        assert_paths_dropin(&f, Path::new(SYSTEM_UNIT_DIR), unit, &[oc.join("credentials"), oc.join("agents")]);
    }
}

#[test]
fn docker_sqlite_era_pastes_through_compose_exec_and_writes_no_retired_file_target() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Sqlite);
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("generation: sqlite era"), "{}", run.stdout);
    assert!(run.stdout.contains("openclaw-agent.sqlite exists"), "{}", run.stdout);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    let compose = f.compose_dir();
    assert_eq!(cfg["KEEPER_OPENCLAW_GENERATION"], "sqlite");
    assert_eq!(cfg["KEEPER_TO"], format!("openclaw-paste dotenv:{}/.env", compose.display()));
    let cmd = &cfg["KEEPER_OPENCLAW_CMD"];
    assert!(
        cmd.ends_with(&format!("--project-directory {} exec -T openclaw-gateway openclaw", compose.display())),
        "{cmd}"
    );
    assert!(cmd.starts_with("docker compose ") || cmd.starts_with("docker-compose "), "{cmd}");
    assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync-compose.service");
    assert_eq!(cfg["KEEPER_RECREATE"], "yes");
    assert!(!cfg.contains_key("OPENCLAW_STATE_DIR"), "paste-token runs in the container: {cfg:#?}");
    // paste-token tells 2026.9.6 itself: neither a nudge nor a restart per rotation.
    assert!(!cfg.contains_key("KEEPER_NUDGE_CMD") && !cfg.contains_key("KEEPER_RESTART_CMD"), "{cfg:#?}");
    for unit in ["openclaw-keeper-sync-compose.service", "openclaw-keeper-sync-once.service"] {
        assert_paths_dropin(&f, Path::new(SYSTEM_UNIT_DIR), unit, std::slice::from_ref(&compose));
    }
}

/// Regression: a paste-token run through `docker compose exec` writes inside the container, yet
/// the sync services got OpenClaw's host directory writable (systemd/README.md: nothing).
#[test]
fn regression_paste_through_docker_made_openclaws_host_directory_writable() {
    let f = Fixture::new(Gateway::Docker { passes_var: false }, Era::Sqlite);
    f.setup_root(&[]).assert_code(0);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    assert_eq!(cfg["KEEPER_TO"], "openclaw-paste");
    let text = read(&f.staged(Path::new("/etc/systemd/system/openclaw-keeper-sync.service.d/50-keeper-paths.conf")));
    assert!(!text.contains("ReadWritePaths="), "{text}");
}

#[test]
fn user_unit_json_era_installs_the_user_set_with_the_dropin_target_and_the_nudge_and_restart_hooks() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    write(&f.home().join(".openclaw-env"), "# the second seed's env file\n");
    let run = f.setup_root(&[]);
    run.assert_code(0);
    let cfg = f.config(&user_config(&f));
    let oc = f.openclaw_dir();
    let units = user_unit_dir(&f);
    let dropin_dir = units.join("openclaw-gateway.service.d");
    assert_eq!(cfg["KEEPER_INSTALL"], "user");
    assert_eq!(cfg["KEEPER_GATEWAY"], "user-unit");
    assert_eq!(cfg["KEEPER_GATEWAY_UNIT"], "openclaw-gateway.service");
    assert_eq!(
        cfg["KEEPER_TO"],
        format!(
            "openclaw-profiles:{}/agents/*/agent/auth-profiles.json systemd-dropin:{}/anthropic.conf dotenv:{}/.openclaw-env",
            oc.display(),
            dropin_dir.display(),
            f.home().display()
        )
    );
    // The restart only when nothing else reaches the gateway; the nudge (SIGUSR1) when a store
    // write may go unseen; nothing on every change.
    assert_eq!(
        cfg["KEEPER_RESTART_CMD"],
        "systemctl --user daemon-reload && systemctl --user try-restart openclaw-gateway.service"
    );
    assert_eq!(cfg["KEEPER_NUDGE_CMD"], "systemctl --user kill -s USR1 --kill-whom=main openclaw-gateway.service");
    assert!(!cfg.contains_key("KEEPER_EXEC_ON_CHANGE"), "{cfg:#?}");
    assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync.service");
    assert_eq!(cfg["KEEPER_BIN_DIR"], f.home().join(".local/bin").display().to_string());
    assert!(!cfg.contains_key("KEEPER_STATE_DIR") && !cfg.contains_key("KEEPER_RECREATE"), "{cfg:#?}");
    assert_eq!(mode(&f.staged(&user_config(&f))), 0o600);
    assert_tools_installed(&f, &f.home().join(".local/bin"));
    assert!(f.staged(&dropin_dir).is_dir(), "the gateway's drop-in directory exists for cred-sync");
    assert_paths_dropin(&f, &units, "openclaw-keeper-sync.service", &[oc.join("agents"), dropin_dir.clone(), f.home()]);
    assert_paths_dropin(&f, &units, "openclaw-keeper-refresh.service", &[f.home(), oc.clone()]);
    assert!(!f.staged(&units.join("openclaw-keeper-sync-compose.service")).exists());
    // The drop-in directory is the gateway's (cred-sync writes its token there): not listed.
    let others = [oc.join("openclaw.json"), backups(&f.staged(&oc.join("openclaw.json")))[0].clone(), dropin_dir]
        .map(|p| if p.starts_with(f.root()) { Path::new("/").join(p.strip_prefix(f.root()).unwrap()) } else { p });
    assert_manifest_is_the_root(&f, &user_manifest(&f), &others);
}

#[test]
fn user_unit_sqlite_era_pastes_with_the_host_openclaw_by_absolute_path() {
    let f = Fixture::new(Gateway::UserUnit, Era::Sqlite);
    let run = f.setup_root(&[]);
    run.assert_code(0);
    let cfg = f.config(&user_config(&f));
    assert_eq!(cfg["KEEPER_OPENCLAW_GENERATION"], "sqlite");
    assert_eq!(cfg["KEEPER_OPENCLAW_CMD"], f.path_dir().join("openclaw").display().to_string());
    assert_eq!(cfg["OPENCLAW_STATE_DIR"], f.openclaw_dir().display().to_string());
    assert_eq!(
        cfg["KEEPER_TO"],
        format!(
            "openclaw-paste systemd-dropin:{}/openclaw-gateway.service.d/anthropic.conf",
            user_unit_dir(&f).display()
        )
    );
    assert!(!cfg.contains_key("KEEPER_NUDGE_CMD"), "paste-token tells 2026.9.6 itself: {cfg:#?}");
    assert!(cfg["KEEPER_RESTART_CMD"].ends_with("try-restart openclaw-gateway.service"), "{cfg:#?}");
    assert_paths_dropin(
        &f,
        &user_unit_dir(&f),
        "openclaw-keeper-sync.service",
        &[f.openclaw_dir(), user_unit_dir(&f).join("openclaw-gateway.service.d")],
    );
}

/// OpenClaw's own Claude-CLI backend (`models auth login --provider anthropic --method cli`):
/// OpenClaw runs `claude`, which refreshes itself; nothing is copied, only the refresh timer (the
/// REAUTH flag and the webhook) is installed, and setup says so.
#[test]
fn the_claude_cli_backend_gets_the_refresh_timer_only() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc = f.openclaw_dir();
    write(
        &oc.join("openclaw.json"),
        r#"{"meta":{"lastTouchedVersion":"2026.5.20"},"agents":{"defaults":{"model":{"primary":"claude-cli/claude-sonnet-5"}}}}"#,
    );
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("OpenClaw runs the Claude CLI itself (its claude-cli backend)"), "{}", run.stdout);
    let cfg = f.config(&user_config(&f));
    assert_eq!(cfg["KEEPER_CLI_BACKEND"], "yes");
    assert_eq!(cfg["KEEPER_TO"], "", "nothing to copy: {cfg:#?}");
    assert_eq!(cfg["KEEPER_UNITS"], "openclaw-keeper-refresh.timer");
    assert!(!cfg.contains_key("KEEPER_RESTART_CMD") && !cfg.contains_key("KEEPER_NUDGE_CMD"), "{cfg:#?}");
}

#[test]
fn a_prefix_rewrites_the_units_exec_start_paths() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let prefix = f.home().join("opt/keeper");
    f.setup_root(&["--prefix", prefix.to_str().unwrap()]).assert_code(0);
    assert_tools_installed(&f, &prefix.join("bin"));
    let unit = read(&f.staged(&user_unit_dir(&f).join("openclaw-keeper-refresh.service")));
    let exec: Vec<&str> = unit.lines().filter(|l| l.starts_with("Exec")).collect();
    assert!(!exec.is_empty());
    for line in exec {
        assert!(!line.contains("%h/.local/bin/"), "{line}");
        if line.contains("cli-poke") {
            assert!(line.contains(&format!("{}/cli-poke", prefix.join("bin").display())), "{line}");
        }
    }
}

#[test]
fn setup_token_mode_writes_the_dropin_and_openclaw_env_and_clears_stale_profiles() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let token = access_token();
    let mut args = vec!["--setup-token", "--token-stdin", "--yes", "--root"];
    let root = f.root();
    let bins = keeper_install_tests::bin_dir();
    let units = f.units_dir();
    args.extend([root.to_str().unwrap(), "--bin-dir", bins.to_str().unwrap(), "--units-dir", units.to_str().unwrap()]);
    let run = f.setup(&args, Some(&format!("{token}\n")));
    run.assert_code(0);
    assert!(run.stdout.contains(&fingerprint(&token)), "the fingerprint is shown: {}", run.stdout);

    let dropin = user_unit_dir(&f).join("openclaw-gateway.service.d/anthropic.conf");
    let dropin_text = read(&f.staged(&dropin));
    assert!(dropin_text.contains(&format!("Environment=ANTHROPIC_OAUTH_TOKEN={token}")), "{dropin_text}");
    let env_text = read(&f.staged(&f.home().join(".openclaw-env")));
    assert!(env_text.contains(&format!("ANTHROPIC_OAUTH_TOKEN={token}")), "{env_text}");
    let profiles = f.openclaw_dir().join("agents/main/agent/auth-profiles.json");
    let cleared: serde_json::Value = serde_json::from_str(&read(&f.staged(&profiles))).unwrap();
    assert!(cleared["profiles"].get("anthropic:claude-code").is_none(), "{cleared}");
    assert!(read(&profiles).contains("anthropic:claude-code"), "the original stays untouched under --root");

    let cfg = f.config(&user_config(&f));
    assert_eq!(cfg["KEEPER_MODE"], "setup-token");
    assert_eq!(cfg["KEEPER_UNITS"], "");
    let expires: i64 = cfg["KEEPER_SETUP_TOKEN_EXPIRES_MS"].parse().unwrap();
    let year = 365 * 24 * 3600 * 1000_i64;
    assert!((expires - wizard::keeper_now_ms() - year).abs() < 120_000, "{expires}");
    no_token_in(&f, &user_config(&f));
    // No refresh timer, no units at all: nothing refreshes a setup-token.
    let listed = manifest(&f, &user_manifest(&f));
    assert!(listed.iter().all(|p| !p.to_str().unwrap().contains("openclaw-keeper-")), "{listed:#?}");
    // The token files are credentials, not ours: not in the manifest.
    assert!(!listed.contains(&dropin) && !listed.contains(&f.home().join(".openclaw-env")), "{listed:#?}");
    // No token file left behind in TMPDIR.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().unwrap().starts_with("keeper-setup."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn setup_token_mode_refuses_a_malformed_token_and_changes_nothing() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let short = access_token()[..60].to_owned();
    for bad in [short.as_str(), "sk-ant-api03-not-a-setup-token-at-all-000000000000000000000000000000000000000000000"] {
        let root = f.root();
        // The tools are asked OpenClaw's generation (cred-sync --detect) before the token is read:
        // without cargo they come from --bin-dir.
        let bins = keeper_install_tests::bin_dir();
        let args = [
            "--setup-token",
            "--token-stdin",
            "--yes",
            "--root",
            root.to_str().unwrap(),
            "--bin-dir",
            bins.to_str().unwrap(),
        ];
        let run = f.setup(&args, Some(&format!("{bad}\n")));
        run.assert_code(2);
        assert!(run.stderr.contains("not a setup-token"), "{}", run.stderr);
        assert!(!f.root().exists());
    }
}

#[test]
fn the_first_seeds_units_are_stopped_and_moved_aside_and_recorded() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    let unit_dir = f.staged(Path::new(SYSTEM_UNIT_DIR));
    for unit in ["sync-oauth-token.service", "trigger-claude-refresh.timer", "trigger-claude-refresh.service"] {
        write(&unit_dir.join(unit), &format!("[Unit]\nDescription=seed {unit}\n"));
    }
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("the first seed's units are installed"), "{}", run.stdout);
    let record = read(&f.staged(Path::new("/etc/openclaw-oauth-keeper/replaced-seed-units.list")));
    for unit in ["sync-oauth-token.service", "trigger-claude-refresh.timer", "trigger-claude-refresh.service"] {
        assert!(!unit_dir.join(unit).exists(), "{unit} moved away");
        let moved: Vec<_> = std::fs::read_dir(&unit_dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().unwrap().starts_with(&format!("{unit}.keeper-replaced-")))
            .collect();
        assert_eq!(moved.len(), 1, "{unit}");
        assert_eq!(read(&moved[0].path()), format!("[Unit]\nDescription=seed {unit}\n"));
        assert!(record.contains(&format!("{SYSTEM_UNIT_DIR}/{unit} -> {SYSTEM_UNIT_DIR}/{unit}.keeper-replaced-")));
    }
    // Uninstall keeps what it did not create: the moved-aside seed units stay.
    f.uninstall(&[]).assert_code(0);
    let left: Vec<String> = std::fs::read_dir(&unit_dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|n| n.contains(".keeper-replaced-")), "{left:?}");
}

#[test]
fn the_first_seeds_units_are_kept_when_asked() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    let unit_dir = f.staged(Path::new(SYSTEM_UNIT_DIR));
    write(&unit_dir.join("sync-oauth-token.service"), "[Unit]\n");
    f.setup_root(&["--keep-old-units"]).assert_code(0);
    assert!(unit_dir.join("sync-oauth-token.service").exists());
    assert!(!f.staged(Path::new("/etc/openclaw-oauth-keeper/replaced-seed-units.list")).exists());
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    for (gateway, era) in [(Gateway::Docker { passes_var: true }, Era::Json), (Gateway::UserUnit, Era::Sqlite)] {
        let f = Fixture::new(gateway, era);
        let before = f.snapshot(f.dir.path());
        let run = f.setup_root(&["--dry-run"]);
        run.assert_code(0);
        assert!(run.stdout.contains("plan\n") && run.stdout.contains("dry run: nothing changed"), "{}", run.stdout);
        assert!(run.stdout.contains("targets:"), "{}", run.stdout);
        let after = f.snapshot(f.dir.path());
        let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        // The fixture's own docker-bin links appear on the first run; nothing else may.
        assert!(added.iter().all(|p| p.starts_with("docker-bin")), "dry run wrote {added:?}");
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "{} changed", k.display());
        }
        assert!(!f.root().exists());
    }
}

/// Regression guard for "nothing half-installed": the units step fails (its directory is a
/// file), after the tools and the config were written; the root is as it was.
#[test]
fn a_failing_step_is_named_and_everything_this_run_installed_is_rolled_back() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    write(&f.staged(Path::new("/etc/systemd/system")), "not a directory\n");
    write(&f.staged(Path::new("/usr/local/bin/someone-elses-tool")), "#!/bin/sh\n");
    let before = f.snapshot(&f.root());
    let run = f.setup_root(&[]);
    run.assert_code(1);
    assert!(run.stderr.contains("step \"install the system units into"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was installed"), "{}", run.stderr);
    assert!(run.stdout.contains("rolling back"), "{}", run.stdout);
    assert_eq!(f.snapshot(&f.root()), before, "the root is exactly as before");
}

/// `--sync path`: the path unit is the sync unit, and its drop-in names the install's
/// credentials file (the empty assignment first drops the shipped default) in both sets.
#[test]
fn sync_path_enables_the_path_unit_with_a_dropin_naming_the_credentials_file() {
    for gateway in [Gateway::Docker { passes_var: true }, Gateway::UserUnit] {
        let f = Fixture::new(gateway, Era::Json);
        let run = f.setup_root(&["--sync", "path"]);
        run.assert_code(0);
        let (config, unit_dir, man) = if gateway == Gateway::UserUnit {
            (user_config(&f), user_unit_dir(&f), user_manifest(&f))
        } else {
            (PathBuf::from(SYSTEM_CONFIG), PathBuf::from(SYSTEM_UNIT_DIR), PathBuf::from(SYSTEM_MANIFEST))
        };
        let cfg = f.config(&config);
        assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync.path", "{gateway:?}");
        assert_eq!(cfg["KEEPER_UNITS"], "openclaw-keeper-refresh.timer openclaw-keeper-sync.path", "{gateway:?}");
        let dropin = unit_dir.join("openclaw-keeper-sync.path.d/50-keeper-paths.conf");
        let text = read(&f.staged(&dropin));
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let watched = format!("PathChanged={}", f.credentials().display());
        assert_eq!(lines, ["[Path]", "PathChanged=", watched.as_str()], "{gateway:?}");
        assert!(f.staged(&unit_dir.join("openclaw-keeper-sync.path")).is_file());
        // The oneshot it starts has its writable paths like the other sync units.
        assert!(f.staged(&unit_dir.join("openclaw-keeper-sync-once.service.d/50-keeper-paths.conf")).is_file());
        assert!(manifest(&f, &man).contains(&dropin), "{gateway:?}: the manifest lists the path drop-in");
        assert!(run.stdout.contains("openclaw-keeper-sync.path"), "{}", run.stdout);
        f.uninstall(&[]).assert_code(0);
        assert!(!f.staged(&dropin).exists(), "{gateway:?}: uninstall removes the drop-in");
        assert!(!f.staged(&unit_dir.join("openclaw-keeper-sync.path")).exists());
    }
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let run = f.setup_root(&["--sync", "paths"]);
    run.assert_code(64);
    assert!(run.stderr.contains("--sync must be watch, once or path"), "{}", run.stderr);
}

#[test]
fn uninstall_removes_exactly_what_setup_installed() {
    for gateway in [Gateway::Docker { passes_var: true }, Gateway::UserUnit] {
        let f = Fixture::new(gateway, Era::Json);
        // Things that were there before and are not setup's.
        write(&f.staged(Path::new("/usr/local/bin/someone-elses-tool")), "#!/bin/sh\n");
        write(&f.staged(Path::new("/etc/systemd/system/other.service")), "[Unit]\n");
        write(&f.staged(&f.home().join(".config/systemd/user/other.service")), "[Unit]\n");
        let before = f.snapshot(&f.root());
        f.setup_root(&[]).assert_code(0);
        let installed = f.snapshot(&f.root());
        let run = f.uninstall(&[]);
        run.assert_code(0);
        let after = f.snapshot(&f.root());
        // The directories the services write (50-keeper-paths.conf) that setup had to create:
        // they hold the user's credentials once the services ran, so uninstall leaves them.
        let writable: Vec<PathBuf> = installed
            .iter()
            .filter(|(k, _)| k.ends_with("50-keeper-paths.conf"))
            .flat_map(|(_, text)| {
                String::from_utf8_lossy(text)
                    .lines()
                    .filter_map(|l| l.strip_prefix("ReadWritePaths=-/").map(PathBuf::from))
                    .collect::<Vec<_>>()
            })
            .collect();
        // Left: what was there before, plus the staged copy of the user's openclaw.json and its
        // backup (edited user files are never removed), and those directories.
        let extra: Vec<&PathBuf> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        for p in &extra {
            let s = p.to_str().unwrap();
            assert!(
                s.contains("openclaw.json")
                    || s.ends_with('/')
                        && (installed
                            .keys()
                            .any(|k| k.starts_with(p) && k.to_str().unwrap().contains("openclaw.json"))
                            || writable.iter().any(|w| w.starts_with(p))),
                "uninstall left {s}"
            );
        }
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "uninstall touched {}", k.display());
        }
        assert!(f.credentials().exists());
    }
}

#[test]
fn uninstall_without_a_manifest_says_so() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let run = f.uninstall(&["--user"]);
    run.assert_code(2);
    assert!(run.stderr.contains("nothing to uninstall"), "{}", run.stderr);
}

#[test]
fn a_models_providers_anthropic_entry_is_removed_after_a_backup_and_an_existing_primary_is_kept() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc_json = f.openclaw_dir().join("openclaw.json");
    let original = r#"{"agents":{"defaults":{"model":{"primary":"openai/gpt-5"}}},"models":{"providers":{"anthropic":{"baseUrl":"https://api.anthropic.com/v1"},"openai":{"baseUrl":"https://api.openai.com/v1"}}}}"#;
    write(&oc_json, original);
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stderr.contains("/v1/v1/messages (HTTP 404)"), "{}", run.stderr);
    let edited: serde_json::Value = serde_json::from_str(&read(&f.staged(&oc_json))).unwrap();
    assert_eq!(edited["agents"]["defaults"]["model"]["primary"], "openai/gpt-5", "a set primary is kept");
    assert!(edited["models"]["providers"].get("anthropic").is_none(), "{edited}");
    assert!(edited["models"]["providers"].get("openai").is_some(), "{edited}");
    assert_eq!(read(&backups(&f.staged(&oc_json))[0]), original);
}

#[test]
fn keep_providers_and_model_skip_leave_openclaw_json_alone() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc_json = f.openclaw_dir().join("openclaw.json");
    write(&oc_json, r#"{"models":{"providers":{"anthropic":{"baseUrl":"https://api.anthropic.com/v1"}}}}"#);
    f.setup_root(&["--keep-providers", "--model", "skip"]).assert_code(0);
    assert!(!f.staged(&oc_json).exists(), "not staged, not edited");
}

#[test]
fn a_json5_openclaw_json_gets_the_snippet_printed_instead_of_an_edit() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc_json = f.openclaw_dir().join("openclaw.json");
    write(&oc_json, "// JSON5\n{ gateway: { port: 18789, }, }\n");
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("not strict JSON"), "{}", run.stdout);
    assert!(run.stdout.contains(r#""model": { "primary": "anthropic/claude-opus-4-6" }"#), "{}", run.stdout);
    assert!(!f.staged(&oc_json).exists());
}

/// The real OpenClaw (2026.9.6) reads the edited openclaw.json and reports our default model and
/// aliases: the config is what OpenClaw understands, not what we believe it does.
#[test]
fn the_real_openclaw_sees_the_configured_default_model() {
    let Some(openclaw) = real_openclaw() else { return };
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let oc_json = f.openclaw_dir().join("openclaw.json");
    write(&oc_json, r#"{"models":{"providers":{"anthropic":{"baseUrl":"https://api.anthropic.com/v1","models":[]}}}}"#);
    f.setup_root(&[]).assert_code(0);
    let state = f.staged(&f.openclaw_dir());
    let out = std::process::Command::new(&openclaw)
        .args(["models", "status", "--json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", f.staged(&f.home()))
        .env("OPENCLAW_STATE_DIR", &state)
        .env("NO_COLOR", "1")
        .output()
        .expect("openclaw runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let status: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("models status --json: {e}\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(status["defaultModel"], "anthropic/claude-opus-4-6", "{status:#}");
    assert_eq!(status["configPath"], state.join("openclaw.json").display().to_string());
    let aliases = status["aliases"].to_string();
    assert!(aliases.contains("Claude Opus 4.6 (Max)") && aliases.contains("Claude Sonnet 4.6 (Max)"), "{aliases}");
}

fn real_openclaw() -> Option<PathBuf> {
    let path = std::env::var_os("KEEPER_OPENCLAW_SQLITE")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/opt/keeper-test-openclaw/bin/openclaw-sqlite")).filter(|p| p.is_file()));
    if path.is_none() {
        assert!(
            std::env::var("KEEPER_REQUIRE_OPENCLAW").map_or(true, |v| v.trim() != "1"),
            "KEEPER_OPENCLAW_SQLITE is not set and KEEPER_REQUIRE_OPENCLAW=1"
        );
        eprintln!("SKIPPED: no real OpenClaw (scripts/install-openclaw-for-tests.sh; KEEPER_OPENCLAW_SQLITE)");
    }
    path
}

#[test]
fn help_documents_every_exit_code_and_bad_flags_exit_64() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let help = f.setup(&["--help"], None);
    help.assert_code(0);
    for code in ["  0   ", "  1   ", "  2   ", "  3   ", "  4   ", "  64  ", "  69  "] {
        assert!(help.stdout.contains(code), "--help lacks exit code {code:?}");
    }
    for flag in [
        "--yes",
        "--dry-run",
        "--root",
        "--user",
        "--system",
        "--bin-dir",
        "--uninstall",
        "--compose-dir",
        "--setup-token",
        "--token-stdin",
        "--skip-cli-test",
        "--replace-old-units",
        "--fix-providers",
    ] {
        assert!(help.stdout.contains(flag), "--help lacks {flag}");
    }
    let bad = f.setup(&["--no-such-flag"], None);
    bad.assert_code(64);
    f.setup(&["--gateway", "kubernetes"], None).assert_code(64);
    f.setup(&["--root"], None).assert_code(64);
    let uninstall_help = wizard::run(
        {
            let mut c = std::process::Command::new(keeper_install_tests::repo_root().join("scripts/uninstall.sh"));
            c.arg("--help");
            c
        },
        None,
    );
    uninstall_help.assert_code(0);
    assert!(uninstall_help.stdout.contains("--uninstall"));
}

#[test]
fn no_gateway_found_exits_2_and_changes_nothing() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    std::fs::remove_file(f.home().join(".config/systemd/user/openclaw-gateway.service")).unwrap();
    let run: Run = f.setup_root(&[]);
    run.assert_code(2);
    assert!(run.stderr.contains("no OpenClaw gateway found"), "{}", run.stderr);
    assert!(!f.root().exists());
}

/// Regression: the rendered compose config shows `ANTHROPIC_OAUTH_TOKEN` only once the .env holds
/// it, so a fresh install (no token in the .env yet) was told its `env_file: .env` passed nothing.
#[test]
fn env_file_is_recognised_before_the_env_holds_the_token() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    write(&f.compose_dir().join(".env"), &format!("OPENCLAW_CONFIG_DIR={}\n", f.openclaw_dir().display()));
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("the compose file passes ANTHROPIC_OAUTH_TOKEN"), "{}{}", run.stdout, run.stderr);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync-compose.service");
    assert!(cfg["KEEPER_TO"].ends_with(&format!("dotenv:{}/.env", f.compose_dir().display())), "{cfg:#?}");
}

/// Regression: setup wrote `KEEPER_STATE_DIR` into keeper.env, which (`EnvironmentFile=` overrides
/// `Environment=`) replaced the units' `%S/openclaw-oauth-keeper` — the one state path their
/// `StateDirectory=` makes writable under `ProtectSystem=strict` — with the path setup's own shell
/// computed; and the system sync-once service never recreated the gateway because setup wrote no
/// `KEEPER_RECREATE=yes` for a compose file that passes the token.
#[test]
fn regression_the_config_overrode_the_units_state_dir_and_never_enabled_recreation() {
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    f.setup_root(&["--sync", "once"]).assert_code(0);
    let cfg = f.config(Path::new(SYSTEM_CONFIG));
    assert!(!cfg.contains_key("KEEPER_STATE_DIR"), "{cfg:#?}");
    assert_eq!(cfg["KEEPER_RECREATE"], "yes");
    assert_eq!(cfg["KEEPER_SYNC_UNIT"], "openclaw-keeper-sync-once.timer");
    let unit = read(&f.staged(Path::new("/etc/systemd/system/openclaw-keeper-sync-once.service")));
    assert!(unit.contains("KEEPER_RECREATE"), "the unit reads the key setup writes");
    // sync-once recreates: it writes the compose project too (systemd/README.md rule 3).
    let oc = f.openclaw_dir();
    assert_paths_dropin(
        &f,
        Path::new(SYSTEM_UNIT_DIR),
        "openclaw-keeper-sync-once.service",
        &[oc.join("credentials"), oc.join("agents"), f.compose_dir()],
    );
}

/// Regression: a missing target directory (OpenClaw's `credentials/` before the first
/// `oauth.json`) was named only in a `ReadWritePaths=-` line, which systemd drops for a missing
/// directory, so the sync service's first write into it failed on a read-only file system.
#[test]
fn regression_a_missing_target_directory_stayed_read_only_for_the_sync_service() {
    let f = Fixture::new(Gateway::Docker { passes_var: false }, Era::Json);
    let credentials_dir = f.openclaw_dir().join("credentials");
    assert!(!credentials_dir.exists());
    let run = f.setup_root(&[]);
    run.assert_code(0);
    assert!(run.stdout.contains("create the directories the services write"), "{}", run.stdout);
    assert!(f.staged(&credentials_dir).is_dir());
    assert_eq!(mode(&f.staged(&credentials_dir)), 0o700, "it will hold a token");
    let listed = manifest(&f, Path::new(SYSTEM_MANIFEST));
    assert!(!listed.contains(&credentials_dir), "it holds the user's credentials: not setup's to remove");
}

#[test]
fn regression_the_system_refresh_ran_a_users_host_cli_as_root() {
    // The system set runs as root; a host CLI whose credentials belong to another user must run
    // as that user (cli-poke refuses another user's file, and root would leave root-owned files
    // in the user's ~/.claude).
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    let owner = 4242;
    nix::unistd::chown(&f.credentials(), Some(nix::unistd::Uid::from_raw(owner)), None).unwrap();
    let run = f.setup_root(&[]);
    run.assert_code(0);
    let dropin =
        read(&f.staged(Path::new("/etc/systemd/system/openclaw-keeper-refresh.service.d/50-keeper-paths.conf")));
    assert!(dropin.lines().any(|l| l == format!("User={owner}")), "{dropin}");
    // Root's own credentials keep the root service (the fixture's default owner).
    let f = Fixture::new(Gateway::Docker { passes_var: true }, Era::Json);
    f.setup_root(&[]).assert_code(0);
    let dropin =
        read(&f.staged(Path::new("/etc/systemd/system/openclaw-keeper-refresh.service.d/50-keeper-paths.conf")));
    assert!(!dropin.contains("User="), "{dropin}");
}

#[test]
fn without_cargo_or_bin_dir_setup_exits_69_before_changing_anything() {
    // The fixture's PATH has no cargo and its HOME no ~/.cargo: nothing to build the tools with.
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    let before = f.snapshot(f.dir.path());
    let (root, units) = (f.root().display().to_string(), f.units_dir().display().to_string());
    let run = f.setup(&["--yes", "--root", &root, "--units-dir", &units], None);
    run.assert_code(69);
    assert!(run.stderr.contains("cargo not found") && run.stderr.contains("--bin-dir"), "{}", run.stderr);
    assert!(!run.stdout.contains("step 1"), "no step may start:\n{}", run.stdout);
    let after = f.snapshot(f.dir.path());
    let added: Vec<_> = after.keys().filter(|k| !before.contains_key(*k) && !k.starts_with("docker-bin")).collect();
    assert!(added.is_empty(), "setup wrote {added:?}");
    assert!(!f.root().exists());
}

/// README's set-up command builds the tools itself (no `--bin-dir`): one `cargo build --release
/// --locked` of the four tools, whose binaries are the ones installed.
#[test]
fn the_readme_setup_command_builds_the_tools_itself() {
    let f = Fixture::new(Gateway::UserUnit, Era::Json);
    // The toolchain of this test run (not the rustup proxy: the fixture's HOME has no ~/.rustup),
    // the real cargo home (its registry cache), and this test's own target directory.
    let cargo = PathBuf::from(std::env::var_os("CARGO").expect("cargo test sets CARGO"));
    let toolchain_bin = cargo.parent().unwrap().to_path_buf();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"), PathBuf::from);
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.ancestors().nth(3).unwrap().to_path_buf();
    let (root, units) = (f.root().display().to_string(), f.units_dir().display().to_string());
    let mut cmd = std::process::Command::new(keeper_install_tests::repo_root().join("scripts/setup.sh"));
    cmd.args(["--yes", "--root", &root, "--units-dir", &units]);
    f.env(&mut cmd);
    let path = format!("{}:{}", toolchain_bin.display(), std::env::var("PATH").unwrap_or_default());
    cmd.env("PATH", format!("{}:{path}", f.path_dir().display()))
        .env("CARGO_HOME", &cargo_home)
        .env("CARGO_TARGET_DIR", &target_dir);
    let run = wizard::run(cmd, None);
    run.assert_code(0);
    assert!(run.stdout.contains("cargo build --release --locked"), "{}", run.stdout);
    for tool in TOOLS {
        let installed = f.staged(&f.home().join(".local/bin").join(tool));
        assert_eq!(mode(&installed), 0o755, "{}", installed.display());
        let built = target_dir.join("release").join(tool);
        assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&built).unwrap(), "{tool} is the release build");
        let version = std::process::Command::new(&installed).arg("--version").output().unwrap();
        assert!(version.status.success() && String::from_utf8_lossy(&version.stdout).starts_with(tool));
    }
    assert!(!has_token_shape(&run.all()), "{}", run.all());
}
