//! The Claude Code CLI's `.credentials.json`.
//!
//! ```json
//! {"claudeAiOauth": {"accessToken": "sk-ant-oat01-…", "refreshToken": "sk-ant-ort01-…",
//!   "expiresAt": 1767225600000, "scopes": ["user:inference"], "subscriptionType": "max"},
//!  "mcpOAuth": {…}}
//! ```
//!
//! Only `claudeAiOauth.{accessToken, refreshToken, expiresAt}` are required. Every other field
//! and top-level key (`mcpOAuth`, `trustedDeviceToken`, …) is kept, in place, on rewrite.

use crate::error::json_type;
use crate::json::{self, Document, object_at, string_at};
use crate::{Credential, Error, ExpiresAt, Secret};
use serde_json::{Map, Value};

/// The top-level key holding the Anthropic OAuth credential.
pub const KEY: &str = "claudeAiOauth";

/// Fields of `claudeAiOauth` that [`Credential`] models; everything else is `other_fields`.
const MODELLED: [&str; 7] =
    ["accessToken", "refreshToken", "expiresAt", "scopes", "subscriptionType", "refreshTokenExpiresAt", "clientId"];

/// What a Claude credentials file holds.
#[derive(Debug, Clone, PartialEq)]
pub enum OauthState {
    /// A usable (perhaps expired) credential.
    Credential(Credential),
    /// The logged-out stub Claude CLI 2.1.197+ writes after a refresh fails with `invalid_grant`:
    /// empty tokens and `expiresAt: 0`. Only a human `claude auth login` helps.
    LoggedOut {
        /// Scopes kept in the stub.
        scopes: Vec<String>,
        /// Subscription type kept in the stub.
        subscription_type: Option<String>,
    },
}

/// Parses a `.credentials.json`; fails unless it is a JSON object with a `claudeAiOauth` object.
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let doc = json::parse(bytes)?;
    if object_at(&doc.root, KEY, KEY)?.is_none() {
        return Err(Error::Missing { path: KEY.into() });
    }
    Ok(doc)
}

/// The `claudeAiOauth` section, for comparing two versions of the file: a change elsewhere
/// (e.g. `mcpOAuth`) is not a token change.
#[must_use]
pub fn oauth_section(doc: &Document) -> Option<&Value> {
    doc.root.get(KEY)
}

/// Reads the credential, telling the logged-out stub apart.
///
/// ```
/// use credmap::claude::{self, OauthState};
/// let stub = br#"{"claudeAiOauth":{"accessToken":"","refreshToken":"","expiresAt":0,"scopes":["user:inference"],"subscriptionType":"max"}}"#;
/// let state = claude::read(&claude::parse(stub)?)?;
/// assert!(matches!(state, OauthState::LoggedOut { .. }));
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn read(doc: &Document) -> Result<OauthState, Error> {
    let oauth = object_at(&doc.root, KEY, KEY)?.ok_or_else(|| Error::Missing { path: KEY.into() })?;
    let access = string_at(oauth, "accessToken", "claudeAiOauth.accessToken")?;
    let refresh = string_at(oauth, "refreshToken", "claudeAiOauth.refreshToken")?;
    let scopes = scopes(oauth)?;
    let subscription_type = string_at(oauth, "subscriptionType", "claudeAiOauth.subscriptionType")?.map(str::to_owned);

    let expires_raw = oauth.get("expiresAt");
    let expiry_is_zero = match expires_raw {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    };
    if access.is_none_or(str::is_empty) && refresh.is_none_or(str::is_empty) && expiry_is_zero {
        return Ok(OauthState::LoggedOut { scopes, subscription_type });
    }

    let access = access.ok_or_else(|| Error::Missing { path: "claudeAiOauth.accessToken".into() })?;
    if access.is_empty() {
        return Err(Error::EmptyToken { path: "claudeAiOauth.accessToken".into() });
    }
    let refresh = match refresh {
        None => return Err(Error::Missing { path: "claudeAiOauth.refreshToken".into() }),
        Some("") => return Err(Error::EmptyToken { path: "claudeAiOauth.refreshToken".into() }),
        Some(r) => Secret::new(r),
    };
    let expires_at = match expires_raw {
        None | Some(Value::Null) => return Err(Error::Missing { path: "claudeAiOauth.expiresAt".into() }),
        Some(v) => ExpiresAt::from_json(v, "claudeAiOauth.expiresAt")?,
    };
    let refresh_token_expires_at = match oauth.get("refreshTokenExpiresAt") {
        None | Some(Value::Null) => None,
        Some(v) => Some(ExpiresAt::from_json(v, "claudeAiOauth.refreshTokenExpiresAt")?),
    };
    let client_id = string_at(oauth, "clientId", "claudeAiOauth.clientId")?.map(str::to_owned);
    let other_fields: Map<String, Value> =
        oauth.iter().filter(|(k, _)| !MODELLED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();

    Ok(OauthState::Credential(Credential {
        access_token: Secret::new(access),
        refresh_token: Some(refresh),
        expires_at,
        scopes,
        subscription_type,
        refresh_token_expires_at,
        client_id,
        other_fields,
    }))
}

/// Reads the credential; the logged-out stub is [`Error::LoggedOut`].
pub fn credential(doc: &Document) -> Result<Credential, Error> {
    match read(doc)? {
        OauthState::Credential(c) => Ok(c),
        OauthState::LoggedOut { .. } => Err(Error::LoggedOut),
    }
}

fn scopes(oauth: &Map<String, Value>) -> Result<Vec<String>, Error> {
    match oauth.get("scopes") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(Error::WrongType {
                    path: format!("claudeAiOauth.scopes[{i}]"),
                    expected: "a string",
                    found: json_type(other),
                }),
            })
            .collect(),
        Some(other) => {
            Err(Error::WrongType { path: "claudeAiOauth.scopes".into(), expected: "an array", found: json_type(other) })
        }
    }
}

