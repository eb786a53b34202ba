//! A webhook stand-in on 127.0.0.1 for the tools' failure notifications.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// A webhook on 127.0.0.1: answers each POST with [`Webhook::status`] and records the bodies.
#[derive(Debug)]
pub struct Webhook {
    /// Where to POST.
    pub url: String,
    /// The bodies received, in order.
    pub bodies: Arc<Mutex<Vec<String>>>,
    /// The HTTP status line it answers with (`200 OK` at first).
    pub status: Arc<Mutex<&'static str>>,
}

impl Webhook {
    /// Starts listening on a free port, serving on a thread of its own.
    ///
    /// # Panics
    /// When it cannot bind.
    #[must_use]
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/keeper", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new("200 OK"));
        let (b, s) = (bodies.clone(), status.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                let body = loop {
                    let Ok(n) = conn.read(&mut buf) else { break None };
                    if n == 0 {
                        break None;
                    }
                    req.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&req).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= len {
                            break Some(body.to_owned());
                        }
                    }
                };
                if let Some(body) = body {
                    b.lock().unwrap().push(body);
                }
                let reply =
                    format!("HTTP/1.1 {}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", s.lock().unwrap());
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        Self { url, bodies, status }
    }

    /// The bodies received so far.
    ///
    /// # Panics
    /// When the server thread panicked holding the lock.
    #[must_use]
    pub fn received(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}
