//! The one error type of this crate.

use std::fmt;

/// Everything that can be wrong with a credentials document.
///
/// Messages name the offending field by its JSON path (or line number) and say what is wrong;
/// they never quote a token or any other value from the document except expiry numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input is empty or only whitespace (a reader raced an in-place write that truncated the
    /// file, or the file was never written).
    Empty,
    /// The input holds a NUL byte: binary data, not a credentials document.
    Binary,
    /// The input is not valid UTF-8.
    NotUtf8,
    /// A JSON document starts with a UTF-8 byte-order mark (`EF BB BF`): refused. The Claude
    /// CLI's `JSON.parse` rejects such a file (it cannot read its own credentials from it), so it
    /// is no credential to copy, and a JSON target holding one is left alone. `KEY=value` files
    /// and drop-ins may carry one (it is kept). docs/FIELD-MAPPING.md, "Byte-order mark".
    ByteOrderMark,
    /// The input is not valid JSON.
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// Whether the input ended early (a half-written file) rather than being malformed.
        truncated: bool,
    },
    /// A JSON value has the wrong type.
    WrongType {
        /// Path of the value, such as `claudeAiOauth.expiresAt`.
        path: String,
        /// What the format requires there.
        expected: &'static str,
        /// What the document holds there.
        found: &'static str,
    },
    /// A required field is absent.
    Missing {
        /// Path of the absent field.
        path: String,
    },
    /// A token field is an empty string, outside the logged-out stub.
    EmptyToken {
        /// Path of the empty token.
        path: String,
    },
    /// An expiry is zero, negative or implausible (see [`crate::ExpiresAt`]).
    InvalidExpiry {
        /// Path of the expiry field.
        path: String,
        /// The number as written in the document.
        value: String,
        /// Why it was rejected.
        problem: &'static str,
    },
    /// The Claude CLI's logged-out stub (empty tokens, `expiresAt: 0`): the refresh failed and a
    /// human must log in again. Never a credential to propagate.
    LoggedOut,
    /// A line of a `KEY=value` or unit file cannot be parsed.
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An environment variable name is not `[A-Za-z_][A-Za-z0-9_]*`.
    InvalidKey {
        /// The rejected name.
        key: String,
    },
    /// A value to write contains a line break (or NUL), which would split or end the line.
    ValueHasNewline {
        /// The variable being set.
        key: String,
    },
    /// Text that should be a single token is not one.
    NotAToken {
        /// Why it was rejected.
        problem: &'static str,
    },
    /// The bytes are none of the formats this crate knows.
    UnrecognisedFormat,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty input"),
            Self::Binary => f.write_str("binary data (contains a NUL byte), not a credentials document"),
            Self::NotUtf8 => f.write_str("not valid UTF-8 text"),
            Self::ByteOrderMark => f.write_str(
                "JSON with a UTF-8 byte-order mark (bytes EF BB BF) before it: the Claude CLI's JSON.parse \
                 rejects that too; save the file without the mark",
            ),
            Self::Json { line, column, truncated: true } => {
                write!(f, "truncated JSON: input ends early at line {line} column {column} (half-written file?)")
            }
            Self::Json { line, column, truncated: false } => {
                write!(f, "invalid JSON at line {line} column {column}")
            }
            Self::WrongType { path, expected, found } => {
                write!(f, "`{path}` must be {expected}, found {found}")
            }
            Self::Missing { path } => write!(f, "`{path}` is missing"),
            Self::EmptyToken { path } => write!(f, "`{path}` is an empty string"),
            Self::InvalidExpiry { path, value, problem } => {
                write!(f, "`{path}` = {value} is not a usable expiry: {problem}")
            }
            Self::LoggedOut => f.write_str(
                "logged-out stub (empty tokens, expiresAt 0): the Claude CLI's refresh token is dead; run `claude auth login`",
            ),
            Self::Syntax { line, problem } => write!(f, "line {line}: {problem}"),
            Self::InvalidKey { key } => {
                write!(f, "`{key}` is not a valid variable name (letters, digits, _; not starting with a digit)")
            }
            Self::ValueHasNewline { key } => {
                write!(f, "refusing to write `{key}`: the value contains a line break or NUL")
            }
            Self::NotAToken { problem } => write!(f, "not a token: {problem}"),
            Self::UnrecognisedFormat => f.write_str(
                "unrecognised format (not Claude credentials, oauth.json, auth-profiles.json, KEY=value, a systemd drop-in or a bare token)",
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The JSON type name used in [`Error::WrongType`].
pub(crate) fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
