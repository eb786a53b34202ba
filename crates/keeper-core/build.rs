//! Records the commit the tools are built from, for `--version` (`keeper_core::LONG_VERSION`).
//!
//! `KEEPER_BUILD_COMMIT` (e.g. a distribution building from a tarball) wins; else `git rev-parse
//! --short HEAD` when this crate's sources are tracked by the enclosing git repository (a tarball
//! unpacked inside some other repository must not take that one's commit); else "unknown".

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=KEEPER_BUILD_COMMIT");
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let from_env = std::env::var("KEEPER_BUILD_COMMIT").ok().filter(|c| !c.trim().is_empty());
    let commit = from_env.or_else(|| {
        // Our own sources must be in the repository's index, or it is not our repository.
        git(&dir, &["ls-files", "--error-unmatch", "src/lib.rs"])?;
        let commit = git(&dir, &["rev-parse", "--short", "HEAD"])?;
        watch_head(&dir);
        Some(commit)
    });
    let commit = commit.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=KEEPER_BUILD_COMMIT={commit}");
}

/// Rebuilds when HEAD moves (a commit, a checkout), and only then: HEAD itself, the branch it
/// names (a loose ref, else the refs directory where a new one would appear) and packed-refs.
/// Only existing paths are named: cargo re-runs a script on every build for a missing one.
fn watch_head(dir: &Path) {
    let (Some(git_dir), Some(common)) = (
        git(dir, &["rev-parse", "--absolute-git-dir"]),
        git(dir, &["rev-parse", "--path-format=absolute", "--git-common-dir"]),
    ) else {
        return;
    };
    let (git_dir, common) = (PathBuf::from(git_dir), PathBuf::from(common));
    let mut watched = vec![git_dir.join("HEAD"), common.join("packed-refs")];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = common.join(&branch);
        watched.push(if loose.is_file() { loose } else { common.join("refs/heads") });
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
