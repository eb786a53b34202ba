//! A real client (`curl`) pointed at the mock.
#![allow(dead_code, unreachable_pub, reason = "each test binary uses a different part of this module")]

use keeper_anthropic_mock::Mock;
use std::process::{Child, Command, Stdio};

/// What curl saw.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    /// curl's exit code (28: timed out).
    pub exit: Option<i32>,
}

/// curl through the mock's proxy, trusting its CA; `args` are the URL(s) and request options.
pub fn curl_cmd(mock: &Mock, args: &[&str]) -> Command {
    let mut cmd = Command::new("curl");
    // The environment `apply_env` sets is what routes curl through the proxy.
    mock.apply_env(&mut cmd);
    cmd.env_remove("ALL_PROXY").env_remove("all_proxy");
    cmd.args(["-sS", "--cacert"]).arg(mock.ca_pem()).args(args);
    cmd
}

/// Runs curl to completion; the last two lines of its output are the content type and status.
pub fn curl(mock: &Mock, args: &[&str]) -> Reply {
    let mut all = vec!["-w", "\n%{content_type}\n%{http_code}"];
    all.extend_from_slice(args);
    let out = curl_cmd(mock, &all).stderr(Stdio::inherit()).output().expect("run curl");
    parse(&out.stdout, out.status.code())
}

/// Starts curl without waiting; finish it with [`finish`].
pub fn spawn_curl(mock: &Mock, args: &[&str]) -> Child {
    let mut all = vec!["-w", "\n%{content_type}\n%{http_code}"];
    all.extend_from_slice(args);
    curl_cmd(mock, &all).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn curl")
}

/// Waits for a [`spawn_curl`] child.
pub fn finish(child: Child) -> Reply {
    let out = child.wait_with_output().expect("wait for curl");
    parse(&out.stdout, out.status.code())
}

fn parse(stdout: &[u8], exit: Option<i32>) -> Reply {
    let text = String::from_utf8_lossy(stdout).into_owned();
    let mut lines = text.rsplitn(3, '\n');
    let status = lines.next().unwrap_or("").trim().parse().unwrap_or(0);
    let content_type = lines.next().unwrap_or("").to_owned();
    let body = lines.next().unwrap_or("").to_owned();
    Reply { status, content_type, body, exit }
}

/// A messages request body.
pub fn message_body(stream: bool, model: Option<&str>) -> String {
    let mut v =
        serde_json::json!({"max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "stream": stream});
    if let Some(m) = model {
        v["model"] = m.into();
    }
    v.to_string()
}

/// A token of the real shape, distinct per `tag`.
pub fn token(kind: &str, tag: char) -> String {
    format!("sk-ant-{kind}01-{}AA", tag.to_string().repeat(93))
}
