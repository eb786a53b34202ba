//! Test support: a private, real Docker engine for tests that need containers.
//!
//! [`engine`] starts **one** `dockerd` per test process, the first time a test asks for it
//! (docs/UPSTREAM.md, "The test machines"): its own data root, exec root and socket under a fresh `/tmp/keeper-dockerd-*`
//! directory, no iptables, no default bridge, its own containerd namespace, and an empty
//! daemon config (so `/etc/docker/daemon.json` on a developer's machine cannot interfere). It
//! then imports a busybox image ([`Engine::busybox_image`]) with `docker import` from Debian's
//! `busybox-static` binary and its applet links (no image can be pulled here), and finds Compose
//! v2 (`docker compose`) and v1 (`docker-compose`).
//!
//! The engine is stopped when the test process ends, however it ends: `dockerd` runs under a
//! small supervisor shell, in a process group of its own, whose stdin is a pipe held by the test
//! process. When the test process exits (or is killed), the pipe closes, and the supervisor stops
//! `dockerd` (which stops its containers within 2 s) and deletes the directory. Set
//! `KEEPER_DOCKER_TEST_KEEP=1` to keep the directory (and `dockerd.log`) for debugging.
//! Engines are not shared between test binaries: a start costs ~1–2 s, and a per-process engine
//! needs no reference counting and cannot be left behind.
//!
//! When the engine cannot start (not root, `dockerd` or `busybox` missing, no Compose), tests
//! **skip loudly** (a banner on stderr that `cargo test`'s output capture does not swallow),
//! unless `KEEPER_REQUIRE_DOCKER=1` is set, which turns the skip into a failure; `.ci/run` sets
//! it. `KEEPER_REQUIRE_COMPOSE=v1,v2` (or `v1`, `v2`) also fails when a named Compose is missing.
//!
//! ```no_run
//! use keeper_docker_test_engine::{composes_or_skip, engine_or_skip};
//!
//! #[test]
//! fn runs_a_container() {
//!     let engine = engine_or_skip!(); // returns from the test when skipping
//!     let out = engine.docker_ok(&["run", "--rm", "--network", "none", engine.busybox_image(), "echo", "hi"]);
//!     assert_eq!(out.trim(), "hi");
//!     for compose in composes_or_skip!(engine) {
//!         let mut cmd = compose.command(engine); // `docker compose` or `docker-compose`, DOCKER_HOST set
//!         cmd.arg("version");
//!     }
//! }
//! ```
//!
//! A program under test reaches the engine through `DOCKER_HOST`: pass
//! [`Engine::docker_host`] in its environment ([`Engine::apply_env`] does that).

use std::ffi::OsStr;
use std::fmt;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set to `1` to turn "the engine cannot start" from a skip into a test failure (CI sets it).
pub const REQUIRE_ENV: &str = "KEEPER_REQUIRE_DOCKER";
/// Comma-separated Compose versions (`v1`, `v2`) that must be present, else tests fail.
pub const REQUIRE_COMPOSE_ENV: &str = "KEEPER_REQUIRE_COMPOSE";
/// Set to `1` to keep the engine's directory after the test process ends.
pub const KEEP_ENV: &str = "KEEPER_DOCKER_TEST_KEEP";
/// The busybox image every engine holds.
pub const BUSYBOX_IMAGE: &str = "keeper-test-busybox:latest";

/// How long `dockerd` may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Stops `dockerd` and removes the directory once stdin closes (the test process ended).
/// `$1` is the directory, `$2` whether to keep it, the rest the `dockerd` command line.
const SUPERVISOR: &str = r#"
dir=$1; keep=$2; shift 2
"$@" </dev/null >"$dir/dockerd.log" 2>&1 &
pid=$!
echo "$pid" >"$dir/supervised.pid"
cat >/dev/null
kill -TERM "$pid" 2>/dev/null
kill -CONT "$pid" 2>/dev/null # a test may have frozen it (Engine::freeze)
wait "$pid"
[ "$keep" = 1 ] || rm -rf "$dir"
"#;

/// A running private Docker engine. Get it with [`engine`].
pub struct Engine {
    root: PathBuf,
    docker_host: String,
    docker: PathBuf,
    server_version: String,
    composes: Vec<Compose>,
    /// The supervisor; its stdin is closed only when the process exits (see the crate docs).
    _supervisor: Child,
    _supervisor_stdin: ChildStdin,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("docker_host", &self.docker_host)
            .field("server_version", &self.server_version)
            .field("composes", &self.composes)
            .finish_non_exhaustive()
    }
}

/// Compose's major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComposeVersion {
    /// `docker-compose` 1.x (Python).
    V1,
    /// Compose 2.x: the `docker compose` CLI plugin (or a `docker-compose` that is 2.x).
    V2,
}

