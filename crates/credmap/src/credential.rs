//! The format-independent credential model.

use crate::{ExpiresAt, Secret};
use serde_json::{Map, Value};

/// An Anthropic OAuth credential, independent of where it was read from.
///
/// `other_fields` carries every field of the source's credential object that this model does not
/// interpret (for Claude, e.g. `rateLimitTier`), so that writing it into a new document of the same
/// format loses nothing. Updating an existing document never needs it: the format modules change
/// only the fields they own and keep everything else where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    /// The access token (`sk-ant-oat01-…`), what OpenClaw sends to the API.
    pub access_token: Secret,
    /// The refresh token (`sk-ant-ort01-…`). It rotates on every refresh: whoever else holds a copy
    /// and refreshes logs the Claude CLI out.
    pub refresh_token: Option<Secret>,
    /// When the access token expires.
    pub expires_at: ExpiresAt,
    /// OAuth scopes, when the source records them.
    pub scopes: Vec<String>,
    /// Subscription type (`max`, `pro`, …), when the source records it.
    pub subscription_type: Option<String>,
    /// When the refresh token itself expires (newer Claude CLI builds), when recorded.
    pub refresh_token_expires_at: Option<ExpiresAt>,
    /// The OAuth client id (newer Claude CLI builds), when recorded.
    pub client_id: Option<String>,
    /// Fields of the source's credential object that the model does not interpret.
    pub other_fields: Map<String, Value>,
}

impl Credential {
    /// A credential with just the three fields every format has.
    #[must_use]
    pub fn new(access_token: Secret, refresh_token: Option<Secret>, expires_at: ExpiresAt) -> Self {
        Self {
            access_token,
            refresh_token,
            expires_at,
            scopes: Vec::new(),
            subscription_type: None,
            refresh_token_expires_at: None,
            client_id: None,
            other_fields: Map::new(),
        }
    }

    /// Whether the access token has expired at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at.remaining_ms(now_ms) <= 0
    }
}

/// What to do with the refresh token when mapping a credential into an OpenClaw store.
///
/// The Claude CLI must stay the **only** refresher: refresh tokens rotate, and a second holder that
/// refreshes logs the CLI out (docs/UPSTREAM.md, "Refresh tokens and the one-refresher rule"). [`RefreshPolicy::AccessOnly`] is therefore the
/// safe choice; [`RefreshPolicy::Carry`] reproduces the first seed's field mapping for users who
/// explicitly ask for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshPolicy {
    /// Copy the refresh token too (the seed's `refreshToken → refresh` mapping).
    Carry,
    /// Copy the access token and expiry only; remove any refresh token the target holds.
    AccessOnly,
}
