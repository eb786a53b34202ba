//! The Claude CLI's locks, taken as CLI 2.1.332 takes them (docs/UPSTREAM.md, "Claude Code CLI"):
//!
//! 1. `<dir>/.oauth_refresh.lock` (a directory, `mkdir`), the refresh lock of ~2.1.225 and later;
//! 2. `<realpath(dir)>.lock` (`~/.claude.lock`), the lock every build since 2.1.7 takes;
//! 3. then `<dir>/.oauth_refresh.lock.owner`, a JSON record naming the holder (pid, its start
//!    time, its pid namespace, the locks' birth times), written as the CLI writes its own;
//! 4. `<dir>/.storage-write.lock` around the write itself: the CLI takes it for every write of the
//!    credentials file, also for writes that are no refresh (MCP tokens, subscription fields).
//!
//! `<dir>` is the credentials file's directory (the CLI's config dir, or
//! `CLAUDE_SECURESTORAGE_CONFIG_DIR` when that is set). A lock is never broken while its holder
//! lives: it is taken over only when its mtime is older than the CLI's stale time (60 s for the
//! refresh locks, whose live holder touches them every 5 s; 15 s for the storage lock), or when its
//! owner record names a process of this pid namespace that is gone. A held lock is tried again
//! [`Patience::CLI`] times, 1–2 s apart, as the CLI does; then the caller gives up.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The refresh lock's name in `<dir>`.
pub(crate) const REFRESH_LOCK: &str = ".oauth_refresh.lock";
/// The refresh lock's owner record in `<dir>`.
pub(crate) const OWNER_RECORD: &str = ".oauth_refresh.lock.owner";
/// The lock around every write of the credentials file, in `<dir>`.
pub(crate) const STORAGE_LOCK: &str = ".storage-write.lock";
/// The CLI's stale time for the refresh locks (a live holder refreshes the mtime every 5 s).
pub(crate) const STALE_AFTER: Duration = Duration::from_secs(60);
/// The CLI's stale time for `.storage-write.lock`.
pub(crate) const STORAGE_STALE_AFTER: Duration = Duration::from_secs(15);

/// How often, and how far apart, a held lock is tried again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Tries after the first.
    pub(crate) retries: u32,
    /// The shortest pause between tries...
    pub(crate) min: Duration,
    /// ...and the longest.
    pub(crate) max: Duration,
}

impl Patience {
    /// As the CLI waits for its own locks: 5 more tries, 1–2 s apart.
    pub(crate) const CLI: Self = Self { retries: 5, min: Duration::from_secs(1), max: Duration::from_secs(2) };

    /// The pause before try `n` (1-based): spread over `min..=max` so that two waiters drift apart.
    fn pause(self, n: u32) -> Duration {
        let span = self.max.saturating_sub(self.min);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let seed = u64::from(nanos ^ std::process::id().rotate_left(n));
        let frac = (seed % 1000) as f64 / 1000.0;
        self.min + span.mul_f64(frac)
    }
}

/// The paths of the CLI's locks for a credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockSet {
    /// `<dir>/.oauth_refresh.lock`.
    pub(crate) refresh: PathBuf,
    /// `<dir>/.oauth_refresh.lock.owner`.
    pub(crate) owner: PathBuf,
    /// `<realpath(dir)>.lock`.
    pub(crate) legacy: PathBuf,
    /// `<dir>/.storage-write.lock`.
    pub(crate) storage: PathBuf,
}

impl LockSet {
    /// The locks for the credentials file `credentials` (in `<dir>`, its directory).
    pub(crate) fn for_credentials(credentials: &Path) -> io::Result<Self> {
        let dir = std::path::absolute(keeper_core::paths::parent_dir(credentials))?;
        let real = fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        let mut legacy = real.into_os_string();
        legacy.push(".lock");
        Ok(Self {
            refresh: dir.join(REFRESH_LOCK),
            owner: dir.join(OWNER_RECORD),
            legacy: PathBuf::from(legacy),
            storage: dir.join(STORAGE_LOCK),
        })
    }

