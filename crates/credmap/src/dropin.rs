//! systemd drop-ins (`*.service.d/*.conf`) holding `Environment=KEY=value` under `[Service]`.
//!
//! The parser follows systemd.syntax(7) and keeps every physical line as written, so a drop-in
//! rewrites to the same bytes except for the assignments that were set or removed:
//!
//! - `[Section]` headers, `Key=Value` lines, `#` and `;` comment lines, blank lines; CRLF line
//!   endings, a missing final newline and a UTF-8 byte-order mark are kept;
//! - a line ending in an odd number of backslashes continues on the next line (comment lines in
//!   between are skipped, a blank line ends it), as systemd reads it;
//! - in `[Service]`, `Environment=` holds blank-separated assignments; quotes (`"…"`, `'…'`) may
//!   wrap a word or a part of it, C escapes (`\"`, `\\`, `\n`, `\s`, `\x41`, …) are decoded
//!   inside and outside quotes (unknown escapes are kept as written, as systemd does), and
//!   `%%` stands for `%`. Other specifiers (`%h`, `%n`, …) are returned unexpanded;
//! - an empty `Environment=` resets the list: assignments before it do not count.
//!
//! Lines systemd would reject or ignore are [`Error::Syntax`] with their 1-based line number: a
//! `[` line without its closing `]`, a line without `=`, an empty key, and an `Environment=` line
//! in `[Service]` with unbalanced quotes. Assignments before the first section are kept as they
//! are. Rewriting an `Environment=` line that was continued over several physical lines writes
//! it back as one line (comment lines inside it are kept after it).
//!
//! ```
//! use credmap::dropin;
//!
//! let mut unit = dropin::parse("[Service]\nEnvironment=\"ANTHROPIC_OAUTH_TOKEN=old\" NODE_ENV=production\n")?;
//! assert_eq!(unit.get_env("ANTHROPIC_OAUTH_TOKEN").as_deref(), Some("old"));
//!
//! assert!(unit.set_env("ANTHROPIC_OAUTH_TOKEN", "sk-ant-oat01-new")?);
//! assert_eq!(unit.to_string(), "[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-new NODE_ENV=production\n");
//!
//! let mut fresh = dropin::parse("")?;
//! fresh.set_env("GREETING", "100% ready")?;
//! assert_eq!(fresh.to_string(), "[Service]\nEnvironment=\"GREETING=100%% ready\"\n");
//! assert_eq!(fresh.get_env("GREETING").as_deref(), Some("100% ready"));
//! # Ok::<(), credmap::Error>(())
//! ```

use crate::dotenv::{RawLine, check_assignment, detect_eol, split_lines, write_lines};
use crate::{Error, Secret};
use std::fmt;
use std::ops::Range;

/// systemd's blanks (`WHITESPACE` in its sources): the only characters that separate words
/// and are stripped around keys and values.
const WS: [char; 4] = [' ', '\t', '\n', '\r'];

const UNBALANCED: &str = "unbalanced quotes in Environment=";

/// A parsed unit file that rewrites to the same bytes except for what was set.
///
/// `Debug` shows the number of lines and the variable names `Environment=` assigns in
/// `[Service]`, never a value; `Display` is the full text, to be written back to the file.
#[derive(Clone, PartialEq, Eq)]
pub struct DropIn {
    /// Whether the text starts with a UTF-8 byte-order mark (kept, not part of line 1).
    bom: bool,
    /// Every physical line, in order.
    lines: Vec<RawLine>,
    /// The lines as systemd reads them, continuations joined.
    logical: Vec<Logical>,
    /// The file's line ending, used for lines this module adds.
    eol: &'static str,
}

/// One logical line: one physical line, or several joined by trailing backslashes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Logical {
    /// The physical lines holding its text (comment lines inside a continuation excluded).
    parts: Vec<usize>,
    /// Whether the file ends inside its continuation.
    unterminated: bool,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    Section(String),
    /// A `Key=Value` line; `env` is set for `Environment=` in `[Service]`.
    Directive {
        env: Option<EnvLine>,
    },
}

/// An `Environment=` line in `[Service]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EnvLine {
    /// The logical line's text: its physical lines joined, each continuation backslash replaced
    /// by a space (as systemd does). For a one-line directive, the line as written.
    content: String,
    /// An empty `Environment=`, which resets the list.
    reset: bool,
    words: Vec<Word>,
}

/// A word of an `Environment=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    /// Bytes of `EnvLine::content` holding the word as written.
    span: Range<usize>,
    /// `(name, value)`, decoded, when the word is an assignment (systemd ignores other words).
    assignment: Option<(String, String)>,
}