impl ComposeVersion {
    fn name(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2 => "v2",
        }
    }
}

/// One Compose implementation found on the machine.
#[derive(Debug, Clone)]
pub struct Compose {
    /// Major version.
    pub version: ComposeVersion,
    /// What `version --short` printed, e.g. `1.29.2` or `2.26.1-4`.
    pub version_string: String,
    program: PathBuf,
    /// `["compose"]` for the plugin, empty for a standalone `docker-compose`.
    prefix: Vec<String>,
}

impl Compose {
    /// The Compose command, with the engine's `DOCKER_HOST`; add global options and a subcommand.
    #[must_use]
    pub fn command(&self, engine: &Engine) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.prefix);
        engine.apply_env(&mut cmd);
        cmd
    }

    /// The command as one string, e.g. `/usr/bin/docker compose` or `/usr/bin/docker-compose`
    /// (words separated by blanks), for a tool option that names the Compose command.
    #[must_use]
    pub fn command_line(&self) -> String {
        let mut words = vec![self.program.display().to_string()];
        words.extend(self.prefix.iter().cloned());
        words.join(" ")
    }

    /// A short label for test messages, e.g. `compose v2 (2.26.1-4)`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("compose {} ({})", self.version.name(), self.version_string)
    }
}

impl Engine {
    /// `unix:///tmp/keeper-dockerd-…/docker.sock`: the value for `DOCKER_HOST`.
    #[must_use]
    pub fn docker_host(&self) -> &str {
        &self.docker_host
    }

    /// The `docker` client binary used (the first `docker` on `PATH`).
    #[must_use]
    pub fn docker_bin(&self) -> &Path {
        &self.docker
    }

    /// The imported busybox image: `/bin/sh` and every busybox applet in `/bin`, an `/etc/passwd`
    /// with `root` and `node` (uid 1000, as in OpenClaw's image), no `ENV`, no `CMD`.
    #[must_use]
    pub fn busybox_image(&self) -> &str {
        BUSYBOX_IMAGE
    }

    /// The daemon's version, e.g. `20.10.24+dfsg1`.
    #[must_use]
    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    /// The Compose implementations found (v2 first). May be empty: see [`composes_or_skip!`].
    #[must_use]
    pub fn composes(&self) -> &[Compose] {
        &self.composes
    }

    /// The engine's private directory (data root, exec root, socket, `dockerd.log`).
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `dockerd` process's pid (as its supervisor recorded it).
    ///
    /// # Panics
    /// When the supervisor recorded none (it does before the engine answers, so never for an
    /// engine [`engine`] returned).
    #[must_use]
    pub fn dockerd_pid(&self) -> i32 {
        let pid = std::fs::read_to_string(self.root.join("supervised.pid")).unwrap_or_default();
        pid.trim().parse().unwrap_or_else(|_| panic!("no dockerd pid in {}", self.root.display()))
    }

    /// Freezes `dockerd` (SIGSTOP): it accepts connections (the kernel does) and answers none, a
    /// hung daemon. Thawed (SIGCONT) when the guard drops, a panicking test included; the
    /// supervisor thaws it too before stopping it. The engine is the whole test process's:
    /// freeze it only in a test binary whose tests expect it, one at a time.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    #[must_use]
    pub fn freeze(&self) -> Frozen<'_> {
        let pid = nix::unistd::Pid::from_raw(self.dockerd_pid());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP to dockerd");
        // Stopped once /proc says so (the signal is asynchronous).
        let deadline = Instant::now() + Duration::from_secs(5);
        while process_state(pid.as_raw()) != Some('T') {
            assert!(Instant::now() < deadline, "dockerd {pid} did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        Frozen { engine: self, pid }
    }

    /// Points a command at this engine: sets `DOCKER_HOST`, removes `DOCKER_CONTEXT` and the TLS
    /// variables that would send it elsewhere.
    pub fn apply_env(&self, cmd: &mut Command) {
        cmd.env("DOCKER_HOST", &self.docker_host);
        for var in ["DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"] {
            cmd.env_remove(var);
        }
    }

    /// A `docker` command aimed at this engine.
    #[must_use]
    pub fn docker(&self) -> Command {
        let mut cmd = Command::new(&self.docker);
        self.apply_env(&mut cmd);
        cmd
    }

    /// Runs `docker ARGS` and returns its stdout; panics with its stderr when it fails.
    #[must_use]
    pub fn docker_ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        run_ok(self.docker().args(args))
    }
}

/// A frozen `dockerd` ([`Engine::freeze`]); thawed on drop.
#[derive(Debug)]
pub struct Frozen<'e> {
    engine: &'e Engine,
    pid: nix::unistd::Pid,
}

