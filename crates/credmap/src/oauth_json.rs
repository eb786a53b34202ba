//! OpenClaw's legacy shared `~/.openclaw/credentials/oauth.json` (JSON era, up to 2026.5.x).
//!
//! ```json
//! {"anthropic": {"access": "sk-ant-oat01-…", "refresh": "sk-ant-ort01-…", "expires": 1767225600000},
//!  "openai-codex": {…}}
//! ```
//!
//! Other providers' entries and unknown fields of the `anthropic` entry are kept on rewrite.
//! Retired in SQLite-era OpenClaw (2026.6+), where its mere presence blocks every provider.

use crate::json::{self, Document, object_at, string_at};
use crate::{Credential, Error, ExpiresAt, RefreshPolicy, Secret};
use serde_json::Value;

/// The provider key this crate reads and writes.
pub const PROVIDER: &str = "anthropic";

/// Parses an `oauth.json`: any JSON object (an empty one is valid: no provider yet).
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let doc = json::parse(bytes)?;
    object_at(&doc.root, PROVIDER, PROVIDER)?;
    Ok(doc)
}

/// The Anthropic entry as a credential, or `None` when the file has none.
///
/// ```
/// let doc = credmap::oauth_json::parse(br#"{"anthropic":{"access":"sk-ant-oat01-x","expires":1767225600000}}"#)?;
/// let cred = credmap::oauth_json::anthropic(&doc)?.unwrap();
/// assert!(cred.refresh_token.is_none());
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn anthropic(doc: &Document) -> Result<Option<Credential>, Error> {
    let Some(entry) = object_at(&doc.root, PROVIDER, PROVIDER)? else {
        return Ok(None);
    };
    let access = string_at(entry, "access", "anthropic.access")?
        .ok_or_else(|| Error::Missing { path: "anthropic.access".into() })?;
    if access.is_empty() {
        return Err(Error::EmptyToken { path: "anthropic.access".into() });
    }
    let refresh = string_at(entry, "refresh", "anthropic.refresh")?.filter(|r| !r.is_empty()).map(Secret::new);
    let expires = entry
        .get("expires")
        .filter(|v| !v.is_null())
        .ok_or_else(|| Error::Missing { path: "anthropic.expires".into() })?;
    let expires_at = ExpiresAt::from_json(expires, "anthropic.expires")?;
    Ok(Some(Credential::new(Secret::new(access), refresh, expires_at)))
}

/// Writes the Anthropic entry: `access` and `expires` always, `refresh` under
/// [`RefreshPolicy::Carry`]; under [`RefreshPolicy::AccessOnly`] any `refresh` already there is
/// removed, so OpenClaw cannot rotate the CLI's refresh token away.
pub fn set_anthropic(doc: &mut Document, cred: &Credential, policy: RefreshPolicy) {
    let entry = json::object_entry(&mut doc.root, PROVIDER);
    json::set(entry, "access", Value::from(cred.access_token.expose()));
    match (&cred.refresh_token, policy) {
        (Some(r), RefreshPolicy::Carry) => json::set(entry, "refresh", Value::from(r.expose())),
        _ => {
            entry.shift_remove("refresh");
        }
    }
    json::set(entry, "expires", cred.expires_at.to_json());
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_OPENAI: &str = include_str!("../tests/fixtures/oauth-with-openai.json");

    fn cred() -> Credential {
        Credential::new(
            Secret::new("sk-ant-oat01-NEWACCESS"),
            Some(Secret::new("sk-ant-ort01-NEWREFRESH")),
            ExpiresAt::from_millis(1_767_254_400_000).unwrap(),
        )
    }

    #[test]
    fn reads_anthropic_beside_another_provider() {
        let c = anthropic(&parse(WITH_OPENAI.as_bytes()).unwrap()).unwrap().unwrap();
        assert!(c.access_token.expose().starts_with("sk-ant-oat01-TEST"));
        assert!(c.refresh_token.is_some());
        assert_eq!(c.expires_at.as_millis(), 1_767_225_600_000);
    }

    #[test]
    fn access_only_keeps_other_providers_and_drops_refresh() {
        let mut doc = parse(WITH_OPENAI.as_bytes()).unwrap();
        set_anthropic(&mut doc, &cred(), RefreshPolicy::AccessOnly);
        let v: Value = serde_json::from_slice(&doc.to_bytes()).unwrap();
        assert_eq!(v["openai-codex"], serde_json::from_str::<Value>(WITH_OPENAI).unwrap()["openai-codex"]);
        assert_eq!(v["anthropic"]["access"], "sk-ant-oat01-NEWACCESS");
        assert_eq!(v["anthropic"]["expires"], 1_767_254_400_000_i64);
        assert!(v["anthropic"].get("refresh").is_none());
        // key order: openai-codex stays first, anthropic's fields keep their places
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["openai-codex", "anthropic"]);
    }

    #[test]
    fn carry_writes_the_seed_mapping() {
        let mut doc = parse(b"{}").unwrap();
        set_anthropic(&mut doc, &cred(), RefreshPolicy::Carry);
        assert_eq!(
            String::from_utf8(doc.to_bytes()).unwrap(),
            r#"{"anthropic":{"access":"sk-ant-oat01-NEWACCESS","refresh":"sk-ant-ort01-NEWREFRESH","expires":1767254400000}}"#
        );
        assert_eq!(anthropic(&doc).unwrap().unwrap(), cred());
    }

    #[test]
    fn no_entry_is_none_and_bad_entries_are_errors() {
        assert_eq!(anthropic(&parse(br#"{"openai":{}}"#).unwrap()), Ok(None));
        assert!(matches!(parse(br#"{"anthropic":[]}"#), Err(Error::WrongType { .. })));
        assert_eq!(
            anthropic(&parse(br#"{"anthropic":{"access":"a"}}"#).unwrap()),
            Err(Error::Missing { path: "anthropic.expires".into() })
        );
        assert_eq!(
            anthropic(&parse(br#"{"anthropic":{"access":"","expires":1767225600000}}"#).unwrap()),
            Err(Error::EmptyToken { path: "anthropic.access".into() })
        );
    }
}
