//! `isolate_network`: the mock works inside the new namespace, and nothing else is reachable.

mod common;

use keeper_anthropic_mock::{Mock, isolate_network};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[test]
fn mock_works_inside_an_isolated_network_and_the_outside_is_unreachable() {
    if !nix::unistd::geteuid().is_root() {
        let err = isolate_network().unwrap_err();
        assert!(err.contains("root"), "{err}");
        eprintln!("SKIPPED: isolate_network needs root ({err})");
        return;
    }
    isolate_network().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mock = Mock::start(dir.path()).unwrap();

    // curl, spawned from this thread, is inside the namespace and reaches the mock.
    let r = common::curl(&mock, &["https://api.anthropic.com/v1/messages/count_tokens", "-d", "{}"]);
    assert_eq!((r.status, r.body.as_str()), (200, "{\"input_tokens\":10}"), "{r:?}");

    // No route leaves it: TEST-NET-1 and a public resolver both fail at once.
    for addr in ["192.0.2.1:443", "1.1.1.1:443"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let err = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENETUNREACH), "{addr}: {err}");
    }
    // Nor can a child process get out, proxy or not.
    let out = common::curl_cmd(&mock, &["--noproxy", "*", "--max-time", "3", "https://1.1.1.1/"]).output().unwrap();
    assert!(!out.status.success());
}
