//! OpenClaw's legacy per-agent `~/.openclaw/agents/<agent>/agent/auth-profiles.json` (JSON era,
//! up to 2026.6.1).
//!
//! ```json
//! {"version": 1,
//!  "profiles": {"anthropic:claude-code": {"type": "oauth", "provider": "anthropic",
//!                                        "access": "…", "refresh": "…", "expires": 1767225600000}},
//!  "order": {"anthropic": ["anthropic:claude-code"]},
//!  "lastGood": {"anthropic": "anthropic:claude-code"},
//!  "usageStats": {"anthropic:claude-code": {"lastUsed": …, "cooldownUntil": …, "errorCount": 3}}}
//! ```
//!
//! Profile shapes: `oauth` (`access`, `refresh`, `expires`), `token` (`token`, `expires`?) and
//! `api_key` (`key`). OpenClaw uses usable profiles before the `ANTHROPIC_OAUTH_TOKEN` variable,
//! and skips a profile whose `usageStats` entry is in cooldown.

use crate::error::json_type;
use crate::json::{self, Document, object_at, string_at};
use crate::{Credential, Error, ExpiresAt, RefreshPolicy, Secret};
use serde_json::{Map, Value};
use std::fmt;

/// The default profile id, as the second seed names it.
pub const DEFAULT_PROFILE_ID: &str = "anthropic:claude-code";

/// The provider this crate manages.
pub const PROVIDER: &str = "anthropic";

/// `usageStats` fields that put a profile out of use after errors; cleared with a fresh token.
const COOLDOWN_FIELDS: [&str; 5] =
    ["cooldownUntil", "disabledUntil", "disabledReason", "failureCounts", "lastFailureAt"];

/// Parses an `auth-profiles.json`; `profiles`, `order`, `lastGood` and `usageStats` must be
/// objects when present.
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let doc = json::parse(bytes)?;
    for key in ["profiles", "order", "lastGood", "usageStats"] {
        object_at(&doc.root, key, key)?;
    }
    Ok(doc)
}

/// The shape of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKind {
    /// `type: "oauth"`: access + refresh + expires. OpenClaw refreshes it itself at expiry.
    OAuth,
    /// `type: "token"`: a bare token + optional expiry. OpenClaw never refreshes it.
    Token,
    /// `type: "api_key"`: an API key (`sk-ant-api03-…`), billed per token.
    ApiKey,
    /// Any other `type` value.
    Other(String),
}

impl fmt::Display for ProfileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OAuth => f.write_str("oauth"),
            Self::Token => f.write_str("token"),
            Self::ApiKey => f.write_str("api_key"),
            Self::Other(t) => f.write_str(t),
        }
    }
}

/// Something wrong with a profile that explains why OpenClaw will not use it as intended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileProblem {
    /// An `oauth` profile whose token sits in `key` instead of `access` (the "`key` vs `access`"
    /// trap): OpenClaw finds no access token in it.
    KeyInsteadOfAccess,
    /// An `api_key` profile holding an OAuth token (`sk-ant-oat01-…`): sent as `x-api-key`, it is
    /// rejected. OAuth tokens belong in `access` (oauth) or `token` (token).
    OAuthTokenAsApiKey,
    /// A `token` profile whose token sits in `access` instead of `token`.
    AccessInsteadOfToken,
    /// No token field at all.
    MissingToken,
    /// `expires` is present but unusable.
    BadExpiry(String),
    /// In cooldown or disabled until this time (ms): OpenClaw skips it until then.
    CoolingDown(i64),
}

impl fmt::Display for ProfileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeyInsteadOfAccess => f.write_str("oauth profile has `key` instead of `access`: OpenClaw reads `access`"),
            Self::OAuthTokenAsApiKey => {
                f.write_str("api_key profile holds an OAuth token (sk-ant-oat01-): use type `token` with `token`, or type `oauth` with `access`")
            }
            Self::AccessInsteadOfToken => f.write_str("token profile has `access` instead of `token`"),
            Self::MissingToken => f.write_str("no token field"),
            Self::BadExpiry(why) => write!(f, "unusable `expires`: {why}"),
            Self::CoolingDown(until) => match ExpiresAt::from_millis(*until) {
                Ok(t) => write!(f, "in cooldown/disabled until {t}"),
                Err(_) => write!(f, "in cooldown/disabled until {until}"),
            },
        }
    }
}

