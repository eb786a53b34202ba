//! `KEY=value` files: a compose `.env`, `~/.openclaw/.env`, `~/.openclaw-env`, and systemd
//! `EnvironmentFile=` files such as our own `keeper.env`.
//!
//! The parser keeps every line as written, so a file rewrites to the same bytes except for the
//! values that were set: comments, blank lines, order, `export ` prefixes, spacing, quoting
//! style, CRLF line endings and a missing final newline all survive.
//!
//! What is read:
//!
//! - blank lines and lines whose first non-blank character is `#`;
//! - `KEY=value`, with optional leading blanks, an optional `export ` prefix and blanks around
//!   `=`. On read a name may hold `[A-Za-z0-9_.-]` (compose accepts dotted names); names written
//!   by [`DotEnv::set`] must be `[A-Za-z_][A-Za-z0-9_]*`;
//! - unquoted values run to the end of the line, less surrounding blanks; a `#` preceded by a
//!   blank starts a comment (compose's rule), a `#` inside a word does not (`A=b#c` is `b#c`);
//! - `'single-quoted'` values are literal;
//! - `"double-quoted"` values understand `\"`, `\\`, `\$` and `\n`; any other backslash is kept
//!   as written;
//! - after a closing quote only blanks and a `#` comment may follow.
//!
//! Anything else is an [`Error::Syntax`] naming the line, including a quoted value that is not
//! closed on its line: multi-line values are not supported. Variables (`$VAR`, `${VAR}`) are not
//! expanded; [`DotEnv::get`] returns the value as written, less quoting. A UTF-8 byte-order mark
//! is kept; NUL bytes are [`Error::Binary`].
//!
//! ```
//! use credmap::dotenv;
//!
//! let mut env = dotenv::parse("# compose settings\r\nexport OPENCLAW_PORT=18789\r\nANTHROPIC_OAUTH_TOKEN='old' # set by cred-sync\r\n")?;
//! assert_eq!(env.get("ANTHROPIC_OAUTH_TOKEN").as_deref(), Some("old"));
//!
//! assert!(env.set("ANTHROPIC_OAUTH_TOKEN", "sk-ant-oat01-new")?);
//! assert_eq!(
//!     env.to_string(),
//!     "# compose settings\r\nexport OPENCLAW_PORT=18789\r\nANTHROPIC_OAUTH_TOKEN='sk-ant-oat01-new' # set by cred-sync\r\n"
//! );
//! assert!(!env.set("ANTHROPIC_OAUTH_TOKEN", "sk-ant-oat01-new")?, "same value: no change");
//! # Ok::<(), credmap::Error>(())
//! ```

use crate::{Error, Secret};
use std::fmt;
use std::ops::Range;

/// A parsed `KEY=value` file that rewrites to the same bytes except for what was set.
///
/// `Debug` shows the number of lines and the variable names, never a value; `Display` is the
/// full text, to be written back to the file.
#[derive(Clone, PartialEq, Eq)]
pub struct DotEnv {
    /// Whether the text starts with a UTF-8 byte-order mark (kept, not part of line 1).
    bom: bool,
    /// Every physical line, in order.
    lines: Vec<Line>,
    /// The file's line ending, used for lines this module adds.
    eol: &'static str,
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    raw: RawLine,
    /// `None` for blank and comment lines.
    assignment: Option<Assignment>,
}

/// A `KEY=value` line, as parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    key: String,
    /// The value, unquoted and unescaped.
    value: String,
    quote: Quote,
    /// Bytes of the line holding the value as written, quotes included.
    span: Range<usize>,
}

/// How a value is quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// A physical line of a text file: its text and its terminator, `"\n"`, `"\r\n"` or `""` (the
/// last line of a file without a final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawLine {
    pub(crate) text: String,
    pub(crate) ending: &'static str,
}

const BOM: char = '\u{feff}';

