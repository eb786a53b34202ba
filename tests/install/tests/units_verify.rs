//! The shipped units: `systemd-analyze verify` prints nothing for any of them (both sets), their
//! hardening keeps the exposure score low, and the keys that matter are what the contract says.

use keeper_install_tests::TOOLS;
use keeper_install_tests::systemd::{self, unit_sources};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `[Section] Key` → values, in order (repeated keys keep every value).
type Keys = BTreeMap<(String, String), Vec<String>>;

fn parse(path: &Path) -> Keys {
    let mut keys = Keys::new();
    let mut section = String::new();
    for line in fs::read_to_string(path).unwrap().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            s.clone_into(&mut section);
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("{}: not KEY=value: {line}", path.display()));
        keys.entry((section.clone(), k.trim().to_owned())).or_default().push(v.trim().to_owned());
    }
    keys
}

fn get<'a>(keys: &'a Keys, section: &str, key: &str) -> Option<&'a str> {
    keys.get(&(section.to_owned(), key.to_owned())).and_then(|v| v.last()).map(String::as_str)
}

fn units(set: &str) -> BTreeMap<String, Keys> {
    unit_sources(set).iter().map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), parse(p))).collect()
}

fn analyze_available() -> bool {
    if systemd::which("systemd-analyze").is_some() {
        return true;
    }
    systemd::skip("systemd-analyze is not installed (apt-get install systemd)");
    false
}

/// The system set, with `/usr/local/bin/` rewritten to a directory holding the built tools (as
/// setup.sh does for `--prefix`), in a temporary directory.
fn staged_system_set() -> (tempfile::TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    systemd::install_tools(&bin, false);
    let mut files = Vec::new();
    for src in unit_sources("system") {
        let text = fs::read_to_string(&src).unwrap().replace("/usr/local/bin/", &format!("{}/", bin.display()));
        let to = dir.path().join(src.file_name().unwrap());
        fs::write(&to, text).unwrap();
        files.push(to);
    }
    (dir, files)
}

/// The user set installed as setup.sh does: units in ~/.config/systemd/user, tools in
/// ~/.local/bin, in a temporary HOME; and an `XDG_RUNTIME_DIR` (0700) for `--user`.
fn staged_user_set() -> (tempfile::TempDir, Vec<PathBuf>) {
    let home = tempfile::tempdir().unwrap();
    systemd::install_tools(&home.path().join(".local/bin"), false);
    let unit_dir = home.path().join(".config/systemd/user");
    fs::create_dir_all(&unit_dir).unwrap();
    let runtime = home.path().join("runtime");
    fs::create_dir_all(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let files = unit_sources("user")
        .iter()
        .map(|src| {
            let to = unit_dir.join(src.file_name().unwrap());
            fs::copy(src, &to).unwrap();
            to
        })
        .collect();
    (home, files)
}

fn user_analyze(home: &Path) -> Command {
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("--user")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("runtime"))
        .env("SYSTEMD_LOG_COLOR", "0");
    cmd
}

fn assert_silent(what: &str, out: &std::process::Output) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.is_empty(), "systemd-analyze verify {what}: {}\n{text}", out.status);
}

#[test]
fn system_units_verify_silently() {
    if !analyze_available() {
        return;
    }
    let (_dir, files) = staged_system_set();
    assert_eq!(files.len(), 10, "{files:?}");
    let out =
        Command::new("systemd-analyze").arg("verify").args(&files).env("SYSTEMD_LOG_COLOR", "0").output().unwrap();
    assert_silent("(system set)", &out);
}

#[test]
fn user_units_verify_silently() {
    if !analyze_available() {
        return;
    }
    let (home, files) = staged_user_set();
    assert_eq!(files.len(), 9, "{files:?}");
    let out = user_analyze(home.path()).arg("verify").args(&files).output().unwrap();
    assert_silent("--user (user set)", &out);
}

