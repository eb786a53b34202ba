//! Fixtures for the set-up wizard's tests: a home with the Claude CLI's credentials, an OpenClaw
//! install (Docker Compose project or the gateway user unit, JSON or SQLite era), unit sources, and
//! `scripts/setup.sh` run against them with a clean environment.
#![allow(dead_code, reason = "each test binary uses a different part of the fixture")]

use keeper_install_tests::{access_token, bin_dir, refresh_token, repo_root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The units of each set named in the contract; placeholders stand in when `systemd/<set>/` is
/// still empty in this worktree (they live only under the test's temp dir).
pub(crate) const SYSTEM_UNITS: [&str; 8] = [
    "openclaw-keeper-refresh.timer",
    "openclaw-keeper-refresh.service",
    "openclaw-keeper-sync.service",
    "openclaw-keeper-sync-compose.service",
    "openclaw-keeper-sync-once.timer",
    "openclaw-keeper-sync-once.service",
    "openclaw-keeper-sync.path",
    "openclaw-keeper-notify@.service",
];

/// How OpenClaw runs in a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gateway {
    /// A compose project; `passes_var`: the gateway service has `env_file: .env`.
    Docker { passes_var: bool },
    /// `~/.config/systemd/user/openclaw-gateway.service`.
    UserUnit,
}

/// JSON era (auth-profiles.json) or SQLite era (openclaw-agent.sqlite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    Json,
    Sqlite,
}

/// A temporary machine: HOME, an OpenClaw install, the staging root.
#[derive(Debug)]
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) gateway: Gateway,
    pub(crate) era: Era,
    pub(crate) access_token: String,
    pub(crate) refresh_token: String,
}

impl Fixture {
    pub(crate) fn new(gateway: Gateway, era: Era) -> Self {
        let dir = tempfile::Builder::new().prefix("keeper-wizard-").tempdir().expect("temp dir");
        let fixture = Self { dir, gateway, era, access_token: access_token(), refresh_token: refresh_token() };
        fixture.build();
        fixture
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub(crate) fn home(&self) -> PathBuf {
        self.path("home")
    }
    pub(crate) fn root(&self) -> PathBuf {
        self.path("root")
    }
    /// A final path as staged under the root.
    pub(crate) fn staged(&self, final_path: &Path) -> PathBuf {
        self.root().join(final_path.strip_prefix("/").expect("absolute"))
    }
    pub(crate) fn compose_dir(&self) -> PathBuf {
        self.home().join("openclaw")
    }
    /// OpenClaw's directory (`~/.openclaw`, or the compose project's config volume).
    pub(crate) fn openclaw_dir(&self) -> PathBuf {
        match self.gateway {
            Gateway::Docker { .. } => self.path("srv/openclaw-config"),
            Gateway::UserUnit => self.home().join(".openclaw"),
        }
    }
    pub(crate) fn credentials(&self) -> PathBuf {
        self.home().join(".claude/.credentials.json")
    }
    /// Directory put first on the wizard's PATH (the `claude` stand-in, a fake `openclaw`).
    pub(crate) fn path_dir(&self) -> PathBuf {
        self.path("path")
    }
    pub(crate) fn units_dir(&self) -> PathBuf {
        self.path("units")
    }

    fn build(&self) {
        let home = self.home();
        mkdir(&home.join(".claude"));
        let expires = keeper_now_ms() + 3 * 3600 * 1000;
        write(
            &self.credentials(),
            &format!(
                r#"{{"claudeAiOauth":{{"accessToken":"{}","refreshToken":"{}","expiresAt":{expires},"scopes":["user:inference","user:profile"],"subscriptionType":"max"}}}}"#,
                self.access_token, self.refresh_token
            ),
        );
        mkdir(&self.path_dir());
        std::os::unix::fs::symlink(bin_dir().join("claude"), self.path_dir().join("claude")).expect("claude link");
        let oc = self.openclaw_dir();
        let agent = oc.join("agents/main/agent");
        mkdir(&agent);
        match self.era {
            Era::Json => {
                write(
                    &oc.join("openclaw.json"),
                    r#"{"meta":{"lastTouchedVersion":"2026.5.20"},"gateway":{"port":18789}}"#,
                );
                write(
                    &agent.join("auth-profiles.json"),
                    &format!(
                        r#"{{"version":1,"profiles":{{"anthropic:claude-code":{{"type":"token","provider":"anthropic","token":"{}","expires":1}}}},"lastGood":{{"anthropic":"anthropic:claude-code"}}}}"#,
                        access_token()
                    ),
                );
            }
            Era::Sqlite => {
                write(
                    &oc.join("openclaw.json"),
                    r#"{"meta":{"lastTouchedVersion":"2026.9.6"},"gateway":{"port":18789}}"#,
                );
                write(&agent.join("openclaw-agent.sqlite"), "SQLite format 3\0");
                // A host openclaw for paste-token (never run in --root tests).
                write(&self.path_dir().join("openclaw"), "#!/bin/sh\nexit 0\n");
                chmod(&self.path_dir().join("openclaw"), 0o755);
            }
        }
        match self.gateway {
            Gateway::Docker { passes_var } => {
                let compose = self.compose_dir();
                mkdir(&compose);
                let env_file = if passes_var { "    env_file: .env\n" } else { "" };
                write(
                    &compose.join("docker-compose.yml"),
                    &format!(
                        "services:\n  openclaw-gateway:\n    image: openclaw:local\n{env_file}    environment:\n      HOME: /home/node\n    volumes:\n      - ${{OPENCLAW_CONFIG_DIR}}:/home/node/.openclaw\n  openclaw-cli:\n    image: openclaw:local\n    environment:\n      - ANTHROPIC_OAUTH_TOKEN=${{ANTHROPIC_OAUTH_TOKEN}}\n"
                    ),
                );
                write(
                    &compose.join(".env"),
                    &format!("OPENCLAW_CONFIG_DIR={}\nANTHROPIC_OAUTH_TOKEN={}\n", oc.display(), access_token()),
                );
            }
            Gateway::UserUnit => {
                let units = home.join(".config/systemd/user");
                mkdir(&units);
                write(
                    &units.join("openclaw-gateway.service"),
                    "[Unit]\nDescription=OpenClaw gateway\n[Service]\nExecStart=/usr/bin/openclaw gateway --port 18789\n",
                );
            }
        }
        // Unit sources: the repository's when it ships them, else placeholders.
        for set in ["system", "user"] {
            let dest = self.units_dir().join(set);
            mkdir(&dest);
            let shipped: Vec<PathBuf> = std::fs::read_dir(repo_root().join("systemd").join(set))
                .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect())
                .unwrap_or_default();
            if shipped.is_empty() {
                for unit in &SYSTEM_UNITS {
                    if set == "user" && unit.contains("sync-compose") {
                        continue;
                    }
                    let bin = if set == "system" { "/usr/local/bin" } else { "%h/.local/bin" };
                    write(
                        &dest.join(unit),
                        &format!(
                            "[Unit]\nDescription=placeholder {unit}\n[Service]\nExecStart={bin}/cli-poke --not-due-ok\n"
                        ),
                    );
                }
            } else {
                for p in shipped {
                    std::fs::copy(&p, dest.join(p.file_name().expect("name"))).expect("copy unit");
                }
            }
        }
    }

