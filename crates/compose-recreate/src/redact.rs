//! Removes tokens from text we did not write (Docker's and Compose's messages, change lines)
//! before it is shown.

use credmap::Secret;

/// Replaces known secret values, and anything shaped like an Anthropic token
/// (`sk-ant-<3 letters><2 digits>-<token characters>`), with the token's fingerprint display
/// (`sk-ant-oat01-…(3f2a9c1e)`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// Known values, longest first so a value that contains another is replaced whole.
    known: Vec<Secret>,
}

impl Redactor {
    /// A redactor that also knows these values (for tokens without the Anthropic shape).
    pub(crate) fn new(known: impl IntoIterator<Item = Secret>) -> Self {
        let mut known: Vec<Secret> = known.into_iter().filter(|s| !s.is_empty()).collect();
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { known }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.known {
            if text.contains(secret.expose()) {
                text = text.replace(secret.expose(), &secret.to_string());
            }
        }
        credmap::redact(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(kind: &str) -> String {
        format!("sk-ant-{kind}-TESTredact{}", "xY9_-".repeat(10))
    }

    #[test]
    fn shaped_tokens_become_fingerprints_wherever_they_sit() {
        let (access, refresh) = (fake("oat01"), fake("ort01"));
        let text = format!(
            "no such image: keeper-{access}: invalid reference\nA=\"{refresh}\" and {access}, done; sk-ant- alone; sk-ant-oat01-"
        );
        let out = Redactor::default().redact(&text);
        assert!(!out.contains("TESTredact"), "{out}");
        assert!(out.contains(&format!("keeper-{}: invalid", Secret::new(access.as_str()))), "{out}");
        assert!(out.contains(&Secret::new(refresh.as_str()).to_string()), "{out}");
        assert!(out.ends_with("sk-ant- alone; sk-ant-oat01-"), "{out}");
    }

    #[test]
    fn known_values_without_the_shape_are_replaced_too() {
        let secret = Secret::new("plain-secret-value-TESTknown");
        let out = Redactor::new([secret.clone(), Secret::new("")]).redact("x=plain-secret-value-TESTknown!");
        assert_eq!(out, format!("x={secret}!"));
    }

    #[test]
    fn already_redacted_text_and_multibyte_text_survive() {
        let shown = Secret::new(fake("oat01")).to_string();
        let text = format!("→ {shown} ←, sk-ant-oat01-é");
        assert_eq!(Redactor::default().redact(&text), text);
    }
}
