//! The Debian package's tests live in `tests/`; this library is empty.
