//! The one HTTP client every tool uses: `ureq` over rustls (ring), no OpenSSL, no subprocess.
//!
//! Used for webhook notifications (`cli-poke --notify-url`) and the direct refresh at the token
//! endpoint (`cli-poke --direct`). What it guarantees:
//! - A deadline for the whole call (connect, send, receive), so nothing hangs a timer unit.
//! - Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as curl
//!   and the Claude Code CLI take them.
//! - Server certificates checked, when `SSL_CERT_FILE` names a PEM file, against the
//!   certificates in that file only (the variable's meaning for OpenSSL and curl; the tests point
//!   it at their throw-away CA); else against the system's CA bundle (e.g.
//!   `/etc/ssl/certs/ca-certificates.crt`, so a local CA added with `update-ca-certificates`
//!   counts); else against the Mozilla roots built in.
//! - Every status comes back as a [`Response`]; the caller decides what a 4xx or 5xx means.
//! - An error never quotes the URL: a webhook URL is itself a secret, and the token endpoint's
//!   body holds one.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The largest response body read; anything longer is an error rather than memory.
pub const MAX_BODY: u64 = 1 << 20;

/// One response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// `Retry-After`, when the server sent it in seconds (an HTTP date is ignored).
    pub retry_after: Option<Duration>,
}

/// Why a request got no response.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not an `http://` or `https://` URL with a host.
    BadUrl,
    /// `SSL_CERT_FILE` could not be read or holds no certificate.
    CaFile {
        /// The file named by `SSL_CERT_FILE`.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The deadline passed before the response was complete.
    Timeout,
    /// The host name did not resolve.
    HostNotFound,
    /// The TLS handshake failed (certificate, protocol).
    Tls(String),
    /// Connecting, sending or receiving failed, or the server spoke broken HTTP.
    Network(String),
    /// The response body is longer than [`MAX_BODY`].
    BodyTooLarge,
    /// A request header (named) is not a valid name or holds a character a header must not.
    BadHeader(String),
}

impl HttpError {
    /// A timeout, DNS or network failure: worth trying again later. A bad URL or CA file is not.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::HostNotFound | Self::Network(_) | Self::Tls(_))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl => f.write_str("the URL must be http:// or https:// with a host"),
            Self::CaFile { path, why } => write!(f, "SSL_CERT_FILE {}: {why}", path.display()),
            Self::Timeout => f.write_str("no complete response before the deadline"),
            Self::HostNotFound => f.write_str("the host name does not resolve"),
            Self::Tls(why) => write!(f, "TLS: {why}"),
            Self::Network(why) => write!(f, "network: {why}"),
            Self::BodyTooLarge => write!(f, "the response is longer than {MAX_BODY} bytes"),
            Self::BadHeader(name) => write!(f, "the request header {name:?} is not valid ASCII header text"),
        }
    }
}

impl std::error::Error for HttpError {}

/// An HTTP client with a fixed deadline and User-Agent.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    /// A client whose every call must complete within `timeout`, sending `user_agent`
    /// (e.g. `openclaw-oauth-keeper/0.1.0 cli-poke`).
    pub fn new(user_agent: &str, timeout: Duration) -> Result<Self, HttpError> {
        let roots = match trust() {
            Trust::CertFile(path) => RootCerts::Specific(Arc::new(read_ca_file(path)?)),
            // A system bundle that cannot be read or parsed falls back to the bundled roots.
            Trust::System(path) => read_ca_file(path).map_or(RootCerts::WebPki, |c| RootCerts::Specific(Arc::new(c))),
            Trust::Bundled => RootCerts::WebPki,
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(user_agent)
            // A POST that is redirected is not followed (ureq refuses to resend a body); no GET of
            // ours needs one either.
            .max_redirects(0)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Self { agent: config.into() })
    }

    /// POSTs `body` as `application/json` to `url`.
    pub fn post_json(&self, url: &str, body: &[u8]) -> Result<Response, HttpError> {
        self.post(url, "application/json", &[("Accept", "application/json")], body)
    }

    /// POSTs `body` to `url` with this `Content-Type` and the extra `headers` (name, value).
    ///
    /// A header value must be visible ASCII or spaces (no control characters, nothing a server
    /// could read as a second header); anything else is [`HttpError::BadHeader`], before any
    /// connection is made.
    pub fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, HttpError> {
        check_url(url)?;
        let mut request = self.agent.post(url);
        for (name, value) in std::iter::once(&("Content-Type", content_type)).chain(headers) {
            check_header(name, value)?;
            request = request.header(*name, *value);
        }
        let response = request.send(body).map_err(map_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_body().with_config().limit(MAX_BODY).read_to_vec().map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => HttpError::BodyTooLarge,
            other => map_error(other),
        })?;
        Ok(Response { status, body, retry_after })
    }
}

/// A header name must be a token (RFC 9110), its value visible ASCII and spaces.
fn check_header(name: &str, value: &str) -> Result<(), HttpError> {
    let name_ok =
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value_ok = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if name_ok && value_ok { Ok(()) } else { Err(HttpError::BadHeader(name.to_owned())) }
}

/// The system's CA bundle, where the distributions keep it (Debian/Ubuntu, Fedora/RHEL, openSUSE,
/// Alpine and others).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Which certificates a server's chain is checked against.
enum Trust {
    /// `SSL_CERT_FILE`: exactly these (an unreadable file is an error, not a fallback).
    CertFile(PathBuf),
    /// The system's CA bundle (what `update-ca-certificates` maintains, local CAs included).
    System(PathBuf),
    /// The Mozilla roots built into the binary (webpki-roots).
    Bundled,
}