/// The path unit as setup.sh leaves it: the shipped default replaced by the install's
/// credentials file in `openclaw-keeper-sync.path.d/50-keeper-paths.conf`.
#[test]
fn path_unit_with_setups_dropin_verifies_silently() {
    if !analyze_available() {
        return;
    }
    let (home, files) = staged_user_set();
    let dropin = home.path().join(".config/systemd/user/openclaw-keeper-sync.path.d/50-keeper-paths.conf");
    fs::create_dir_all(dropin.parent().unwrap()).unwrap();
    let creds = home.path().join("cfg/.credentials.json");
    fs::write(
        &dropin,
        format!("# Written by scripts/setup.sh\n[Path]\nPathChanged=\nPathChanged={}\n", creds.display()),
    )
    .unwrap();
    let path_unit: Vec<&PathBuf> = files.iter().filter(|f| f.extension().is_some_and(|x| x == "path")).collect();
    assert_eq!(path_unit.len(), 1, "{files:?}");
    let out = user_analyze(home.path()).arg("verify").args(&path_unit).output().unwrap();
    assert_silent("--user openclaw-keeper-sync.path with the drop-in", &out);
    // A misspelt key in the drop-in is caught the same way.
    fs::write(&dropin, "[Path]\nPathChanged=\nPathChange=/x\n").unwrap();
    let out = user_analyze(home.path()).arg("verify").args(&path_unit).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("PathChange"), "{out:?}");
}

/// A typo'd key is only a warning to systemd: the check above must catch it (it reads the
/// output, not just the exit status).
#[test]
fn verify_check_catches_a_typo() {
    if !analyze_available() {
        return;
    }
    let (dir, files) = staged_system_set();
    let broken = dir.path().join("openclaw-keeper-broken.service");
    let text = fs::read_to_string(&files[1]).unwrap().replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    fs::write(&broken, text).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&broken).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NoNewPrivilege"), "{stderr}");
}

/// The exposure score of every service (`systemd-analyze security --offline=true`): a regression
/// gate on the hardening. systemd/README.md lists the figures.
#[test]
fn services_are_hardened() {
    if !analyze_available() {
        return;
    }
    let score = |cmd: &mut Command, file: &Path| -> f64 {
        let out = cmd.args(["security", "--offline=true", "--no-pager"]).arg(file).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
        let after = line.rsplit_once(".service: ").map_or("", |(_, a)| a);
        after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no score in {line:?}"))
    };
    let (_dir, files) = staged_system_set();
    for file in files.iter().filter(|f| f.extension().unwrap() == "service") {
        let s = score(&mut Command::new("systemd-analyze"), file);
        eprintln!("system {}: {s}", file.file_name().unwrap().to_string_lossy());
        assert!(s <= 2.5, "{}: exposure {s}", file.display());
    }
    let (home, files) = staged_user_set();
    for file in files.iter().filter(|f| f.extension().unwrap() == "service") {
        let s = score(&mut user_analyze(home.path()), file);
        eprintln!("user {}: {s}", file.file_name().unwrap().to_string_lossy());
        assert!(s <= 4.3, "{}: exposure {s}", file.display());
    }
}

#[test]
fn unit_sets_name_the_contracts_units() {
    let names = |set: &str| units(set).into_keys().collect::<Vec<_>>();
    let common = [
        "openclaw-keeper-notify@.service",
        "openclaw-keeper-refresh-direct.service",
        "openclaw-keeper-refresh-direct.timer",
        "openclaw-keeper-refresh.service",
        "openclaw-keeper-refresh.timer",
        "openclaw-keeper-sync-once.service",
        "openclaw-keeper-sync-once.timer",
        "openclaw-keeper-sync.path",
        "openclaw-keeper-sync.service",
    ];
    assert_eq!(names("user"), common);
    let mut system: Vec<&str> = common.to_vec();
    system.push("openclaw-keeper-sync-compose.service");
    system.sort_unstable();
    assert_eq!(names("system"), system);
}