/// A planned change to one word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WordEdit {
    Remove,
    Replace(String),
}

/// Parses a unit file / drop-in.
///
/// Fails with [`Error::Binary`] on a NUL byte and with [`Error::Syntax`] (1-based line number,
/// never the line's text) on a line systemd would reject (see the module documentation). Empty
/// text is an empty drop-in.
///
/// ```
/// use credmap::{dropin, Error};
/// let unit = dropin::parse("[Unit]\nDescription=x\n\n[Service]\nEnvironment=A=1 'B=two words'\n")?;
/// assert_eq!(unit.get_env("B").as_deref(), Some("two words"));
/// assert!(matches!(dropin::parse("[Service\n"), Err(Error::Syntax { line: 1, .. })));
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn parse(text: &str) -> Result<DropIn, Error> {
    if text.contains('\0') {
        return Err(Error::Binary);
    }
    let (bom, lines) = split_lines(text);
    let eol = detect_eol(&lines);
    let mut logical = Vec::new();
    let mut section: Option<String> = None;
    // The continued line being read: its parts and its joined text.
    let mut pending: Option<(Vec<usize>, String)> = None;
    for (i, line) in lines.iter().enumerate() {
        let text = line.text.as_str();
        if text.trim_start_matches(WS).starts_with(['#', ';']) {
            if pending.is_none() {
                logical.push(Logical { parts: vec![i], unterminated: false, kind: Kind::Comment });
            }
            continue;
        }
        let (mut parts, mut joined) = pending.take().unwrap_or_default();
        parts.push(i);
        joined.push_str(text);
        if ends_in_odd_backslashes(text) {
            joined.pop();
            joined.push(' ');
            pending = Some((parts, joined));
            continue;
        }
        logical.push(classify(parts, joined, false, &mut section)?);
    }
    if let Some((parts, joined)) = pending {
        logical.push(classify(parts, joined, true, &mut section)?);
    }
    Ok(DropIn { bom, lines, logical, eol })
}

/// Whether a line ends in a continuation backslash (an odd number of trailing backslashes).
fn ends_in_odd_backslashes(text: &str) -> bool {
    let trailing = text.len() - text.trim_end_matches('\\').len();
    trailing % 2 == 1
}

/// Classifies a logical line, tracking the current section.
fn classify(
    parts: Vec<usize>,
    content: String,
    unterminated: bool,
    section: &mut Option<String>,
) -> Result<Logical, Error> {
    let syntax = |problem| Error::Syntax { line: parts[0] + 1, problem };
    let stripped = content.trim_matches(WS);
    let kind = if stripped.is_empty() {
        Kind::Blank
    } else if stripped.starts_with('[') {
        if stripped.len() < 2 || !stripped.ends_with(']') {
            return Err(syntax("invalid section header (no closing `]`)"));
        }
        let name = &stripped[1..stripped.len() - 1];
        *section = Some(name.to_owned());
        Kind::Section(name.to_owned())
    } else {
        let Some(eq) = stripped.find('=') else {
            return Err(syntax("expected Key=Value, a [Section] header, a comment or a blank line"));
        };
        let key = stripped[..eq].trim_matches(WS);
        if key.is_empty() {
            return Err(syntax("missing key before `=`"));
        }
        let env = if key == "Environment" && section.as_deref() == Some("Service") {
            let offset = content.len() - content.trim_start_matches(WS).len();
            let rvalue_start = offset + eq + 1;
            let words = parse_words(&content, rvalue_start).map_err(syntax)?;
            let reset = words.is_empty();
            Some(EnvLine { content, reset, words })
        } else {
            None
        };
        Kind::Directive { env }
    };
    Ok(Logical { parts, unterminated, kind })
}

