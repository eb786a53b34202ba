//! Test support: an offline stand-in for `api.anthropic.com` and the Claude OAuth token endpoint.
//!
//! [`Mock::start`] runs a TLS-terminating HTTPS proxy on `127.0.0.1`: a client sends
//! `CONNECT api.anthropic.com:443` (or `platform.claude.com`, `console.anthropic.com`,
//! `claude.ai`), the mock answers `200`, does the TLS handshake itself with a leaf certificate
//! signed by a throw-away CA (written to [`Mock::ca_pem`]), and serves HTTP/1.1 with keep-alive.
//! So the real OpenClaw gateway (undici honours `HTTPS_PROXY` and trusts `NODE_EXTRA_CA_CERTS`)
//! and the real Claude Code CLI can run offline; [`Mock::apply_env`] sets those variables.
//!
//! Endpoints:
//! - `POST /v1/messages`: `401` without a token or with a [rejected](Mock::reject_fingerprint)
//!   one; otherwise a minimal reply, as an SSE stream (`"stream": true`) or JSON.
//! - `POST /v1/messages/count_tokens`: `{"input_tokens": 10}`.
//! - `POST /v1/oauth/token` or `/oauth/token`: as [`TokenEndpoint`] says; rotation by default.
//!   One-off answers queued with [`Mock::queue_token_answers`] ([`TokenAnswer`]: 429 with
//!   `Retry-After`, 500, a malformed 200) come first.
//! - `GET /api/oauth/...`: a minimal account and organization.
//! - anything else: `404 not_found_error`; a plain (non-`CONNECT`) proxy request: `502`.
//!
//! Every request is recorded as a [`Request`], tokens as fingerprints only (the first 8 hex
//! digits of SHA-256, the same as the keeper tools print). The raw tokens the endpoint issued are
//! kept in memory for assertions ([`Mock::issued`]) and never printed.
//!
//! ```no_run
//! let dir = tempfile::tempdir().unwrap();
//! let mock = keeper_anthropic_mock::Mock::start(dir.path()).unwrap();
//! let mut gateway = std::process::Command::new("openclaw");
//! mock.apply_env(&mut gateway);
//! // ... start it, send a turn ...
//! let turns = mock.wait_for_messages(1, std::time::Duration::from_secs(30)).unwrap();
//! assert_eq!(turns[0].token_fingerprint.as_deref(), Some(keeper_anthropic_mock::fingerprint("sk-ant-oat01-…").as_str()));
//! ```
//!
//! [`WebhookReceiver`] is a webhook receiver on `127.0.0.1`, plain HTTP or HTTPS with its own
//! throw-away CA, recording every request exactly as it arrived.
//!
//! [`isolate_network`] moves the calling thread into a fresh network namespace first, so nothing
//! a test starts can reach the real services.

mod accept;
mod handlers;
mod hook;
mod http;
mod record;
mod server;
mod tls;

pub use hook::{Answer, Received, WebhookReceiver};
pub use record::{IssuedTokens, Request, RequestKind, TokenAnswer, TokenEndpoint};

use record::Shared;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Shutdown, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The fingerprint the keeper tools (and [`Request::token_fingerprint`]) show for `token`.
#[must_use]
pub fn fingerprint(token: &str) -> String {
    record::fingerprint(token)
}

/// A running mock; dropping it stops the proxy and its threads.
///
/// `Debug` shows the port and counts, never a token.
pub struct Mock {
    shared: Arc<Shared>,
    port: u16,
    ca_pem: PathBuf,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

impl fmt::Debug for Mock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Mock")
            .field("port", &self.port)
            .field("ca_pem", &self.ca_pem)
            .field("requests", &st.requests.len())
            .field("token_endpoint", &st.token_endpoint)
            .finish_non_exhaustive()
    }
}

impl Mock {
    /// Generates the CA (written to `dir/ca.pem`) and leaf certificate, binds `127.0.0.1:0` and
    /// starts serving on background threads.
    ///
    /// After [`isolate_network`], start the mock on that same thread: the listener then lives in
    /// the new namespace, where the processes spawned from that thread can reach it.
    pub fn start(dir: &Path) -> io::Result<Self> {
        let (ca, tls) = tls::generate()?;
        let ca_pem = dir.join("ca.pem");
        std::fs::write(&ca_pem, ca)?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared::new());
        let for_loop = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("anthropic-mock-accept".into())
            .spawn(move || server::accept_loop(&listener, &for_loop, &tls))?;
        Ok(Self { shared, port, ca_pem, accept: Some(accept) })
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's port on `127.0.0.1`.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) clients must trust.
    #[must_use]
    pub fn ca_pem(&self) -> &Path {
        &self.ca_pem
    }

