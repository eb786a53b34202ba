//! Durable file replacement that keeps the target's owner and mode.
//!
//! [`replace_atomically`]: temp file in the target's directory (created `O_EXCL` with the final
//! mode) → `fchown` to the existing owner → write → `fsync` → `rename` over the target → `fsync`
//! the directory. A reader sees the old file or the new one, never a mix, and a crash at any
//! moment leaves one of the two.
//!
//! [`overwrite_in_place`]: for files bind-mounted singly into a container, where a rename would
//! leave the container on the old inode (moby#22627): the same inode is rewritten and truncated,
//! then `fsync`ed. A concurrent reader can see a partial file; readers must tolerate that.
//!
//! Both refuse a target that exists and is not a regular file (a FIFO, a socket, a device, a
//! directory): nothing is written, and the error says what it is. An in-place write opens the
//! file without blocking, so a FIFO slipped in meanwhile cannot hang it either.

use crate::paths::parent_dir;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::{Mode, fchmod};
use nix::unistd::{Gid, Uid, fchown};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of a file we create (tokens are secrets).
pub const NEW_FILE_MODE: u32 = 0o600;

/// Who should own a written file, and with what permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership {
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
}

impl Ownership {
    /// The target's current owner and mode; for a new file, mode 0600 and the owner of its
    /// directory (so root writing into `/home/node/.openclaw` does not leave root-owned files).
    pub fn for_target(path: &Path) -> io::Result<Self> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Self { uid: m.uid(), gid: m.gid(), mode: m.mode() & 0o7777 }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let dir = std::fs::metadata(parent_dir(path))?;
                Ok(Self { uid: dir.uid(), gid: dir.gid(), mode: NEW_FILE_MODE })
            }
            Err(e) => Err(e),
        }
    }
}

