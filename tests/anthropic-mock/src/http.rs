//! Just enough HTTP/1.1: request heads, `Content-Length` and chunked bodies, responses.

use std::io::{self, BufRead, Write};

/// Bounds a misbehaving client; real requests are far below these.
const MAX_LINE: u64 = 64 * 1024;
const MAX_HEADERS: usize = 200;
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A request line and its headers (names lower-cased), body not yet read.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that (lower-case) name.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The target without its query string.
    pub(crate) fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// Whether the client asked to close the connection after this exchange.
    pub(crate) fn wants_close(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

/// One line without its CRLF; `None` at a clean end of stream.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    if io::Read::take(&mut *r, MAX_LINE).read_until(b'\n', &mut buf)? == 0 {
        return Ok(None);
    }
    if buf.pop() != Some(b'\n') {
        return Err(invalid("line too long or truncated"));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn require_line(r: &mut impl BufRead) -> io::Result<String> {
    read_line(r)?.ok_or_else(|| invalid("end of stream inside a request"))
}

/// Reads a request head; `None` when the client closed the connection between requests.
pub(crate) fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    // RFC 9112 §2.2: ignore empty lines before the request line.
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => {}
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid("not HTTP/1.x"));
    }
    let mut headers = Vec::new();
    loop {
        let l = require_line(r)?;
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':').ok_or_else(|| invalid("malformed header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        if headers.len() > MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
    }
    Ok(Some(Head { method: method.to_owned(), target: target.to_owned(), headers }))
}

/// Reads the body that `head` announces (chunked or `Content-Length`; none otherwise).
pub(crate) fn read_body(r: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if head.header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let line = require_line(r)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !require_line(r)?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(invalid("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            if !require_line(r)?.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    }
    if let Some(len) = head.header("content-length") {
        let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
        if len > MAX_BODY {
            return Err(invalid("body too large"));
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    }
    Ok(body)
}

/// A complete response, always sent with `Content-Length`.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Self { status, content_type: "application/json", body: value.to_string().into_bytes() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Unknown",
    }
}

/// Writes `resp` and flushes; `close` announces the end of the connection.
pub(crate) fn write_response(w: &mut impl Write, resp: &Response, close: bool) -> io::Result<()> {
    write_response_with(w, resp, close, &[])
}

/// [`write_response`] with extra headers (`Retry-After` on a queued 429).
pub(crate) fn write_response_with(
    w: &mut impl Write,
    resp: &Response,
    close: bool,
    extra: &[(String, String)],
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\nrequest-id: req_mock\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    if resp.content_type == "text/event-stream" {
        out.push_str("cache-control: no-cache\r\n");
    }
    for (name, value) in extra {
        for part in [name.as_str(), ": ", value.as_str(), "\r\n"] {
            out.push_str(part);
        }
    }
    out.push_str(if close { "connection: close\r\n\r\n" } else { "connection: keep-alive\r\n\r\n" });
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&resp.body);
    w.write_all(&bytes)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_body_with_extension_and_trailer() {
        let raw = b"POST /v1/messages?beta=true HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nx-trailer: 1\r\n\r\n";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap().unwrap();
        assert_eq!(head.path(), "/v1/messages");
        assert_eq!(read_body(&mut r, &head).unwrap(), b"abcdef");
        assert!(read_head(&mut r).unwrap().is_none());
    }

    #[test]
    fn rejects_a_truncated_body() {
        let raw = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        let mut r = &raw[..];
        let head = read_head(&mut r).unwrap().unwrap();
        assert!(read_body(&mut r, &head).is_err());
    }
}
