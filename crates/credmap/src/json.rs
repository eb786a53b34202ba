//! JSON documents that keep their key order and layout when rewritten.

use crate::Error;
use crate::error::json_type;
use serde_json::{Map, Value};

/// How a JSON document was laid out, so a rewrite looks like the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    /// On one line (Node's `JSON.stringify(v)`, which the Claude CLI uses).
    Compact,
    /// One member per line, indented by this string (`JSON.stringify(v, null, 2)`, Python's
    /// `json.dump(indent=2)`).
    Pretty(String),
}

/// A parsed JSON object document with its layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root object, keys in document order.
    pub root: Map<String, Value>,
    /// Layout to reproduce on write.
    pub style: Style,
    /// Whether the source ended with a newline.
    pub trailing_newline: bool,
}

impl Document {
    /// An empty document in the default layout (2-space pretty, trailing newline).
    #[must_use]
    pub fn new() -> Self {
        Self { root: Map::new(), style: Style::Pretty("  ".into()), trailing_newline: true }
    }

    /// Serialises the document in its original layout.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = to_bytes(&Value::Object(self.root.clone()), self.style.clone());
        if self.trailing_newline {
            out.push(b'\n');
        }
        out
    }
}

impl Default for Document {
    fn default() -> Self {
        Self::new()
    }
}

/// The UTF-8 encoding of U+FEFF, the byte-order mark.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Checks the input is non-empty UTF-8 text without NUL bytes and returns it. A leading
/// byte-order mark is text (the `KEY=value` and drop-in parsers keep it); JSON refuses it
/// ([`parse`]).
pub fn text(bytes: &[u8]) -> Result<&str, Error> {
    if bytes.contains(&0) {
        return Err(Error::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Error::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    Ok(text)
}

/// Parses bytes into an object [`Document`], remembering its layout.
///
/// ```
/// let doc = credmap::json::parse(b"{\n    \"b\": 1,\n    \"a\": 2\n}\n").unwrap();
/// assert_eq!(doc.style, credmap::json::Style::Pretty("    ".into()));
/// assert_eq!(doc.to_bytes(), b"{\n    \"b\": 1,\n    \"a\": 2\n}\n");
/// ```
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let text = text(bytes)?;
    // The Claude CLI's JSON.parse rejects a byte-order mark, and so does serde_json, as "invalid
    // JSON at line 1 column 1": name it instead.
    if bytes.starts_with(UTF8_BOM) {
        return Err(Error::ByteOrderMark);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Json {
        line: e.line(),
        column: e.column(),
        truncated: e.is_eof(),
    })?;
    let Value::Object(root) = value else {
        return Err(Error::WrongType { path: "(root)".into(), expected: "an object", found: json_type(&value) });
    };
    Ok(Document { root, style: detect_style(text), trailing_newline: text.ends_with('\n') })
}

/// Detects the layout: compact when the object's body has no line break, else the indentation
/// of its first member line.
fn detect_style(text: &str) -> Style {
    let body = text.trim();
    match body.find('\n') {
        None => Style::Compact,
        Some(i) => {
            let indent: String = body[i + 1..].chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            Style::Pretty(if indent.is_empty() { "  ".into() } else { indent })
        }
    }
}

/// Serialises any value in a given layout (no trailing newline).
#[must_use]
pub fn to_bytes(value: &Value, style: Style) -> Vec<u8> {
    match style {
        Style::Compact => serde_json::to_vec(value).expect("a Value always serialises"),
        Style::Pretty(indent) => {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
            let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
            serde::Serialize::serialize(value, &mut ser).expect("a Value always serialises");
            out
        }
    }
}

/// Looks up an object member that must be an object, if present.
pub(crate) fn object_at<'a>(
    parent: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, Error> {
    match parent.get(key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(Error::WrongType { path: path.to_owned(), expected: "an object", found: json_type(other) }),
    }
}

/// Looks up a member that must be a string, if present (`null` counts as absent).
pub(crate) fn string_at<'a>(parent: &'a Map<String, Value>, key: &str, path: &str) -> Result<Option<&'a str>, Error> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::WrongType { path: path.to_owned(), expected: "a string", found: json_type(other) }),
    }
}

/// Returns the member `key` of `parent` as a mutable object, creating it (at the end) when
/// absent or not an object.
pub(crate) fn object_entry<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = parent.entry(key.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().expect("just made an object")
}

/// Sets `key` in place when present (keeping its position), else appends it.
pub(crate) fn set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(slot) = obj.get_mut(key) {
        *slot = value;
    } else {
        obj.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_layout_and_order() {
        for src in [
            "{\"z\":1,\"a\":{\"y\":[1,2],\"b\":null}}",
            "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": [\n      1,\n      2\n    ],\n    \"b\": null\n  }\n}\n",
            "{\n\t\"z\": 1\n}",
        ] {
            assert_eq!(String::from_utf8(parse(src.as_bytes()).unwrap().to_bytes()).unwrap(), src);
        }
    }

    #[test]
    fn classifies_bad_input() {
        assert_eq!(parse(b""), Err(Error::Empty));
        assert_eq!(parse(b" \n"), Err(Error::Empty));
        assert_eq!(parse(b"{\"a\0\":1}"), Err(Error::Binary));
        assert_eq!(parse(b"{\"a\":\xff}"), Err(Error::NotUtf8));
        assert!(matches!(parse(b"{\"claudeAiOauth\":{\"acc"), Err(Error::Json { truncated: true, .. })));
        assert!(matches!(parse(b"{\"a\":]"), Err(Error::Json { truncated: false, .. })));
        assert!(matches!(parse(b"[1]"), Err(Error::WrongType { expected: "an object", found: "an array", .. })));
    }
}
