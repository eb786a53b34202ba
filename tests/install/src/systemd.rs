//! systemd for the install tests: the shipped unit files, `systemd-analyze`, and a real user
//! service manager (`systemd --user`) run privately, as docs/UPSTREAM.md ("The test machines") describes.
//!
//! The manager runs as root with its own `HOME` and `XDG_RUNTIME_DIR`, a clean environment and
//! cgroups of its own; it is stopped by its PID and everything it left is killed and removed,
//! also when a test panics ([`UserManager`]'s `Drop`). One manager at a time: a process-wide lock
//! and a lock file shared by every test process.

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Whether a test that cannot run systemd must fail instead of skipping (CI sets it).
#[must_use]
pub fn required() -> bool {
    std::env::var_os("KEEPER_REQUIRE_SYSTEMD").is_some_and(|v| v == "1")
}

/// Skips the calling test loudly, or fails it when `KEEPER_REQUIRE_SYSTEMD=1`.
///
/// # Panics
/// When systemd is required.
pub fn skip(why: &str) {
    assert!(!required(), "KEEPER_REQUIRE_SYSTEMD=1 but {why}");
    eprintln!("SKIPPED: {why}");
}

/// The unit files of one set (`system` or `user`), sorted.
///
/// # Panics
/// When the directory cannot be read.
#[must_use]
pub fn unit_sources(set: &str) -> Vec<PathBuf> {
    let dir = crate::repo_root().join("systemd").join(set);
    let mut units: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "service" || x == "timer" || x == "path"))
        .collect();
    units.sort();
    units
}

/// Copies the four tools (and the `claude` stand-in when `with_claude`) from [`crate::bin_dir`]
/// into `dir`, executable.
///
/// # Panics
/// On I/O errors.
pub fn install_tools(dir: &Path, with_claude: bool) {
    fs::create_dir_all(dir).expect("bin dir");
    let extra: &[&str] = if with_claude { &["claude"] } else { &[] };
    for tool in crate::TOOLS.iter().chain(extra) {
        let to = dir.join(tool);
        fs::copy(crate::bin_dir().join(tool), &to).unwrap_or_else(|e| panic!("copy {tool}: {e}"));
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// A directory for files services must see: not under `/tmp` or `/var/tmp`, which the units'
/// `PrivateTmp=yes` replaces. `KEEPER_TEST_SYSTEMD_DIR`, else the target directory's `tmp/` when it
/// is elsewhere, else `/var/lib/keeper-install-tests`.
///
/// # Panics
/// When it cannot be created.
#[must_use]
pub fn service_visible_tempdir(prefix: &str) -> tempfile::TempDir {
    let base = std::env::var_os("KEEPER_TEST_SYSTEMD_DIR").map_or_else(
        || {
            // The target directory's tmp/, beside the built tools.
            let candidate = crate::bin_dir().parent().map_or_else(|| PathBuf::from("target"), |t| t.join("tmp"));
            let hidden = ["/tmp", "/var/tmp"].iter().any(|t| candidate.starts_with(t));
            if hidden { PathBuf::from("/var/lib/keeper-install-tests") } else { candidate }
        },
        PathBuf::from,
    );
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("{}: {e}", base.display()));
    tempfile::Builder::new().prefix(prefix).tempdir_in(&base).expect("tempdir")
}

/// Why a user manager cannot run here, if it cannot.
#[must_use]
pub fn user_manager_unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(
            "not root: a private user manager needs root here (docs/UPSTREAM.md, \"The test machines\")".into(),
        );
    }
    if !Path::new(SYSTEMD).is_file() {
        return Some(format!("{SYSTEMD} is not installed (apt-get install systemd)"));
    }
    if which("systemctl").is_none() {
        return Some("systemctl is not installed".into());
    }
    None
}

/// `name` on PATH.
#[must_use]
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

const SYSTEMD: &str = "/lib/systemd/systemd";
const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

