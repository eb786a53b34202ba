//! Bounded reads of credential files and stdin: the one reader every tool uses.
//!
//! A file is opened without blocking (`O_NONBLOCK`: opening a FIFO for reading would otherwise
//! wait for a writer, forever) and checked with `fstat` before a byte is read: anything but a
//! regular file (a FIFO, a socket, a device, a directory) is refused, naming what it is. Only
//! stdin (`-`) may be a pipe.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest credentials input read (1 MiB); anything larger is refused unread. A real
/// `.credentials.json` is about 1 KiB.
pub const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// Where input comes from: a file, or stdin (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

impl Source {
    /// `-` is stdin; anything else a path.
    #[must_use]
    pub fn from_arg(arg: &Path) -> Self {
        if arg.as_os_str() == "-" { Self::Stdin } else { Self::File(arg.to_path_buf()) }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("(stdin)"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why an input could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The file does not exist.
    NotFound,
    /// Opening or reading failed.
    Io(io::Error),
    /// The input is a directory.
    IsDirectory,
    /// The input is larger than [`MAX_INPUT_BYTES`].
    TooLarge,
    /// The input is not a regular file: a FIFO, a socket or a device (what it is), which could
    /// block a reader forever or never end.
    NotRegular(&'static str),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file"),
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::IsDirectory => f.write_str("is a directory"),
            Self::TooLarge => write!(f, "larger than {} KiB: not a credentials file", MAX_INPUT_BYTES / 1024),
            Self::NotRegular(what) => write!(f, "is {what}, not a regular file: not read"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a whole input of at most [`MAX_INPUT_BYTES`], without reading past the limit. A file
/// must be a regular file ([`ReadError::NotRegular`], [`ReadError::IsDirectory`] otherwise); it is
/// opened without blocking, so a FIFO never hangs the reader.
pub fn read_bounded(source: &Source) -> Result<Vec<u8>, ReadError> {
    match source {
        Source::Stdin => read_limited(io::stdin().lock()),
        Source::File(path) => read_limited(open_regular(path)?),
    }
}

/// Opens `path` for reading without blocking and checks (`fstat`) that it is a regular file of
/// at most [`MAX_INPUT_BYTES`].
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits())
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::NotFound),
        // A socket cannot be opened at all (ENXIO): say what it is, not "no such device".
        Err(e) => {
            return Err(match std::fs::metadata(path) {
                Ok(meta) if !meta.is_file() => not_regular(&meta),
                _ => ReadError::Io(e),
            });
        }
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(file)
}

/// What a file that is not a regular file is, in words ("a FIFO", "a socket", …).
#[must_use]
pub fn describe_file_type(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular(meta: &Metadata) -> ReadError {
    if meta.is_dir() { ReadError::IsDirectory } else { ReadError::NotRegular(describe_file_type(meta)) }
}

fn read_limited(reader: impl Read) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::with_capacity(4096);
    reader
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| if e.raw_os_error() == Some(21) { ReadError::IsDirectory } else { ReadError::Io(e) })?;
    if buf.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_large_missing_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b' '; (MAX_INPUT_BYTES + 1) as usize]).unwrap();
        assert!(matches!(read_bounded(&Source::File(big)), Err(ReadError::TooLarge)));
        let exact = dir.path().join("exact");
        std::fs::write(&exact, vec![b' '; MAX_INPUT_BYTES as usize]).unwrap();
        assert_eq!(read_bounded(&Source::File(exact)).unwrap().len() as u64, MAX_INPUT_BYTES);
        assert!(matches!(read_bounded(&Source::File(dir.path().join("nope"))), Err(ReadError::NotFound)));
        assert!(matches!(read_bounded(&Source::File(dir.path().to_path_buf())), Err(ReadError::IsDirectory)));
    }

    /// `token-expiry FIFO`, `cred-sync --from FIFO` and cli-poke's read of a FIFO blocked forever
    /// in open(2), waiting for a writer that never came.
    #[test]
    fn regression_a_fifo_as_input_blocked_forever() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(read_bounded(&Source::File(path))).unwrap());
        let result = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("read_bounded returned at once");
        let err = result.unwrap_err();
        assert!(matches!(err, ReadError::NotRegular(_)), "{err:?}");
        assert_eq!(err.to_string(), "is a FIFO (named pipe), not a regular file: not read");
        // A character device is refused the same way (it could never end).
        let err = read_bounded(&Source::File(PathBuf::from("/dev/zero"))).unwrap_err();
        assert_eq!(err.to_string(), "is a character device, not a regular file: not read");
        // A socket cannot even be opened: still named for what it is.
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(
            read_bounded(&Source::File(sock)).unwrap_err().to_string(),
            "is a socket, not a regular file: not read"
        );
    }
}
