//! Webhook notifications: one message per event, in the form the receiver speaks, posted through
//! the keeper's one HTTP client ([`keeper_core::http`]: rustls, proxies from the environment,
//! `SSL_CERT_FILE`, a deadline).
//!
//! Forms (`--notify-format`):
//! - `slack`: `POST URL`, `application/json`, `{"text": TEXT}` (Mattermost and Slack incoming
//!   webhooks, and everything that copies them: Rocket.Chat, Discord's `/slack` endpoint, …).
//! - `ntfy`: `POST TOPIC_URL`, `text/plain; charset=utf-8`, the text as the body, with `Title`,
//!   `Tags` (an emoji tag and the event's name) and `Priority` headers (ntfy's "publish as a
//!   plain body" form).
//! - `json`: `POST URL`, `application/json`, `{"event", "text", "host", "fingerprint"}`, for
//!   anything that routes on fields. `fingerprint` is the refresh token's fingerprint as the
//!   REAUTH flag and the log show it, or null; never a token.
//!
//! The URL is a secret (a Slack hook's path, an ntfy topic): no message, log line or error quotes
//! it. The text names the host, the reason and the files, never a token.

use keeper_core::http::{Client, HttpError};
use std::fmt;
use std::time::Duration;

/// `--notify-timeout`'s default (the flag's own default is the same, spelled `20s`).
#[cfg(test)]
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// What the receiver speaks. The variants' doc comments are `--notify-format`'s possible values
/// in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
// Reason: --help text, where Markdown backticks would show literally.
#[allow(clippy::doc_markdown)]
pub(crate) enum Format {
    /// {"text": …}: Mattermost, Slack, Rocket.Chat incoming webhooks
    Slack,
    /// the text as the body, POSTed to the topic's URL, with Title, Tags and Priority headers
    Ntfy,
    /// {"event", "text", "host", "fingerprint"}
    Json,
}

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The login is dead; a human must run `claude auth login`.
    ReauthNeeded,
    /// The refresh keeps failing with no sign of a dead login.
    RefreshFailing,
    /// A REAUTH episode or a failure streak is over.
    Recovered,
    /// The login's hard end is near (or past).
    LoginEnds,
    /// A keeper unit failed (`--notify-failed`).
    UnitFailed,
}

impl Event {
    /// The name the `json` form and the ntfy tags carry.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::ReauthNeeded => "reauth_needed",
            Self::RefreshFailing => "refresh_failing",
            Self::Recovered => "recovered",
            Self::LoginEnds => "login_ends",
            Self::UnitFailed => "unit_failed",
        }
    }

    /// ntfy: (title after "… on HOST", priority 1–5, emoji tag).
    fn ntfy(self) -> (&'static str, u8, &'static str) {
        match self {
            Self::ReauthNeeded => ("Claude login needed", 5, "rotating_light"),
            Self::RefreshFailing => ("Claude token refresh failing", 4, "warning"),
            Self::Recovered => ("recovered", 3, "white_check_mark"),
            Self::LoginEnds => ("Claude login ends soon", 4, "hourglass_flowing_sand"),
            Self::UnitFailed => ("a keeper unit failed", 4, "x"),
        }
    }
}

/// One webhook: where, in which form, how long a post may take. `Debug` hides the URL.
#[derive(Clone)]
pub(crate) struct Webhook {
    url: String,
    format: Format,
    timeout: Duration,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook").field("format", &self.format).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// The User-Agent of every post.
pub(crate) fn user_agent() -> String {
    format!("openclaw-oauth-keeper/{} cli-poke", env!("CARGO_PKG_VERSION"))
}

/// One request, before it is sent.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Visible ASCII only (a header value): anything else becomes `?`.
fn header_text(s: &str) -> String {
    s.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// The request `format` makes of a message.
fn request(format: Format, event: Event, host: &str, text: &str, fingerprint: Option<&str>) -> Request {
    match format {
        Format::Slack => Request {
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::json!({ "text": text }).to_string().into_bytes(),
        },
        Format::Json => Request {
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::json!({
                "event": event.name(),
                "text": text,
                "host": host,
                "fingerprint": fingerprint,
            })
            .to_string()
            .into_bytes(),
        },
        Format::Ntfy => {
            let (title, priority, emoji) = event.ntfy();
            Request {
                content_type: "text/plain; charset=utf-8",
                headers: vec![
                    ("Title", header_text(&format!("openclaw-oauth-keeper on {host}: {title}"))),
                    ("Tags", format!("{emoji},{}", event.name())),
                    ("Priority", priority.to_string()),
                ],
                body: text.as_bytes().to_vec(),
            }
        }
    }
}

impl Webhook {
    /// Checks the URL's scheme; an empty URL is no webhook.
    pub(crate) fn new(url: Option<String>, format: Format, timeout: Duration) -> Result<Option<Self>, String> {
        let Some(url) = url.filter(|u| !u.is_empty()) else { return Ok(None) };
        let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err("--notify-url must start with http:// or https://".into());
        }
        Ok(Some(Self { url, format, timeout }))
    }

    /// Posts one message; `fingerprint` is the refresh token's fingerprint, when the event has
    /// one. The error says what failed, never the URL.
    pub(crate) fn post(&self, event: Event, text: &str, fingerprint: Option<&str>) -> Result<(), String> {
        let req = request(self.format, event, &crate::reauth::hostname(), text, fingerprint);
        let client = Client::new(&user_agent(), self.timeout).map_err(|e| describe(&e, self.timeout))?;
        let headers: Vec<(&str, &str)> = req.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response =
            client.post(&self.url, req.content_type, &headers, &req.body).map_err(|e| describe(&e, self.timeout))?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!("the webhook answered HTTP {}", response.status))
        }
    }
}

