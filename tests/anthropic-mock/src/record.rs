//! What the mock records, how it is configured, and the state its threads share.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::TcpStream;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

/// One request the mock answered (or, for [`TokenEndpoint::Blackhole`], swallowed).
///
/// Tokens appear only as fingerprints (first 8 hex digits of SHA-256, as
/// [`credmap::Secret::fingerprint`] prints them), so `Debug` output is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// When the request (head and body) had arrived.
    pub at: SystemTime,
    /// The host of the proxy's `CONNECT` (without the port), e.g. `api.anthropic.com`; empty for a
    /// plain request sent to the proxy port.
    pub connect_host: String,
    /// Which client connection carried it (numbered from 0 in accept order): equal numbers mean
    /// the client kept the connection alive.
    pub connection: u64,
    /// The HTTP method.
    pub method: String,
    /// The request target as sent, query string included.
    pub path: String,
    /// Fingerprint of the `Authorization: Bearer` token, else of `x-api-key`.
    pub token_fingerprint: Option<String>,
    /// The status the mock answered with; 0 when it never answers ([`TokenEndpoint::Blackhole`]).
    /// Decided on arrival, so it is set even while [`crate::Mock::set_reply_delay`] holds the reply.
    pub status: u16,
    /// Whether the JSON body had `"stream": true`.
    pub stream: bool,
    /// The JSON body's `model`.
    pub model: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// Which endpoint the request hit, with its details.
    pub kind: RequestKind,
}

/// Which endpoint a [`Request`] hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `POST /v1/oauth/token` or `/oauth/token`: a token refresh (or any other grant).
    OAuthToken {
        /// The `Content-Type` header; the real endpoint wants JSON and rejects forms.
        content_type: Option<String>,
        /// The body's `grant_type`.
        grant_type: Option<String>,
        /// The body's `client_id`.
        client_id: Option<String>,
        /// The body's `scope`.
        scope: Option<String>,
        /// Fingerprint of the body's `refresh_token`.
        refresh_fingerprint: Option<String>,
    },
    /// `GET /api/oauth/...` (profile, account and the like), answered with a minimal account.
    Profile,
    /// Anything else (answered 404), including plain non-`CONNECT` proxy requests (502).
    Other,
}

/// How the OAuth token endpoint behaves; see [`crate::Mock::set_token_endpoint`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// Accept a live refresh token once, invalidate it and issue new tokens (the real behaviour).
    Rotate {
        /// The new access token's `expires_in`, in seconds.
        expires_in: u64,
        /// `refresh_token_expires_in` in the answer, when `Some`.
        refresh_token_expires_in: Option<u64>,
        /// Whether the answer carries a new refresh token (which then becomes live).
        include_refresh_token: bool,
    },
    /// Always `400 invalid_grant`, as when the login was revoked.
    InvalidGrant,
    /// Always `500 {"error":"server_error"}`.
    ServerError,
    /// Read the request and never answer; the connection stays open until the client closes it or
    /// the mock is dropped.
    Blackhole,
}

impl Default for TokenEndpoint {
    fn default() -> Self {
        Self::Rotate { expires_in: 28_800, refresh_token_expires_in: None, include_refresh_token: true }
    }
}

/// A one-off answer of the token endpoint, served (in queue order, one per token request) before
/// [`TokenEndpoint`] decides; see [`crate::Mock::queue_token_answers`]. None of them consumes the
/// refresh token presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAnswer {
    /// `429 {"error":"rate_limit_error"}`, with `Retry-After: N` (seconds) when `Some(N)`.
    TooManyRequests {
        /// The `Retry-After` header's seconds.
        retry_after: Option<u64>,
    },
    /// `500 {"error":"server_error"}`.
    ServerError,
    /// `200` with a body that is not JSON (cut off mid-object).
    Malformed,
}

/// Tokens the endpoint issued in one rotation: the only place the mock exposes raw tokens, so
/// tests can compare them with what a client wrote. `Debug` shows fingerprints only.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// The new access token (`sk-ant-oat01-…`).
    pub access: String,
    /// The new refresh token (`sk-ant-ort01-…`), unless the endpoint was told to omit it.
    pub refresh: Option<String>,
    /// When they were issued.
    pub at: SystemTime,
}

impl fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("access", &fingerprint(&self.access))
            .field("refresh", &self.refresh.as_deref().map(fingerprint))
            .field("at", &self.at)
            .finish()
    }
}

/// The fingerprint the keeper tools print for `token`.
pub(crate) fn fingerprint(token: &str) -> String {
    credmap::Secret::new(token).fingerprint().to_string()
}

/// Mutable state behind one lock (configuration and recording are small and rarely contended).
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) requests: Vec<Request>,
    pub(crate) rejected: HashSet<String>,
    pub(crate) reply: String,
    pub(crate) reply_delay: Duration,
    pub(crate) token_endpoint: TokenEndpoint,
    /// One-off answers served before `token_endpoint` decides.
    pub(crate) queued_token_answers: VecDeque<TokenAnswer>,
    /// Extra response headers for the answer about to be written on a connection (by id).
    pub(crate) extra_headers: HashMap<u64, Vec<(String, String)>>,
    /// Raw refresh tokens: a fingerprint alone could collide.
    pub(crate) live_refresh: HashSet<String>,
    pub(crate) once_live: HashSet<String>,
    pub(crate) reuses: usize,
    pub(crate) issued: Vec<IssuedTokens>,
    pub(crate) served: u64,
    pub(crate) shutdown: bool,
}

/// What the accept loop, the connection threads and the [`crate::Mock`] handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every new request and on shutdown.
    pub(crate) changed: Condvar,
    /// Open connections, so `Drop` can shut their sockets down and unblock their threads.
    pub(crate) conns: Mutex<HashMap<u64, TcpStream>>,
}

impl crate::accept::Listening for Shared {
    fn shutting_down(&self) -> bool {
        self.lock().shutdown
    }
    fn conns(&self) -> &Mutex<HashMap<u64, TcpStream>> {
        &self.conns
    }
}

impl Shared {
    pub(crate) fn new() -> Self {
        let state = State { reply: "ok".to_owned(), ..State::default() };
        Self { state: Mutex::new(state), changed: Condvar::new(), conns: Mutex::new(HashMap::new()) }
    }

    /// The state; a panicked handler thread must not take every later assertion down with it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, req: Request) {
        self.lock().requests.push(req);
        self.changed.notify_all();
    }

    /// Sleeps for `d`, or less if the mock shuts down meanwhile; returns whether it shut down.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) =
            self.changed.wait_timeout_while(guard, d, |s| !s.shutdown).unwrap_or_else(PoisonError::into_inner);
        guard.shutdown
    }
}
