//! Node's TLS stack (the gateway's) trusts the mock through `NODE_EXTRA_CA_CERTS` alone.

mod common;

use keeper_anthropic_mock::{Mock, fingerprint};
use std::process::Command;

/// CONNECT by hand (Node 20's `fetch` has no proxy support), then HTTPS over the tunnel with no
/// `ca` option, so only `NODE_EXTRA_CA_CERTS` can make the certificate trusted.
const SCRIPT: &str = r"
const http = require('http'), https = require('https'), tls = require('tls');
const [port, token] = process.argv.slice(1);
http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: 'api.anthropic.com:443' })
  .on('connect', (res, socket) => {
    const req = https.request({
      host: 'api.anthropic.com', path: '/v1/messages?beta=true', method: 'POST',
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
      createConnection: () => tls.connect({ socket, servername: 'api.anthropic.com' }),
    }, (r) => {
      let body = '';
      r.on('data', (c) => body += c).on('end', () => { console.log(r.statusCode, r.headers['content-type']); console.log(body); process.exit(0); });
    });
    req.on('error', (e) => { console.error(e.message); process.exit(2); });
    req.end(JSON.stringify({ model: 'claude-opus-4-6', stream: true, messages: [] }));
  })
  .on('error', (e) => { console.error(e.message); process.exit(3); })
  .end();
";

#[test]
fn node_trusts_the_mock_via_node_extra_ca_certs() {
    let Ok(node) = which_node() else {
        eprintln!("SKIPPED: node not found");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::start(dir.path()).unwrap();
    let tok = common::token("oat", 'n');
    let mut cmd = Command::new(node);
    mock.apply_env(&mut cmd);
    let out = cmd.arg("-e").arg(SCRIPT).arg(mock.port().to_string()).arg(&tok).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("200 text/event-stream\n"), "{stdout}");
    assert!(stdout.contains("event: message_stop"), "{stdout}");
    assert_eq!(mock.messages()[0].token_fingerprint, Some(fingerprint(&tok)));
}

fn which_node() -> Result<std::path::PathBuf, ()> {
    ["/usr/bin/node", "/usr/local/bin/node"].iter().map(std::path::PathBuf::from).find(|p| p.exists()).ok_or(())
}
