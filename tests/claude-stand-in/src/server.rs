//! The simulated token endpoint (`POST /v1/oauth/token`, `grant_type=refresh_token`).
//!
//! Without a state file every refresh succeeds (unless the refresh token is declared dead). With
//! one (`CLAUDE_STAND_IN_SERVER=FILE`) the endpoint behaves like Anthropic's as
//! docs/UPSTREAM.md ("Claude Code CLI") describes it, shared by every stand-in process that names the same file:
//!
//! - exactly one refresh token of the family is valid; a refresh rotates it (the old one is dead
//!   from then on) and issues a new access token valid for `expires_in` seconds;
//! - presenting an already rotated refresh token is a **reuse** (two refreshers holding copies of
//!   one token): `invalid_grant`, counted, and with `revoke_family_on_reuse` the whole family dies;
//! - the family has an absolute expiry (30 days after the login by default), after which every
//!   refresh is `invalid_grant`: only a human login helps.
//!
//! The state file is JSON, read and rewritten under an exclusive `flock`; it records fingerprints
//! (first 8 hex digits of the SHA-256), never tokens:
//!
//! ```json
//! {"refresh_token_fp": "1a2b3c4d",      // the valid refresh token; null: adopt the next one presented
//!  "family_expires_at": 1769817600000,  // ms; null: set to adoption + family_lifetime_ms
//!  "family_lifetime_ms": 2592000000,    // 30 days
//!  "expires_in": 28800,                 // s, lifetime of issued access tokens; null: the env knob or 8 h
//!  "revoked": false,                    // the family is dead (set it to simulate a revoked login)
//!  "revoke_family_on_reuse": false,
//!  "refreshes": 0, "reuses": 0, "rejections": 0,   // counters (rejections include reuses)
//!  "last_refresh_at": null,
//!  "rotated_fps": ["…"],                // refresh tokens rotated out, oldest first
//!  "access_tokens": [{"fp": "…", "issued_at": 0, "expires_at": 0}],  // issued, newest last
//!  "events": [{"at": 0, "result": "rotated", "presented": "…"}]}     // every request, newest last
//! ```
//!
//! `result` is one of `adopted` (first refresh of an adopted family, also a rotation), `rotated`,
//! `reused`, `unknown`, `revoked`, `family-expired`, `dead` (the dead-token knob). Lists keep the
//! newest [`KEEP_LAST`] entries.

use credmap::Fingerprint;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{Map, Value, json};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Default absolute lifetime of a refresh-token family: 30 days.
pub const FAMILY_LIFETIME_MS: i64 = 30 * 24 * 3600 * 1000;
/// Default access-token lifetime: 8 hours, as measured.
pub const DEFAULT_EXPIRES_IN: u64 = 28_800;
/// How many entries each list keeps.
pub const KEEP_LAST: usize = 5000;

/// One issued access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccess {
    /// Its fingerprint.
    pub fp: String,
    /// When it was issued (ms).
    pub issued_at: i64,
    /// When it expires (ms).
    pub expires_at: i64,
}

/// One request to the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When (ms, by the stand-in's clock).
    pub at: i64,
    /// What the endpoint answered (see the module docs).
    pub result: String,
    /// Fingerprint of the refresh token presented.
    pub presented: String,
}

/// The endpoint's state (see the module docs for the file format).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs, reason = "each field is documented in the module's file format")]
pub struct State {
    pub refresh_token_fp: Option<String>,
    pub family_expires_at: Option<i64>,
    pub family_lifetime_ms: i64,
    pub expires_in: Option<u64>,
    pub revoked: bool,
    pub revoke_family_on_reuse: bool,
    pub refreshes: u64,
    pub reuses: u64,
    pub rejections: u64,
    pub last_refresh_at: Option<i64>,
    pub rotated_fps: Vec<String>,
    pub access_tokens: Vec<IssuedAccess>,
    pub events: Vec<Event>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            refresh_token_fp: None,
            family_expires_at: None,
            family_lifetime_ms: FAMILY_LIFETIME_MS,
            expires_in: None,
            revoked: false,
            revoke_family_on_reuse: false,
            refreshes: 0,
            reuses: 0,
            rejections: 0,
            last_refresh_at: None,
            rotated_fps: Vec::new(),
            access_tokens: Vec::new(),
            events: Vec::new(),
        }
    }
}

/// What the endpoint issued.
#[derive(Debug, Clone)]
pub struct Grant {
    /// New access token.
    pub access_token: String,
    /// New refresh token.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
}

impl State {
    /// A state for a family whose valid refresh token is `refresh_token`, expiring absolutely at
    /// `family_expires_at` (what a test writes before the first refresh).
    #[must_use]
    pub fn for_login(refresh_token: &str, family_expires_at: i64) -> Self {
        Self {
            refresh_token_fp: Some(Fingerprint::of(refresh_token).to_string()),
            family_expires_at: Some(family_expires_at),
            ..Self::default()
        }
    }

