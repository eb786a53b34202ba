//! The Debian package, for real: `scripts/package.sh` builds it; its contents and control fields;
//! `dpkg -i` on this machine (root); every tool from /usr/bin (`--version` names the commit), the
//! man pages (`man --warnings`), the completions; the packaged wizard into a `--root` staging
//! directory for a Docker and a user-unit install with no cargo on PATH, then its uninstall;
//! `dpkg -r`, after which nothing of the package is left.
//!
//! Needs cargo-deb (`cargo install cargo-deb --locked`), dpkg and, for the install, root; without
//! them the tests print SKIPPED, and `KEEPER_REQUIRE_PACKAGE=1` (set by `.ci/run`) makes that a
//! failure. One release build per run (the .deb is built once per test binary).

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

const PACKAGE: &str = "openclaw-oauth-keeper";
const TOOLS: [&str; 4] = ["token-expiry", "cred-sync", "cli-poke", "compose-recreate"];
const SHARE: &str = "/usr/share/openclaw-oauth-keeper";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("tests/package in the repo")
}

fn required() -> bool {
    std::env::var_os("KEEPER_REQUIRE_PACKAGE").is_some_and(|v| v == "1")
}

/// Ok(()) when the tests can run; Err(reason) to skip (a failure when required).
fn can_build() -> Result<(), String> {
    let ok = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
    if !ok(Command::new("dpkg-deb").arg("--version")) {
        return Err("dpkg-deb is not installed".into());
    }
    // package.sh installs cargo-deb itself; outside CI that download is not done unasked.
    if !required() && !ok(Command::new("cargo").args(["deb", "--version"])) {
        return Err("cargo-deb is not installed (cargo install cargo-deb --locked)".into());
    }
    Ok(())
}

fn skip(reason: &str) -> bool {
    assert!(!required(), "KEEPER_REQUIRE_PACKAGE=1, but {reason}");
    eprintln!("SKIPPED: {reason}");
    true
}

/// The .deb, built once per test binary by `scripts/package.sh`.
fn deb() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let out = Command::new("bash")
            .arg(repo().join("scripts/package.sh"))
            .current_dir(repo())
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "package.sh failed:\n{}{stdout}", String::from_utf8_lossy(&out.stderr));
        let deb = PathBuf::from(stdout.lines().last().expect("package.sh prints the .deb").trim());
        assert!(deb.is_file() && deb.extension().is_some_and(|e| e == "deb"), "{}", deb.display());
        deb
    })
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

#[track_caller]
fn ok_text(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The commit the tools say they were built from.
fn head_commit() -> String {
    let out = output(Command::new("git").arg("-C").arg(repo()).args(["rev-parse", "--short", "HEAD"]));
    if out.status.success() { String::from_utf8(out.stdout).unwrap().trim().to_owned() } else { "unknown".into() }
}

/// The repository's unit files of one set (`system`, `user`).
fn units(set: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo().join("systemd").join(set))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| [".service", ".timer", ".path"].iter().any(|s| n.ends_with(s)))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{set}: {names:?}");
    names
}

/// The paths the package holds (`dpkg-deb -c`), without the leading `.`, directories with `/`.
fn contents(deb: &Path) -> BTreeSet<String> {
    ok_text(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .map(|l| {
            let path = l.split_whitespace().nth(5).expect("a tar line");
            path.trim_start_matches('.').to_owned()
        })
        .collect()
}

/// Every regular file the package installs, with its mode.
fn files_with_modes(deb: &Path) -> Vec<(String, String)> {
    ok_text(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let mut fields = l.split_whitespace();
            let mode = fields.next().unwrap().to_owned();
            (fields.nth(4).unwrap().trim_start_matches('.').to_owned(), mode)
        })
        .collect()
}