/// Splits text into physical lines (byte-exact: joining `text + ending` gives the input back,
/// after the byte-order mark, whose presence is returned first).
pub(crate) fn split_lines(text: &str) -> (bool, Vec<RawLine>) {
    let (bom, text) = match text.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let lines = text
        .split_inclusive('\n')
        .map(|piece| {
            if let Some(t) = piece.strip_suffix("\r\n") {
                RawLine { text: t.to_owned(), ending: "\r\n" }
            } else if let Some(t) = piece.strip_suffix('\n') {
                RawLine { text: t.to_owned(), ending: "\n" }
            } else {
                RawLine { text: piece.to_owned(), ending: "" }
            }
        })
        .collect();
    (bom, lines)
}

/// The line ending of the first terminated line; `"\n"` when there is none.
pub(crate) fn detect_eol(lines: &[RawLine]) -> &'static str {
    lines.iter().map(|l| l.ending).find(|e| !e.is_empty()).unwrap_or("\n")
}

/// Writes a byte-order mark (when `bom`) and the lines.
pub(crate) fn write_lines<'a>(
    f: &mut fmt::Formatter<'_>,
    bom: bool,
    lines: impl Iterator<Item = &'a RawLine>,
) -> fmt::Result {
    if bom {
        f.write_str("\u{feff}")?;
    }
    for line in lines {
        f.write_str(&line.text)?;
        f.write_str(line.ending)?;
    }
    Ok(())
}

/// Whether `key` is a variable name this crate writes: `[A-Za-z_][A-Za-z0-9_]*`.
///
/// ```
/// use credmap::dotenv::is_valid_key;
/// assert!(is_valid_key("ANTHROPIC_OAUTH_TOKEN"));
/// assert!(is_valid_key("_x1"));
/// assert!(!is_valid_key("1X") && !is_valid_key("A-B") && !is_valid_key("") && !is_valid_key("A B"));
/// ```
#[must_use]
pub fn is_valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks a name and a value before writing them: [`Error::InvalidKey`] or
/// [`Error::ValueHasNewline`] (for `\n`, `\r` and NUL).
pub(crate) fn check_assignment(key: &str, value: &str) -> Result<(), Error> {
    if !is_valid_key(key) {
        return Err(Error::InvalidKey { key: key.to_owned() });
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(Error::ValueHasNewline { key: key.to_owned() });
    }
    Ok(())
}

/// Characters of a variable name on read (compose also accepts `.` and `-`).
fn is_read_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

const UNTERMINATED: &str = "quoted value not closed on its line (multi-line values are not supported)";

/// Parses a `KEY=value` file.
///
/// Fails with [`Error::Binary`] on a NUL byte and with [`Error::Syntax`] (1-based line number,
/// never the line's text) on a line that is not blank, a comment or an assignment. Empty text is
/// an empty file.
///
/// ```
/// use credmap::{dotenv, Error};
/// let env = dotenv::parse("A=1\nexport B = \"two words\"\n# C=3\n")?;
/// assert_eq!(env.entries(), [("A".to_owned(), "1".to_owned()), ("B".to_owned(), "two words".to_owned())]);
/// assert!(matches!(dotenv::parse("A=1\nnot an assignment\n"), Err(Error::Syntax { line: 2, .. })));
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn parse(text: &str) -> Result<DotEnv, Error> {
    if text.contains('\0') {
        return Err(Error::Binary);
    }
    let (bom, raws) = split_lines(text);
    let eol = detect_eol(&raws);
    let lines = raws
        .into_iter()
        .enumerate()
        .map(|(i, raw)| match parse_line(&raw.text) {
            Ok(assignment) => Ok(Line { raw, assignment }),
            Err(problem) => Err(Error::Syntax { line: i + 1, problem }),
        })
        .collect::<Result<_, _>>()?;
    Ok(DotEnv { bom, lines, eol })
}