    /// `scripts/setup.sh ARGS` with this fixture's environment (no terminal, stdin `input`).
    pub(crate) fn setup(&self, args: &[&str], input: Option<&str>) -> Run {
        let mut cmd = Command::new(repo_root().join("scripts/setup.sh"));
        cmd.args(args);
        self.env(&mut cmd);
        run(cmd, input)
    }

    /// The wizard into `--root` with pre-built tools, every default taken.
    pub(crate) fn setup_root(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--yes", "--root"];
        let root = self.root();
        let bins = bin_dir().to_path_buf();
        let units = self.units_dir();
        let (root, bins, units) = (leak(&root), leak(&bins), leak(&units));
        args.push(root);
        args.extend(["--bin-dir", bins, "--units-dir", units]);
        args.extend(extra);
        self.setup(&args, None)
    }

    pub(crate) fn uninstall(&self, extra: &[&str]) -> Run {
        let mut cmd = Command::new(repo_root().join("scripts/uninstall.sh"));
        cmd.arg("--yes").arg("--root").arg(self.root()).args(extra);
        self.env(&mut cmd);
        run(cmd, None)
    }

    /// A clean environment: this fixture's HOME, PATH without the host's claude/openclaw, and a
    /// `DOCKER_HOST` where no engine listens (only tests that start one set it).
    pub(crate) fn env(&self, cmd: &mut Command) {
        let docker_dir = self.path("docker-bin");
        if !docker_dir.exists() {
            mkdir(&docker_dir);
            for tool in ["docker", "docker-compose"] {
                if let Ok(found) = which(tool) {
                    std::os::unix::fs::symlink(found, docker_dir.join(tool)).expect("docker link");
                }
            }
        }
        let path = format!("{}:{}:/usr/sbin:/usr/bin:/sbin:/bin", self.path_dir().display(), docker_dir.display());
        cmd.env_clear()
            .env("HOME", self.home())
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", self.dir.path())
            .env("DOCKER_HOST", format!("unix://{}", self.path("no-engine.sock").display()))
            .current_dir(self.dir.path());
    }

    /// The staged keeper.env as key → value (quotes removed).
    pub(crate) fn config(&self, final_path: &Path) -> BTreeMap<String, String> {
        let text = read(&self.staged(final_path));
        text.lines()
            .filter(|l| !l.starts_with('#') && l.contains('='))
            .map(|l| {
                let (k, v) = l.split_once('=').expect("=");
                (k.to_owned(), v.trim_matches('"').to_owned())
            })
            .collect()
    }

    /// Every file under the root (relative path → content), for before/after comparisons.
    #[allow(clippy::unused_self, reason = "called as a fixture method beside the paths it compares")]
    pub(crate) fn snapshot(&self, dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(dir, dir, &mut out);
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for entry in rd.filter_map(Result::ok) {
        let p = entry.path();
        let rel = p.strip_prefix(base).expect("under base").to_path_buf();
        let meta = std::fs::symlink_metadata(&p).expect("metadata");
        if meta.is_dir() {
            out.insert(rel.join(""), Vec::new());
            walk(base, &p, out);
        } else {
            out.insert(rel, std::fs::read(&p).unwrap_or_default());
        }
    }
}

fn leak(p: &Path) -> &'static str {
    Box::leak(p.to_str().expect("utf-8 path").to_owned().into_boxed_str())
}

/// What a run of a script gave.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit status\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        assert!(!keeper_install_tests::has_token_shape(&self.all()), "a token in the output:\n{}", self.all());
        self
    }
}

pub(crate) fn run(mut cmd: Command, input: Option<&str>) -> Run {
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(text) = input {
        use std::io::Write as _;
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

pub(crate) fn which(tool: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{tool} not found"))
}

pub(crate) fn mkdir(p: &Path) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
}
pub(crate) fn write(p: &Path, text: &str) {
    if let Some(parent) = p.parent() {
        mkdir(parent);
    }
    std::fs::write(p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}
pub(crate) fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
pub(crate) fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}
pub(crate) fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
}
pub(crate) fn keeper_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