#[test]
fn keys_that_matter() {
    for (set, config, bin) in [
        ("system", "/etc/openclaw-oauth-keeper/keeper.env", "/usr/local/bin/"),
        ("user", "%h/.config/openclaw-oauth-keeper/keeper.env", "%h/.local/bin/"),
    ] {
        let units = units(set);
        let unit = |name: &str| units.get(name).unwrap_or_else(|| panic!("{set}: {name}"));
        for timer in
            ["openclaw-keeper-refresh.timer", "openclaw-keeper-refresh-direct.timer", "openclaw-keeper-sync-once.timer"]
        {
            let t = unit(timer);
            assert_eq!(get(t, "Timer", "Persistent"), Some("true"), "{set} {timer}");
            assert_eq!(get(t, "Timer", "AccuracySec"), Some("1s"), "{set} {timer}: the default 1min is too coarse");
            assert_eq!(get(t, "Install", "WantedBy"), Some("timers.target"), "{set} {timer}");
        }
        let refresh_timer = unit("openclaw-keeper-refresh.timer");
        assert_eq!(get(refresh_timer, "Timer", "OnCalendar"), Some("*:0/2"), "{set}: every 2 minutes");

        let refresh = unit("openclaw-keeper-refresh.service");
        assert_eq!(get(refresh, "Service", "Type"), Some("oneshot"));
        assert_eq!(get(refresh, "Service", "ExecStart"), Some(format!("{bin}cli-poke --not-due-ok").as_str()));
        assert_eq!(get(refresh, "Unit", "StartLimitIntervalSec"), Some("0"), "{set}: a timer's service never stops");

        // The direct refresh (setup.sh --refresh direct): enabled instead of the CLI timer.
        let direct_timer = unit("openclaw-keeper-refresh-direct.timer");
        assert_eq!(get(direct_timer, "Timer", "OnCalendar"), Some("*:0/10"), "{set}: 5 runs in the 55-minute window");
        assert_eq!(get(direct_timer, "Timer", "Unit"), Some("openclaw-keeper-refresh-direct.service"), "{set}");
        assert_eq!(get(direct_timer, "Unit", "Conflicts"), Some("openclaw-keeper-refresh.timer"), "{set}");
        let direct = unit("openclaw-keeper-refresh-direct.service");
        assert_eq!(get(direct, "Service", "Type"), Some("oneshot"));
        assert_eq!(
            get(direct, "Service", "ExecStart"),
            Some(format!("{bin}cli-poke --direct --not-due-ok").as_str()),
            "{set}"
        );
        assert_eq!(get(direct, "Service", "SuccessExitStatus"), Some("7"), "{set}: exit 7 notifies by itself");
        assert_eq!(get(direct, "Service", "MemoryDenyWriteExecute"), Some("yes"), "{set}: no Node runs here");
        assert_eq!(get(direct, "Unit", "StartLimitIntervalSec"), Some("0"), "{set}");

        let sync = unit("openclaw-keeper-sync.service");
        assert_eq!(get(sync, "Service", "ExecStart"), Some(format!("{bin}cred-sync --watch").as_str()));
        assert_eq!(get(sync, "Service", "Restart"), Some("on-failure"));
        assert_eq!(
            get(sync, "Install", "WantedBy"),
            Some(if set == "user" { "default.target" } else { "multi-user.target" })
        );

        let once = unit("openclaw-keeper-sync-once.service");
        assert_eq!(get(once, "Service", "Type"), Some("oneshot"));
        assert_eq!(get(once, "Unit", "StartLimitIntervalSec"), Some("0"));
        assert!(get(once, "Service", "ExecStart").unwrap().contains(&format!("{bin}cred-sync")));

        assert!(!get(once, "Service", "ExecStart").unwrap().contains("--max-rounds"), "{set}: the re-check stays on");

        // The path variant: the credentials file starts the oneshot, which never hits a start
        // limit (that would stop the path unit watching for good: StartLimitIntervalSec=0 above).
        let path = unit("openclaw-keeper-sync.path");
        let creds = if set == "user" { "%h/.claude/.credentials.json" } else { "/root/.claude/.credentials.json" };
        assert_eq!(get(path, "Path", "PathChanged"), Some(creds), "{set}: the default setup's drop-in replaces");
        assert_eq!(get(path, "Path", "Unit"), Some("openclaw-keeper-sync-once.service"), "{set}");
        assert_eq!(get(path, "Install", "WantedBy"), Some("paths.target"), "{set}");
        let conflicts = get(path, "Unit", "Conflicts").unwrap();
        for other in ["openclaw-keeper-sync.service", "openclaw-keeper-sync-once.timer"] {
            assert!(conflicts.split(' ').any(|c| c == other), "{set}: the path unit conflicts with {other}");
        }
        let once_timer = get(unit("openclaw-keeper-sync-once.timer"), "Unit", "Conflicts").unwrap();
        assert!(once_timer.split(' ').any(|c| c == "openclaw-keeper-sync.path"), "{set}");

        let notify = unit("openclaw-keeper-notify@.service");
        let want =
            if set == "user" { "cli-poke --notify-failed %i --user-unit" } else { "cli-poke --notify-failed %i" };
        assert_eq!(get(notify, "Service", "ExecStart"), Some(format!("{bin}{want}").as_str()));
        assert_eq!(get(notify, "Unit", "OnFailure"), None, "no failure loop");

        for (name, keys) in &units {
            if Path::new(name).extension().is_some_and(|x| x == "timer" || x == "path") {
                continue;
            }
            let service = |k: &str| get(keys, "Service", k);
            assert_eq!(service("EnvironmentFile"), Some(format!("-{config}").as_str()), "{set} {name}");
            assert_eq!(service("StateDirectory"), Some("openclaw-oauth-keeper"), "{set} {name}");
            assert_eq!(service("NoNewPrivileges"), Some("yes"), "{set} {name}");
            assert_eq!(service("ProtectSystem"), Some("strict"), "{set} {name}");
            assert_eq!(service("PrivateTmp"), Some("yes"), "{set} {name}");
            assert_eq!(service("ProtectHome"), Some("read-only"), "{set} {name}");
            let filters = keys.get(&("Service".to_owned(), "SystemCallFilter".to_owned()));
            assert_eq!(filters.and_then(|f| f.first()).map(String::as_str), Some("@system-service"), "{set} {name}");
            let exec = service("ExecStart").unwrap();
            assert!(
                exec.starts_with(bin) || exec.starts_with("/bin/bash "),
                "{set} {name}: ExecStart must be an absolute path: {exec}"
            );
            for tool in TOOLS {
                let bare = format!(" {tool} ");
                assert!(!format!(" {exec} ").contains(&bare), "{set} {name}: bare {tool} in {exec}");
            }
            if !name.starts_with("openclaw-keeper-notify") {
                assert_eq!(get(keys, "Unit", "OnFailure"), Some("openclaw-keeper-notify@%n.service"), "{set} {name}");
            }
        }
    }
    let system = units("system");
    let compose = &system["openclaw-keeper-sync-compose.service"];
    let path_conflicts = get(&system["openclaw-keeper-sync.path"], "Unit", "Conflicts").unwrap();
    assert!(path_conflicts.split(' ').any(|c| c == "openclaw-keeper-sync-compose.service"));
    assert_eq!(get(compose, "Unit", "Conflicts"), Some("openclaw-keeper-sync.service"));
    assert_eq!(
        get(compose, "Service", "ExecStart"),
        Some("/bin/bash -o pipefail -c '/usr/local/bin/cred-sync --watch | /usr/local/bin/compose-recreate --stdin'")
    );
}