/// Parses one line (without its terminator): `None` for a blank or comment line.
fn parse_line(s: &str) -> Result<Option<Assignment>, &'static str> {
    let body = s.trim_start();
    if body.is_empty() || body.starts_with('#') {
        return Ok(None);
    }
    let mut pos = s.len() - body.len();
    if let Some(after) = body.strip_prefix("export") {
        let rest = after.trim_start_matches([' ', '\t']);
        if rest.len() < after.len() && rest.starts_with(is_read_key_char) {
            pos = s.len() - rest.len();
        }
    }
    let key_len = s[pos..].find(|c| !is_read_key_char(c)).unwrap_or(s.len() - pos);
    if key_len == 0 {
        return Err(if s[pos..].starts_with('=') {
            "missing variable name before `=`"
        } else {
            "invalid character in variable name"
        });
    }
    let key = &s[pos..pos + key_len];
    let gap = s[pos + key_len..].trim_start_matches([' ', '\t']);
    let Some(after_eq) = gap.strip_prefix('=') else {
        return Err(if gap.trim().is_empty() {
            "expected KEY=value, a comment or a blank line"
        } else {
            "invalid character in variable name"
        });
    };
    let eq_end = s.len() - after_eq.len();
    let value_text = after_eq.trim_start();
    let start = s.len() - value_text.len();
    let (value, quote, end) = match value_text.chars().next() {
        Some('\'') => {
            let close = value_text[1..].find('\'').ok_or(UNTERMINATED)?;
            (value_text[1..=close].to_owned(), Quote::Single, start + close + 2)
        }
        Some('"') => {
            let (value, len) = parse_double_quoted(value_text).ok_or(UNTERMINATED)?;
            (value, Quote::Double, start + len)
        }
        _ => {
            let region_end = inline_comment_start(s, eq_end).unwrap_or(s.len());
            let value = s[start..region_end.max(start)].trim_end();
            (value.to_owned(), Quote::None, start + value.len())
        }
    };
    if quote != Quote::None {
        let tail = s[end..].trim_start();
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err("unexpected text after the closing quote");
        }
    }
    Ok(Some(Assignment { key: key.to_owned(), value, quote, span: start..end }))
}

/// Reads a double-quoted value at the start of `text`: the unescaped value and the length of the
/// quoted text, quotes included; `None` when the closing quote is missing.
fn parse_double_quoted(text: &str) -> Option<(String, usize)> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, i + 1)),
            '\\' => match chars.next()?.1 {
                e @ ('"' | '\\' | '$') => value.push(e),
                'n' => value.push('\n'),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            },
            c => value.push(c),
        }
    }
    None
}

/// The byte offset of an inline comment in an unquoted value: the first `#` after `from` that
/// follows a blank.
fn inline_comment_start(s: &str, from: usize) -> Option<usize> {
    let mut after_blank = false;
    for (i, c) in s[from..].char_indices() {
        if c == '#' && after_blank {
            return Some(from + i);
        }
        after_blank = c.is_whitespace();
    }
    None
}

/// Whether an unquoted value must be quoted to read back as itself (in compose, systemd and a
/// shell that sources the file).
fn needs_quoting(value: &str) -> bool {
    value.chars().any(|c| c.is_whitespace() || matches!(c, '#' | '\'' | '"' | '$' | '\\' | '`'))
}

/// `value` in double quotes, with `\`, `"` and `$` escaped.
fn double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `value` written in the given style, or in double quotes when the style cannot hold it.
fn render(value: &str, style: Quote) -> String {
    match style {
        Quote::None if !needs_quoting(value) => value.to_owned(),
        Quote::Single if !value.contains('\'') => format!("'{value}'"),
        _ => double_quote(value),
    }
}

impl DotEnv {
    /// The value of the last assignment to `key`, unquoted.
    ///
    /// ```
    /// let env = credmap::dotenv::parse("A=1\nA='2'\n")?;
    /// assert_eq!(env.get("A").as_deref(), Some("2"));
    /// assert_eq!(env.get("B"), None);
    /// # Ok::<(), credmap::Error>(())
    /// ```
    #[must_use]
    pub fn get(&self, key: &str) -> Option<String> {
        self.assignments().filter(|a| a.key == key).last().map(|a| a.value.clone())
    }

