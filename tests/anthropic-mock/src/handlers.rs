//! The endpoints: Messages (SSE or JSON), `count_tokens`, the OAuth token endpoint, profile.

use crate::http::{Head, Response};
use crate::record::{IssuedTokens, Request, RequestKind, Shared, TokenAnswer, TokenEndpoint, fingerprint};
use serde_json::{Value, json};
use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

const DEFAULT_MODEL: &str = "claude-opus-4-6";
const SCOPE: &str = "user:inference user:profile user:sessions:claude_code user:mcp_servers user:file_upload";
const ACCOUNT_UUID: &str = "00000000-0000-4000-8000-00000000a11c";
const ORG_UUID: &str = "00000000-0000-4000-8000-0000000000e6";

/// Answers one request and records it; `None` means "never answer" (the blackhole).
pub(crate) fn handle(shared: &Shared, conn: (u64, &str), head: &Head, body: &[u8]) -> Option<Response> {
    let (connection, connect_host) = conn;
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(Value::as_str).map(str::to_owned);
    let mut req = Request {
        at: SystemTime::now(),
        connect_host: connect_host.to_owned(),
        connection,
        method: head.method.clone(),
        path: head.target.clone(),
        token_fingerprint: bearer(head).map(fingerprint),
        status: 0,
        stream: json.as_ref().and_then(|j| j.get("stream")).and_then(Value::as_bool) == Some(true),
        model: field("model"),
        user_agent: head.header("user-agent").map(str::to_owned),
        kind: RequestKind::Other,
    };
    let (kind, resp) = match (head.method.as_str(), head.path()) {
        ("POST", "/v1/messages") => (RequestKind::Messages, Some(messages(shared, &req, json.as_ref()))),
        ("POST", "/v1/messages/count_tokens") => {
            (RequestKind::CountTokens, Some(Response::json(200, &json!({"input_tokens": 10}))))
        }
        ("POST", "/v1/oauth/token" | "/oauth/token") => oauth_token(shared, connection, head, body),
        ("GET", p) if p.starts_with("/api/oauth/") => (RequestKind::Profile, Some(profile())),
        _ => (
            RequestKind::Other,
            Some(Response::json(
                404,
                &json!({"type": "error", "error": {"type": "not_found_error", "message": "mock: no such path"}}),
            )),
        ),
    };
    req.kind = kind;
    req.status = resp.as_ref().map_or(0, |r| r.status);
    let delay = matches!(req.kind, RequestKind::Messages).then(|| shared.lock().reply_delay);
    shared.record(req);
    // Recorded first, so a test can see the turn arrive while its reply is held.
    if delay.is_some_and(|d| shared.sleep(d)) {
        return None;
    }
    resp
}

/// The request's token: `Authorization: Bearer X`, else `x-api-key: X`.
fn bearer(head: &Head) -> Option<&str> {
    let auth = head.header("authorization").and_then(|v| {
        let (scheme, tok) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| tok.trim())
    });
    auth.or_else(|| head.header("x-api-key")).filter(|t| !t.is_empty())
}

fn auth_error(message: &str) -> Response {
    Response::json(
        401,
        &json!({"type": "error", "error": {"type": "authentication_error", "message": message}, "request_id": "req_mock"}),
    )
}

fn messages(shared: &Shared, req: &Request, body: Option<&Value>) -> Response {
    let (reply, n) = {
        let mut st = shared.lock();
        match &req.token_fingerprint {
            None => return auth_error("x-api-key header is required"),
            Some(fp) if st.rejected.contains(fp) => {
                return auth_error(
                    "OAuth token has expired. Please obtain a new token or refresh your existing token.",
                );
            }
            Some(_) => {}
        }
        st.served += 1;
        (st.reply.clone(), st.served)
    };
    if body.is_none() {
        return Response::json(
            400,
            &json!({"type": "error", "error": {"type": "invalid_request_error", "message": "mock: body is not JSON"}}),
        );
    }
    let model = req.model.as_deref().unwrap_or(DEFAULT_MODEL);
    let id = format!("msg_mock_{n:04}");
    let usage =
        json!({"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0});
    if !req.stream {
        return Response::json(
            200,
            &json!({"id": id, "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": reply}],
                    "stop_reason": "end_turn", "stop_sequence": null, "usage": usage}),
        );
    }
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
                    "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": usage}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": reply}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                    "usage": {"output_tokens": 1}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let mut sse = String::new();
    for (name, data) in events {
        let _ = write!(sse, "event: {name}\ndata: {data}\n\n");
    }
    Response { status: 200, content_type: "text/event-stream", body: sse.into_bytes() }
}

fn profile() -> Response {
    Response::json(
        200,
        &json!({"account": {"uuid": ACCOUNT_UUID, "email": "mock@example.invalid"}, "organization": {"uuid": ORG_UUID}}),
    )
}

fn oauth_error(status: u16, error: &str, description: &str) -> Response {
    Response::json(status, &json!({"error": error, "error_description": description}))
}