static ONE_MANAGER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A private `systemd --user`, stopped and cleaned up on drop.
#[derive(Debug)]
pub struct UserManager {
    child: Option<Child>,
    /// Its `HOME` (`%h`).
    pub home: PathBuf,
    /// Its `XDG_RUNTIME_DIR` (0700).
    pub runtime_dir: PathBuf,
    /// Its stdout and stderr (services with `StandardOutput=inherit` write here too).
    pub log_files: [PathBuf; 2],
    cgroups: Vec<PathBuf>,
    created_run_marker: bool,
    _file_lock: Option<nix::fcntl::Flock<fs::File>>,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl UserManager {
    /// Starts a manager for `home`, with its runtime directory and log files in `work`.
    ///
    /// # Errors
    /// Why it could not start (the caller skips the test).
    pub fn start(home: &Path, work: &Path) -> Result<Self, String> {
        if let Some(why) = user_manager_unavailable() {
            return Err(why);
        }
        let lock = ONE_MANAGER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let lock_file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/lock/keeper-install-tests-user-manager.lock")
            .or_else(|_| {
                fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(std::env::temp_dir().join("keeper-install-tests-user-manager.lock"))
            })
            .map_err(|e| format!("lock file: {e}"))?;
        let file_lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("lock: {e}"))?;

        let runtime_dir = work.join("runtime");
        fs::create_dir_all(&runtime_dir).map_err(|e| e.to_string())?;
        fs::set_permissions(&runtime_dir, fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        let log_files = [work.join("manager.out"), work.join("manager.err")];
        let mut manager = Self {
            child: None,
            home: home.to_path_buf(),
            runtime_dir,
            log_files: log_files.clone(),
            cgroups: Vec::new(),
            created_run_marker: false,
            _file_lock: Some(file_lock),
            _lock: lock,
        };
        // systemd --user runs only where systemd looks booted.
        let marker = Path::new("/run/systemd/system");
        if !marker.exists() {
            fs::create_dir_all(marker).map_err(|e| format!("{}: {e}", marker.display()))?;
            manager.created_run_marker = true;
        }
        // A cgroup of its own in every hierarchy systemd uses (on exit it removes empty cgroups
        // beside its own: never let it run in a shared one).
        let name = format!("keeper-install-tests-{}", std::process::id());
        for root in ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            let root = Path::new(root);
            let v2_root = root == Path::new("/sys/fs/cgroup");
            if !root.join("cgroup.procs").is_file() || (v2_root && !manager.cgroups.is_empty()) {
                continue;
            }
            let dir = root.join(&name);
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            manager.cgroups.push(dir);
        }
        let join_cgroups = manager.cgroups.iter().fold(String::new(), |mut script, d| {
            let _ = write!(script, "echo $$ > '{}/cgroup.procs' && ", d.display());
            script
        });
        let out = fs::File::create(&log_files[0]).map_err(|e| e.to_string())?;
        let err = fs::File::create(&log_files[1]).map_err(|e| e.to_string())?;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{join_cgroups}exec setsid {SYSTEMD} --user"))
            .env_clear()
            .env("PATH", PATH)
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", &manager.runtime_dir)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {SYSTEMD}: {e}"))?;
        manager.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = manager.systemctl(&["is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return Ok(manager);
            }
            if let Some(status) = manager.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!(
                    "systemd --user exited ({status}): {}",
                    fs::read_to_string(&log_files[1]).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("systemd --user is not up after 30 s (state {state:?})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The manager's PID.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The environment a client of this manager needs (`systemctl --user`, `verify.sh`).
    #[must_use]
    pub fn client_env(&self) -> Vec<(String, PathBuf)> {
        vec![
            ("HOME".into(), self.home.clone()),
            ("XDG_RUNTIME_DIR".into(), self.runtime_dir.clone()),
            ("PATH".into(), PATH.into()),
        ]
    }

    /// `systemctl --user ARGS` against this manager, with a clean environment.
    ///
    /// # Panics
    /// When systemctl cannot be run.
    #[must_use]
    pub fn systemctl(&self, args: &[&str]) -> Output {
        Command::new("systemctl")
            .arg("--user")
            .args(args)
            .env_clear()
            .envs(self.client_env())
            .output()
            .expect("systemctl runs")
    }

    /// `systemctl --user ARGS`, which must succeed.
    ///
    /// # Panics
    /// When it fails.
    #[must_use = "the output is for the assertion message"]
    pub fn systemctl_ok(&self, args: &[&str]) -> String {
        let out = self.systemctl(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "systemctl --user {}: {}\n{text}", args.join(" "), out.status);
        text
    }

    /// One property of a unit (`systemctl --user show -p NAME --value UNIT`).
    #[must_use]
    pub fn property(&self, unit: &str, name: &str) -> String {
        String::from_utf8_lossy(&self.systemctl(&["show", "-p", name, "--value", unit]).stdout).trim().to_owned()
    }

    /// The PIDs left in the manager's cgroups.
    #[must_use]
    pub fn pids_in_cgroups(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for root in &self.cgroups {
            let mut stack = vec![root.clone()];
            while let Some(dir) = stack.pop() {
                if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
                    pids.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                }
                if let Ok(entries) = fs::read_dir(&dir) {
                    stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
            }
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Stops the manager by its PID (SIGTERM: it stops every unit, then exits) and returns
    /// whether it exited by itself in time and the PIDs that were still in its cgroups after it
    /// did (killed here). Idempotent.
    pub fn stop(&mut self) -> (bool, Vec<i32>) {
        let Some(mut child) = self.child.take() else { return (true, Vec::new()) };
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut clean = false;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                clean = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !clean {
            let _ = child.kill();
            let _ = child.wait();
        }
        let leftovers = self.pids_in_cgroups();
        for &p in &leftovers {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        // Killed processes leave their cgroups a moment later.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.pids_in_cgroups().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.remove_cgroups();
        if self.created_run_marker {
            let _ = fs::remove_dir(Path::new("/run/systemd/system"));
            self.created_run_marker = false;
        }
        (clean, leftovers)
    }

    fn remove_cgroups(&mut self) {
        for root in std::mem::take(&mut self.cgroups) {
            // Deepest first.
            let mut dirs = Vec::new();
            let mut stack = vec![root];
            while let Some(dir) = stack.pop() {
                if let Ok(entries) = fs::read_dir(&dir) {
                    stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
                }
                dirs.push(dir);
            }
            for dir in dirs.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The sandboxing settings the shipped units use (both sets), the value they set, and the value
/// that turns each off.
pub const SANDBOXING: [(&str, &str, &str); 19] = [
    ("NoNewPrivileges", "yes", "no"),
    ("ProtectSystem", "strict", "no"),
    ("ProtectHome", "read-only", "no"),
    ("PrivateTmp", "yes", "no"),
    ("PrivateDevices", "yes", "no"),
    ("PrivateIPC", "yes", "no"),
    ("ProtectKernelTunables", "yes", "no"),
    ("ProtectKernelModules", "yes", "no"),
    ("ProtectKernelLogs", "yes", "no"),
    ("ProtectControlGroups", "yes", "no"),
    ("ProtectClock", "yes", "no"),
    ("ProtectHostname", "yes", "no"),
    ("ProtectProc", "invisible", "default"),
    ("RestrictNamespaces", "yes", "no"),
    ("RestrictRealtime", "yes", "no"),
    ("RestrictSUIDSGID", "yes", "no"),
    ("LockPersonality", "yes", "no"),
    ("MemoryDenyWriteExecute", "yes", "no"),
    ("CapabilityBoundingSet", "CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER", "~"),
];

impl UserManager {
    /// The [`SANDBOXING`] settings this machine's kernel or container cannot apply, each tried
    /// alone on a probe unit in `unit_dir` (sandboxes such as a container may refuse to remount
    /// parts of /proc: `226/NAMESPACE`).
    ///
    /// # Panics
    /// On I/O errors, or when daemon-reload fails.
    #[must_use]
    pub fn unsupported_sandboxing(&self, unit_dir: &Path) -> Vec<&'static str> {
        fs::create_dir_all(unit_dir).expect("unit dir");
        for (n, (key, on, _)) in SANDBOXING.iter().enumerate() {
            fs::write(
                unit_dir.join(format!("keeper-probe-{n}.service")),
                format!("[Service]\nType=oneshot\nExecStart=/bin/true\n{key}={on}\n"),
            )
            .expect("probe unit");
        }
        let _ = self.systemctl_ok(&["daemon-reload"]);
        let unsupported = SANDBOXING
            .iter()
            .enumerate()
            .filter(|(n, _)| !self.systemctl(&["start", &format!("keeper-probe-{n}.service")]).status.success())
            .map(|(_, (key, _, _))| *key)
            .collect();
        for n in 0..SANDBOXING.len() {
            let _ = fs::remove_file(unit_dir.join(format!("keeper-probe-{n}.service")));
        }
        unsupported
    }
}

/// A `[Service]` drop-in turning `unsupported` settings off (see
/// [`UserManager::unsupported_sandboxing`]), or None when there are none.
#[must_use]
pub fn sandbox_off_dropin(unsupported: &[&str]) -> Option<String> {
    (!unsupported.is_empty()).then(|| {
        SANDBOXING.iter().filter(|(k, _, _)| unsupported.contains(k)).fold(
            "# test only: this machine cannot apply these\n[Service]\n".to_owned(),
            |mut s, (k, _, off)| {
                let _ = writeln!(s, "{k}={off}");
                s
            },
        )
    })
}