    /// Every `(key, value)` in file order, values unquoted.
    ///
    /// A key assigned twice appears twice.
    #[must_use]
    pub fn entries(&self) -> Vec<(String, String)> {
        self.assignments().map(|a| (a.key.clone(), a.value.clone())).collect()
    }

    /// Sets `key` to `value`; returns whether the text changed.
    ///
    /// Every assignment of `key` gets the new value, keeping its `export ` prefix, spacing,
    /// inline comment and quoting style (a single-quoted value that contains `'`, or an unquoted
    /// value that contains blanks, `#`, quotes, `$`, `` ` `` or `\`, is written in double quotes
    /// instead). An assignment that already holds `value` is left as written. Without any
    /// assignment, `KEY=value` is appended as the last line, in the file's line ending and
    /// keeping whether the file ends with a newline (an empty file becomes `KEY=value\n`).
    ///
    /// The escapes written in double quotes (`\\`, `\"`, `\$`) are those compose, systemd and a
    /// shell understand; Node's `dotenv` package keeps them as written. Tokens hold none of these
    /// characters.
    ///
    /// Fails with [`Error::InvalidKey`] unless `key` is `[A-Za-z_][A-Za-z0-9_]*`, and with
    /// [`Error::ValueHasNewline`] when `value` holds `\n`, `\r` or NUL; the text is then
    /// unchanged.
    ///
    /// ```
    /// let mut env = credmap::dotenv::parse("A=1")?;
    /// assert!(env.set("B", "two words")?);
    /// assert_eq!(env.to_string(), "A=1\nB=\"two words\"");
    /// # Ok::<(), credmap::Error>(())
    /// ```
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, Error> {
        check_assignment(key, value)?;
        let before = self.to_string();
        let mut found = false;
        for line in &mut self.lines {
            let Some(a) = &line.assignment else { continue };
            if a.key != key {
                continue;
            }
            found = true;
            if a.value == value {
                continue;
            }
            let rendered = render(value, a.quote);
            let (head, tail) = (&line.raw.text[..a.span.start], &line.raw.text[a.span.end..]);
            // `A= #c` holds an empty value before a comment: keep a blank between value and `#`.
            let blank = if a.quote == Quote::None && tail.starts_with('#') && !rendered.is_empty() { " " } else { "" };
            line.raw.text = format!("{head}{rendered}{blank}{tail}");
        }
        if !found {
            self.push_line(format!("{key}={}", render(value, Quote::None)));
        }
        let after = self.to_string();
        *self = parse(&after)?;
        Ok(after != before)
    }

    /// Removes every assignment to `key`; returns whether the text changed.
    ///
    /// The other lines are kept as written; a file without a final newline still has none.
    ///
    /// ```
    /// let mut env = credmap::dotenv::parse("A=1\r\nB=2\r\nA=3")?;
    /// assert!(env.remove("A"));
    /// assert_eq!(env.to_string(), "B=2");
    /// assert!(!env.remove("A"));
    /// # Ok::<(), credmap::Error>(())
    /// ```
    pub fn remove(&mut self, key: &str) -> bool {
        let final_newline = self.ends_with_newline();
        let count = self.lines.len();
        self.lines.retain(|l| l.assignment.as_ref().is_none_or(|a| a.key != key));
        if !final_newline {
            if let Some(last) = self.lines.last_mut() {
                last.raw.ending = "";
            }
        }
        self.lines.len() != count
    }

    /// The token held in `key`, if any.
    #[must_use]
    pub fn token(&self, key: &str) -> Option<Secret> {
        self.get(key).filter(|v| !v.is_empty()).map(Secret::new)
    }

    fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.lines.iter().filter_map(|l| l.assignment.as_ref())
    }

    /// Whether the text is empty or ends with a line break.
    fn ends_with_newline(&self) -> bool {
        self.lines.last().is_none_or(|l| !l.raw.ending.is_empty())
    }

    /// Appends a line, keeping whether the file ends with a newline.
    fn push_line(&mut self, text: String) {
        let ending = if self.ends_with_newline() {
            self.eol
        } else {
            if let Some(last) = self.lines.last_mut() {
                last.raw.ending = self.eol;
            }
            ""
        };
        self.lines.push(Line { raw: RawLine { text, ending }, assignment: None });
    }
}

impl fmt::Display for DotEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lines(f, self.bom, self.lines.iter().map(|l| &l.raw))
    }
}

impl fmt::Debug for DotEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.assignments().map(|a| a.key.as_str()).collect();
        f.debug_struct("DotEnv").field("lines", &self.lines.len()).field("keys", &keys).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(tag: &str) -> String {
        format!("sk-ant-oat01-TEST-{tag}-{}", "x".repeat(80))
    }

    /// A compose `.env` as people write them.
    const COMPOSE: &str = "\
# OpenClaw docker compose settings
OPENCLAW_CONFIG_DIR=/home/me/.openclaw
OPENCLAW_WORKSPACE_DIR=/home/me/.openclaw/workspace