impl Frozen<'_> {
    /// Thaws the daemon now (the same as dropping the guard).
    pub fn thaw(self) {}
}

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGCONT);
        // Answering again before the test goes on.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let out =
                self.engine.docker().args(["version", "--format", "{{.Server.Version}}"]).stdin(Stdio::null()).output();
            if out.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The state letter of a process (`R`, `S`, `T`, `Z`, …) from `/proc/PID/stat`.
fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Runs a command to completion, stdin closed; returns stdout, panics with stderr on failure.
#[must_use]
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A name unique to this process and call: `PREFIX-<pid>-<n>-<time>`, lower-case, usable as a
/// Compose project name.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_micros());
    format!("{prefix}-{}-{n}-{t}", std::process::id())
}

/// The process's engine: started on the first call, shared by every test of the process.
///
/// `None` means "skip this test": the reason was printed as a loud banner. With
/// `KEEPER_REQUIRE_DOCKER=1` it panics instead, so the test fails.
pub fn engine() -> Option<&'static Engine> {
    static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
    match ENGINE.get_or_init(start) {
        Ok(engine) => Some(engine),
        Err(reason) => {
            skip(reason);
            None
        }
    }
}

/// Reports a test that cannot run: a banner on stderr (not captured by `cargo test`), or a panic
/// when `KEEPER_REQUIRE_DOCKER=1`.
pub fn skip(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    assert!(!flag(REQUIRE_ENV), "{test}: {reason} ({REQUIRE_ENV}=1 makes this a failure)");
    let bar = "!".repeat(100);
    let banner = format!(
        "\n{bar}\n!!! SKIPPED {test}: {reason}\n!!! The test did NOT run. Set {REQUIRE_ENV}=1 to make this a failure (CI does).\n{bar}\n"
    );
    // Straight to the stderr handle: libtest captures only the print macros.
    let _ = std::io::stderr().lock().write_all(banner.as_bytes());
}

/// `let engine = engine_or_skip!();` — the engine, or `return` from the test (after the banner).
#[macro_export]
macro_rules! engine_or_skip {
    () => {
        match $crate::engine() {
            Some(engine) => engine,
            None => return,
        }
    };
}

/// `for compose in composes_or_skip!(engine) { … }` — the Compose implementations, or `return`
/// from the test (after the banner) when there is none.
#[macro_export]
macro_rules! composes_or_skip {
    ($engine:expr) => {{
        let composes = $engine.composes();
        if composes.is_empty() {
            $crate::skip("no Docker Compose found (apt-get install docker-compose; see .ci/run for v2)");
            return;
        }
        composes
    }};
}

fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "yes" | "true" | "on"))
}