#[test]
fn the_deb_holds_the_tools_units_scripts_docs_man_pages_and_completions_and_no_scripts_of_its_own() {
    if let Err(reason) = can_build() {
        skip(&reason);
        return;
    }
    let deb = deb();
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with(&format!("{PACKAGE}_{}", env!("CARGO_PKG_VERSION"))), "{name}");

    let paths = contents(deb);
    let mut want: Vec<String> = Vec::new();
    for tool in TOOLS {
        want.push(format!("/usr/bin/{tool}"));
        want.push(format!("/usr/share/man/man1/{tool}.1.gz"));
        want.push(format!("/usr/share/bash-completion/completions/{tool}"));
        want.push(format!("/usr/share/zsh/vendor-completions/_{tool}"));
        want.push(format!("/usr/share/fish/vendor_completions.d/{tool}.fish"));
    }
    want.push("/usr/bin/openclaw-oauth-keeper-setup".into());
    for script in ["setup.sh", "verify.sh", "uninstall.sh"] {
        want.push(format!("{SHARE}/{script}"));
    }
    for set in ["system", "user"] {
        want.extend(units(set).iter().map(|u| format!("/usr/lib/systemd/{set}/{u}")));
    }
    for doc in ["README.md", "copyright", "systemd.md", "docs/ARCHITECTURE.md", "docs/TROUBLESHOOTING.md"] {
        want.push(format!("/usr/share/doc/{PACKAGE}/{doc}"));
    }
    for path in &want {
        assert!(paths.contains(path), "the package lacks {path}:\n{paths:#?}");
    }
    // Only /usr: nothing in /etc (no enabled unit, no config), nothing in /usr/local.
    for path in &paths {
        assert!(path == "/" || path.starts_with("/usr/"), "{path} is outside /usr");
        assert!(!path.contains(".wants/") && !path.starts_with("/usr/local"), "{path}");
    }
    for (path, mode) in files_with_modes(deb) {
        let exec = path.starts_with("/usr/bin/") || Path::new(&path).extension().is_some_and(|e| e == "sh");
        assert_eq!(mode, if exec { "-rwxr-xr-x" } else { "-rw-r--r--" }, "{path}");
    }

    // Control: no maintainer scripts (installing enables nothing); the fields.
    let control = tempfile::tempdir().unwrap();
    let control_dir = control.path().join("DEBIAN");
    ok_text(Command::new("dpkg-deb").arg("--control").arg(deb).arg(&control_dir));
    let members: BTreeSet<String> =
        fs::read_dir(&control_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(members.contains("control"), "{members:?}");
    for member in &members {
        assert!(["control", "md5sums"].contains(&member.as_str()), "a maintainer script or more: {members:?}");
    }
    let field = |f: &str| ok_text(Command::new("dpkg-deb").arg("-f").arg(deb).arg(f)).trim().to_owned();
    assert_eq!(field("Package"), PACKAGE);
    assert!(field("Version").starts_with(env!("CARGO_PKG_VERSION")), "{}", field("Version"));
    let arch = ok_text(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(field("Architecture"), arch.trim());
    let depends = field("Depends");
    for dep in ["libc6", "systemd", "python3"] {
        assert!(depends.split([',', '|']).any(|d| d.trim().starts_with(dep)), "Depends: {depends}");
    }
    let recommends = field("Recommends");
    for rec in ["docker.io", "docker-compose"] {
        assert!(recommends.contains(rec), "Recommends: {recommends}");
    }
    assert!(!depends.contains("docker"), "Docker is for one scenario only: {depends}");
    assert!(!field("Maintainer").is_empty() && !field("Description").is_empty());
    assert_eq!(field("Section"), "admin");

    // The units as shipped: the repository's, ExecStart= on /usr/bin, nothing else changed.
    let x = tempfile::tempdir().unwrap();
    ok_text(Command::new("dpkg-deb").arg("-x").arg(deb).arg(x.path()));
    for set in ["system", "user"] {
        for unit in units(set) {
            let shipped = fs::read_to_string(x.path().join(format!("usr/lib/systemd/{set}/{unit}"))).unwrap();
            let source = fs::read_to_string(repo().join(format!("systemd/{set}/{unit}"))).unwrap();
            assert_eq!(shipped.lines().count(), source.lines().count(), "{set}/{unit}");
            for (a, b) in shipped.lines().zip(source.lines()) {
                if b.starts_with("Exec") {
                    assert_eq!(
                        a,
                        b.replace("/usr/local/bin/", "/usr/bin/").replace("%h/.local/bin/", "/usr/bin/"),
                        "{set}/{unit}"
                    );
                    assert!(!a.contains("/usr/local/") && !a.contains(".local/bin"), "{set}/{unit}: {a}");
                } else {
                    assert_eq!(a, b, "{set}/{unit}: only Exec lines change");
                }
            }
        }
    }
}

/// `dpkg -r` when dropped, so a failing test leaves no package behind.
#[derive(Debug)]
struct Installed;
impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", PACKAGE]).output();
    }
}