/// An HTTP error as a notification failure, with what to check.
fn describe(e: &HttpError, timeout: Duration) -> String {
    match e {
        HttpError::Timeout => {
            format!("the webhook did not answer within {} (--notify-timeout)", humantime::format_duration(timeout))
        }
        HttpError::Tls(why) => format!(
            "the webhook's TLS handshake failed: {why} (its certificate is checked against {})",
            keeper_core::http::trust_store()
        ),
        HttpError::BadUrl => "the notify URL must be http:// or https:// with a host".to_owned(),
        other => format!("posting to the webhook failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(r: &Request) -> serde_json::Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn slack_is_just_text() {
        let r = request(Format::Slack, Event::ReauthNeeded, "h", "say \"hi\"\n", Some("fp"));
        assert_eq!(r.content_type, "application/json");
        assert!(r.headers.is_empty());
        assert_eq!(r.body, br#"{"text":"say \"hi\"\n"}"#);
    }

    #[test]
    fn json_names_the_event_host_and_fingerprint() {
        let events = [
            (Event::ReauthNeeded, "reauth_needed"),
            (Event::RefreshFailing, "refresh_failing"),
            (Event::Recovered, "recovered"),
            (Event::LoginEnds, "login_ends"),
            (Event::UnitFailed, "unit_failed"),
        ];
        for (event, name) in events {
            let r = request(Format::Json, event, "box", "t", Some("sk-ant-ort01-…(1a2b3c4d)"));
            assert_eq!(r.content_type, "application/json");
            assert_eq!(
                json(&r),
                serde_json::json!({"event": name, "text": "t", "host": "box", "fingerprint": "sk-ant-ort01-…(1a2b3c4d)"})
            );
        }
        let r = request(Format::Json, Event::UnitFailed, "box", "t", None);
        assert_eq!(json(&r)["fingerprint"], serde_json::Value::Null);
    }

    #[test]
    fn ntfy_has_a_plain_body_and_title_tags_priority() {
        let r = request(Format::Ntfy, Event::ReauthNeeded, "box", "line one\nline two é", Some("fp"));
        assert_eq!(r.content_type, "text/plain; charset=utf-8");
        assert_eq!(r.body, "line one\nline two é".as_bytes());
        assert_eq!(
            r.headers,
            [
                ("Title", "openclaw-oauth-keeper on box: Claude login needed".to_owned()),
                ("Tags", "rotating_light,reauth_needed".to_owned()),
                ("Priority", "5".to_owned()),
            ]
        );
        let r = request(Format::Ntfy, Event::Recovered, "höst\r\n", "t", None);
        assert_eq!(r.headers[0].1, "openclaw-oauth-keeper on h?st??: recovered", "header text stays one ASCII line");
        assert_eq!(r.headers[2].1, "3");
    }

    #[test]
    fn urls_are_checked_and_debug_hides_them() {
        assert!(
            Webhook::new(Some("ftp://h/x".into()), Format::Slack, DEFAULT_TIMEOUT).unwrap_err().contains("http://")
        );
        assert!(Webhook::new(Some(String::new()), Format::Slack, DEFAULT_TIMEOUT).unwrap().is_none());
        let w = Webhook::new(Some("HTTPS://h/hooks/SECRET".into()), Format::Ntfy, DEFAULT_TIMEOUT).unwrap().unwrap();
        assert!(!format!("{w:?}").contains("SECRET"));
    }

    #[test]
    fn an_error_status_fails_without_quoting_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/SECRET", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0_u8; 4096];
            let mut seen = Vec::new();
            while !String::from_utf8_lossy(&seen).contains("\"text\"") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "closed early");
                seen.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        });
        let w = Webhook::new(Some(url), Format::Slack, Duration::from_secs(10)).unwrap().unwrap();
        let err = w.post(Event::UnitFailed, "x", None).unwrap_err();
        server.join().unwrap();
        assert_eq!(err, "the webhook answered HTTP 404");
    }
}