    /// Points `cmd` at the mock: the proxy variables (both cases; loopback excluded, so a
    /// gateway's own local traffic is not proxied), `NODE_EXTRA_CA_CERTS` and `SSL_CERT_FILE`,
    /// and `NODE_USE_ENV_PROXY=1` (Node's built-in `fetch` ignores the proxy variables without it).
    pub fn apply_env(&self, cmd: &mut Command) {
        let url = self.proxy_url();
        for var in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            cmd.env(var, &url);
        }
        for var in ["NO_PROXY", "no_proxy"] {
            cmd.env(var, "127.0.0.1,localhost,::1");
        }
        cmd.env("NODE_EXTRA_CA_CERTS", &self.ca_pem).env("SSL_CERT_FILE", &self.ca_pem).env("NODE_USE_ENV_PROXY", "1");
    }

    /// Every request so far, in arrival order.
    #[must_use]
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// The `POST /v1/messages` requests so far, in arrival order.
    #[must_use]
    pub fn messages(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.kind == RequestKind::Messages).collect()
    }

    /// Waits until at least `n` `/v1/messages` requests have arrived; returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<Request>, String> {
        let is_message = |r: &&Request| r.kind == RequestKind::Messages;
        self.wait_until(timeout, |reqs| reqs.iter().filter(is_message).count() >= n)
            .map(|reqs| reqs.into_iter().filter(|r| r.kind == RequestKind::Messages).collect())
            .map_err(|e| format!("waiting for {n} /v1/messages requests: {e}"))
    }

    /// Waits until `done` holds for the requests recorded so far; returns them all.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Request]) -> bool) -> Result<Vec<Request>, String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if done(&st.requests) {
                return Ok(st.requests.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let seen: Vec<String> =
                    st.requests.iter().map(|r| format!("{} {} {}", r.method, r.path, r.status)).collect();
                return Err(format!("timed out after {timeout:?}; requests seen: {seen:?}"));
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Forgets the recorded requests (configuration, live tokens and [`Mock::issued`] stay).
    pub fn clear(&self) {
        self.shared.lock().requests.clear();
    }

    /// Answers `/v1/messages` carrying the token with this fingerprint with `401` ("OAuth token
    /// has expired"), as for an expired access token.
    pub fn reject_fingerprint(&self, fingerprint: &str) {
        self.shared.lock().rejected.insert(fingerprint.to_owned());
    }

    /// Undoes [`Mock::reject_fingerprint`].
    pub fn allow_fingerprint(&self, fingerprint: &str) {
        self.shared.lock().rejected.remove(fingerprint);
    }

    /// The assistant's reply text (default `ok`).
    pub fn set_reply(&self, text: impl Into<String>) {
        self.shared.lock().reply = text.into();
    }

    /// Holds every `/v1/messages` answer this long after recording the request, so a test can keep
    /// a turn in flight (default: none).
    pub fn set_reply_delay(&self, delay: Duration) {
        self.shared.lock().reply_delay = delay;
    }

    /// How the OAuth token endpoint behaves from now on.
    pub fn set_token_endpoint(&self, endpoint: TokenEndpoint) {
        self.shared.lock().token_endpoint = endpoint;
    }

    /// Queues one-off answers: each of the next token requests gets the next of them (whatever
    /// [`TokenEndpoint`] says), then the endpoint behaves as configured again. For "429 with
    /// `Retry-After`, then success" and the like.
    pub fn queue_token_answers(&self, answers: impl IntoIterator<Item = TokenAnswer>) {
        self.shared.lock().queued_token_answers.extend(answers);
    }

    /// Makes `refresh_token` live: [`TokenEndpoint::Rotate`] accepts it once.
    pub fn add_refresh_token(&self, refresh_token: &str) {
        let mut st = self.shared.lock();
        st.live_refresh.insert(refresh_token.to_owned());
        st.once_live.insert(refresh_token.to_owned());
    }

    /// Fingerprints of the refresh tokens that are live now, sorted.
    #[must_use]
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        let mut fps: Vec<String> = self.shared.lock().live_refresh.iter().map(|t| fingerprint(t)).collect();
        fps.sort();
        fps
    }

    /// How many times a refresh token that was once live was presented again after rotation.
    #[must_use]
    pub fn refresh_reuses(&self) -> usize {
        self.shared.lock().reuses
    }

    /// The tokens the endpoint issued, oldest first.
    #[must_use]
    pub fn issued(&self) -> Vec<IssuedTokens> {
        self.shared.lock().issued.clone()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        // Wakes replies held by the reply delay.
        self.shared.changed.notify_all();
        let Some(accept) = self.accept.take() else { return };
        let conns = accept.join().unwrap_or_default();
        // Unblocks connection threads waiting in a read (keep-alive idle, blackholed).
        for stream in self.shared.conns.lock().unwrap_or_else(PoisonError::into_inner).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        for c in conns {
            let _ = c.join();
        }
    }
}

/// Moves the calling thread into a new, empty network namespace with `lo` up.
///
/// Threads and processes started afterwards from this thread are inside it: nothing they do can
/// leave the machine, and their ports cannot collide with other tests'. Start the [`Mock`] after
/// this call, on the same thread, so that processes spawned here can reach it; other threads stay
/// in the old namespace and cannot. Needs root (`CAP_SYS_ADMIN`); otherwise returns why not.
pub fn isolate_network() -> Result<(), String> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e} (needs root or CAP_SYS_ADMIN)"))?;
    // A child forked from this thread inherits its namespace; this avoids an ioctl (unsafe code).
    // `/usr/sbin` is often missing from PATH for non-login shells.
    for ip in ["ip", "/usr/sbin/ip", "/sbin/ip"] {
        match Command::new(ip).args(["link", "set", "lo", "up"]).output() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("running `{ip} link set lo up`: {e}")),
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                return Err(format!(
                    "`{ip} link set lo up` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    Err("`ip` (iproute2) not found; the new network namespace has its loopback down".to_owned())
}