/// Writes `cred` into the document's `claudeAiOauth`, creating it when absent.
///
/// Tokens and `expiresAt` are always written (a `None` refresh token removes `refreshToken`).
/// Scopes, subscription type, `refreshTokenExpiresAt`, `clientId` and `other_fields` are written
/// only when the credential has them, so mapping from a poorer format (oauth.json has no scopes)
/// keeps what the file already recorded. Existing keys keep their position.
pub fn write(doc: &mut Document, cred: &Credential) {
    let oauth = json::object_entry(&mut doc.root, KEY);
    json::set(oauth, "accessToken", Value::from(cred.access_token.expose()));
    match &cred.refresh_token {
        Some(r) => json::set(oauth, "refreshToken", Value::from(r.expose())),
        None => {
            oauth.shift_remove("refreshToken");
        }
    }
    json::set(oauth, "expiresAt", cred.expires_at.to_json());
    if !cred.scopes.is_empty() {
        json::set(oauth, "scopes", Value::from(cred.scopes.clone()));
    }
    if let Some(s) = &cred.subscription_type {
        json::set(oauth, "subscriptionType", Value::from(s.as_str()));
    }
    if let Some(e) = cred.refresh_token_expires_at {
        json::set(oauth, "refreshTokenExpiresAt", e.to_json());
    }
    if let Some(c) = &cred.client_id {
        json::set(oauth, "clientId", Value::from(c.as_str()));
    }
    for (k, v) in &cred.other_fields {
        json::set(oauth, k, v.clone());
    }
}

