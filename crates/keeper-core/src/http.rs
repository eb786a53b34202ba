//! The one HTTP client every tool uses: `ureq` over rustls (ring), no OpenSSL, no subprocess.
//!
//! Used for webhook notifications (`cli-poke --notify-url`) and the direct refresh at the token
//! endpoint (`cli-poke --direct`). What it guarantees:
//! - A deadline for the whole call (connect, send, receive), so nothing hangs a timer unit.
//! - Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), as curl
//!   and the Claude Code CLI take them.
//! - Server certificates checked against the bundled Mozilla roots, or, when `SSL_CERT_FILE` names
//!   a PEM file, against the certificates in that file instead (the variable's meaning for OpenSSL
//!   and curl; the tests point it at their throw-away CA).
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
        let roots = match std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
            Some(path) => RootCerts::Specific(Arc::new(read_ca_file(PathBuf::from(path))?)),
            None => RootCerts::WebPki,
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
        check_url(url)?;
        let response = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body)
            .map_err(map_error)?;
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
        ureq::Error::Io(io) => HttpError::Network(io.kind().to_string()),
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
