//! Property tests for the JSON formats: parse then write round-trips, and no write ever loses a
//! key that is not ours.

use credmap::json::{Document, Style};
use credmap::{
    Credential, ExpiresAt, MAX_EXPIRY_MS, MIN_EXPIRY_MS, RefreshPolicy, Secret, auth_profiles, claude, oauth_json,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Arbitrary JSON values a few levels deep (what `mcpOAuth` and friends might hold).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-zA-Z0-9 _:|./-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_|:]{0,10}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Extra object members whose keys avoid `reserved`.
fn extra_members(reserved: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,12}", json_value()), 0..6)
        .prop_map(move |kv| kv.into_iter().filter(|(k, _)| !reserved.contains(&k.as_str())).collect())
}

fn token(prefix: &'static str) -> impl Strategy<Value = Secret> {
    "[A-Za-z0-9_-]{8,120}".prop_map(move |t| Secret::new(format!("{prefix}{t}")))
}

fn expiry() -> impl Strategy<Value = ExpiresAt> {
    (MIN_EXPIRY_MS..=MAX_EXPIRY_MS).prop_map(|ms| ExpiresAt::from_millis(ms).unwrap())
}

fn credential() -> impl Strategy<Value = Credential> {
    (token("sk-ant-oat01-"), prop::option::of(token("sk-ant-ort01-")), expiry())
        .prop_map(|(a, r, e)| Credential::new(a, r, e))
}

fn style() -> impl Strategy<Value = (Style, bool)> {
    (
        prop_oneof![Just(Style::Compact), Just(Style::Pretty("  ".into())), Just(Style::Pretty("\t".into()))],
        any::<bool>(),
    )
}

fn doc(root: Map<String, Value>, (style, trailing_newline): (Style, bool)) -> Document {
    Document { root, style, trailing_newline }
}