/// Sets only `claudeAiOauth.expiresAt` (what `cli-poke --force` does to make the CLI refresh on
/// its next API call). Fails when the document has no `claudeAiOauth` object.
pub fn set_expires_at(doc: &mut Document, expires_at: ExpiresAt) -> Result<(), Error> {
    match doc.root.get_mut(KEY) {
        Some(Value::Object(oauth)) => {
            json::set(oauth, "expiresAt", expires_at.to_json());
            Ok(())
        }
        Some(other) => Err(Error::WrongType { path: KEY.into(), expected: "an object", found: json_type(other) }),
        None => Err(Error::Missing { path: KEY.into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_MCP: &str = include_str!("../tests/fixtures/claude-2.1.112-with-mcp.json");
    const WITH_RT_EXPIRY: &str = include_str!("../tests/fixtures/claude-2.1.197-refresh-expiry.json");
    const STUB: &str = include_str!("../tests/fixtures/claude-2.1.197-logged-out-stub.json");

    #[test]
    fn reads_a_2_1_112_file_with_mcp_oauth() {
        let doc = parse(WITH_MCP.as_bytes()).unwrap();
        let c = credential(&doc).unwrap();
        assert!(c.access_token.expose().starts_with("sk-ant-oat01-"));
        assert!(c.refresh_token.as_ref().unwrap().expose().starts_with("sk-ant-ort01-"));
        assert_eq!(c.expires_at.as_millis(), 1_767_225_600_000);
        assert_eq!(c.scopes, ["user:inference", "user:profile"]);
        assert_eq!(c.subscription_type.as_deref(), Some("max"));
        assert_eq!(c.refresh_token_expires_at, None);
        assert!(c.other_fields.contains_key("rateLimitTier"));
    }

    #[test]
    fn reads_optional_refresh_expiry_and_client_id() {
        let c = credential(&parse(WITH_RT_EXPIRY.as_bytes()).unwrap()).unwrap();
        assert_eq!(c.refresh_token_expires_at.unwrap().as_millis(), 1_769_817_600_000);
        assert_eq!(c.client_id.as_deref(), Some("9d1c250a-e61b-44d9-88ed-5944d1962f5e"));
        assert_eq!(c.other_fields.get("rateLimitTier"), Some(&Value::Null));
    }

    #[test]
    fn logged_out_stub_is_its_own_case_never_a_credential() {
        let doc = parse(STUB.as_bytes()).unwrap();
        assert_eq!(
            read(&doc).unwrap(),
            OauthState::LoggedOut {
                scopes: vec!["user:inference".into(), "user:profile".into()],
                subscription_type: Some("max".into())
            }
        );
        assert_eq!(credential(&doc), Err(Error::LoggedOut));
    }

    #[test]
    fn half_a_stub_is_an_error_not_a_stub() {
        let empty_access =
            br#"{"claudeAiOauth":{"accessToken":"","refreshToken":"sk-ant-ort01-x","expiresAt":1767225600000}}"#;
        assert_eq!(
            credential(&parse(empty_access).unwrap()),
            Err(Error::EmptyToken { path: "claudeAiOauth.accessToken".into() })
        );
        let zero_expiry =
            br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-x","refreshToken":"sk-ant-ort01-x","expiresAt":0}}"#;
        assert!(matches!(credential(&parse(zero_expiry).unwrap()), Err(Error::InvalidExpiry { problem: "zero", .. })));
    }

    #[test]
    fn rejects_missing_and_mistyped_fields_by_path() {
        let cases: [(&[u8], Error); 4] = [
            (br#"{"mcpOAuth":{}}"#, Error::Missing { path: "claudeAiOauth".into() }),
            (
                br#"{"claudeAiOauth":{"accessToken":"a","expiresAt":1767225600000}}"#,
                Error::Missing { path: "claudeAiOauth.refreshToken".into() },
            ),
            (
                br#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":"1767225600000"}}"#,
                Error::WrongType { path: "claudeAiOauth.expiresAt".into(), expected: "a number", found: "a string" },
            ),
            (
                br#"{"claudeAiOauth":{"accessToken":7,"refreshToken":"r","expiresAt":1767225600000}}"#,
                Error::WrongType { path: "claudeAiOauth.accessToken".into(), expected: "a string", found: "a number" },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).and_then(|d| credential(&d)), Err(want));
        }
    }

    #[test]
    fn write_changes_only_our_fields_in_place() {
        let mut doc = parse(WITH_MCP.as_bytes()).unwrap();
        let mut c = credential(&doc).unwrap();
        c.access_token = Secret::new("sk-ant-oat01-NEW");
        c.refresh_token = Some(Secret::new("sk-ant-ort01-NEW"));
        c.expires_at = ExpiresAt::from_millis(1_767_254_400_000).unwrap();
        write(&mut doc, &c);
        let text = String::from_utf8(doc.to_bytes()).unwrap();
        let expected = WITH_MCP
            .replace(
                &credential(&parse(WITH_MCP.as_bytes()).unwrap()).unwrap().access_token.expose().to_owned(),
                "sk-ant-oat01-NEW",
            )
            .replace(
                credential(&parse(WITH_MCP.as_bytes()).unwrap()).unwrap().refresh_token.unwrap().expose(),
                "sk-ant-ort01-NEW",
            )
            .replace("1767225600000", "1767254400000");
        assert_eq!(text, expected);
    }

    #[test]
    fn set_expires_at_touches_nothing_else() {
        let mut doc = parse(WITH_RT_EXPIRY.as_bytes()).unwrap();
        set_expires_at(&mut doc, ExpiresAt::from_millis(1_767_000_000_000).unwrap()).unwrap();
        let text = String::from_utf8(doc.to_bytes()).unwrap();
        assert_eq!(text, WITH_RT_EXPIRY.replace("1767225600000", "1767000000000"));
    }
}
