//! What `docker inspect` says about a container. Its output holds the container's whole
//! environment (the token among it): it is parsed in memory and never printed, and every field
//! kept for display (the name above all: a container may be named after the token) is redacted
//! here.

use crate::redact::Redactor;
use credmap::Secret;
use serde_json::Value;

/// The parts of one container's `docker inspect` document this tool uses.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    pub(crate) id: String,
    /// Without the leading `/`.
    pub(crate) name: String,
    /// `State.Status`: created, running, restarting, paused, exited, dead, removing.
    pub(crate) status: String,
    pub(crate) exit_code: i64,
    /// `State.Health.Status` (starting, healthy, unhealthy) when the container has a healthcheck.
    pub(crate) health: Option<String>,
    /// `State.StartedAt` (RFC 3339).
    pub(crate) started_at: String,
    /// Started by `compose run` rather than as the service.
    pub(crate) one_off: bool,
    /// The watched variable's value in `Config.Env`, when it is there.
    pub(crate) value: Option<Secret>,
}

impl Container {
    pub(crate) fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }

    pub(crate) fn running(&self) -> bool {
        self.status == "running"
    }

    /// Running, and healthy when it has a healthcheck.
    pub(crate) fn ready(&self) -> bool {
        self.running() && self.health.as_deref().is_none_or(|h| h == "healthy")
    }

    /// Stopped for good: exited or dead (a restart policy shows `restarting` instead).
    pub(crate) fn stopped(&self) -> bool {
        matches!(self.status.as_str(), "exited" | "dead")
    }

    /// `running`, `running, healthy`, `exited (status 1)`, ….
    pub(crate) fn state(&self) -> String {
        let mut state = self.status.clone();
        if self.stopped() {
            state = format!("{state} (status {})", self.exit_code);
        }
        if let Some(health) = &self.health {
            state.push_str(", ");
            state.push_str(health);
        }
        state
    }
}

/// Parses `docker inspect` output (a JSON array), reading `key` from each container's env.
/// Errors never quote the document; the text fields are redacted with `redactor`.
pub(crate) fn parse(json: &str, key: &str, redactor: &Redactor) -> Result<Vec<Container>, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| {
        format!("docker inspect printed something that is not JSON (line {}, column {})", e.line(), e.column())
    })?;
    let items = doc.as_array().ok_or("docker inspect did not print a JSON array")?;
    items.iter().map(|item| container(item, key, redactor)).collect()
}

fn container(item: &Value, key: &str, redactor: &Redactor) -> Result<Container, String> {
    let text = |pointer: &str| item.pointer(pointer).and_then(Value::as_str).map(|s| redactor.redact(s));
    let id = text("/Id").ok_or("docker inspect output has no Id")?;
    let status = text("/State/Status").ok_or("docker inspect output has no State.Status")?;
    let prefix = format!("{key}=");
    let value = item
        .pointer("/Config/Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|entry| entry.strip_prefix(&prefix))
        .next_back()
        .map(Secret::new);
    Ok(Container {
        name: text("/Name").unwrap_or_default().trim_start_matches('/').to_owned(),
        exit_code: item.pointer("/State/ExitCode").and_then(Value::as_i64).unwrap_or(0),
        health: text("/State/Health/Status"),
        started_at: text("/State/StartedAt").unwrap_or_default(),
        one_off: text("/Config/Labels/com.docker.compose.oneoff").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        id,
        status,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_state_health_labels_and_the_variable() {
        let json = r#"[{"Id":"0123456789abcdef","Name":"/proj-gw-1",
            "State":{"Status":"running","ExitCode":0,"StartedAt":"2026-01-01T00:00:00Z","Health":{"Status":"starting"}},
            "Config":{"Env":["PATH=/bin","ANTHROPIC_OAUTH_TOKEN=old","ANTHROPIC_OAUTH_TOKEN_X=no","ANTHROPIC_OAUTH_TOKEN=TESTnew"],
                      "Labels":{"com.docker.compose.oneoff":"False"}}},
            {"Id":"fedcba9876543210","Name":"/x","State":{"Status":"exited","ExitCode":3},"Config":{"Env":null}}]"#;
        let c = parse(json, "ANTHROPIC_OAUTH_TOKEN", &Redactor::default()).unwrap();
        assert_eq!(
            (c[0].short_id(), c[0].name.as_str(), c[0].state().as_str()),
            ("0123456789ab", "proj-gw-1", "running, starting")
        );
        assert!(c[0].running() && !c[0].ready() && !c[0].one_off);
        assert_eq!(c[0].value.as_ref().map(Secret::expose), Some("TESTnew"), "the last assignment wins, as in Docker");
        assert_eq!(c[1].state(), "exited (status 3)");
        assert!(c[1].stopped() && c[1].value.is_none());
    }

    #[test]
    fn errors_do_not_quote_the_document() {
        let r = Redactor::default();
        let err = parse(r#"[{"Id":"x","Config":{"Env":["A=TESTsecret"]}}]"#, "A", &r).unwrap_err();
        assert_eq!(err, "docker inspect output has no State.Status");
        let err = parse("TESTsecret", "A", &r).unwrap_err();
        assert!(!err.contains("TESTsecret"), "{err}");
    }

    /// A container named after `${ANTHROPIC_OAUTH_TOKEN}` printed the whole token in the
    /// "recreated" line and in --json's `name`: the name (and every other kept text field) is
    /// redacted at the source, the value itself stays intact for the comparison.
    #[test]
    fn regression_a_container_named_after_the_token_printed_it() {
        let shaped = format!("sk-ant-oat01-TESTname{}", "a1".repeat(30));
        let plain = Secret::new(format!("TESTplain{}", "b2".repeat(20)));
        let json = format!(
            r#"[{{"Id":"0123456789abcdef","Name":"/gw-{shaped}","State":{{"Status":"running","StartedAt":"{p}"}},
                "Config":{{"Env":["K={shaped}"]}}}},
               {{"Id":"fedcba9876543210","Name":"/gw-{p}","State":{{"Status":"exited","Health":{{"Status":"{p}"}}}}}}]"#,
            p = plain.expose()
        );
        let c = parse(&json, "K", &Redactor::new([plain.clone()])).unwrap();
        assert_eq!(c[0].name, format!("gw-{}", Secret::new(shaped.as_str())));
        assert_eq!(c[0].value.as_ref().map(Secret::expose), Some(shaped.as_str()), "the value is compared, not shown");
        assert_eq!(c[0].started_at, plain.to_string());
        assert_eq!(c[1].name, format!("gw-{plain}"));
        assert_eq!(c[1].health.as_deref(), Some(plain.to_string().as_str()));
        for c in &c {
            assert!(!format!("{} {} {}", c.name, c.state(), c.started_at).contains("TEST"), "{c:?}");
        }
    }
}
