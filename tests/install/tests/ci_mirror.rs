//! `.ci/run` takes the Debian mirror for its private Compose v2 download from the machine's own
//! apt sources (`.ci/run --debian-mirror FILE…` runs only that lookup).

use keeper_install_tests::{repo_root, write_file};
use std::path::PathBuf;
use std::process::Command;

/// What `.ci/run --debian-mirror FILES…` prints, or `None` when it finds no mirror (exit ≠ 0).
fn mirror_of(files: &[(&str, &str)]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            write_file(&p, text);
            p
        })
        .collect();
    let out =
        Command::new("bash").arg(repo_root().join(".ci/run")).arg("--debian-mirror").args(&paths).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    if out.status.success() {
        Some(stdout.trim_end().to_owned())
    } else {
        assert!(stdout.is_empty(), "a failed lookup printed {stdout:?}");
        None
    }
}

#[test]
fn regression_ci_named_a_mirror_host_instead_of_the_machines_apt_sources() {
    let sources = "Types: deb-src\nURIs: http://src.example/debian\nSuites: trixie\n\n\
                   Types: deb\nURIs: http://off.example/debian\nEnabled: no\nSuites: trixie\n\n\
                   Types: deb\nURIs: http://security.example/debian-security\n\
                   \x20http://mirror.example/debian/\nSuites: trixie\nComponents: main\n";
    assert_eq!(mirror_of(&[("debian.sources", sources)]).as_deref(), Some("http://mirror.example/debian"));

    let list = "# deb http://commented.example/debian bookworm main\n\
                deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://list.example/debian bookworm main\n";
    assert_eq!(mirror_of(&[("sources.list", list)]).as_deref(), Some("https://list.example/debian"));

    // The first file with a main archive wins; security-only and snapshot sources are none.
    let security = "deb http://security.example/debian-security bookworm-security main\n\
                    deb http://snapshot.example/archive/debian/20260101T000000Z bookworm main\n";
    assert_eq!(mirror_of(&[("security.list", security)]), None);
    assert_eq!(
        mirror_of(&[("security.list", security), ("sources.list", list)]).as_deref(),
        Some("https://list.example/debian")
    );
}