/// One Anthropic profile, as listed by [`anthropic_profiles`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSummary {
    /// Profile id, such as `anthropic:claude-code`.
    pub id: String,
    /// Its shape.
    pub kind: ProfileKind,
    /// The token it would send (`access`, `token` or `key`, whichever the shape uses, or the
    /// mistaken field). Prints as a fingerprint.
    pub token: Option<Secret>,
    /// Whether it holds a refresh token.
    pub has_refresh: bool,
    /// Its expiry, when it records a usable one.
    pub expires_at: Option<ExpiresAt>,
    /// What is wrong with it, if anything.
    pub problems: Vec<ProfileProblem>,
}

/// Lists the Anthropic profiles (by `provider`, or by an `anthropic:` id prefix) in file order.
///
/// ```
/// use credmap::auth_profiles::{self, ProfileProblem};
/// let doc = auth_profiles::parse(br#"{"profiles":{"anthropic:default":
///     {"type":"oauth","provider":"anthropic","key":"sk-ant-oat01-x","expires":1767225600000}}}"#)?;
/// let p = &auth_profiles::anthropic_profiles(&doc)?[0];
/// assert_eq!(p.problems, [ProfileProblem::KeyInsteadOfAccess]);
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn anthropic_profiles(doc: &Document) -> Result<Vec<ProfileSummary>, Error> {
    let Some(profiles) = object_at(&doc.root, "profiles", "profiles")? else {
        return Ok(Vec::new());
    };
    let stats = object_at(&doc.root, "usageStats", "usageStats")?;
    let mut out = Vec::new();
    for (id, profile) in profiles {
        let path = format!("profiles.{id}");
        let Value::Object(p) = profile else {
            return Err(Error::WrongType { path, expected: "an object", found: json_type(profile) });
        };
        let provider = string_at(p, "provider", &format!("{path}.provider"))?;
        if provider != Some(PROVIDER) && !(provider.is_none() && id.starts_with("anthropic:")) {
            continue;
        }
        out.push(summarise(id, p, &path, stats.and_then(|s| s.get(id)))?);
    }
    Ok(out)
}

fn summarise(id: &str, p: &Map<String, Value>, path: &str, stats: Option<&Value>) -> Result<ProfileSummary, Error> {
    let field = |name: &str| {
        string_at(p, name, &format!("{path}.{name}")).map(|v| v.filter(|s| !s.is_empty()).map(Secret::new))
    };
    let kind = match string_at(p, "type", &format!("{path}.type"))? {
        Some("oauth") => ProfileKind::OAuth,
        Some("token") => ProfileKind::Token,
        Some("api_key") => ProfileKind::ApiKey,
        other => ProfileKind::Other(other.unwrap_or("(none)").to_owned()),
    };
    let mut problems = Vec::new();
    let token = match kind {
        ProfileKind::OAuth => field("access")?.or_else(|| {
            let mistaken = field("key").ok().flatten();
            if mistaken.is_some() {
                problems.push(ProfileProblem::KeyInsteadOfAccess);
            }
            mistaken
        }),
        ProfileKind::Token => field("token")?.or_else(|| {
            let mistaken = field("access").ok().flatten();
            if mistaken.is_some() {
                problems.push(ProfileProblem::AccessInsteadOfToken);
            }
            mistaken
        }),
        ProfileKind::ApiKey => {
            let key = field("key")?;
            if key.as_ref().is_some_and(|k| k.expose().starts_with("sk-ant-oat")) {
                problems.push(ProfileProblem::OAuthTokenAsApiKey);
            }
            key
        }
        ProfileKind::Other(_) => field("access")?.or(field("token")?).or(field("key")?),
    };
    if token.is_none() {
        problems.push(ProfileProblem::MissingToken);
    }
    let expires_at = match p.get("expires") {
        None | Some(Value::Null) => None,
        Some(v) => match ExpiresAt::from_json(v, &format!("{path}.expires")) {
            Ok(e) => Some(e),
            Err(e) => {
                problems.push(ProfileProblem::BadExpiry(e.to_string()));
                None
            }
        },
    };
    if let Some(Value::Object(s)) = stats {
        let until = ["cooldownUntil", "disabledUntil"].iter().filter_map(|k| s.get(*k).and_then(Value::as_i64)).max();
        if let Some(until) = until {
            problems.push(ProfileProblem::CoolingDown(until));
        }
    }
    Ok(ProfileSummary {
        id: id.to_owned(),
        kind,
        token,
        has_refresh: field("refresh")?.is_some(),
        expires_at,
        problems,
    })
}