/// Splits an `Environment=` value into words, as systemd's `extract_first_word()` with
/// unquoting and C unescaping (relaxed: unknown escapes are kept), then resolves `%%`.
fn parse_words(s: &str, from: usize) -> Result<Vec<Word>, &'static str> {
    let mut words = Vec::new();
    let mut pos = from;
    loop {
        let rest = &s[pos..];
        let trimmed = rest.trim_start_matches(WS);
        pos += rest.len() - trimmed.len();
        if trimmed.is_empty() {
            return Ok(words);
        }
        let start = pos;
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = s[pos..].chars().next() {
            if quote.is_none() && WS.contains(&c) {
                break;
            }
            pos += c.len_utf8();
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (None, '"' | '\'') => quote = Some(c),
                (_, '\\') => {
                    if let Some((decoded, used)) = unescape_one(&s[pos..]) {
                        word.push(decoded);
                        pos += used;
                    } else if let Some(next) = s[pos..].chars().next() {
                        word.push('\\');
                        word.push(next);
                        pos += next.len_utf8();
                    } else {
                        word.push('\\');
                    }
                }
                (_, c) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(UNBALANCED);
        }
        let word = unspecify(&word);
        let assignment = match word.split_once('=') {
            Some((k, v)) if !k.is_empty() => Some((k.to_owned(), v.to_owned())),
            _ => None,
        };
        words.push(Word { span: start..pos, assignment });
    }
}

/// Decodes the C escape after a backslash (`rest` starts after the backslash): the character
/// and the number of bytes used; `None` for an escape systemd does not know (or one that would
/// give NUL or a lone byte above 0x7f), which it keeps as written.
fn unescape_one(rest: &str) -> Option<(char, usize)> {
    let c = rest.chars().next()?;
    let simple = match c {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        's' => Some(' '),
        '\\' | '"' | '\'' => Some(c),
        _ => None,
    };
    if let Some(decoded) = simple {
        return Some((decoded, 1));
    }
    let number = |digits: Range<usize>, radix: u32| -> Option<u32> {
        let text = rest.get(digits)?;
        if !text.chars().all(|d| d.is_digit(radix)) {
            return None;
        }
        u32::from_str_radix(text, radix).ok().filter(|&v| v != 0)
    };
    let (value, used) = match c {
        'x' => (number(1..3, 16).filter(|&v| v < 0x80)?, 3),
        'u' => (number(1..5, 16)?, 5),
        'U' => (number(1..9, 16)?, 9),
        '0'..='7' => (number(0..3, 8)?, 3),
        _ => return None,
    };
    Some((char::from_u32(value)?, used))
}

/// Resolves the `%%` specifier to `%`; other specifiers are kept as written.
fn unspecify(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            match chars.next() {
                Some('%') | None => {}
                Some(other) => out.push(other),
            }
        }
    }
    out
}

