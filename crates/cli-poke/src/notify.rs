//! Posting `{"text": …}` to a Mattermost or Slack incoming webhook.
//!
//! `http://` URLs are posted by a minimal HTTP/1.1 client over a plain TCP connection; `https://`
//! URLs by `curl`, which is on nearly every server and brings TLS, proxies (`HTTPS_PROXY`) and the
//! system's CA store without a TLS stack in this tool. The URL and the body reach curl on its
//! stdin (`--config -`), never on its command line: a webhook URL is itself a secret. The text
//! holds no token.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Connect, send and receive limit for one notification.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// Posts `{"text": text}` to `url`. The error never quotes the URL's path or query.
pub(crate) fn post_text(url: &str, text: &str) -> Result<(), String> {
    let body = serde_json::json!({ "text": text }).to_string();
    if let Some(rest) = strip_scheme(url, "http://") {
        post_http(rest, &body)
    } else if strip_scheme(url, "https://").is_some() {
        post_with_curl(url, &body, "=https")
    } else {
        Err("the notify URL must start with http:// or https://".into())
    }
}

fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme).then(|| &url[scheme.len()..])
}

/// The parts of an `http://` URL after the scheme.
#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host:` header.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

fn parse_http(rest: &str) -> Result<HttpTarget, String> {
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let path = match tail.split('#').next().unwrap_or("") {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    if authority.contains('@') {
        return Err("user:password in the notify URL is not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("the notify URL has an unclosed [")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("the notify URL has no host".into());
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) => p.parse().map_err(|_| "the notify URL has an invalid port".to_owned())?,
    };
    Ok(HttpTarget { host: host.to_owned(), port, authority: authority.to_owned(), path })
}

fn post_http(rest: &str, body: &str) -> Result<(), String> {
    let target = parse_http(rest)?;
    let place = format!("{}:{}", target.host, target.port);
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last_error = format!("{} resolves to no address", target.host);
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {place}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    let io = |e: std::io::Error| format!("{place}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cli-poke/{}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        target.path,
        target.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        match stream.read(&mut buf).map_err(io)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let status_line = String::from_utf8_lossy(&head);
    let status_line = status_line.lines().next().unwrap_or("");
    let code = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{place} did not answer with HTTP"))?;
    if (200..300).contains(&code) { Ok(()) } else { Err(format!("{place} answered HTTP {code}")) }
}

/// A curl config-file string: double-quoted, with `\` and `"` escaped.
fn curl_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn curl_config(url: &str, body: &str) -> String {
    format!(
        "url = {}\nheader = \"Content-Type: application/json\"\ndata-binary = {}\n",
        curl_quoted(url),
        curl_quoted(body)
    )
}

/// Posts with curl, allowing only the protocols `protocols` (curl's `--proto`).
fn post_with_curl(url: &str, body: &str, protocols: &str) -> Result<(), String> {
    let curl = which::which("curl").map_err(|_| "posting to an https:// URL needs curl, which is not installed")?;
    let mut child = Command::new(curl)
        .args(["--silent", "--show-error", "--fail", "--proto", protocols, "--max-time"])
        .arg(TIMEOUT.as_secs().to_string())
        .args(["--output", "/dev/null", "--config", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    let config = curl_config(url, body);
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(config.as_bytes()).map_err(|e| format!("cannot talk to curl: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("curl: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message");
    Err(format!("curl failed ({}): {}", out.status, crate::redact::redact(why)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts one connection and returns the request's body.
    fn one_request(listener: std::net::TcpListener, status: &'static str) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = conn.read(&mut buf).unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap();
                    if body.len() >= len {
                        conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
                        return body.to_owned();
                    }
                }
                assert!(n > 0, "connection closed early");
            }
        })
    }

    #[test]
    fn curl_posts_the_exact_body() {
        if which::which("curl").is_err() {
            eprintln!("skipped: curl is not installed");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/x", listener.local_addr().unwrap());
        let server = one_request(listener, "200 OK");
        let body = r#"{"text":"quote \" backslash \\ line\nend é"}"#;
        post_with_curl(&url, body, "=http").unwrap();
        assert_eq!(server.join().unwrap(), body);
        // an error status fails
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/x", listener.local_addr().unwrap());
        let server = one_request(listener, "404 Not Found");
        assert!(post_with_curl(&url, body, "=http").unwrap_err().contains("curl failed"));
        server.join().unwrap();
        // and https only by default
        assert!(post_with_curl(&url, body, "=https").is_err());
    }

    #[test]
    fn plain_http_post() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/y", listener.local_addr().unwrap());
        let server = one_request(listener, "200 OK");
        post_text(&url, "hello \"there\"").unwrap();
        assert_eq!(server.join().unwrap(), r#"{"text":"hello \"there\""}"#);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/y", listener.local_addr().unwrap());
        let server = one_request(listener, "500 Internal Server Error");
        assert_eq!(post_text(&url, "x").unwrap_err(), format!("{} answered HTTP 500", &url[7..url.len() - 8]));
        server.join().unwrap();
    }

    #[test]
    fn http_urls() {
        let t = parse_http("127.0.0.1:8065/hooks/abc?x=1#frag").unwrap();
        assert_eq!(
            t,
            HttpTarget {
                host: "127.0.0.1".into(),
                port: 8065,
                authority: "127.0.0.1:8065".into(),
                path: "/hooks/abc?x=1".into()
            }
        );
        let t = parse_http("example.org").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = parse_http("[::1]:9000?q").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 9000, "/?q"));
        assert!(parse_http("u:p@host/x").is_err());
        assert!(parse_http(":80/x").is_err());
        assert!(parse_http("host:http/x").is_err());
    }

    #[test]
    fn scheme_is_checked() {
        assert_eq!(strip_scheme("HTTP://h/x", "http://"), Some("h/x"));
        assert!(post_text("ftp://h/x", "t").unwrap_err().contains("must start with"));
    }

    #[test]
    fn curl_gets_url_and_body_as_quoted_config() {
        let cfg = curl_config("https://h/hooks/a\"b", r#"{"text":"a \"q\" \\ b"}"#);
        assert_eq!(
            cfg,
            "url = \"https://h/hooks/a\\\"b\"\nheader = \"Content-Type: application/json\"\n\
             data-binary = \"{\\\"text\\\":\\\"a \\\\\\\"q\\\\\\\" \\\\\\\\ b\\\"}\"\n"
        );
    }
}