export OPENCLAW_GATEWAY_PORT=18789   # published port
OPENCLAW_GATEWAY_TOKEN='gw-secret-1'
OPENCLAW_IMAGE = \"openclaw:local\"
  # indented comment
ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-old # written by cred-sync
EMPTY=
ANTHROPIC_OAUTH_TOKEN=\"sk-ant-oat01-older\"
";

    #[test]
    fn reads_a_compose_env() {
        let env = parse(COMPOSE).unwrap();
        assert_eq!(env.get("OPENCLAW_CONFIG_DIR").as_deref(), Some("/home/me/.openclaw"));
        assert_eq!(env.get("OPENCLAW_GATEWAY_PORT").as_deref(), Some("18789"));
        assert_eq!(env.get("OPENCLAW_GATEWAY_TOKEN").as_deref(), Some("gw-secret-1"));
        assert_eq!(env.get("OPENCLAW_IMAGE").as_deref(), Some("openclaw:local"));
        assert_eq!(env.get("EMPTY").as_deref(), Some(""));
        // Last assignment wins.
        assert_eq!(env.get("ANTHROPIC_OAUTH_TOKEN").as_deref(), Some("sk-ant-oat01-older"));
        assert_eq!(env.token("EMPTY"), None);
        assert_eq!(env.entries().len(), 8);
        assert_eq!(env.entries()[5], ("ANTHROPIC_OAUTH_TOKEN".to_owned(), "sk-ant-oat01-old".to_owned()));
        assert_eq!(env.to_string(), COMPOSE);
    }

    #[test]
    fn set_replaces_every_assignment_keeping_style() {
        let mut env = parse(COMPOSE).unwrap();
        let t = token("a");
        assert!(env.set("ANTHROPIC_OAUTH_TOKEN", &t).unwrap());
        let expected = COMPOSE
            .replace("ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-old #", &format!("ANTHROPIC_OAUTH_TOKEN={t} #"))
            .replace("\"sk-ant-oat01-older\"", &format!("\"{t}\""));
        assert_eq!(env.to_string(), expected);
        assert_eq!(env.get("ANTHROPIC_OAUTH_TOKEN"), Some(t.clone()));
        assert!(!env.set("ANTHROPIC_OAUTH_TOKEN", &t).unwrap());
        assert_eq!(env.to_string(), expected);
    }

    #[test]
    fn set_keeps_export_spacing_and_comment() {
        let mut env = parse(COMPOSE).unwrap();
        assert!(env.set("OPENCLAW_GATEWAY_PORT", "1").unwrap());
        assert!(env.to_string().contains("\nexport OPENCLAW_GATEWAY_PORT=1   # published port\n"));
        assert!(env.set("OPENCLAW_IMAGE", "a\"b\\c$d").unwrap());
        assert!(env.to_string().contains("\nOPENCLAW_IMAGE = \"a\\\"b\\\\c\\$d\"\n"));
        assert_eq!(env.get("OPENCLAW_IMAGE").as_deref(), Some("a\"b\\c$d"));
    }

    #[test]
    fn quoting_switches_only_when_needed() {
        let mut env = parse("S='x'\nU=x\nD=\"x\"\n").unwrap();
        env.set("S", "it's").unwrap();
        env.set("U", "a b").unwrap();
        env.set("D", "plain").unwrap();
        assert_eq!(env.to_string(), "S=\"it's\"\nU=\"a b\"\nD=\"plain\"\n");
        env.set("S", "$HOME").unwrap();
        env.set("U", "#hash").unwrap();
        assert_eq!(env.to_string(), "S=\"\\$HOME\"\nU=\"#hash\"\nD=\"plain\"\n");
        let mut env = parse("S='x'\nU=x\n").unwrap();
        env.set("S", "a \"b\" $c \\d #e").unwrap();
        env.set("U", "").unwrap();
        assert_eq!(env.to_string(), "S='a \"b\" $c \\d #e'\nU=\n");
        assert_eq!(env.get("S").as_deref(), Some("a \"b\" $c \\d #e"));
    }

    #[test]
    fn empty_value_with_comment() {
        let mut env = parse("A= # the token goes here\n").unwrap();
        assert_eq!(env.get("A").as_deref(), Some(""));
        env.set("A", "v").unwrap();
        assert_eq!(env.to_string(), "A= v # the token goes here\n");
        env.set("A", "").unwrap();
        assert_eq!(env.to_string(), "A=  # the token goes here\n");
        assert_eq!(env.get("A").as_deref(), Some(""));
    }

    #[test]
    fn appends_in_the_file_line_ending_and_keeps_final_newline_state() {
        let t = token("b");
        let cases = [
            ("", format!("K={t}\n")),
            ("A=1\n", format!("A=1\nK={t}\n")),
            ("A=1\r\n# c\r\n", format!("A=1\r\n# c\r\nK={t}\r\n")),
            ("A=1", format!("A=1\nK={t}")),
            ("A=1\r\nB=2", format!("A=1\r\nB=2\r\nK={t}")),
            ("# only a comment", format!("# only a comment\nK={t}")),
            ("\n\n", format!("\n\nK={t}\n")),
        ];
        for (src, want) in cases {
            let mut env = parse(src).unwrap();
            assert!(env.set("K", &t).unwrap(), "{src:?}");
            assert_eq!(env.to_string(), want, "{src:?}");
            assert_eq!(env.get("K"), Some(t.clone()));
        }
    }

    #[test]
    fn appended_value_is_quoted_when_needed() {
        let mut env = parse("").unwrap();
        env.set("K", "a b").unwrap();
        env.set("L", "it's $x").unwrap();
        assert_eq!(env.to_string(), "K=\"a b\"\nL=\"it's \\$x\"\n");
    }

    #[test]
    fn remove_keeps_everything_else() {
        let mut env = parse(COMPOSE).unwrap();
        assert!(env.remove("ANTHROPIC_OAUTH_TOKEN"));
        assert_eq!(env.get("ANTHROPIC_OAUTH_TOKEN"), None);
        let expected: String =
            COMPOSE.split_inclusive('\n').filter(|l| !l.starts_with("ANTHROPIC_OAUTH_TOKEN")).collect();
        assert_eq!(env.to_string(), expected);
        assert!(!env.remove("ANTHROPIC_OAUTH_TOKEN"));
        let mut env = parse("A=1\nB=2").unwrap();
        assert!(env.remove("B"));
        assert_eq!(env.to_string(), "A=1");
        assert!(env.remove("A"));
        assert_eq!(env.to_string(), "");
    }

    #[test]
    fn crlf_file_round_trips_and_stays_crlf() {
        let src = "# c\r\nexport A=\"x\"\r\n\r\nB='y'\r\n";
        let mut env = parse(src).unwrap();
        assert_eq!(env.to_string(), src);
        assert_eq!(env.get("A").as_deref(), Some("x"));
        assert_eq!(env.get("B").as_deref(), Some("y"));
        env.set("A", "z").unwrap();
        env.set("C", "w").unwrap();
        assert_eq!(env.to_string(), "# c\r\nexport A=\"z\"\r\n\r\nB='y'\r\nC=w\r\n");
    }

    #[test]
    fn double_quote_escapes() {
        let env = parse(r#"A="a\"b\\c\$d\ne\qf""#).unwrap();
        assert_eq!(env.get("A").as_deref(), Some("a\"b\\c$d\ne\\qf"));
        let env = parse("A='a\\nb $c'").unwrap();
        assert_eq!(env.get("A").as_deref(), Some("a\\nb $c"));
    }

    #[test]
    fn same_value_written_differently_is_left_alone() {
        let src = "A=\"a\\qb\"\n";
        let mut env = parse(src).unwrap();
        assert_eq!(env.get("A").as_deref(), Some("a\\qb"));
        assert!(!env.set("A", "a\\qb").unwrap());
        assert_eq!(env.to_string(), src);
    }

    #[test]
    fn hash_rules() {
        let env = parse("A=b#c\nB=b #c\nC='x'#c\nD=\"y\"   # c\nE=#x\n").unwrap();
        let got: Vec<_> = env.entries().into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, ["b#c", "b", "x", "y", "#x"]);
    }

    #[test]
    fn tolerated_shapes() {
        let env = parse("\u{feff}A=1\n\tB\t=\t2\t\nexport\tC=3\nexport=4\nspring.datasource-url=5\n").unwrap();
        assert_eq!(
            env.entries(),
            [("A", "1"), ("B", "2"), ("C", "3"), ("export", "4"), ("spring.datasource-url", "5")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        let mut env = env;
        env.set("A", "9").unwrap();
        assert!(env.to_string().starts_with("\u{feff}A=9\n"));
    }

    #[test]
    fn syntax_errors_name_the_line_not_the_value() {
        let cases: [(&str, usize); 8] = [
            ("A=1\nsk-ant-oat01-SECRET\n", 2),
            ("A='sk-ant-oat01-SECRET\n", 1),
            ("A=\"sk-ant-oat01-SECRET\nmore\"\n", 1),
            ("# ok\n\nA=\"sk-ant-oat01-SECRET\" trailing\n", 3),
            ("=sk-ant-oat01-SECRET\n", 1),
            ("export SECRET\n", 1),
            ("A B=1\n", 1),
            ("A:sk-ant-oat01-SECRET\n", 1),
        ];
        for (src, line) in cases {
            let err = parse(src).unwrap_err();
            assert!(matches!(err, Error::Syntax { line: l, .. } if l == line), "{src:?}: {err:?}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        assert_eq!(parse("A=1\0"), Err(Error::Binary));
    }

    #[test]
    fn set_validates_key_and_value() {
        let mut env = parse("A=1\n").unwrap();
        assert_eq!(env.set("1A", "x"), Err(Error::InvalidKey { key: "1A".into() }));
        assert_eq!(env.set("A-B", "x"), Err(Error::InvalidKey { key: "A-B".into() }));
        assert_eq!(env.set("", "x"), Err(Error::InvalidKey { key: String::new() }));
        for bad in ["a\nb", "a\rb", "a\0b"] {
            let err = env.set("A", bad).unwrap_err();
            assert_eq!(err, Error::ValueHasNewline { key: "A".into() });
            assert!(!err.to_string().contains("a\nb"));
        }
        assert_eq!(env.to_string(), "A=1\n");
    }

    #[test]
    fn debug_hides_values() {
        let env = parse(&format!("ANTHROPIC_OAUTH_TOKEN={}\n", token("dbg"))).unwrap();
        let shown = format!("{env:?}");
        assert!(shown.contains("ANTHROPIC_OAUTH_TOKEN"), "{shown}");
        assert!(!shown.contains("TEST-dbg"), "{shown}");
    }
}