fn is_installed() -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status}", PACKAGE])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "installed")
}

/// Everything under /etc/systemd whose name is one of the package's units.
fn enabled_units() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(dir) else { return };
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with("openclaw-keeper-") {
                out.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/etc/systemd"), &mut out);
    out
}

/// One install at a time (this binary's other test only reads the .deb).
static ONE: Mutex<()> = Mutex::new(());

#[test]
fn dpkg_installs_it_the_tools_man_pages_completions_and_the_packaged_wizard_work_and_dpkg_removes_all_of_it() {
    if let Err(reason) = can_build() {
        skip(&reason);
        return;
    }
    if !nix_is_root() {
        skip("dpkg -i needs root");
        return;
    }
    let _one = ONE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let deb = deb();
    assert!(!is_installed(), "{PACKAGE} is installed already: this test installs and removes it itself");
    let before_units = enabled_units();
    let paths = contents(deb);

    let installed = Installed;
    ok_text(Command::new("dpkg").arg("-i").arg(deb).env("DEBIAN_FRONTEND", "noninteractive"));
    assert!(is_installed());
    // Installing enabled, started and configured nothing.
    assert_eq!(enabled_units(), before_units, "installing the package touched /etc/systemd");
    assert!(!Path::new("/etc/openclaw-oauth-keeper").exists());

    // Every tool from /usr/bin: the version and the commit; --help.
    let commit = head_commit();
    for tool in TOOLS {
        let bin = format!("/usr/bin/{tool}");
        let version = ok_text(Command::new(&bin).arg("--version").env_clear());
        assert_eq!(version.trim(), format!("{tool} {} (commit {commit})", env!("CARGO_PKG_VERSION")));
        assert!(commit != "unknown" || !repo().join(".git").exists(), "a checkout's build must know its commit");
        let help = ok_text(Command::new(&bin).arg("--help").env_clear());
        assert!(help.contains("Exit status") && help.contains("Examples:"), "{tool} --help:\n{help}");

        // The man page: found by name, renders without a groff warning, has the exit codes.
        let page = format!("/usr/share/man/man1/{tool}.1.gz");
        let found = ok_text(Command::new("man").args(["-w", tool]).env("MANPATH", "/usr/share/man"));
        assert_eq!(found.trim(), page);
        let out = output(
            Command::new("man")
                .args(["--warnings", "-l", &page])
                .env("MANWIDTH", "80")
                .env("LC_ALL", "C.UTF-8")
                .env("MANPAGER", "cat")
                .env("PAGER", "cat"),
        );
        let (text, warnings) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && warnings.trim().is_empty(), "man --warnings -l {page}:\n{warnings}");
        let text: String = strip_overstrike(&text);
        assert!(text.contains("EXIT STATUS") && text.contains("usage error") && text.contains("EXAMPLES"), "{text}");

        // bash loads the completion and binds it to the tool.
        let bound = ok_text(
            Command::new("bash")
                .args(["-c", &format!("source /usr/share/bash-completion/completions/{tool} && complete -p {tool}")]),
        );
        assert!(bound.contains("complete") && bound.trim_end().ends_with(tool), "{bound}");
    }
    let wizard_help = ok_text(Command::new("/usr/bin/openclaw-oauth-keeper-setup").arg("--help").env_clear());
    assert!(wizard_help.contains("--root DIR"), "{wizard_help}");

    docker_install_with_the_packaged_wizard();
    user_unit_install_with_the_packaged_wizard();

    // dpkg -r: nothing of the package is left.
    ok_text(Command::new("dpkg").args(["-r", PACKAGE]));
    assert!(!is_installed());
    for path in &paths {
        if path.ends_with('/') {
            continue; // shared directories (/usr/bin/, /usr/share/man/man1/) stay
        }
        assert!(!Path::new(path).exists(), "{path} is left after dpkg -r");
    }
    for dir in [SHARE.to_owned(), format!("/usr/share/doc/{PACKAGE}")] {
        assert!(!Path::new(&dir).exists(), "{dir} is left after dpkg -r");
    }
    let info: Vec<_> = fs::read_dir("/var/lib/dpkg/info")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("{PACKAGE}.")))
        .map(|e| e.path())
        .collect();
    assert!(info.is_empty(), "dpkg still records {info:?}");
    assert_eq!(enabled_units(), before_units);
    drop(installed);
}