/// An `Environment=` word assigning `value` to `key`: `%` written `%%`, in double quotes (with
/// `\` and `"` escaped) only when the value holds a blank, a quote or a backslash.
fn render_word(key: &str, value: &str) -> String {
    let value = value.replace('%', "%%");
    if !value.contains([' ', '\t', '"', '\'', '\\']) {
        return format!("{key}={value}");
    }
    let mut out = format!("\"{key}=");
    for c in value.chars() {
        if matches!(c, '\\' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `content` with the edits applied to its words; `None` when no word is left (the line must
/// go: an empty `Environment=` would reset the list).
fn edit_words(env: &EnvLine, edits: &[(usize, WordEdit)]) -> Option<String> {
    let c = &env.content;
    let mut out = c[..env.words.first()?.span.start].to_owned();
    let mut kept_any = false;
    for (i, word) in env.words.iter().enumerate() {
        let text = match edits.iter().find(|(w, _)| *w == i).map(|(_, e)| e) {
            Some(WordEdit::Remove) => continue,
            Some(WordEdit::Replace(new)) => new.as_str(),
            None => &c[word.span.clone()],
        };
        if kept_any {
            out.push_str(&c[env.words[i - 1].span.end..word.span.start]);
        }
        out.push_str(text);
        kept_any = true;
    }
    if !kept_any {
        return None;
    }
    out.push_str(&c[env.words.last()?.span.end..]);
    Some(out)
}

/// What becomes of a physical line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LineEdit {
    Keep,
    Replace(String),
    Delete,
}

/// Where a new `Environment=` line goes.
enum Insert {
    /// After this physical line (inside the last `[Service]` section); `terminate` when that
    /// line ends the file inside a continuation, which a blank line must end first.
    After { line: usize, terminate: bool },
    /// In a new `[Service]` section at the end of the file.
    NewSection,
}

impl DropIn {
    /// The value `Environment=` assigns to `key` in `[Service]` (last assignment wins), unquoted.
    ///
    /// Assignments before an empty `Environment=` do not count.
    ///
    /// ```
    /// let unit = credmap::dropin::parse("[Service]\nEnvironment=A=1 B=2\nEnvironment=\nEnvironment=B=3\n")?;
    /// assert_eq!(unit.get_env("A"), None);
    /// assert_eq!(unit.get_env("B").as_deref(), Some("3"));
    /// # Ok::<(), credmap::Error>(())
    /// ```
    #[must_use]
    pub fn get_env(&self, key: &str) -> Option<String> {
        let (all, effective_from) = self.assignments_of(key);
        let &(li, wi) = all.get(effective_from..)?.last()?;
        let env = self.env_line(li)?;
        env.words[wi].assignment.as_ref().map(|(_, v)| v.clone())
    }

    /// Sets `key` in `[Service]`; returns whether the text changed.
    ///
    /// The last effective assignment of `key` gets the new value in place (the other words of
    /// its line are kept) and every other assignment of `key` in `[Service]` is removed, so that
    /// exactly one remains; a line left without words is removed (never left as an empty
    /// `Environment=`, which would reset the list). Without an effective assignment, an
    /// `Environment=KEY=value` line is added to the last `[Service]` section, after its last
    /// directive and the comment lines directly below it (so before a blank line and any
    /// comment that introduces the next section), or in a new `[Service]` section at the end of
    /// the file, after a blank line. The value is quoted only when needed, `%` is written `%%`.
    /// (systemd ignores an assignment whose value holds a control character other than a tab;
    /// such a value is written as given.)
    ///
    /// Fails with [`Error::InvalidKey`] unless `key` is `[A-Za-z_][A-Za-z0-9_]*`, and with
    /// [`Error::ValueHasNewline`] when `value` holds `\n`, `\r` or NUL; the text is then
    /// unchanged.
    ///
    /// ```
    /// let mut unit = credmap::dropin::parse("[Service]\nEnvironment=A=1 B=2\nExecStart=/bin/true\n\n[Install]\nWantedBy=default.target\n")?;
    /// assert!(unit.set_env("C", "3")?);
    /// assert_eq!(
    ///     unit.to_string(),
    ///     "[Service]\nEnvironment=A=1 B=2\nExecStart=/bin/true\nEnvironment=C=3\n\n[Install]\nWantedBy=default.target\n"
    /// );
    /// # Ok::<(), credmap::Error>(())
    /// ```
    pub fn set_env(&mut self, key: &str, value: &str) -> Result<bool, Error> {
        check_assignment(key, value)?;
        let (all, effective_from) = self.assignments_of(key);
        let mut edits = Vec::new();
        let mut insert = None;
        if let Some(&target) = all.get(effective_from..).and_then(<[_]>::last) {
            for &(li, wi) in &all {
                if (li, wi) != target {
                    edits.push((li, wi, WordEdit::Remove));
                } else if self.env_line(li).and_then(|e| e.words[wi].assignment.as_ref()).map(|(_, v)| v.as_str())
                    != Some(value)
                {
                    edits.push((li, wi, WordEdit::Replace(render_word(key, value))));
                }
            }
        } else {
            edits.extend(all.iter().map(|&(li, wi)| (li, wi, WordEdit::Remove)));
            insert = Some(format!("Environment={}", render_word(key, value)));
        }
        self.apply(&edits, insert)
    }

    /// Removes every assignment of `key` from `[Service]`; returns whether the text changed.
    ///
    /// Other words on the same lines are kept; a line left without words is removed.
    ///
    /// ```
    /// let mut unit = credmap::dropin::parse("[Service]\nEnvironment=A=1 B=2\nEnvironment=A=3\n")?;
    /// assert!(unit.remove_env("A"));
    /// assert_eq!(unit.to_string(), "[Service]\nEnvironment=B=2\n");
    /// assert!(!unit.remove_env("A"));
    /// # Ok::<(), credmap::Error>(())
    /// ```
    pub fn remove_env(&mut self, key: &str) -> bool {
        let (all, _) = self.assignments_of(key);
        let edits: Vec<_> = all.iter().map(|&(li, wi)| (li, wi, WordEdit::Remove)).collect();
        self.apply(&edits, None).unwrap_or(false)
    }

    /// The token held in `key`, if any.
    #[must_use]
    pub fn token(&self, key: &str) -> Option<Secret> {
        self.get_env(key).filter(|v| !v.is_empty()).map(Secret::new)
    }

    /// The `Environment=` line in `[Service]` at logical line `li`.
    fn env_line(&self, li: usize) -> Option<&EnvLine> {
        match &self.logical.get(li)?.kind {
            Kind::Directive { env } => env.as_ref(),
            _ => None,
        }
    }

    /// Every assignment of `key` in `[Service]` as (logical line, word), in file order, and the
    /// index in that list of the first one after the last reset.
    fn assignments_of(&self, key: &str) -> (Vec<(usize, usize)>, usize) {
        let mut all = Vec::new();
        let mut effective_from = 0;
        for li in 0..self.logical.len() {
            let Some(env) = self.env_line(li) else { continue };
            if env.reset {
                effective_from = all.len();
            }
            for (wi, word) in env.words.iter().enumerate() {
                if word.assignment.as_ref().is_some_and(|(k, _)| k == key) {
                    all.push((li, wi));
                }
            }
        }
        (all, effective_from)
    }

    /// Where a new `Environment=` line goes: after the last directive of the last `[Service]`
    /// section and the comment lines right below it.
    fn insertion_point(&self) -> Insert {
        let is_service = |l: &Logical| matches!(&l.kind, Kind::Section(name) if name == "Service");
        let Some(header) = self.logical.iter().rposition(is_service) else {
            return Insert::NewSection;
        };
        let end = (header + 1..self.logical.len())
            .find(|&i| matches!(self.logical[i].kind, Kind::Section(_)))
            .unwrap_or(self.logical.len());
        let mut at =
            (header + 1..end).rev().find(|&i| matches!(self.logical[i].kind, Kind::Directive { .. })).unwrap_or(header);
        while at + 1 < end && self.logical[at + 1].kind == Kind::Comment {
            at += 1;
        }
        let l = &self.logical[at];
        Insert::After { line: *l.parts.last().expect("a logical line has a part"), terminate: l.unterminated }
    }

    /// Applies word edits `(logical line, word, edit)` and adds the `insert` line, then
    /// re-reads the result; returns whether the text changed.
    fn apply(&mut self, edits: &[(usize, usize, WordEdit)], insert: Option<String>) -> Result<bool, Error> {
        if edits.is_empty() && insert.is_none() {
            return Ok(false);
        }
        let before = self.to_string();
        let final_newline = self.lines.last().is_none_or(|l| !l.ending.is_empty());
        let mut fate = vec![LineEdit::Keep; self.lines.len()];
        let mut lines_edited: Vec<usize> = edits.iter().map(|(li, _, _)| *li).collect();
        lines_edited.dedup();
        for li in lines_edited {
            let Some(env) = self.env_line(li) else { continue };
            let line_edits: Vec<(usize, WordEdit)> =
                edits.iter().filter(|(l, _, _)| *l == li).map(|(_, w, e)| (*w, e.clone())).collect();
            let parts = &self.logical[li].parts;
            let new_text = edit_words(env, &line_edits);
            for (n, &p) in parts.iter().enumerate() {
                fate[p] = match &new_text {
                    Some(text) if n == 0 => LineEdit::Replace(text.clone()),
                    _ => LineEdit::Delete,
                };
            }
        }
        let mut added = Vec::new();
        let mut after_line = None;
        if let Some(line) = insert {
            match self.insertion_point() {
                Insert::After { line: at, terminate } => {
                    if terminate {
                        added.push(String::new());
                    }
                    after_line = Some(at);
                }
                Insert::NewSection => {
                    if self.lines.last().is_some_and(|l| !l.text.trim_matches(WS).is_empty()) {
                        added.push(String::new());
                    }
                    added.push("[Service]".to_owned());
                }
            }
            added.push(line);
        }
        let eol = self.eol;
        let new_line = |text: String| RawLine { text, ending: eol };
        let mut out = Vec::with_capacity(self.lines.len() + added.len());
        for (i, line) in self.lines.iter().enumerate() {
            match &fate[i] {
                LineEdit::Keep => out.push(line.clone()),
                LineEdit::Replace(text) => out.push(RawLine { text: text.clone(), ending: line.ending }),
                LineEdit::Delete => {}
            }
            if after_line == Some(i) {
                out.extend(added.drain(..).map(new_line));
            }
        }
        out.extend(added.into_iter().map(new_line));
        let count = out.len();
        for (i, line) in out.iter_mut().enumerate() {
            if i + 1 < count || final_newline {
                if line.ending.is_empty() {
                    line.ending = eol;
                }
            } else {
                line.ending = "";
            }
        }
        let mut after = String::new();
        if self.bom {
            after.push('\u{feff}');
        }
        for line in &out {
            after.push_str(&line.text);
            after.push_str(line.ending);
        }
        *self = parse(&after)?;
        Ok(after != before)
    }
}

impl fmt::Display for DropIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_lines(f, self.bom, self.lines.iter())
    }
}

impl fmt::Debug for DropIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = (0..self.logical.len())
            .filter_map(|li| self.env_line(li))
            .flat_map(|env| env.words.iter().filter_map(|w| w.assignment.as_ref().map(|(k, _)| k.as_str())))
            .collect();
        f.debug_struct("DropIn").field("lines", &self.lines.len()).field("environment", &keys).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(tag: &str) -> String {
        format!("sk-ant-oat01-TEST-{tag}-{}", "y".repeat(80))
    }

    /// A real-shaped drop-in: a `[Unit]` section first, other directives, a quoted
    /// multi-assignment `Environment=` line and a `%%`.
    const DROPIN: &str = "\
# Managed by hand; cred-sync only touches ANTHROPIC_OAUTH_TOKEN.
[Unit]
Description=OpenClaw gateway (Claude token)
After=network-online.target

[Service]
Environment=\"OPENCLAW_PROFILE=default\" NODE_OPTIONS=--max-old-space-size=2048
Environment=ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-old \"GREETING=100%% ready\"
; comment with semicolon
ExecStart=
ExecStart=%h/.local/bin/openclaw gateway --port 18789
Restart=on-failure

[Install]
WantedBy=default.target
";

    #[test]
    fn reads_a_real_drop_in() {
        let unit = parse(DROPIN).unwrap();
        assert_eq!(unit.to_string(), DROPIN);
        assert_eq!(unit.get_env("OPENCLAW_PROFILE").as_deref(), Some("default"));
        assert_eq!(unit.get_env("NODE_OPTIONS").as_deref(), Some("--max-old-space-size=2048"));
        assert_eq!(unit.get_env("ANTHROPIC_OAUTH_TOKEN").as_deref(), Some("sk-ant-oat01-old"));
        assert_eq!(unit.get_env("GREETING").as_deref(), Some("100% ready"));
        assert_eq!(unit.get_env("Description"), None);
        assert_eq!(unit.token("ANTHROPIC_OAUTH_TOKEN").unwrap().expose(), "sk-ant-oat01-old");
    }

    #[test]
    fn set_replaces_in_place_keeping_other_words() {
        let mut unit = parse(DROPIN).unwrap();
        let t = token("a");
        assert!(unit.set_env("ANTHROPIC_OAUTH_TOKEN", &t).unwrap());
        assert_eq!(
            unit.to_string(),
            DROPIN.replace("ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-old", &format!("ANTHROPIC_OAUTH_TOKEN={t}"))
        );
        assert_eq!(unit.get_env("ANTHROPIC_OAUTH_TOKEN"), Some(t.clone()));
        assert!(!unit.set_env("ANTHROPIC_OAUTH_TOKEN", &t).unwrap());
        assert_eq!(unit.get_env("GREETING").as_deref(), Some("100% ready"));
    }

    #[test]
    fn set_quotes_and_escapes_only_when_needed() {
        let mut unit = parse(DROPIN).unwrap();
        unit.set_env("OPENCLAW_PROFILE", "work").unwrap();
        assert!(unit.to_string().contains("\nEnvironment=OPENCLAW_PROFILE=work NODE_OPTIONS="));
        unit.set_env("GREETING", "say \"hi\" \\ 50%").unwrap();
        assert!(unit.to_string().contains(" \"GREETING=say \\\"hi\\\" \\\\ 50%%\"\n"), "{unit}");
        assert_eq!(unit.get_env("GREETING").as_deref(), Some("say \"hi\" \\ 50%"));
        unit.set_env("GREETING", "it's").unwrap();
        assert_eq!(unit.get_env("GREETING").as_deref(), Some("it's"));
    }

    #[test]
    fn set_appends_to_the_last_service_section() {
        let mut unit = parse(DROPIN).unwrap();
        assert!(unit.set_env("NEW_VAR", "1").unwrap());
        assert_eq!(
            unit.to_string(),
            DROPIN.replace("Restart=on-failure\n", "Restart=on-failure\nEnvironment=NEW_VAR=1\n")
        );

        let mut unit =
            parse("[Service]\nExecStart=/bin/x\n# keep me with ExecStart\n\n\n# About install\n[Install]\n").unwrap();
        unit.set_env("K", "v").unwrap();
        assert_eq!(
            unit.to_string(),
            "[Service]\nExecStart=/bin/x\n# keep me with ExecStart\nEnvironment=K=v\n\n\n# About install\n[Install]\n"
        );

        let mut unit = parse("[Service]\nEnvironment=A=1\n[Unit]\nX=y\n[Service]\n\n").unwrap();
        unit.set_env("K", "v").unwrap();
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=A=1\n[Unit]\nX=y\n[Service]\nEnvironment=K=v\n\n");
    }

    #[test]
    fn set_without_service_section_appends_one() {
        let t = token("n");
        let cases = [
            ("", format!("[Service]\nEnvironment=K={t}\n")),
            ("[Unit]\nDescription=x\n", format!("[Unit]\nDescription=x\n\n[Service]\nEnvironment=K={t}\n")),
            ("[Unit]\r\nDescription=x", format!("[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nEnvironment=K={t}")),
            ("# just a comment\n\n", format!("# just a comment\n\n[Service]\nEnvironment=K={t}\n")),
        ];
        for (src, want) in cases {
            let mut unit = parse(src).unwrap();
            assert!(unit.set_env("K", &t).unwrap());
            assert_eq!(unit.to_string(), want, "{src:?}");
            assert_eq!(unit.get_env("K"), Some(t.clone()));
        }
    }

    #[test]
    fn set_leaves_exactly_one_assignment() {
        let src = "[Service]\nEnvironment=K=1 A=a\nEnvironment=K=2\n[Service]\nEnvironment=B=b K=3 C=c\n";
        let mut unit = parse(src).unwrap();
        assert!(unit.set_env("K", "4").unwrap());
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=A=a\n[Service]\nEnvironment=B=b K=4 C=c\n");
        // The same value, but duplicates to clean up: still a change.
        let mut unit = parse("[Service]\nEnvironment=K=1\nEnvironment=K=2\n").unwrap();
        assert!(unit.set_env("K", "2").unwrap());
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=K=2\n");
    }

    #[test]
    fn empty_environment_resets() {
        let src = "[Service]\nEnvironment=K=old A=1\nEnvironment=\nEnvironment=B=2\n";
        let unit = parse(src).unwrap();
        assert_eq!(unit.get_env("K"), None);
        assert_eq!(unit.get_env("A"), None);
        assert_eq!(unit.get_env("B").as_deref(), Some("2"));
        // K is only assigned before the reset: the void assignment goes, a new one is added after.
        let mut unit = parse(src).unwrap();
        assert!(unit.set_env("K", "new").unwrap());
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\nEnvironment=K=new\n");
        assert_eq!(unit.get_env("K").as_deref(), Some("new"));
        // Removing the only word of a line removes the line (never an empty Environment=).
        let mut unit = parse("[Service]\nEnvironment=K=1\nEnvironment=A=1\n").unwrap();
        assert!(unit.remove_env("K"));
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=A=1\n");
        assert_eq!(unit.get_env("A").as_deref(), Some("1"));
    }

    #[test]
    fn remove_keeps_neighbours_and_spacing() {
        let mut unit =
            parse("[Service]\nEnvironment=A=1  K=2\tB=3\nEnvironment=K=4 C=5\nEnvironment=D=6 K=7\n").unwrap();
        assert!(unit.remove_env("K"));
        assert_eq!(unit.to_string(), "[Service]\nEnvironment=A=1\tB=3\nEnvironment=C=5\nEnvironment=D=6\n");
        let mut unit = parse("[Service]\nExecStart=/bin/x\nEnvironment=K=1").unwrap();
        assert!(unit.remove_env("K"));
        assert_eq!(unit.to_string(), "[Service]\nExecStart=/bin/x");
    }

    #[test]
    fn crlf_and_final_newline_are_kept() {
        let src = "[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nEnvironment=K=1";
        let mut unit = parse(src).unwrap();
        assert_eq!(unit.to_string(), src);
        unit.set_env("K", "2").unwrap();
        assert_eq!(unit.to_string(), "[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nEnvironment=K=2");
        unit.set_env("L", "3").unwrap();
        assert_eq!(unit.to_string(), "[Unit]\r\nDescription=x\r\n\r\n[Service]\r\nEnvironment=K=2\r\nEnvironment=L=3");
    }

    #[test]
    fn quoting_forms_systemd_accepts() {
        let unit = parse(concat!(
            "[Service]\n",
            "Environment=\"A=x y\" 'B=it\\'s' C=\"quoted part\" D=a\\sb E=\\x41\\u00e9 F=\\q G=%h/x H=\"say \\\"hi\\\"\"\n",
        ))
        .unwrap();
        let got: Vec<_> = ["A", "B", "C", "D", "E", "F", "G", "H"].iter().map(|k| unit.get_env(k).unwrap()).collect();
        assert_eq!(got, ["x y", "it's", "quoted part", "a b", "Aé", "\\q", "%h/x", "say \"hi\""]);
    }

    #[test]
    fn continuation_lines() {
        let src = "[Service]\nEnvironment=A=1 \\\n# a comment inside\n  K=old \\\n  B=2\nExecStart=/bin/x\n";
        let unit = parse(src).unwrap();
        assert_eq!(unit.to_string(), src);
        assert_eq!(unit.get_env("A").as_deref(), Some("1"));
        assert_eq!(unit.get_env("K").as_deref(), Some("old"));
        assert_eq!(unit.get_env("B").as_deref(), Some("2"));
        // Untouched continued lines stay as they are.
        let mut other = unit.clone();
        other.set_env("Z", "9").unwrap();
        assert_eq!(other.to_string(), format!("{src}Environment=Z=9\n"));
        // A continued line that must change is written back as one line.
        let mut unit = unit;
        unit.set_env("K", "new").unwrap();
        assert_eq!(
            unit.to_string(),
            "[Service]\nEnvironment=A=1    K=new    B=2\n# a comment inside\nExecStart=/bin/x\n"
        );
        assert_eq!(unit.get_env("B").as_deref(), Some("2"));
        // An even number of backslashes is not a continuation.
        let unit = parse("[Service]\nEnvironment=A=x\\\\\nEnvironment=B=y\n").unwrap();
        assert_eq!(unit.get_env("A").as_deref(), Some("x\\"));
        assert_eq!(unit.get_env("B").as_deref(), Some("y"));
    }

    #[test]
    fn appending_after_a_continuation_at_end_of_file_ends_it_first() {
        let mut unit = parse("[Service]\nExecStart=/bin/x \\").unwrap();
        unit.set_env("K", "v").unwrap();
        assert_eq!(unit.to_string(), "[Service]\nExecStart=/bin/x \\\n\nEnvironment=K=v");
        assert_eq!(unit.get_env("K").as_deref(), Some("v"));
    }

    #[test]
    fn environment_outside_service_is_not_ours() {
        let mut unit = parse("Environment=K=top\n[Unit]\nEnvironment=K=unit\n").unwrap();
        assert_eq!(unit.get_env("K"), None);
        unit.set_env("K", "v").unwrap();
        assert_eq!(unit.to_string(), "Environment=K=top\n[Unit]\nEnvironment=K=unit\n\n[Service]\nEnvironment=K=v\n");
    }

    #[test]
    fn syntax_errors_name_the_line_not_the_value() {
        let cases: [(&str, usize); 5] = [
            ("[Service\n", 1),
            ("[Service]\nsk-ant-oat01-SECRET\n", 2),
            ("[Service]\n=sk-ant-oat01-SECRET\n", 2),
            ("[Unit]\n\n[Service]\nEnvironment=\"K=sk-ant-oat01-SECRET\n", 4),
            ("[Service]\nEnvironment=K='sk-ant-oat01-SECRET \\\n x\n", 2),
        ];
        for (src, line) in cases {
            let err = parse(src).unwrap_err();
            assert!(matches!(err, Error::Syntax { line: l, .. } if l == line), "{src:?}: {err:?}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        assert_eq!(parse("[Service]\0"), Err(Error::Binary));
        // Unbalanced quotes outside [Service] Environment= are not ours to judge.
        assert!(parse("[Unit]\nDescription=it's\n").is_ok());
    }

    #[test]
    fn set_validates_key_and_value() {
        let mut unit = parse(DROPIN).unwrap();
        assert_eq!(unit.set_env("A=B", "x"), Err(Error::InvalidKey { key: "A=B".into() }));
        assert_eq!(
            unit.set_env("ANTHROPIC_OAUTH_TOKEN", "a\nb"),
            Err(Error::ValueHasNewline { key: "ANTHROPIC_OAUTH_TOKEN".into() })
        );
        assert_eq!(unit.to_string(), DROPIN);
    }

    #[test]
    fn debug_hides_values() {
        let unit = parse(&format!("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={}\n", token("dbg"))).unwrap();
        let shown = format!("{unit:?}");
        assert!(shown.contains("ANTHROPIC_OAUTH_TOKEN"), "{shown}");
        assert!(!shown.contains("TEST-dbg"), "{shown}");
    }

    #[test]
    fn bom_is_kept() {
        let mut unit = parse("\u{feff}[Service]\nEnvironment=K=1\n").unwrap();
        unit.set_env("K", "2").unwrap();
        assert_eq!(unit.to_string(), "\u{feff}[Service]\nEnvironment=K=2\n");
    }
}