    /// Parses the file's JSON; absent keys take their defaults.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let o = v.as_object().ok_or("the state is not a JSON object")?;
        let int = |k: &str| o.get(k).and_then(Value::as_i64);
        let uint = |k: &str| o.get(k).and_then(Value::as_u64);
        let string = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
        let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        let list = |k: &str| o.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
        Ok(Self {
            refresh_token_fp: string("refresh_token_fp"),
            family_expires_at: int("family_expires_at"),
            family_lifetime_ms: int("family_lifetime_ms").unwrap_or(FAMILY_LIFETIME_MS),
            expires_in: uint("expires_in"),
            revoked: flag("revoked"),
            revoke_family_on_reuse: flag("revoke_family_on_reuse"),
            refreshes: uint("refreshes").unwrap_or(0),
            reuses: uint("reuses").unwrap_or(0),
            rejections: uint("rejections").unwrap_or(0),
            last_refresh_at: int("last_refresh_at"),
            rotated_fps: list("rotated_fps").iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            access_tokens: list("access_tokens")
                .iter()
                .filter_map(|v| {
                    Some(IssuedAccess {
                        fp: v.get("fp")?.as_str()?.to_owned(),
                        issued_at: v.get("issued_at")?.as_i64()?,
                        expires_at: v.get("expires_at")?.as_i64()?,
                    })
                })
                .collect(),
            events: list("events")
                .iter()
                .filter_map(|v| {
                    Some(Event {
                        at: v.get("at")?.as_i64()?,
                        result: v.get("result")?.as_str()?.to_owned(),
                        presented: v.get("presented")?.as_str()?.to_owned(),
                    })
                })
                .collect(),
        })
    }

    /// The file's JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("refresh_token_fp".into(), json!(self.refresh_token_fp));
        o.insert("family_expires_at".into(), json!(self.family_expires_at));
        o.insert("family_lifetime_ms".into(), json!(self.family_lifetime_ms));
        o.insert("expires_in".into(), json!(self.expires_in));
        o.insert("revoked".into(), json!(self.revoked));
        o.insert("revoke_family_on_reuse".into(), json!(self.revoke_family_on_reuse));
        o.insert("refreshes".into(), json!(self.refreshes));
        o.insert("reuses".into(), json!(self.reuses));
        o.insert("rejections".into(), json!(self.rejections));
        o.insert("last_refresh_at".into(), json!(self.last_refresh_at));
        o.insert("rotated_fps".into(), json!(self.rotated_fps));
        let access: Vec<Value> = self
            .access_tokens
            .iter()
            .map(|a| json!({"fp": a.fp, "issued_at": a.issued_at, "expires_at": a.expires_at}))
            .collect();
        o.insert("access_tokens".into(), Value::Array(access));
        let events: Vec<Value> =
            self.events.iter().map(|e| json!({"at": e.at, "result": e.result, "presented": e.presented})).collect();
        o.insert("events".into(), Value::Array(events));
        Value::Object(o)
    }

    /// Whether an access token with this fingerprint was issued and is unexpired at `at_ms`.
    #[must_use]
    pub fn access_token_valid_at(&self, fp: &str, at_ms: i64) -> bool {
        self.access_tokens.iter().any(|a| a.fp == fp && a.issued_at <= at_ms && at_ms < a.expires_at)
    }

    /// Reads a state file (absent: the default state).
    pub fn load(path: &Path) -> io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => parse_bytes(&bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes a state file (for tests setting up a scenario; not locked).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, serde_json::to_vec_pretty(&self.to_json()).expect("a Value serialises"))
    }

    /// One refresh request, presenting `refresh_token` at `now_ms`.
    pub fn refresh(&mut self, refresh_token: &str, now_ms: i64, default_expires_in: u64) -> Result<Grant, String> {
        let presented = Fingerprint::of(refresh_token).to_string();
        let result = if self.revoked {
            "revoked"
        } else if self.family_expires_at.is_some_and(|t| now_ms >= t) {
            "family-expired"
        } else if self.refresh_token_fp.is_none() {
            "adopted"
        } else if self.refresh_token_fp.as_deref() == Some(presented.as_str()) {
            "rotated"
        } else if self.rotated_fps.contains(&presented) {
            "reused"
        } else {
            "unknown"
        };
        let outcome = match result {
            "adopted" | "rotated" => {
                if result == "adopted" {
                    self.family_expires_at.get_or_insert(now_ms + self.family_lifetime_ms);
                }
                let grant = Grant {
                    access_token: crate::tokens::access_token(),
                    refresh_token: crate::tokens::refresh_token(),
                    expires_in: self.expires_in.unwrap_or(default_expires_in),
                };
                self.rotated_fps.push(presented.clone());
                self.refresh_token_fp = Some(Fingerprint::of(&grant.refresh_token).to_string());
                self.refreshes += 1;
                self.last_refresh_at = Some(now_ms);
                self.access_tokens.push(IssuedAccess {
                    fp: Fingerprint::of(&grant.access_token).to_string(),
                    issued_at: now_ms,
                    expires_at: now_ms.saturating_add(secs_to_ms(grant.expires_in)),
                });
                Ok(grant)
            }
            _ => {
                if result == "reused" {
                    self.reuses += 1;
                    if self.revoke_family_on_reuse {
                        self.revoked = true;
                    }
                }
                self.rejections += 1;
                Err(format!("refresh token {result}"))
            }
        };
        self.events.push(Event { at: now_ms, result: result.to_owned(), presented });
        trim(&mut self.rotated_fps);
        trim(&mut self.access_tokens);
        trim(&mut self.events);
        outcome
    }

    /// Records a request refused before reaching the family (the dead-token knob).
    pub fn record_dead(&mut self, refresh_token: &str, now_ms: i64) {
        self.rejections += 1;
        self.events.push(Event {
            at: now_ms,
            result: "dead".into(),
            presented: Fingerprint::of(refresh_token).to_string(),
        });
        trim(&mut self.events);
    }
}