fn trust() -> Trust {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        return Trust::CertFile(PathBuf::from(path));
    }
    SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()).map_or(Trust::Bundled, Trust::System)
}

/// What [`Client::new`] checks server certificates against, for an error message: `SSL_CERT_FILE
/// PATH`, `the system CA bundle PATH` or `the bundled Mozilla roots`.
#[must_use]
pub fn trust_store() -> String {
    match trust() {
        Trust::CertFile(p) => format!("SSL_CERT_FILE {}", p.display()),
        Trust::System(p) => format!("the system CA bundle {} (SSL_CERT_FILE names another)", p.display()),
        Trust::Bundled => "the bundled Mozilla roots (SSL_CERT_FILE names a CA file)".to_owned(),
    }
}

fn check_url(url: &str) -> Result<(), HttpError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return Err(HttpError::BadUrl);
    };
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err(HttpError::BadUrl);
    }
    Ok(())
}

fn read_ca_file(path: PathBuf) -> Result<Vec<Certificate<'static>>, HttpError> {
    let pem = std::fs::read(&path).map_err(|e| HttpError::CaFile { path: path.clone(), why: e.to_string() })?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(HttpError::CaFile { path, why: format!("not PEM: {e}") }),
        }
    }
    if certs.is_empty() {
        return Err(HttpError::CaFile { path, why: "holds no certificate".into() });
    }
    Ok(certs)
}

/// ureq's errors, without anything that could quote the URL.
fn map_error(e: ureq::Error) -> HttpError {
    match e {
        ureq::Error::Timeout(_) => HttpError::Timeout,
        ureq::Error::HostNotFound => HttpError::HostNotFound,
        ureq::Error::BadUri(_) => HttpError::BadUrl,
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => HttpError::Timeout,
        // A failed handshake (an untrusted certificate, a name mismatch) reaches us as the
        // rustls error inside an I/O error.
        ureq::Error::Io(io) => match io.get_ref() {
            Some(inner) if inner.is::<rustls::Error>() => HttpError::Tls(inner.to_string()),
            Some(inner) => HttpError::Network(format!("{}: {inner}", io.kind())),
            None => HttpError::Network(io.to_string()),
        },
        ureq::Error::Rustls(tls) => HttpError::Tls(tls.to_string()),
        ureq::Error::Protocol(p) => HttpError::Network(format!("protocol: {p}")),
        ureq::Error::ConnectProxyFailed(why) => HttpError::Network(format!("proxy: {why}")),
        ureq::Error::BodyExceedsLimit(_) => HttpError::BodyTooLarge,
        other => HttpError::Network(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A one-shot HTTP server on loopback; returns the request it read.
    fn serve_once(reply: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= head_end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            stream.write_all(reply.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (url, handle)
    }

    #[test]
    fn posts_json_and_returns_every_status() {
        let (url, server) =
            serve_once("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}");
        let client = Client::new("keeper-test/1", Duration::from_secs(10)).unwrap();
        let response = client.post_json(&url, br#"{"a":1}"#).unwrap();
        assert_eq!(response.status, 429);
        assert_eq!(response.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(response.body, b"{}");
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains("user-agent: keeper-test/1\r\n"), "{request}");
        assert!(request.to_ascii_lowercase().contains("content-type: application/json\r\n"), "{request}");
        assert!(request.ends_with(r#"{"a":1}"#), "{request}");
    }

    #[test]
    fn posts_any_content_type_with_extra_headers() {
        let (url, server) = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let client = Client::new("keeper-test/1", Duration::from_secs(10)).unwrap();
        let headers = [("Title", "a title: with colon"), ("Priority", "5")];
        let response = client.post(&url, "text/plain; charset=utf-8", &headers, "é\nx".as_bytes()).unwrap();
        assert_eq!(response.status, 200);
        let request = server.join().unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("content-type: text/plain; charset=utf-8\r\n"), "{request}");
        assert!(lower.contains("title: a title: with colon\r\n"), "{request}");
        assert!(lower.contains("priority: 5\r\n"), "{request}");
        assert!(!lower.contains("accept: application/json"), "{request}");
        assert!(request.ends_with("é\nx"), "{request}");
    }

    #[test]
    fn a_header_that_could_split_the_request_is_refused_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let client = Client::new("keeper-test/1", Duration::from_secs(2)).unwrap();
        for (name, value) in [("Title", "a\r\nX-Injected: 1"), ("Title", "caf\u{e9}"), ("Bad Name", "v"), ("", "v")] {
            let err = client.post(&url, "text/plain", &[(name, value)], b"x").unwrap_err();
            assert!(matches!(&err, HttpError::BadHeader(n) if n == name), "{err:?}");
            assert!(!err.is_transient());
        }
        listener.set_nonblocking(true).unwrap();
        assert!(listener.accept().is_err(), "no connection was made");
    }

    #[test]
    fn a_silent_server_is_a_timeout_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/secret-path", listener.local_addr().unwrap());
        let client = Client::new("keeper-test/1", Duration::from_millis(300)).unwrap();
        let err = client.post_json(&url, b"{}").unwrap_err();
        assert!(matches!(err, HttpError::Timeout), "{err:?}");
        assert!(err.is_transient());
        drop(listener);
    }

    #[test]
    fn errors_never_quote_the_url() {
        let client = Client::new("keeper-test/1", Duration::from_secs(2)).unwrap();
        for url in ["ftp://h/secret-path", "https:///secret-path", "http://127.0.0.1:1/secret-path"] {
            let err = client.post_json(url, b"{}").unwrap_err();
            assert!(!err.to_string().contains("secret-path"), "{url}: {err}");
        }
    }
}
