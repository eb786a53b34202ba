//! Pure field mapping between the Claude Code CLI's OAuth credentials and every place
//! OpenClaw reads an Anthropic token from.
//!
//! `credmap` does no I/O of its own: every function takes bytes, strings or JSON values and
//! returns new ones. Reading files, locking, atomic writes and process spawning belong to the
//! binaries (`token-expiry`, `cred-sync`, `cli-poke`, `compose-recreate`).
//!
//! The central model is [`Credential`]: an access token, an optional refresh token and an
//! absolute expiry. Each format module parses its document into that model and writes the model
//! back into a document **in place**, keeping every key, line and comment that is not ours, in
//! its original order:
//!
//! | module | document |
//! |---|---|
//! | [`claude`] | Claude Code CLI `.credentials.json` (`claudeAiOauth`) |
//! | [`oauth_json`] | OpenClaw legacy `credentials/oauth.json` (`anthropic.{access,refresh,expires}`) |
//! | [`auth_profiles`] | OpenClaw legacy per-agent `auth-profiles.json` |
//! | [`dotenv`] | a `KEY=value` file: compose `.env`, `~/.openclaw/.env`, `~/.openclaw-env` |
//! | [`dropin`] | a systemd drop-in with `[Service]` `Environment=KEY=value` |
//! | [`bare`] | a bare token as `claude setup-token` prints it |
//!
//! Tokens are held in [`Secret`], whose `Debug` and `Display` show only a recognised prefix and
//! a fingerprint, never the value.
//!
//! ```
//! use credmap::{claude, oauth_json, RefreshPolicy};
//!
//! let cli = br#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-AAAA","refreshToken":"sk-ant-ort01-BBBB",
//!   "expiresAt":1767225600000,"scopes":["user:inference"]},"mcpOAuth":{}}"#;
//! let cred = claude::credential(&claude::parse(cli)?)?;
//!
//! let mut doc = oauth_json::parse(br#"{"openai":{"access":"x"}}"#)?;
//! oauth_json::set_anthropic(&mut doc, &cred, RefreshPolicy::AccessOnly);
//! let out = String::from_utf8(doc.to_bytes()).unwrap();
//! assert_eq!(out, r#"{"openai":{"access":"x"},"anthropic":{"access":"sk-ant-oat01-AAAA","expires":1767225600000}}"#);
//! # Ok::<(), credmap::Error>(())
//! ```
#![deny(missing_docs)]

pub mod auth_profiles;
pub mod bare;
pub mod claude;
mod credential;
pub mod detect;
pub mod dotenv;
pub mod dropin;
mod error;
mod expiry;
pub mod json;
pub mod oauth_json;
mod redact;
mod secret;

pub use credential::{Credential, RefreshPolicy};
pub use detect::{Format, detect};
pub use error::Error;
pub use expiry::{ExpiresAt, MAX_EXPIRY_MS, MIN_EXPIRY_MS, SECONDS_BELOW};
pub use redact::redact;
pub use secret::{Fingerprint, Secret};

/// The result type of every fallible function in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