/// The credential a profile holds: `oauth` and `token` profiles only, and only with an expiry
/// (`None` when the profile is absent). A `token` profile without `expires` is an error here:
/// there is no expiry to report.
pub fn profile_credential(doc: &Document, id: &str) -> Result<Option<Credential>, Error> {
    let Some(profiles) = object_at(&doc.root, "profiles", "profiles")? else {
        return Ok(None);
    };
    let path = format!("profiles.{id}");
    let Some(profile) = object_at(profiles, id, &path)? else {
        return Ok(None);
    };
    let (token_field, refresh_field) = match string_at(profile, "type", &format!("{path}.type"))? {
        Some("oauth") => ("access", Some("refresh")),
        Some("token") => ("token", None),
        Some(other) => {
            return Err(Error::WrongType {
                path: format!("{path}.type"),
                expected: "\"oauth\" or \"token\"",
                found: if other == "api_key" { "\"api_key\"" } else { "another type" },
            });
        }
        None => return Err(Error::Missing { path: format!("{path}.type") }),
    };
    let token_path = format!("{path}.{token_field}");
    let token = string_at(profile, token_field, &token_path)?.ok_or(Error::Missing { path: token_path.clone() })?;
    if token.is_empty() {
        return Err(Error::EmptyToken { path: token_path });
    }
    let refresh = match refresh_field {
        Some(f) => string_at(profile, f, &format!("{path}.{f}"))?.filter(|r| !r.is_empty()).map(Secret::new),
        None => None,
    };
    let expires_path = format!("{path}.expires");
    let expires =
        profile.get("expires").filter(|v| !v.is_null()).ok_or(Error::Missing { path: expires_path.clone() })?;
    let expires_at = ExpiresAt::from_json(expires, &expires_path)?;
    Ok(Some(Credential::new(Secret::new(token), refresh, expires_at)))
}

/// Inserts or updates profile `id`: under [`RefreshPolicy::AccessOnly`] a `token` profile
/// (`token` + `expires`), under [`RefreshPolicy::Carry`] the seed's `oauth` profile (`access` +
/// `refresh` + `expires`). Fields of the other shape (and a mistaken `key`) are removed; unknown
/// fields of an existing profile and its position are kept. Also clears its cooldown
/// ([`clear_cooldown`]).
pub fn upsert(doc: &mut Document, id: &str, cred: &Credential, policy: RefreshPolicy) {
    let profiles = json::object_entry(&mut doc.root, "profiles");
    let profile = json::object_entry(profiles, id);
    let carry = policy == RefreshPolicy::Carry && cred.refresh_token.is_some();
    json::set(profile, "type", Value::from(if carry { "oauth" } else { "token" }));
    json::set(profile, "provider", Value::from(PROVIDER));
    profile.shift_remove("key");
    if carry {
        profile.shift_remove("token");
        json::set(profile, "access", Value::from(cred.access_token.expose()));
        let refresh = cred.refresh_token.as_ref().expect("carry implies a refresh token");
        json::set(profile, "refresh", Value::from(refresh.expose()));
    } else {
        profile.shift_remove("access");
        profile.shift_remove("refresh");
        json::set(profile, "token", Value::from(cred.access_token.expose()));
    }
    json::set(profile, "expires", cred.expires_at.to_json());
    clear_cooldown(doc, id);
}

