//! The proxy port: accept loop, `CONNECT`, the TLS handshake and the keep-alive request loop.

use crate::handlers;
use crate::http::{self, Response};
use crate::record::{Request, RequestKind, Shared};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use serde_json::json;
use std::io::{self, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

/// Accepts on the proxy port until shutdown; returns the connection threads so `Drop` can join them.
pub(crate) fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    tls: &Arc<ServerConfig>,
) -> Vec<JoinHandle<()>> {
    let tls = Arc::clone(tls);
    crate::accept::accept_loop(listener, shared, "anthropic-mock-conn", move |stream, id, shared: &Shared| {
        // (No let-chains: the workspace's rust-version is 1.85.)
        let err = serve(stream, id, shared, Arc::clone(&tls)).err();
        let quiet = |e: &io::Error| {
            shared.lock().shutdown || matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset)
        };
        if let Some(e) = err.filter(|e| !quiet(e)) {
            eprintln!("keeper-anthropic-mock: connection {id}: {e}");
        }
    })
}

/// `host:443` → `host` (brackets of an IPv6 literal removed too).
fn strip_port(target: &str) -> &str {
    let host =
        target.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(target, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// One client connection: `CONNECT`, then TLS, then HTTP/1.1 requests until the client closes.
fn serve(stream: TcpStream, id: u64, shared: &Shared, tls: Arc<ServerConfig>) -> io::Result<()> {
    let mut plain = BufReader::new(stream);
    let Some(head) = http::read_head(&mut plain)? else { return Ok(()) };
    if !head.method.eq_ignore_ascii_case("CONNECT") {
        let _ = http::read_body(&mut plain, &head);
        shared.record(Request {
            at: SystemTime::now(),
            connect_host: String::new(),
            connection: id,
            method: head.method.clone(),
            path: head.target.clone(),
            token_fingerprint: None,
            status: 502,
            stream: false,
            model: None,
            user_agent: head.header("user-agent").map(str::to_owned),
            kind: RequestKind::Other,
        });
        let resp = Response::json(502, &json!({"error": "mock: only CONNECT (HTTPS) is proxied"}));
        return http::write_response(plain.get_mut(), &resp, true);
    }
    let host = strip_port(&head.target).to_owned();
    plain.get_mut().write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;

    let mut conn = ServerConnection::new(tls).map_err(io::Error::other)?;
    // A client that sent its ClientHello without waiting for the 200 left it in our buffer.
    let mut early = plain.buffer();
    while !early.is_empty() {
        conn.read_tls(&mut early)?;
        conn.process_new_packets().map_err(io::Error::other)?;
    }
    let mut tls = BufReader::new(StreamOwned::new(conn, plain.into_inner()));
    loop {
        let Some(head) = http::read_head(&mut tls)? else { return Ok(()) };
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            tls.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            tls.get_mut().flush()?;
        }
        let body = http::read_body(&mut tls, &head)?;
        // No answer (blackhole): keep the connection open and wait for the client to give up.
        let Some(resp) = handlers::handle(shared, (id, &host), &head, &body) else { continue };
        let close = head.wants_close();
        let extra = shared.lock().extra_headers.remove(&id).unwrap_or_default();
        http::write_response_with(tls.get_mut(), &resp, close, &extra)?;
        if close {
            tls.get_mut().conn.send_close_notify();
            return tls.get_mut().flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports() {
        assert_eq!(strip_port("api.anthropic.com:443"), "api.anthropic.com");
        assert_eq!(strip_port("[::1]:443"), "::1");
        assert_eq!(strip_port("claude.ai"), "claude.ai");
    }
}