    /// Takes all four in the CLI's order; `on_wait` is called once, with the held lock's path and
    /// its holder, when one is found held.
    pub(crate) fn acquire(&self, patience: Patience, mut on_wait: impl FnMut(&Path, &str)) -> Result<Held, LockError> {
        let mut held = Held { dirs: Vec::new(), owner: None };
        let mut told = false;
        let mut wait = |p: &Path, holder: &str| {
            if !told {
                told = true;
                on_wait(p, holder);
            }
        };
        acquire_one(&self.refresh, STALE_AFTER, Some(self), patience, &mut wait)?;
        held.dirs.push(self.refresh.clone());
        acquire_one(&self.legacy, STALE_AFTER, None, patience, &mut wait)?;
        held.dirs.push(self.legacy.clone());
        let record = OwnerRecord::ours(&self.refresh, &self.legacy);
        keeper_core::write::replace_atomically(&self.owner, record.to_json().as_bytes())
            .map_err(|err| LockError::Io { path: self.owner.clone(), err })?;
        held.owner = Some(self.owner.clone());
        acquire_one(&self.storage, STORAGE_STALE_AFTER, None, patience, &mut wait)?;
        held.dirs.push(self.storage.clone());
        Ok(held)
    }
}

/// The locks held, released (in reverse order; our owner record removed) on drop.
#[derive(Debug)]
pub(crate) struct Held {
    dirs: Vec<PathBuf>,
    owner: Option<PathBuf>,
}

impl Drop for Held {
    fn drop(&mut self) {
        while let Some(dir) = self.dirs.pop() {
            if self.dirs.len() == 1 {
                // Between the legacy lock and the refresh lock: the record goes before its lock.
                if let Some(owner) = self.owner.take() {
                    remove_record_if_ours(&owner);
                }
            }
            let _ = fs::remove_dir(&dir);
        }
        if let Some(owner) = self.owner.take() {
            remove_record_if_ours(&owner);
        }
    }
}

fn remove_record_if_ours(owner: &Path) {
    if OwnerRecord::read(owner).is_some_and(|r| r.pid == i64::from(std::process::id())) {
        let _ = fs::remove_file(owner);
    }
}

/// Why a lock was not taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// A live holder kept it through every try.
    Busy {
        /// The lock.
        path: PathBuf,
        /// Who holds it, as far as known (`pid 123 (alive)`, `no owner record`).
        holder: String,
        /// How many times it was tried.
        tries: u32,
    },
    /// The lock or its record could not be made, checked or removed.
    Io {
        /// The lock or record.
        path: PathBuf,
        /// What failed.
        err: io::Error,
    },
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Busy { path, holder, tries } => write!(
                f,
                "the CLI's lock {} is held by a live process ({holder}) through {tries} tries: another refresh or \
                 write is running; try again later",
                path.display()
            ),
            Self::Io { path, err } => write!(f, "the CLI's lock {}: {err}", path.display()),
        }
    }
}

impl std::error::Error for LockError {}

/// Takes one lock directory, retrying per `patience`. `owned`: the lock has an owner record
/// (`.oauth_refresh.lock`), so a dead holder's lock can be taken over before it goes stale.
fn acquire_one(
    path: &Path,
    stale: Duration,
    owned: Option<&LockSet>,
    patience: Patience,
    on_wait: &mut impl FnMut(&Path, &str),
) -> Result<(), LockError> {
    let io_err = |err| LockError::Io { path: path.to_path_buf(), err };
    let mut tries = 0;
    loop {
        tries += 1;
        // A few immediate rounds for locks that vanish or are taken over between the calls.
        let mut holder = String::new();
        for _ in 0..3 {
            match try_lock(path, stale, owned).map_err(io_err)? {
                Try::Taken => return Ok(()),
                Try::Again => {}
                Try::Held(h) => {
                    holder = h;
                    break;
                }
            }
        }
        if tries > patience.retries {
            return Err(LockError::Busy { path: path.to_path_buf(), holder, tries });
        }
        on_wait(path, &holder);
        std::thread::sleep(patience.pause(tries));
    }
}

enum Try {
    Taken,
    /// Gone or taken over just now: try again at once.
    Again,
    /// Held by a live holder (described).
    Held(String),
}

