//! A webhook receiver on `127.0.0.1`, plain HTTP or HTTPS (a leaf certificate for `127.0.0.1`
//! and `localhost` signed by a throw-away CA), recording every request exactly as it arrived:
//! method, target, headers, body.

use crate::http::{self, Response};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// One request the receiver read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The request method, as sent.
    pub method: String,
    /// The request target (path and query), as sent.
    pub target: String,
    /// The headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (chunked bodies de-chunked).
    pub body: Vec<u8>,
}

impl Received {
    /// The first header of that name (any case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    #[must_use]
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status, a two-byte body `ok`, and the connection closed.
    Status(u16),
    /// Read the request (and record it), then say nothing until the client gives up or the
    /// receiver is dropped: a server that hangs.
    Silent,
}

#[derive(Debug)]
struct State {
    received: Vec<Received>,
    answer: Answer,
    shutdown: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    /// Clones of the open connections, for Drop to shut them down; removed when one ends (a
    /// clone left behind would keep the connection open after the answer).
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::accept::Listening for Shared {
    fn shutting_down(&self) -> bool {
        self.lock().shutdown
    }
    fn conns(&self) -> &Mutex<HashMap<u64, TcpStream>> {
        &self.conns
    }
}

/// A running receiver; dropping it stops it.
#[derive(Debug)]
pub struct WebhookReceiver {
    shared: Arc<Shared>,
    base: String,
    ca_pem: Option<PathBuf>,
    accept: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// A plain `http://127.0.0.1:PORT` receiver answering `200`.
    pub fn http() -> io::Result<Self> {
        Self::start(None, None)
    }

    /// An `https://127.0.0.1:PORT` receiver answering `200`; its CA certificate is written to
    /// `dir/webhook-ca.pem` ([`WebhookReceiver::ca_pem`]).
    pub fn https(dir: &Path) -> io::Result<Self> {
        let (ca, tls) = crate::tls::generate()?;
        let ca_pem = dir.join("webhook-ca.pem");
        std::fs::write(&ca_pem, ca)?;
        Self::start(Some(tls), Some(ca_pem))
    }

    fn start(tls: Option<Arc<ServerConfig>>, ca_pem: Option<PathBuf>) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://127.0.0.1:{}", listener.local_addr()?.port());
        let shared = Arc::new(Shared {
            state: Mutex::new(State { received: Vec::new(), answer: Answer::Status(200), shutdown: false }),
            changed: Condvar::new(),
            conns: Mutex::new(HashMap::new()),
        });
        let for_loop = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("webhook-receiver".into())
            .spawn(move || accept_loop(&listener, &for_loop, tls.as_ref()))?;
        Ok(Self { shared, base, ca_pem, accept: Some(accept) })
    }

    /// The URL of `path` (which starts with `/`) on this receiver.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The CA certificate (PEM) an HTTPS receiver's certificate chains to; `None` for plain HTTP.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// How the next requests are answered.
    pub fn set_answer(&self, answer: Answer) {
        self.shared.lock().answer = answer;
    }

    /// Every request so far, in arrival order.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Waits until at least `n` requests have arrived; returns them all.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Received>, String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if st.received.len() >= n {
                return Ok(st.received.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("{} of {n} webhook requests within {timeout:?}", st.received.len()));
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        for stream in self.shared.conns.lock().unwrap_or_else(PoisonError::into_inner).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, tls: Option<&Arc<ServerConfig>>) {
    let tls = tls.cloned();
    let handles = crate::accept::accept_loop(listener, shared, "webhook-conn", move |stream, _, shared: &Shared| {
        let result = match tls.clone() {
            Some(tls) => ServerConnection::new(tls).map_err(io::Error::other).and_then(|conn| {
                let mut tls = StreamOwned::new(conn, stream);
                serve(&mut tls, shared)?;
                tls.conn.send_close_notify();
                tls.flush()
            }),
            None => serve(stream, shared),
        };
        // A client that rejects the certificate ends the handshake: nothing to record.
        drop(result);
    });
    // Connections are shut down by Drop; their threads end with them.
    for h in handles {
        let _ = h.join();
    }
}

/// One connection: one request, recorded, then the configured answer.
fn serve<S: Read + Write>(stream: S, shared: &Shared) -> io::Result<()> {
    let mut r = BufReader::new(stream);
    let Some(head) = http::read_head(&mut r)? else { return Ok(()) };
    if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        r.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        r.get_mut().flush()?;
    }
    let body = http::read_body(&mut r, &head)?;
    let answer = {
        let mut st = shared.lock();
        st.received.push(Received { method: head.method, target: head.target, headers: head.headers, body });
        shared.changed.notify_all();
        st.answer
    };
    match answer {
        Answer::Status(status) => {
            let resp = Response { status, content_type: "text/plain", body: b"ok".to_vec() };
            http::write_response(r.get_mut(), &resp, true)
        }
        Answer::Silent => {
            // Hold the connection open without a word until the client closes it (a read returns
            // 0 or fails) or Drop shuts it down.
            let mut buf = [0_u8; 512];
            while !shared.lock().shutdown {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(addr: &str, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(raw).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn records_the_request_and_answers_the_status() {
        let hook = WebhookReceiver::http().unwrap();
        let addr = hook.url("").trim_start_matches("http://").to_owned();
        let reply = post(
            &addr,
            b"POST /hooks/x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc",
        );
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        hook.set_answer(Answer::Status(500));
        let reply = post(&addr, b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n");
        assert!(reply.starts_with("HTTP/1.1 500 "), "{reply}");
        let got = hook.wait_for(2, Duration::from_secs(5)).unwrap();
        assert_eq!((got[0].method.as_str(), got[0].target.as_str()), ("POST", "/hooks/x?a=1"));
        assert_eq!(got[0].header("Content-Type"), Some("text/plain"));
        assert_eq!(got[0].body, b"abc");
        assert_eq!((got[1].method.as_str(), got[1].body_text().as_str()), ("PUT", "hi"));
        assert!(hook.ca_pem().is_none());
    }

    #[test]
    fn https_writes_its_ca() {
        let dir = tempfile::tempdir().unwrap();
        let hook = WebhookReceiver::https(dir.path()).unwrap();
        assert!(hook.url("/x").starts_with("https://127.0.0.1:"));
        let pem = std::fs::read_to_string(hook.ca_pem().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }
}
