//! Bounded reads of credential files and stdin.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
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
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file"),
            Self::Io(e) => write!(f, "cannot read: {e}"),
            Self::IsDirectory => f.write_str("is a directory"),
            Self::TooLarge => write!(f, "larger than {} KiB: not a credentials file", MAX_INPUT_BYTES / 1024),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads a whole input of at most [`MAX_INPUT_BYTES`], without reading past the limit.
pub fn read_bounded(source: &Source) -> Result<Vec<u8>, ReadError> {
    match source {
        Source::Stdin => read_limited(io::stdin().lock()),
        Source::File(path) => {
            let file = File::open(path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => ReadError::NotFound,
                _ => ReadError::Io(e),
            })?;
            let meta = file.metadata().map_err(ReadError::Io)?;
            if meta.is_dir() {
                return Err(ReadError::IsDirectory);
            }
            if meta.is_file() && meta.len() > MAX_INPUT_BYTES {
                return Err(ReadError::TooLarge);
            }
            read_limited(file)
        }
    }
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
}