fn try_lock(path: &Path, stale: Duration, owned: Option<&LockSet>) -> io::Result<Try> {
    match fs::create_dir(path) {
        Ok(()) => return Ok(Try::Taken),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Try::Again),
        Err(e) => return Err(e),
    };
    // Staleness is real time against the real mtime, whatever a fake clock says.
    let age = meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
    if age > stale {
        log_takeover(path, &format!("its mtime is {}s old (stale after {}s)", age.as_secs(), stale.as_secs()));
        if let Some(set) = owned {
            let _ = fs::remove_file(&set.owner);
        }
        remove_lock_dir(path)?;
        return Ok(Try::Again);
    }
    let Some(set) = owned else { return Ok(Try::Held(format!("mtime {}s old", age.as_secs()))) };
    let Some(record) = OwnerRecord::read(&set.owner) else { return Ok(Try::Held("no owner record yet".into())) };
    let birth = birth_ms(&meta);
    if birth.is_some_and(|b| (b - record.lock_birthtime_ms).abs() > 1.0) {
        return Ok(Try::Held(format!("an owner record for an earlier lock, pid {}", record.pid)));
    }
    match record.holder_gone() {
        Some(why) => {
            log_takeover(path, &format!("its owner record names pid {}, which {why}", record.pid));
            // The dead holder's legacy lock goes too, when the record says it took it.
            let legacy_birth = fs::symlink_metadata(&set.legacy).ok().and_then(|m| birth_ms(&m));
            if let (Some(theirs), Some(now)) = (record.legacy_birthtime_ms, legacy_birth) {
                if (theirs - now).abs() <= 1.0 {
                    remove_lock_dir(&set.legacy)?;
                }
            }
            let _ = fs::remove_file(&set.owner);
            remove_lock_dir(path)?;
            Ok(Try::Again)
        }
        None => Ok(Try::Held(format!("pid {}, alive", record.pid))),
    }
}

fn remove_lock_dir(path: &Path) -> io::Result<()> {
    match fs::remove_dir(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn log_takeover(path: &Path, why: &str) {
    keeper_core::log::log(
        keeper_core::log::Level::Info,
        crate::PROGRAM,
        format_args!("taking over the CLI's lock {}: {why}", path.display()),
    );
}

/// A path's birth time in ms, fractional, computed as node's `birthtimeMs` is (`sec * 1000 +
/// nsec / 1e6`): the CLI compares its record's value with the lock's for equality.
fn birth_ms(meta: &fs::Metadata) -> Option<f64> {
    let d = meta.created().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(d.as_secs() as f64 * 1000.0 + f64::from(d.subsec_nanos()) / 1e6)
}

/// `.oauth_refresh.lock.owner` as CLI 2.1.332 writes it (observed):
/// `{"pid":17978,"procStart":"420627","pidDomain":"linux:<machine-id>:pid:[4026531836]",
/// "pidSpace":"<hostname>#pid:[4026531836]","lockBirthtimeMs":1796169650619.3865,
/// "legacyLockBirthtimeMs":1796169650619.3865}`; `procStart` is field 22 of `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OwnerRecord {
    pub(crate) pid: i64,
    pub(crate) proc_start: Option<String>,
    pub(crate) pid_domain: String,
    pub(crate) pid_space: String,
    pub(crate) lock_birthtime_ms: f64,
    pub(crate) legacy_birthtime_ms: Option<f64>,
}

impl OwnerRecord {
    /// The record at `path`, when it parses (the CLI reads at most 4 KiB of it).
    pub(crate) fn read(path: &Path) -> Option<Self> {
        let bytes = fs::read(path).ok().filter(|b| b.len() <= 4096)?;
        Self::parse(&bytes)
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(Self {
            pid: v.get("pid")?.as_i64()?,
            proc_start: v.get("procStart").and_then(|s| s.as_str()).map(str::to_owned),
            pid_domain: v.get("pidDomain")?.as_str()?.to_owned(),
            pid_space: v.get("pidSpace")?.as_str()?.to_owned(),
            lock_birthtime_ms: v.get("lockBirthtimeMs")?.as_f64().filter(|b| *b > 0.0)?,
            legacy_birthtime_ms: v.get("legacyLockBirthtimeMs").and_then(serde_json::Value::as_f64),
        })
    }

    /// This process's record for the locks at `refresh` and `legacy`.
    fn ours(refresh: &Path, legacy: &Path) -> Self {
        let birth = |p: &Path| fs::symlink_metadata(p).ok().and_then(|m| birth_ms(&m));
        let pid = std::process::id();
        Self {
            pid: i64::from(pid),
            proc_start: proc_start(i64::from(pid)),
            pid_domain: pid_domain(),
            pid_space: pid_space(),
            // A file system without birth times: the mtime, which is the creation time just now.
            lock_birthtime_ms: birth(refresh).unwrap_or_else(now_ms_f64),
            legacy_birthtime_ms: birth(legacy),
        }
    }

    fn to_json(&self) -> String {
        let mut o = serde_json::Map::new();
        o.insert("pid".into(), self.pid.into());
        if let Some(s) = &self.proc_start {
            o.insert("procStart".into(), s.clone().into());
        }
        o.insert("pidDomain".into(), self.pid_domain.clone().into());
        o.insert("pidSpace".into(), self.pid_space.clone().into());
        o.insert("lockBirthtimeMs".into(), self.lock_birthtime_ms.into());
        if let Some(b) = self.legacy_birthtime_ms {
            o.insert("legacyLockBirthtimeMs".into(), b.into());
        }
        serde_json::Value::Object(o).to_string()
    }

    /// Why the holder is known to be gone, or None when it may be alive (or is of another pid
    /// namespace or machine, where its pid says nothing).
    fn holder_gone(&self) -> Option<&'static str> {
        if self.pid_space != pid_space() || self.pid_domain != pid_domain() {
            return None;
        }
        let pid = i32::try_from(self.pid).ok().filter(|p| *p > 0)?;
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Err(nix::errno::Errno::ESRCH) => return Some("is not running"),
            Err(nix::errno::Errno::EPERM) | Ok(()) => {}
            Err(_) => return None,
        }
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        if rest.trim_start().starts_with(['Z', 'X']) {
            return Some("has exited");
        }
        match (&self.proc_start, stat_start(&stat)) {
            (Some(theirs), Some(now)) if *theirs != now => Some("is another process now (its start time differs)"),
            _ => None,
        }
    }
}

