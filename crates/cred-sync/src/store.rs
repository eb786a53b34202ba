//! What each kind of file target holds now, and its new contents: thin wrappers over `credmap`
//! that keep every byte that is not ours.

use crate::target::Kind;
use credmap::auth_profiles::{self, ProfileKind};
use credmap::{Credential, ExpiresAt, RefreshPolicy, Secret, dotenv, dropin, json, oauth_json};

/// The settings that shape what is written.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Profile id in `auth-profiles.json`.
    pub(crate) profile_id: String,
    /// Variable name in `.env` files and drop-ins.
    pub(crate) env_key: String,
    /// Access token only, or the refresh token too.
    pub(crate) policy: RefreshPolicy,
}

/// What a target holds for us now.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Holding {
    pub(crate) token: Option<Secret>,
    pub(crate) refresh: Option<Secret>,
    pub(crate) expires_at: Option<ExpiresAt>,
}

impl Holding {
    /// Whether the target already holds what we would write.
    ///
    /// The same token with a *later* recorded expiry counts as held: the source's expiry only
    /// moves earlier for the same token when `cli-poke --force` marks it due (for a refresh that
    /// follows within seconds), and the target's expiry is then the true one.
    pub(crate) fn matches(&self, kind: Kind, cred: &Credential, policy: RefreshPolicy) -> bool {
        if self.token.as_ref() != Some(&cred.access_token) {
            return false;
        }
        match kind {
            // These record no expiry and no refresh token.
            Kind::Dotenv | Kind::SystemdDropin => true,
            _ => {
                let want_refresh = match policy {
                    RefreshPolicy::Carry => cred.refresh_token.as_ref(),
                    RefreshPolicy::AccessOnly => None,
                };
                self.expires_at.is_some_and(|held| held >= cred.expires_at) && self.refresh.as_ref() == want_refresh
            }
        }
    }

    /// Whether writing `cred` would replace a token that lives longer (a stale source, or a
    /// second writer racing us with an older copy).
    pub(crate) fn is_downgraded_by(&self, cred: &Credential) -> bool {
        self.token.as_ref() != Some(&cred.access_token) && self.expires_at.is_some_and(|held| held > cred.expires_at)
    }
}

/// Reads what `bytes` (a target's current contents; `None` when it does not exist yet) hold.
/// Fails when the file cannot be understood: it is then left alone, never overwritten.
pub(crate) fn holding(kind: Kind, bytes: Option<&[u8]>, shape: &Shape) -> Result<Holding, credmap::Error> {
    let Some(bytes) = bytes else { return Ok(Holding::default()) };
    let from_cred = |c: Option<Credential>| {
        c.map(|c| Holding { token: Some(c.access_token), refresh: c.refresh_token, expires_at: Some(c.expires_at) })
            .unwrap_or_default()
    };
    Ok(match kind {
        Kind::OpenclawOauth => {
            let doc = oauth_json::parse(bytes)?;
            // An entry we cannot read is ours to replace: only the file as a whole must parse.
            from_cred(oauth_json::anthropic(&doc).ok().flatten())
        }
        Kind::OpenclawProfiles | Kind::ClearStale => {
            let doc = auth_profiles::parse(bytes)?;
            from_cred(auth_profiles::profile_credential(&doc, &shape.profile_id).ok().flatten())
        }
        Kind::Dotenv => {
            let env = dotenv::parse(text_or_empty(bytes)?)?;
            Holding { token: env.token(&shape.env_key), ..Holding::default() }
        }
        Kind::SystemdDropin => {
            let unit = dropin::parse(text_or_empty(bytes)?)?;
            Holding { token: unit.token(&shape.env_key), ..Holding::default() }
        }
        Kind::OpenclawPaste => Holding::default(),
    })
}

/// An existing but empty `.env` or drop-in is fine to add to; JSON must be JSON.
fn text_or_empty(bytes: &[u8]) -> Result<&str, credmap::Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok("");
    }
    json::text(bytes)
}

/// The target's new contents with `cred` in it, everything else kept.
pub(crate) fn render(
    kind: Kind,
    bytes: Option<&[u8]>,
    cred: &Credential,
    shape: &Shape,
) -> Result<Vec<u8>, credmap::Error> {
    Ok(match kind {
        Kind::OpenclawOauth => {
            let mut doc = bytes.map_or_else(|| Ok(json::Document::new()), oauth_json::parse)?;
            oauth_json::set_anthropic(&mut doc, cred, shape.policy);
            doc.to_bytes()
        }
        Kind::OpenclawProfiles => {
            let mut doc = if let Some(b) = bytes {
                auth_profiles::parse(b)?
            } else {
                let mut doc = json::Document::new();
                doc.root.insert("version".into(), 1.into());
                doc
            };
            auth_profiles::upsert(&mut doc, &shape.profile_id, cred, shape.policy);
            doc.to_bytes()
        }
        Kind::Dotenv => {
            let mut env = dotenv::parse(bytes.map_or(Ok(""), text_or_empty)?)?;
            env.set(&shape.env_key, cred.access_token.expose())?;
            env.to_string().into_bytes()
        }
        Kind::SystemdDropin => {
            let mut unit = dropin::parse(bytes.map_or(Ok(""), text_or_empty)?)?;
            unit.set_env(&shape.env_key, cred.access_token.expose())?;
            unit.to_string().into_bytes()
        }
        Kind::ClearStale | Kind::OpenclawPaste => unreachable!("{kind} targets are not rendered from a credential"),
    })
}