/// The token endpoint. Order: a queued one-off answer, blackhole, server error, form body, invalid
/// grant, rotation.
fn oauth_token(shared: &Shared, connection: u64, head: &Head, body: &[u8]) -> (RequestKind, Option<Response>) {
    let content_type = head.header("content-type").map(str::to_owned);
    let is_form = content_type.as_deref().is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let fields: Vec<(String, String)> = if is_form {
        form_fields(body)
    } else {
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| o.into_iter().filter_map(|(k, v)| Some((k, v.as_str()?.to_owned()))).collect())
            .unwrap_or_default()
    };
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let refresh = get("refresh_token");
    let kind = RequestKind::OAuthToken {
        content_type,
        grant_type: get("grant_type"),
        client_id: get("client_id"),
        scope: get("scope"),
        refresh_fingerprint: refresh.as_deref().map(fingerprint),
    };
    let invalid_grant = || oauth_error(400, "invalid_grant", "Refresh token not found or invalid");
    let mut st = shared.lock();
    if let Some(answer) = st.queued_token_answers.pop_front() {
        let resp = match answer {
            TokenAnswer::TooManyRequests { retry_after } => {
                if let Some(secs) = retry_after {
                    st.extra_headers.insert(connection, vec![("retry-after".to_owned(), secs.to_string())]);
                }
                Response::json(429, &json!({"error": "rate_limit_error", "error_description": "mock: slow down"}))
            }
            TokenAnswer::ServerError => Response::json(500, &json!({"error": "server_error"})),
            TokenAnswer::Malformed => Response {
                status: 200,
                content_type: "application/json",
                body: br#"{"token_type":"Bearer","access_token":"#.to_vec(),
            },
        };
        return (kind, Some(resp));
    }
    let resp = match st.token_endpoint.clone() {
        TokenEndpoint::Blackhole => return (kind, None),
        TokenEndpoint::ServerError => Response::json(500, &json!({"error": "server_error"})),
        _ if is_form => oauth_error(400, "invalid_request", "mock: the token endpoint takes a JSON body"),
        TokenEndpoint::InvalidGrant => invalid_grant(),
        TokenEndpoint::Rotate { .. } if get("grant_type").as_deref() != Some("refresh_token") => {
            oauth_error(400, "unsupported_grant_type", "mock: only grant_type refresh_token is supported")
        }
        TokenEndpoint::Rotate { expires_in, refresh_token_expires_in, include_refresh_token } => match refresh {
            None => oauth_error(400, "invalid_request", "mock: refresh_token is required"),
            Some(old) if !st.live_refresh.remove(&old) => {
                if st.once_live.contains(&old) {
                    st.reuses += 1;
                }
                invalid_grant()
            }
            Some(_) => {
                let access = new_token("sk-ant-oat01-");
                let new_refresh = include_refresh_token.then(|| new_token("sk-ant-ort01-"));
                if let Some(r) = &new_refresh {
                    st.live_refresh.insert(r.clone());
                    st.once_live.insert(r.clone());
                }
                let mut answer = json!({"token_type": "Bearer", "access_token": access, "expires_in": expires_in});
                if let Some(r) = &new_refresh {
                    answer["refresh_token"] = json!(r);
                }
                if let Some(e) = refresh_token_expires_in {
                    answer["refresh_token_expires_in"] = json!(e);
                }
                answer["scope"] = json!(SCOPE);
                answer["organization"] = json!({"uuid": ORG_UUID, "name": "mock"});
                answer["account"] = json!({"uuid": ACCOUNT_UUID, "email_address": "mock@example.invalid"});
                st.issued.push(IssuedTokens { access, refresh: new_refresh, at: SystemTime::now() });
                Response::json(200, &answer)
            }
        },
    };
    (kind, Some(resp))
}

/// `application/x-www-form-urlencoded` pairs, percent- and plus-decoded.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => match b
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// A token shaped like the real ones: prefix and 95 characters, 93 of `[A-Za-z0-9_-]` then `AA`
/// (108 in all).
fn new_token(prefix: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    // std's RandomState is seeded from the OS; hashing a counter with it is random enough for a
    // test token and needs no `rand` dependency.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = RandomState::new();
    let mut out = String::with_capacity(108);
    out.push_str(prefix);
    while out.len() < prefix.len() + 93 {
        let mut h = seed.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let mut bits = h.finish();
        for _ in 0..10 {
            if out.len() == prefix.len() + 93 {
                break;
            }
            out.push(char::from(ALPHABET[(bits & 63) as usize]));
            bits >>= 6;
        }
    }
    out.push_str("AA");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_real_shape() {
        let a = new_token("sk-ant-oat01-");
        assert_eq!(a.len(), 108);
        assert!(a.ends_with("AA") && a.starts_with("sk-ant-oat01-"));
        assert!(a[13..].bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a, new_token("sk-ant-oat01-"));
    }

    #[test]
    fn form_decoding() {
        let f = form_fields(b"grant_type=refresh_token&scope=user%3Ainference+user%3Aprofile&bad=%zz&x");
        assert_eq!(f[0], ("grant_type".into(), "refresh_token".into()));
        assert_eq!(f[1].1, "user:inference user:profile");
        assert_eq!(f[2].1, "%zz");
        assert_eq!(f[3], ("x".into(), String::new()));
    }
}