const CLAUDE_OURS: &[&str] = &["accessToken", "refreshToken", "expiresAt"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_object_document_round_trips_byte_exactly(root in extra_members(&[]), st in style()) {
        let d = doc(root, st);
        let bytes = d.to_bytes();
        let again = credmap::json::parse(&bytes).unwrap();
        prop_assert_eq!(&again.root, &d.root);
        prop_assert_eq!(again.to_bytes(), bytes);
    }

    #[test]
    fn claude_write_keeps_every_key_that_is_not_ours(
        top in extra_members(&["claudeAiOauth"]), inner in extra_members(CLAUDE_OURS),
        old in credential(), new in credential(), st in style(),
    ) {
        let mut root = top.clone();
        let mut oauth = inner.clone();
        oauth.insert("accessToken".into(), Value::from(old.access_token.expose()));
        oauth.insert("refreshToken".into(), Value::from("sk-ant-ort01-old"));
        oauth.insert("expiresAt".into(), old.expires_at.to_json());
        root.insert("claudeAiOauth".into(), Value::Object(oauth));
        let mut d = doc(root, st);
        let new = Credential { refresh_token: new.refresh_token.or(Some(Secret::new("sk-ant-ort01-x"))), ..new };
        claude::write(&mut d, &new);

        let reread = claude::parse(&d.to_bytes()).unwrap();
        for (k, v) in &top {
            prop_assert_eq!(reread.root.get(k), Some(v), "top-level key {} lost or changed", k);
        }
        let section = reread.root["claudeAiOauth"].as_object().unwrap();
        for (k, v) in &inner {
            // scopes/subscriptionType/... are ours only when the credential carries them; the
            // generated credential carries none, so every other field must survive.
            prop_assert_eq!(section.get(k), Some(v), "claudeAiOauth.{} lost or changed", k);
        }
        // Unknown members of claudeAiOauth that happen to share a modelled name may fail to
        // parse (e.g. `scopes: 5`); when they do not, the credential reads back exactly.
        if let Ok(got) = claude::credential(&reread) {
            prop_assert_eq!(got.access_token, new.access_token);
            prop_assert_eq!(got.refresh_token, new.refresh_token);
            prop_assert_eq!(got.expires_at, new.expires_at);
        }
    }

    #[test]
    fn oauth_json_keeps_other_providers_and_maps_both_ways(
        others in extra_members(&["anthropic"]), cred in credential(), carry in any::<bool>(), st in style(),
    ) {
        let mut d = doc(others.clone(), st);
        let policy = if carry { RefreshPolicy::Carry } else { RefreshPolicy::AccessOnly };
        oauth_json::set_anthropic(&mut d, &cred, policy);
        let reread = oauth_json::parse(&d.to_bytes()).unwrap();
        for (k, v) in &others {
            prop_assert_eq!(reread.root.get(k), Some(v));
        }
        let got = oauth_json::anthropic(&reread).unwrap().unwrap();
        prop_assert_eq!(&got.access_token, &cred.access_token);
        prop_assert_eq!(got.expires_at, cred.expires_at);
        prop_assert_eq!(&got.refresh_token, &if carry { cred.refresh_token.clone() } else { None });

        // and back into a Claude file: oauth.json -> Credential -> claudeAiOauth
        let mut cli = claude::parse(br#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":1767225600000,"scopes":["user:inference"]}}"#).unwrap();
        let with_refresh = Credential { refresh_token: got.refresh_token.clone().or(Some(Secret::new("sk-ant-ort01-kept"))), ..got };
        claude::write(&mut cli, &with_refresh);
        let back = claude::credential(&cli).unwrap();
        prop_assert_eq!(back.access_token, cred.access_token);
        prop_assert_eq!(back.scopes, vec!["user:inference".to_owned()]);
    }

    #[test]
    fn auth_profiles_upsert_keeps_every_other_profile_and_key(
        top in extra_members(&["profiles", "usageStats", "order", "lastGood"]),
        other_ids in prop::collection::vec("(anthropic|openai):[a-z]{1,8}", 0..4),
        cred in credential(), carry in any::<bool>(), st in style(),
    ) {
        let id = auth_profiles::DEFAULT_PROFILE_ID;
        let mut root = top.clone();
        let profiles: Map<String, Value> = other_ids.iter().filter(|o| o.as_str() != id)
            .map(|o| (o.clone(), serde_json::json!({"type":"api_key","provider":"x","key":"k"}))).collect();
        root.insert("profiles".into(), Value::Object(profiles.clone()));
        let mut d = doc(root, st);
        let policy = if carry { RefreshPolicy::Carry } else { RefreshPolicy::AccessOnly };
        auth_profiles::upsert(&mut d, id, &cred, policy);
        let reread = auth_profiles::parse(&d.to_bytes()).unwrap();
        for (k, v) in &top {
            prop_assert_eq!(reread.root.get(k), Some(v));
        }
        for (k, v) in &profiles {
            prop_assert_eq!(reread.root["profiles"].get(k), Some(v));
        }
        let got = auth_profiles::profile_credential(&reread, id).unwrap().unwrap();
        prop_assert_eq!(&got.access_token, &cred.access_token);
        prop_assert_eq!(got.expires_at, cred.expires_at);
        let carried = carry && cred.refresh_token.is_some();
        prop_assert_eq!(got.refresh_token.is_some(), carried);

        // clear-stale undoes the upsert and touches nothing else
        prop_assert!(auth_profiles::clear_stale(&mut d, id, "anthropic"));
        let cleared = auth_profiles::parse(&d.to_bytes()).unwrap();
        prop_assert_eq!(cleared.root["profiles"].as_object().unwrap(), &profiles);
    }

    #[test]
    fn seconds_and_milliseconds_name_the_same_instant(secs in (MIN_EXPIRY_MS / 1000)..=(MAX_EXPIRY_MS / 1000)) {
        let from_s = ExpiresAt::from_number(secs as f64).unwrap();
        let from_ms = ExpiresAt::from_number((secs * 1000) as f64).unwrap();
        prop_assert_eq!(from_s, from_ms);
    }

    #[test]
    fn secrets_never_display_their_value(t in "[A-Za-z0-9_-]{6,40}") {
        let s = Secret::new(format!("sk-ant-oat01-{t}"));
        let shown = format!("{s} {s:?}");
        prop_assert!(!shown.contains(&t));
    }
}