fn nix_is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn strip_overstrike(text: &str) -> String {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

/// A fake machine for the wizard: HOME with the Claude CLI's credentials, a `claude` on PATH, an
/// OpenClaw of the JSON era, and a PATH without cargo.
#[derive(Debug)]
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("keeper-deb-").tempdir().unwrap();
        let m = Self { dir };
        write(
            &m.home().join(".claude/.credentials.json"),
            r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","refreshToken":"sk-ant-ort01-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB","expiresAt":4102444800000,"scopes":["user:inference"]}}"#,
        );
        // A `claude` to detect (--root never runs it).
        write(&m.path_dir().join("claude"), "#!/bin/sh\nexit 0\n");
        fs::set_permissions(m.path_dir().join("claude"), fs::Permissions::from_mode(0o755)).unwrap();
        m
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn path_dir(&self) -> PathBuf {
        self.dir.path().join("path")
    }
    fn staged(&self, final_path: &Path) -> PathBuf {
        self.root().join(final_path.strip_prefix("/").unwrap())
    }
    fn openclaw_json(dir: &Path) {
        write(&dir.join("openclaw.json"), r#"{"meta":{"lastTouchedVersion":"2026.5.20"},"gateway":{"port":18789}}"#);
        write(&dir.join("agents/main/agent/auth-profiles.json"), r#"{"version":1,"profiles":{}}"#);
    }
    /// PATH: the fake claude, the system directories (python3, docker when installed), no cargo.
    fn path(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.path_dir().display())
    }
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("PATH", self.path())
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", self.dir.path())
            .env("DOCKER_HOST", format!("unix://{}", self.dir.path().join("no-engine.sock").display()))
            .current_dir(self.dir.path());
        output(&mut cmd)
    }
    /// Every file under the staging root, as final paths.
    fn staged_files(&self) -> BTreeSet<PathBuf> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
            let Ok(rd) = fs::read_dir(dir) else { return };
            for e in rd.filter_map(Result::ok) {
                let p = e.path();
                if p.is_dir() && !p.is_symlink() {
                    walk(base, &p, out);
                } else {
                    out.insert(Path::new("/").join(p.strip_prefix(base).unwrap()));
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.root(), &self.root(), &mut out);
        out
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn config(path: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// What the packaged wizard stages, whatever the set: the config (`KEEPER_BIN_DIR=/usr/bin`), the
/// manifest, drop-ins; never a tool or a unit file (the package's are used in place).
#[track_caller]
fn assert_packaged_install(m: &Machine, out: &Output, config_dir: &Path, unit_dir: &Path, units: &str) {
    let all = text(out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("the package's, in /usr/bin") && all.contains("nothing to build"), "{all}");
    assert!(!all.contains("cargo build"), "{all}");
    let cfg = config(&m.staged(&config_dir.join("keeper.env")));
    assert_eq!(cfg.get("KEEPER_BIN_DIR").map(String::as_str), Some("/usr/bin"), "{cfg:#?}");
    assert_eq!(cfg.get("KEEPER_UNITS").map(String::as_str), Some(units), "{cfg:#?}");
    let files = m.staged_files();
    assert!(!files.is_empty());
    for f in &files {
        assert!(!f.starts_with("/usr"), "the wizard staged {} (the package's tools are in /usr/bin)", f.display());
        if f.starts_with(unit_dir) {
            let inside_dropin = f.parent().is_some_and(|p| p.extension().is_some_and(|e| e == "d"));
            assert!(inside_dropin, "a unit file was copied: {} (the package's are used in place)", f.display());
        }
    }
    let refresh_dropin = unit_dir.join("openclaw-keeper-refresh.service.d/50-keeper-paths.conf");
    assert!(files.contains(&refresh_dropin), "{files:#?}");
    let manifest = fs::read_to_string(m.staged(&config_dir.join("installed.list"))).unwrap();
    assert!(!manifest.lines().any(|l| l.starts_with("/usr/")), "{manifest}");
    assert!(manifest.lines().any(|l| Path::new(l) == refresh_dropin), "{manifest}");
}

/// Uninstall removes everything the wizard staged except OpenClaw's own file, which `--root`
/// staged a copy of to set the model in (and its backup): those are the user's, and stay.
#[track_caller]
fn assert_uninstall_leaves_nothing(m: &Machine, set: &str, openclaw_dir: &Path) {
    let out = m.run(&format!("{SHARE}/uninstall.sh"), &["--yes", "--root", m.root().to_str().unwrap(), set]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let oc_json = openclaw_dir.join("openclaw.json");
    let left: Vec<PathBuf> = m
        .staged_files()
        .into_iter()
        .filter(|f| {
            !(f == &oc_json || f.to_string_lossy().starts_with(&format!("{}.keeper-backup-", oc_json.display())))
        })
        .collect();
    assert!(left.is_empty(), "uninstall left {left:#?}");
    for tool in TOOLS {
        assert!(Path::new("/usr/bin").join(tool).is_file(), "uninstall removed the package's {tool}");
    }
}

fn docker_install_with_the_packaged_wizard() {
    let m = Machine::new();
    assert!(
        !m.path().split(':').any(|d| Path::new(d).join("cargo").exists()),
        "cargo is on the wizard's PATH {}",
        m.path()
    );
    let compose = m.home().join("openclaw");
    let oc = m.dir.path().join("srv/openclaw-config");
    Machine::openclaw_json(&oc);
    write(
        &compose.join("docker-compose.yml"),
        "services:\n  openclaw-gateway:\n    image: openclaw:local\n    env_file: .env\n    volumes:\n      - ${OPENCLAW_CONFIG_DIR}:/home/node/.openclaw\n",
    );
    write(&compose.join(".env"), &format!("OPENCLAW_CONFIG_DIR={}\n", oc.display()));
    let root = m.root();
    let out = m.run("/usr/bin/openclaw-oauth-keeper-setup", &["--yes", "--root", root.to_str().unwrap()]);
    assert_packaged_install(
        &m,
        &out,
        Path::new("/etc/openclaw-oauth-keeper"),
        Path::new("/etc/systemd/system"),
        "openclaw-keeper-refresh.timer openclaw-keeper-sync-compose.service",
    );
    let cfg = config(&m.staged(Path::new("/etc/openclaw-oauth-keeper/keeper.env")));
    assert_eq!(cfg.get("KEEPER_GATEWAY").map(String::as_str), Some("docker"));
    assert_eq!(cfg.get("KEEPER_INSTALL").map(String::as_str), Some("system"));
    assert!(
        m.staged(Path::new("/etc/systemd/system/openclaw-keeper-sync-compose.service.d/50-keeper-paths.conf"))
            .is_file()
    );
    // The packaged verify.sh finds the package's units for the staged install.
    let out = m.run(&format!("{SHARE}/verify.sh"), &["--system", "--root", root.to_str().unwrap()]);
    let table = text(&out);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains("the package's, in /usr/lib/systemd/system"), "{table}");
    assert_uninstall_leaves_nothing(&m, "--system", &oc);
}

fn user_unit_install_with_the_packaged_wizard() {
    let m = Machine::new();
    let oc = m.home().join(".openclaw");
    Machine::openclaw_json(&oc);
    write(
        &m.home().join(".config/systemd/user/openclaw-gateway.service"),
        "[Unit]\nDescription=OpenClaw gateway\n[Service]\nExecStart=/usr/bin/openclaw gateway --port 18789\n",
    );
    let root = m.root();
    let out = m.run(&format!("{SHARE}/setup.sh"), &["--yes", "--sync", "once", "--root", root.to_str().unwrap()]);
    let home = m.home();
    assert_packaged_install(
        &m,
        &out,
        &home.join(".config/openclaw-oauth-keeper"),
        &home.join(".config/systemd/user"),
        "openclaw-keeper-refresh.timer openclaw-keeper-sync-once.timer",
    );
    let cfg = config(&m.staged(&home.join(".config/openclaw-oauth-keeper/keeper.env")));
    assert_eq!(cfg.get("KEEPER_GATEWAY").map(String::as_str), Some("user-unit"));
    assert_eq!(cfg.get("KEEPER_INSTALL").map(String::as_str), Some("user"));
    assert!(
        m.staged(&home.join(".config/systemd/user/openclaw-keeper-sync-once.service.d/50-keeper-paths.conf")).is_file()
    );
    // A --bin-dir or --prefix makes no sense for the package's wizard.
    let out = m.run(&format!("{SHARE}/setup.sh"), &["--yes", "--bin-dir", "/tmp", "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    assert_uninstall_leaves_nothing(&m, "--user", &oc);
}