/// What [`clear_stale`] did to one file.
#[derive(Debug)]
pub(crate) struct Cleared {
    /// The new contents, when anything was removed.
    pub(crate) contents: Option<Vec<u8>>,
    /// Ids of the profiles removed.
    pub(crate) removed: Vec<String>,
    /// Ids of the API-key profiles kept (they, too, win over the variable).
    pub(crate) kept_api_keys: Vec<String>,
}

/// The second seed's step 3: removes every Anthropic `oauth` and `token` profile (copies of a
/// subscription token, which go stale), so OpenClaw falls through to `ANTHROPIC_OAUTH_TOKEN`.
/// API-key profiles are the user's own and are kept.
pub(crate) fn clear_stale(bytes: &[u8]) -> Result<Cleared, credmap::Error> {
    let mut doc = auth_profiles::parse(bytes)?;
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for profile in auth_profiles::anthropic_profiles(&doc)? {
        match profile.kind {
            ProfileKind::ApiKey => kept.push(profile.id),
            _ => removed.push(profile.id),
        }
    }
    for id in &removed {
        auth_profiles::clear_stale(&mut doc, id, auth_profiles::PROVIDER);
    }
    Ok(Cleared { contents: (!removed.is_empty()).then(|| doc.to_bytes()), removed, kept_api_keys: kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(token: &str, expires: i64, refresh: Option<&str>) -> Credential {
        Credential::new(Secret::new(token), refresh.map(Secret::new), ExpiresAt::from_millis(expires).unwrap())
    }

    fn shape(policy: RefreshPolicy) -> Shape {
        Shape { profile_id: "anthropic:claude-code".into(), env_key: "ANTHROPIC_OAUTH_TOKEN".into(), policy }
    }

    const T: i64 = 1_800_000_000_000;

    #[test]
    fn a_rendered_target_holds_what_was_rendered_in_every_kind() {
        let c = cred("sk-ant-oat01-new", T, Some("sk-ant-ort01-r"));
        for kind in [Kind::OpenclawOauth, Kind::OpenclawProfiles, Kind::Dotenv, Kind::SystemdDropin] {
            for policy in [RefreshPolicy::AccessOnly, RefreshPolicy::Carry] {
                let s = shape(policy);
                let fresh = render(kind, None, &c, &s).unwrap();
                let held = holding(kind, Some(&fresh), &s).unwrap();
                assert!(held.matches(kind, &c, policy), "{kind} {policy:?}: {held:?}");
                let again = render(kind, Some(&fresh), &c, &s).unwrap();
                assert_eq!(again, fresh, "{kind}: rendering twice changes nothing");
            }
        }
    }

    #[test]
    fn a_forced_refresh_marking_the_same_token_due_is_not_copied() {
        let s = shape(RefreshPolicy::AccessOnly);
        let held = render(Kind::OpenclawOauth, None, &cred("sk-ant-oat01-same", T, None), &s).unwrap();
        let held = holding(Kind::OpenclawOauth, Some(&held), &s).unwrap();
        assert!(held.matches(Kind::OpenclawOauth, &cred("sk-ant-oat01-same", T - 8 * 3_600_000, None), s.policy));
        assert!(!held.matches(Kind::OpenclawOauth, &cred("sk-ant-oat01-same", T + 1, None), s.policy));
    }

    #[test]
    fn access_only_never_leaves_a_refresh_token_behind() {
        let c = cred("sk-ant-oat01-new", T, Some("sk-ant-ort01-r"));
        let s = shape(RefreshPolicy::AccessOnly);
        let old =
            br#"{"anthropic":{"access":"sk-ant-oat01-old","refresh":"sk-ant-ort01-old","expires":1700000000000}}"#;
        let out = render(Kind::OpenclawOauth, Some(old), &c, &s).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("refresh"));
    }

    #[test]
    fn a_longer_lived_token_in_the_target_is_a_downgrade() {
        let held = Holding {
            token: Some(Secret::new("sk-ant-oat01-held")),
            refresh: None,
            expires_at: ExpiresAt::from_millis(T + 1).ok(),
        };
        assert!(held.is_downgraded_by(&cred("sk-ant-oat01-other", T, None)));
        assert!(!held.is_downgraded_by(&cred("sk-ant-oat01-held", T, None)), "same token: not a downgrade");
        assert!(!held.is_downgraded_by(&cred("sk-ant-oat01-other", T + 2, None)));
        let no_expiry = Holding { expires_at: None, ..held };
        assert!(!no_expiry.is_downgraded_by(&cred("sk-ant-oat01-other", T, None)));
    }

    #[test]
    fn clear_stale_keeps_api_keys_and_other_providers() {
        let before = br#"{"version":1,"profiles":{
            "anthropic:claude-code":{"type":"token","provider":"anthropic","token":"sk-ant-oat01-x"},
            "anthropic:default":{"type":"oauth","provider":"anthropic","access":"a","refresh":"r","expires":1700000000000},
            "anthropic:key":{"type":"api_key","provider":"anthropic","key":"k"},
            "openai:default":{"type":"oauth","provider":"openai","access":"o"}},
            "lastGood":{"anthropic":"anthropic:default"}}"#;
        let cleared = clear_stale(before).unwrap();
        assert_eq!(cleared.removed, ["anthropic:claude-code", "anthropic:default"]);
        assert_eq!(cleared.kept_api_keys, ["anthropic:key"]);
        let after = String::from_utf8(cleared.contents.unwrap()).unwrap();
        assert!(after.contains("anthropic:key") && after.contains("openai:default"));
        assert!(!after.contains("claude-code") && !after.contains("lastGood\":{\"anthropic"));
        let again = clear_stale(after.as_bytes()).unwrap();
        assert!(again.contents.is_none() && again.removed.is_empty());
    }
}