/// Seconds as milliseconds, saturating.
#[must_use]
pub fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs).map_or(i64::MAX, |s| s.saturating_mul(1000))
}

fn trim<T>(list: &mut Vec<T>) {
    if list.len() > KEEP_LAST {
        list.drain(..list.len() - KEEP_LAST);
    }
}

fn parse_bytes(bytes: &[u8]) -> io::Result<State> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(State::default());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    State::from_json(&value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Runs `f` on the state in `path` under an exclusive `flock`, then writes it back.
pub fn update<R>(path: &Path, f: impl FnOnce(&mut State) -> R) -> io::Result<R> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    let mut file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io::Error::from(e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut state = parse_bytes(&bytes)?;
    let result = f(&mut state);
    let out = serde_json::to_vec_pretty(&state.to_json()).expect("a Value serialises");
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&out)?;
    let f: &File = &file;
    f.set_len(out.len() as u64)?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000;

    #[test]
    fn rotation_reuse_and_family_expiry() {
        let first = crate::tokens::refresh_token();
        let mut s = State::for_login(&first, T0 + FAMILY_LIFETIME_MS);
        let g1 = s.refresh(&first, T0, DEFAULT_EXPIRES_IN).unwrap();
        assert_ne!(g1.refresh_token, first);
        assert_eq!((s.refreshes, s.reuses), (1, 0));
        assert!(s.access_token_valid_at(&Fingerprint::of(&g1.access_token).to_string(), T0 + 1));
        // the rotated-out token is dead now, and presenting it is a reuse
        assert!(s.refresh(&first, T0 + 1, DEFAULT_EXPIRES_IN).is_err());
        assert_eq!((s.reuses, s.rejections), (1, 1));
        // the family survives a reuse unless told otherwise
        let g2 = s.refresh(&g1.refresh_token, T0 + 2, DEFAULT_EXPIRES_IN).unwrap();
        // past the absolute expiry even the valid token fails
        assert_eq!(
            s.refresh(&g2.refresh_token, T0 + FAMILY_LIFETIME_MS, DEFAULT_EXPIRES_IN).unwrap_err(),
            "refresh token family-expired"
        );
        let results: Vec<&str> = s.events.iter().map(|e| e.result.as_str()).collect();
        assert_eq!(results, ["rotated", "reused", "rotated", "family-expired"]);
        // round trip through the file format
        assert_eq!(State::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn reuse_can_revoke_the_family_and_unknown_tokens_are_refused() {
        let first = crate::tokens::refresh_token();
        let mut s = State { revoke_family_on_reuse: true, ..State::for_login(&first, T0 + FAMILY_LIFETIME_MS) };
        let g = s.refresh(&first, T0, 60).unwrap();
        assert_eq!(g.expires_in, 60);
        assert!(s.refresh(&crate::tokens::refresh_token(), T0, 60).is_err());
        assert!(!s.revoked, "an unknown token is not a reuse");
        assert!(s.refresh(&first, T0, 60).is_err());
        assert!(s.revoked);
        assert!(s.refresh(&g.refresh_token, T0, 60).is_err(), "a revoked family refuses even its valid token");
    }

    #[test]
    fn an_empty_state_adopts_the_first_token() {
        let mut s = State::default();
        let first = crate::tokens::refresh_token();
        s.refresh(&first, T0, DEFAULT_EXPIRES_IN).unwrap();
        assert_eq!(s.family_expires_at, Some(T0 + FAMILY_LIFETIME_MS));
        assert_eq!(s.events[0].result, "adopted");
    }
}