/// Clears the cooldown/disabled state of `usageStats[id]` (keeping `lastUsed` and unknown
/// fields; `errorCount` set to 0). Returns whether anything changed.
pub fn clear_cooldown(doc: &mut Document, id: &str) -> bool {
    let Some(Value::Object(stats)) = doc.root.get_mut("usageStats").and_then(|s| s.get_mut(id)) else {
        return false;
    };
    let mut changed = false;
    for f in COOLDOWN_FIELDS {
        changed |= stats.shift_remove(f).is_some();
    }
    if let Some(count) = stats.get_mut("errorCount")
        && count.as_i64() != Some(0)
    {
        *count = Value::from(0);
        changed = true;
    }
    changed
}

/// The second seed's "clear stale per-agent profiles": removes `profiles[id]`, `usageStats[id]`,
/// `lastGood[provider]` where it names `id`, and `id` from `order[provider]`, so OpenClaw falls
/// through to the `ANTHROPIC_OAUTH_TOKEN` variable. Returns whether anything changed.
///
/// ```
/// let before = r#"{"profiles":{"anthropic:claude-code":{"type":"token"}},"lastGood":{"anthropic":"anthropic:claude-code"}}"#;
/// let mut doc = credmap::auth_profiles::parse(before.as_bytes())?;
/// assert!(credmap::auth_profiles::clear_stale(&mut doc, "anthropic:claude-code", "anthropic"));
/// assert_eq!(doc.to_bytes(), br#"{"profiles":{},"lastGood":{}}"#);
/// # Ok::<(), credmap::Error>(())
/// ```
pub fn clear_stale(doc: &mut Document, id: &str, provider: &str) -> bool {
    let mut changed = false;
    for section in ["profiles", "usageStats"] {
        if let Some(Value::Object(m)) = doc.root.get_mut(section) {
            changed |= m.shift_remove(id).is_some();
        }
    }
    if let Some(Value::Object(last_good)) = doc.root.get_mut("lastGood")
        && last_good.get(provider).and_then(Value::as_str) == Some(id)
    {
        last_good.shift_remove(provider);
        changed = true;
    }
    if let Some(Value::Array(order)) = doc.root.get_mut("order").and_then(|o| o.get_mut(provider)) {
        let before = order.len();
        order.retain(|v| v.as_str() != Some(id));
        changed |= order.len() != before;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/auth-profiles-cooldown.json");

    fn doc() -> Document {
        parse(FIXTURE.as_bytes()).unwrap()
    }

    fn new_cred() -> Credential {
        Credential::new(
            Secret::new("sk-ant-oat01-NEWACCESS"),
            Some(Secret::new("sk-ant-ort01-NEWREFRESH")),
            ExpiresAt::from_millis(1_767_254_400_000).unwrap(),
        )
    }

    #[test]
    fn lists_anthropic_profiles_with_problems() {
        let list = anthropic_profiles(&doc()).unwrap();
        let ids: Vec<_> = list.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["anthropic:claude-code", "anthropic:manual", "anthropic:api", "anthropic:mistake"]);
        assert_eq!(list[0].kind, ProfileKind::OAuth);
        assert!(list[0].has_refresh);
        assert_eq!(list[0].problems, [ProfileProblem::CoolingDown(1_767_103_600_000)]);
        assert_eq!(list[1].kind, ProfileKind::Token);
        assert_eq!(list[1].problems, [ProfileProblem::CoolingDown(1_767_090_000_000)]);
        assert_eq!(list[2].kind, ProfileKind::ApiKey);
        assert!(list[2].problems.is_empty());
        assert_eq!(list[3].problems, [ProfileProblem::KeyInsteadOfAccess]);
        assert!(list[3].token.as_ref().unwrap().expose().starts_with("sk-ant-oat01-"));
        assert!(list[3].problems[0].to_string().contains("`key` instead of `access`"));
    }

    #[test]
    fn oauth_token_in_an_api_key_profile_is_flagged() {
        let d = parse(
            br#"{"profiles":{"anthropic:x":{"type":"api_key","provider":"anthropic","key":"sk-ant-oat01-abc"}}}"#,
        )
        .unwrap();
        assert_eq!(anthropic_profiles(&d).unwrap()[0].problems, [ProfileProblem::OAuthTokenAsApiKey]);
    }

    #[test]
    fn upsert_access_only_turns_oauth_into_token_and_clears_cooldown() {
        let mut d = doc();
        upsert(&mut d, DEFAULT_PROFILE_ID, &new_cred(), RefreshPolicy::AccessOnly);
        let v: Value = serde_json::from_slice(&d.to_bytes()).unwrap();
        let p = &v["profiles"][DEFAULT_PROFILE_ID];
        assert_eq!(p["type"], "token");
        assert_eq!(p["token"], "sk-ant-oat01-NEWACCESS");
        assert_eq!(p["expires"], 1_767_254_400_000_i64);
        assert!(p.get("access").is_none() && p.get("refresh").is_none());
        let s = &v["usageStats"][DEFAULT_PROFILE_ID];
        assert_eq!(s, &serde_json::json!({"lastUsed": 1_767_100_000_000_i64, "errorCount": 0}));
        // the other agent's stats untouched
        assert_eq!(v["usageStats"]["anthropic:manual"]["disabledReason"], "auth");
        assert_eq!(profile_credential(&d, DEFAULT_PROFILE_ID).unwrap().unwrap().refresh_token, None);
    }

    #[test]
    fn upsert_carry_writes_the_seed_oauth_profile_in_place() {
        let mut d = doc();
        upsert(&mut d, "anthropic:mistake", &new_cred(), RefreshPolicy::Carry);
        let got = profile_credential(&d, "anthropic:mistake").unwrap().unwrap();
        assert_eq!(got, new_cred());
        let v: Value = serde_json::from_slice(&d.to_bytes()).unwrap();
        let keys: Vec<_> = v["profiles"]["anthropic:mistake"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["type", "provider", "refresh", "expires", "access"]);
        let ids: Vec<_> = v["profiles"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(ids[3], "anthropic:mistake", "position kept");
    }

    #[test]
    fn upsert_into_an_empty_file_creates_profiles() {
        let mut d = parse(b"{\"version\":1}").unwrap();
        upsert(&mut d, DEFAULT_PROFILE_ID, &new_cred(), RefreshPolicy::AccessOnly);
        assert_eq!(
            String::from_utf8(d.to_bytes()).unwrap(),
            r#"{"version":1,"profiles":{"anthropic:claude-code":{"type":"token","provider":"anthropic","token":"sk-ant-oat01-NEWACCESS","expires":1767254400000}}}"#
        );
    }

    #[test]
    fn clear_stale_removes_exactly_the_seed_entries() {
        let mut d = doc();
        assert!(clear_stale(&mut d, DEFAULT_PROFILE_ID, PROVIDER));
        let v: Value = serde_json::from_slice(&d.to_bytes()).unwrap();
        assert!(v["profiles"].get(DEFAULT_PROFILE_ID).is_none());
        assert!(v["usageStats"].get(DEFAULT_PROFILE_ID).is_none());
        assert!(v["lastGood"].get("anthropic").is_none());
        assert_eq!(v["lastGood"]["openai"], "openai:default");
        assert_eq!(v["order"]["anthropic"], serde_json::json!(["anthropic:manual", "anthropic:api"]));
        assert_eq!(v["profiles"].as_object().unwrap().len(), 4);
        assert!(!clear_stale(&mut d, DEFAULT_PROFILE_ID, PROVIDER), "second run changes nothing");
    }

    #[test]
    fn lastgood_naming_another_profile_is_kept() {
        let mut d = doc();
        clear_stale(&mut d, "anthropic:manual", PROVIDER);
        let v: Value = serde_json::from_slice(&d.to_bytes()).unwrap();
        assert_eq!(v["lastGood"]["anthropic"], DEFAULT_PROFILE_ID);
    }

    #[test]
    fn profile_credential_refuses_api_keys() {
        assert!(matches!(profile_credential(&doc(), "anthropic:api"), Err(Error::WrongType { .. })));
        assert_eq!(profile_credential(&doc(), "anthropic:none"), Ok(None));
    }
}