fn start() -> Result<Engine, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("dockerd needs root, and this test process is not root".into());
    }
    let dockerd = which::which("dockerd").map_err(|_| "no dockerd on PATH (apt-get install docker.io)".to_owned())?;
    let docker =
        which::which("docker").map_err(|_| "no docker client on PATH (apt-get install docker.io)".to_owned())?;
    let busybox =
        which::which("busybox").map_err(|_| "no busybox on PATH (apt-get install busybox-static)".to_owned())?;

    let root = tempfile::Builder::new()
        .prefix("keeper-dockerd-")
        .tempdir_in("/tmp")
        .map_err(|e| format!("cannot create a directory in /tmp: {e}"))?
        .keep();
    let socket = root.join("docker.sock");
    let config = root.join("daemon.json");
    std::fs::write(&config, "{}\n").map_err(|e| format!("{}: {e}", config.display()))?;
    let namespace = format!("keeper-test-{}", std::process::id());
    let mut supervisor = Command::new("/bin/sh")
        .arg("-c")
        .arg(SUPERVISOR)
        .arg("keeper-dockerd-supervisor")
        .arg(&root)
        .arg(if flag(KEEP_ENV) { "1" } else { "0" })
        .arg(&dockerd)
        .arg("--config-file")
        .arg(&config)
        .arg("--data-root")
        .arg(root.join("data"))
        .arg("--exec-root")
        .arg(root.join("exec"))
        .arg("--pidfile")
        .arg(root.join("dockerd.pid"))
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(["--iptables=false", "--ip6tables=false", "--bridge=none", "--shutdown-timeout", "2"])
        .arg("--containerd-namespace")
        .arg(&namespace)
        .arg("--containerd-plugins-namespace")
        .arg(format!("{namespace}-plugins"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Out of the terminal's process group: Ctrl-C stops the tests, then the supervisor cleans up.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let supervisor_stdin = supervisor.stdin.take().expect("piped");

    let docker_host = format!("unix://{}", socket.display());
    let mut engine = Engine {
        root,
        docker_host,
        docker,
        server_version: String::new(),
        composes: Vec::new(),
        _supervisor: supervisor,
        _supervisor_stdin: supervisor_stdin,
    };
    let started = Instant::now();
    engine.server_version = wait_until_up(&engine)?;
    import_busybox(&engine, &busybox)?;
    engine.composes = find_composes(&engine);
    check_required_composes(&engine.composes)?;
    let composes: Vec<String> = engine.composes.iter().map(Compose::label).collect();
    let line = format!(
        "keeper-docker-test-engine: dockerd {} up on {} in {:.1} s; image {BUSYBOX_IMAGE}; {}\n",
        engine.server_version,
        engine.docker_host,
        started.elapsed().as_secs_f64(),
        if composes.is_empty() { "no compose".to_owned() } else { composes.join(", ") }
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    Ok(engine)
}

/// Waits for the daemon to answer; returns its version. Fails early when `dockerd` died.
fn wait_until_up(engine: &Engine) -> Result<String, String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let log = engine.root.join("dockerd.log");
    loop {
        let out = engine.docker().args(["version", "--format", "{{.Server.Version}}"]).stdin(Stdio::null()).output();
        match out {
            Ok(out) if out.status.success() => return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            _ => {}
        }
        let problem = if !dockerd_alive(&engine.root) {
            Some("dockerd exited")
        } else if Instant::now() >= deadline {
            Some("dockerd did not answer within 60 s")
        } else {
            None
        };
        if let Some(problem) = problem {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(format!("{problem} (log {}): {}", log.display(), tail.join(" | ")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the supervised `dockerd` still runs (the supervisor wrote its pid; a dead one is a
/// zombie until the supervisor reaps it, which it does only at the end).
fn dockerd_alive(root: &Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(root.join("supervised.pid")) else {
        return true; // not written yet
    };
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    // The state is the field after the parenthesised command name.
    stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// Builds a root file system from the static busybox and imports it as [`BUSYBOX_IMAGE`].
fn import_busybox(engine: &Engine, busybox: &Path) -> Result<(), String> {
    let rootfs = engine.root.join("busybox-rootfs");
    let bin = rootfs.join("bin");
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    for dir in ["bin", "etc", "tmp", "root", "home/node", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(dir)).map_err(|e| io(&rootfs.join(dir), e))?;
    }
    std::fs::copy(busybox, bin.join("busybox")).map_err(|e| io(busybox, e))?;
    let list = Command::new(busybox).arg("--list").output().map_err(|e| io(busybox, e))?;
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).map_err(|e| io(&bin.join(applet), e))?;
    }
    let etc = rootfs.join("etc");
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n")
        .map_err(|e| io(&etc, e))?;
    std::fs::write(etc.join("group"), "root:x:0:\nnode:x:1000:\n").map_err(|e| io(&etc, e))?;
    let tar = engine.root.join("busybox.tar");
    let status = Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".").status();
    if !matches!(status, Ok(s) if s.success()) {
        return Err(format!("tar of {} failed", rootfs.display()));
    }
    let out = engine.docker().arg("import").arg(&tar).arg(BUSYBOX_IMAGE).stdin(Stdio::null()).output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Err(format!("docker import failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => return Err(format!("cannot run docker: {e}")),
    }
    let smoke = engine
        .docker()
        .args(["run", "--rm", "--network", "none", BUSYBOX_IMAGE, "sh", "-c", "exit 0"])
        .stdin(Stdio::null())
        .output();
    match smoke {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "a busybox container does not run (is {} statically linked? apt-get install busybox-static): {}",
            busybox.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run docker: {e}")),
    }
}

/// `docker compose` (the plugin) and `docker-compose`, each when it answers `version --short`;
/// one per major version, the plugin first.
fn find_composes(engine: &Engine) -> Vec<Compose> {
    let mut found: Vec<Compose> = Vec::new();
    let mut candidates = vec![(engine.docker.clone(), vec!["compose".to_owned()])];
    if let Ok(standalone) = which::which("docker-compose") {
        candidates.push((standalone, Vec::new()));
    }
    for (program, prefix) in candidates {
        let out = Command::new(&program).args(&prefix).args(["version", "--short"]).stdin(Stdio::null()).output();
        let Ok(out) = out else { continue };
        if !out.status.success() {
            continue;
        }
        let version_string = String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_owned();
        let version = match version_string.split('.').next() {
            Some("1") => ComposeVersion::V1,
            Some("2" | "3" | "4" | "5") => ComposeVersion::V2,
            _ => continue,
        };
        if found.iter().all(|c| c.version != version) {
            found.push(Compose { version, version_string, program, prefix });
        }
    }
    found
}

fn check_required_composes(found: &[Compose]) -> Result<(), String> {
    let required = std::env::var(REQUIRE_COMPOSE_ENV).unwrap_or_default();
    for name in required.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !found.iter().any(|c| c.version.name() == name) {
            return Err(format!("{REQUIRE_COMPOSE_ENV} names compose {name}, which is not installed"));
        }
    }
    Ok(())
}