fn now_ms_f64() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line.
fn stat_start(stat: &str) -> Option<String> {
    // Fields after the command name (which may hold spaces) start at field 3.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_owned)
}

fn proc_start(pid: i64) -> Option<String> {
    stat_start(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn pid_ns() -> String {
    fs::read_link("/proc/self/ns/pid").map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()
}

/// `<hostname>#<pid namespace>`, as the CLI's `pidSpace`.
fn pid_space() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let ns = pid_ns();
    if ns.is_empty() { host.trim().to_owned() } else { format!("{}#{ns}", host.trim()) }
}

/// `linux:<machine-id>:<pid namespace>`, as the CLI's `pidDomain`.
fn pid_domain() -> String {
    let id = fs::read_to_string("/etc/machine-id").unwrap_or_default();
    format!("linux:{}:{}", id.trim(), pid_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUICK: Patience = Patience { retries: 2, min: Duration::from_millis(10), max: Duration::from_millis(20) };

    fn set_in(dir: &Path) -> LockSet {
        let claude = dir.join(".claude");
        fs::create_dir_all(&claude).unwrap();
        LockSet::for_credentials(&claude.join(".credentials.json")).unwrap()
    }

    #[test]
    fn paths_are_the_clis() {
        let s = LockSet::for_credentials(Path::new("/nonexistent/u/.claude/.credentials.json")).unwrap();
        assert_eq!(s.refresh, Path::new("/nonexistent/u/.claude/.oauth_refresh.lock"));
        assert_eq!(s.owner, Path::new("/nonexistent/u/.claude/.oauth_refresh.lock.owner"));
        assert_eq!(s.legacy, Path::new("/nonexistent/u/.claude.lock"));
        assert_eq!(s.storage, Path::new("/nonexistent/u/.claude/.storage-write.lock"));
        // a symlinked config dir locks its real path, as the CLI does
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let s = LockSet::for_credentials(&dir.path().join("link/.credentials.json")).unwrap();
        assert_eq!(s.legacy, fs::canonicalize(dir.path()).unwrap().join("real.lock"));
        assert_eq!(s.refresh, dir.path().join("link/.oauth_refresh.lock"));
    }

    #[test]
    fn all_four_taken_in_order_with_our_record_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let s = set_in(dir.path());
        let held = s.acquire(QUICK, |_, _| panic!("nothing holds them")).unwrap();
        assert!(s.refresh.is_dir() && s.legacy.is_dir() && s.storage.is_dir());
        let rec = OwnerRecord::read(&s.owner).unwrap();
        assert_eq!(rec.pid, i64::from(std::process::id()));
        assert_eq!(rec.proc_start, proc_start(rec.pid));
        assert!(rec.pid_space.contains("#pid:[") && rec.pid_domain.starts_with("linux:"), "{rec:?}");
        assert!(rec.lock_birthtime_ms > 0.0);
        assert!(holder_alive(&rec));
        drop(held);
        for p in [&s.refresh, &s.legacy, &s.storage, &s.owner] {
            assert!(!p.exists(), "{} left", p.display());
        }
    }

    fn holder_alive(r: &OwnerRecord) -> bool {
        r.holder_gone().is_none()
    }

    #[test]
    fn a_live_holder_is_never_broken_and_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let s = set_in(dir.path());
        let held = s.acquire(QUICK, |_, _| {}).unwrap();
        let mut told = Vec::new();
        let err = s.acquire(QUICK, |p, h| told.push((p.to_path_buf(), h.to_owned()))).unwrap_err();
        assert!(matches!(&err, LockError::Busy { path, tries: 3, .. } if *path == s.refresh), "{err}");
        assert!(err.to_string().contains(&format!("pid {}, alive", std::process::id())), "{err}");
        assert_eq!(told.len(), 1, "told once");
        assert!(s.refresh.is_dir() && s.owner.is_file(), "the live holder's lock and record stay");
        drop(held);
    }

    #[test]
    fn a_dead_holders_lock_is_taken_over_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = set_in(dir.path());
        fs::create_dir(&s.refresh).unwrap();
        fs::create_dir(&s.legacy).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = i64::from(child.id());
        child.wait().unwrap();
        let birth = |p: &Path| birth_ms(&fs::metadata(p).unwrap());
        let rec = OwnerRecord {
            pid: dead,
            proc_start: Some("1".into()),
            pid_domain: pid_domain(),
            pid_space: pid_space(),
            lock_birthtime_ms: birth(&s.refresh).unwrap_or(1.0),
            legacy_birthtime_ms: birth(&s.legacy),
        };
        fs::write(&s.owner, rec.to_json()).unwrap();
        assert_eq!(OwnerRecord::parse(rec.to_json().as_bytes()).unwrap(), rec);
        let held = s.acquire(QUICK, |_, _| panic!("a dead holder is not waited for")).unwrap();
        assert_eq!(OwnerRecord::read(&s.owner).unwrap().pid, i64::from(std::process::id()));
        drop(held);
        // another pid namespace's record says nothing about its pid: only the mtime rule applies
        fs::create_dir(&s.refresh).unwrap();
        fs::write(&s.owner, OwnerRecord { pid_space: "elsewhere#pid:[1]".into(), ..rec }.to_json()).unwrap();
        let foreign = OwnerRecord::read(&s.owner).unwrap();
        assert!(holder_alive(&foreign));
        assert!(matches!(s.acquire(QUICK, |_, _| {}), Err(LockError::Busy { .. })));
    }

    #[test]
    fn stale_locks_are_taken_over_by_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let s = set_in(dir.path());
        for (p, stale) in [(&s.refresh, STALE_AFTER), (&s.legacy, STALE_AFTER), (&s.storage, STORAGE_STALE_AFTER)] {
            fs::create_dir(p).unwrap();
            let old = SystemTime::now() - stale - Duration::from_secs(1);
            fs::File::open(p).unwrap().set_modified(old).unwrap();
        }
        drop(s.acquire(QUICK, |_, _| panic!("stale locks are not waited for")).unwrap());
        // younger than the stale time, without a record: held
        fs::create_dir(&s.legacy).unwrap();
        let young = SystemTime::now() - Duration::from_secs(30);
        fs::File::open(&s.legacy).unwrap().set_modified(young).unwrap();
        assert!(matches!(s.acquire(QUICK, |_, _| {}), Err(LockError::Busy { path, .. }) if path == s.legacy));
        assert!(!s.refresh.exists() && !s.owner.exists(), "what was taken is released on failure");
    }

    #[test]
    fn stat_start_skips_a_command_with_spaces() {
        let stat =
            "17978 (my claude) R 17972 17679 10567 0 -1 4194304 20423 0 8 0 39 10 0 0 20 0 6 0 420627 5868736512";
        assert_eq!(stat_start(stat).as_deref(), Some("420627"));
    }

    #[test]
    fn a_missing_parent_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = LockSet::for_credentials(&dir.path().join("no/such/.credentials.json")).unwrap();
        assert!(matches!(s.acquire(QUICK, |_, _| {}), Err(LockError::Io { .. })));
    }
}