/// Replaces `path` with `contents` atomically and durably, keeping its owner and mode (or
/// creating it with [`Ownership::for_target`]'s defaults).
pub fn replace_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    refuse_non_regular(path)?;
    let own = Ownership::for_target(path)?;
    let dir = parent_dir(path);
    remove_orphaned_temps(path);
    let (tmp_path, mut tmp) = create_temp(path, own.mode)?;
    let result = (|| {
        apply_ownership(&tmp, own)?;
        tmp.write_all(contents)?;
        tmp.sync_all()?;
        drop(tmp);
        std::fs::rename(&tmp_path, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// Rewrites `path` in place (same inode), keeping owner and mode; creates it when missing.
pub fn overwrite_in_place(path: &Path, contents: &[u8]) -> io::Result<()> {
    refuse_non_regular(path)?;
    let existed = path.exists();
    let own = Ownership::for_target(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(own.mode)
        .custom_flags(libc_cloexec() | OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular_error(&meta));
    }
    if !existed {
        apply_ownership(&file, own)?;
    }
    file.write_all(contents)?;
    file.set_len(contents.len() as u64)?;
    file.sync_all()?;
    if !existed {
        sync_dir(parent_dir(path))?;
    }
    Ok(())
}

/// Refuses an existing target that is not a regular file (followed through symlinks).
pub fn refuse_non_regular(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(not_regular_error(&meta)),
        _ => Ok(()),
    }
}

fn not_regular_error(meta: &std::fs::Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, not a regular file: not written", crate::input::describe_file_type(meta)),
    )
}

fn libc_cloexec() -> i32 {
    OFlag::O_CLOEXEC.bits()
}

/// Removes temp files of `path` left by a writer that was killed mid-write (`kill -9`, power
/// loss): `.<name>.tmp.<pid>.<hex>` whose process no longer exists. They hold a secret and would
/// pile up otherwise. Best effort: a directory that cannot be listed is left alone.
fn remove_orphaned_temps(path: &Path) {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return };
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = std::fs::read_dir(parent_dir(path)) else { return };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Creates `.<name>.tmp.<pid>.<n>` beside `path` with `O_EXCL` and exactly `mode`.
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, File)> {
    let dir = parent_dir(path);
    let name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no file name"))?;
    let pid = std::process::id();
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(".{}.tmp.{pid}.{:08x}", name.to_string_lossy(), nanos ^ n));
        match OpenOptions::new().write(true).create_new(true).mode(mode).custom_flags(libc_cloexec()).open(&tmp) {
            Ok(file) => {
                // The umask may have narrowed the mode given to open(2): set it exactly.
                fchmod(&file, Mode::from_bits_truncate(mode))?;
                return Ok((tmp, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "could not create a unique temporary file"))
}

/// `fchown` to the wanted owner when it differs from the file's; then re-apply the mode, since
/// chown clears set-id bits.
fn apply_ownership(file: &File, own: Ownership) -> io::Result<()> {
    let meta = file.metadata()?;
    if meta.uid() != own.uid || meta.gid() != own.gid {
        fchown(file, Some(Uid::from_raw(own.uid)), Some(Gid::from_raw(own.gid)))?;
        fchmod(file, Mode::from_bits_truncate(own.mode))?;
    }
    Ok(())
}

/// `fsync`s a directory so a rename or create in it survives a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock (`flock`) on a directory, held until dropped. Two writers that
/// both take it never interleave their writes to files in that directory; it survives renames
/// of the files, which a lock on the file itself would not.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code, reason = "held for its Drop, which releases the lock")] Flock<File>);

impl DirLock {
    /// Blocks until the lock on `dir` is ours.
    pub fn acquire(dir: &Path) -> io::Result<Self> {
        let file = File::open(dir)?;
        Flock::lock(file, FlockArg::LockExclusive).map(Self).map_err(|(_, e)| io::Error::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn new_file_gets_0600_and_no_temp_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("oauth.json");
        replace_atomically(&target, b"{}").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"{}");
        assert_eq!(mode(&target), 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temps_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("oauth.json");
        // pid_max is at most 2^22, so this pid cannot exist; our own pid is alive.
        let dead = dir.path().join(".oauth.json.tmp.99999999.0badf00d");
        let live = dir.path().join(format!(".oauth.json.tmp.{}.0000beef", std::process::id()));
        let other = dir.path().join(".oauth.json.bak.tmp.99999999.0badf00d");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        replace_atomically(&target, b"{}").unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[test]
    fn existing_mode_is_kept_and_inode_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(".env");
        std::fs::write(&target, b"A=1\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let before = std::fs::metadata(&target).unwrap().ino();
        replace_atomically(&target, b"A=2\n").unwrap();
        assert_eq!(mode(&target), 0o640);
        assert_ne!(std::fs::metadata(&target).unwrap().ino(), before);
    }

    #[test]
    fn in_place_keeps_the_inode_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("oauth.json");
        std::fs::write(&target, b"a much longer old content").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::metadata(&target).unwrap().ino();
        overwrite_in_place(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&target).unwrap().ino(), before);
        assert_eq!(mode(&target), 0o644);
    }

    /// A FIFO (or a device, a directory) as a target: an in-place write blocked in open(2), and a
    /// rename replaced the FIFO with a regular file. Now it is refused and left as it is.
    #[test]
    fn regression_a_fifo_as_a_target_blocked_or_was_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join(".env");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        for in_place in [false, true] {
            let err = if in_place { overwrite_in_place(&fifo, b"A=1\n") } else { replace_atomically(&fifo, b"A=1\n") }
                .unwrap_err();
            assert_eq!(err.to_string(), "is a FIFO (named pipe), not a regular file: not written");
            assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO stays");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(replace_atomically(&sub, b"x").unwrap_err().to_string().starts_with("is a directory"));
        assert!(sub.is_dir());
    }

    #[test]
    fn root_keeps_a_foreign_owner() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("auth-profiles.json");
        std::fs::write(&target, b"{}").unwrap();
        std::os::unix::fs::chown(&target, Some(1000), Some(1000)).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        replace_atomically(&target, b"{\"v\":1}").unwrap();
        let m = std::fs::metadata(&target).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (1000, 1000, 0o600));
        // a new file in a directory owned by 1000 is owned by 1000 too
        std::os::unix::fs::chown(dir.path(), Some(1000), Some(1000)).unwrap();
        let fresh = dir.path().join("oauth.json");
        replace_atomically(&fresh, b"{}").unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().uid(), 1000);
    }

    #[test]
    fn dir_lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let f = File::open(dir.path()).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_err());
        drop(held);
        let f = File::open(dir.path()).unwrap();
        assert!(Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
