//! Bursts and crashes: whatever happens, a target is always a complete old or new version.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The three file targets, and a check that a target's bytes are a complete version holding one
/// of `tokens`: parsed by the same formats OpenClaw reads.
struct Targets {
    dotenv: PathBuf,
    oauth: PathBuf,
    profiles: PathBuf,
}

impl Targets {
    fn new(home: &Home) -> Self {
        Self { dotenv: home.path(".env"), oauth: home.path("oauth.json"), profiles: home.path("auth-profiles.json") }
    }

    fn args(&self) -> Vec<String> {
        vec![
            format!("--to=dotenv:{}", self.dotenv.display()),
            format!("--to=openclaw-oauth:{}", self.oauth.display()),
            format!("--to=openclaw-profiles:{}", self.profiles.display()),
        ]
    }

    fn all(&self) -> [&Path; 3] {
        [&self.dotenv, &self.oauth, &self.profiles]
    }
}

/// The token a complete target version holds, or a description of what is wrong with it.
fn complete_version(path: &Path) -> Result<Option<String>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let token = if path.extension().is_some_and(|e| e == "json") {
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))?;
        let t = v.pointer("/anthropic/access").or_else(|| v.pointer("/profiles/anthropic:claude-code/token"));
        let expires = v.pointer("/anthropic/expires").or_else(|| v.pointer("/profiles/anthropic:claude-code/expires"));
        if expires.and_then(serde_json::Value::as_i64).is_none() {
            return Err("no expiry beside the token".into());
        }
        t.and_then(serde_json::Value::as_str).map(str::to_owned)
    } else {
        let line = text.lines().find_map(|l| l.strip_prefix("ANTHROPIC_OAUTH_TOKEN="));
        if !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        line.map(str::to_owned)
    };
    token.map(Some).ok_or_else(|| "no token".to_owned())
}

#[test]
fn a_burst_of_1000_writes_ends_with_every_target_equal_to_the_last_and_valid_throughout() {
    let home = Home::new();
    let targets = Targets::new(&home);
    let first = home.fresh_source();
    let mut cmd = home.cred_sync();
    cmd.args(targets.args());
    let watch = Watch::start(cmd);

    // Readers check every version they see while the burst runs.
    let written: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(vec![first]));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = targets
        .all()
        .into_iter()
        .map(|p| {
            let (p, stop, written) = (p.to_path_buf(), Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match complete_version(&p) {
                        Ok(Some(token)) => {
                            assert!(
                                written.lock().unwrap().contains(&token),
                                "{} holds a token never written",
                                p.display()
                            );
                            seen += 1;
                        }
                        Ok(None) => {}
                        Err(problem) => panic!("{} seen incomplete: {problem}", p.display()),
                    }
                }
                seen
            })
        })
        .collect();

    let base = now_ms() + 8 * HOUR_MS;
    let mut last = String::new();
    for i in 0..1000 {
        last = access_token();
        written.lock().unwrap().push(last.clone());
        let style = if i % 2 == 0 { WriteStyle::InPlace } else { WriteStyle::Rename };
        // Each later write lives longer, as real refreshes do.
        write_source(&home.source(), &claude_json(&last, &refresh_token(), base + i64::from(i) * 1000, "a"), style);
    }
    let settled = wait_for(Duration::from_secs(60), || {
        targets.all().iter().all(|p| complete_version(p) == Ok(Some(last.clone())))
    });
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<u64> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(
        settled,
        "targets did not settle on the last token: {:?}",
        watch.stderr().iter().rev().take(5).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|&n| n > 0), "the readers saw versions: {seen:?}");
    let (out, err) = watch.stop();
    let syncs = out.len() / 3;
    eprintln!("1000 source writes → {syncs} syncs of 3 targets; reader checks per target: {seen:?}");
    assert!(
        !err.iter().any(|l| l.contains("error")),
        "{:?}",
        err.iter().filter(|l| l.contains("error")).collect::<Vec<_>>()
    );
    assert!(syncs >= 1);
}

#[test]
fn kill_9_at_random_moments_leaves_each_target_a_complete_old_or_new_version() {
    let home = Home::new();
    let targets = Targets::new(&home);
    home.fresh_source();
    // How long a whole run takes, so the kills land across all of it, writes included.
    let mut durations: Vec<Duration> = (0..5)
        .map(|_| {
            home.fresh_source();
            let start = Instant::now();
            let ran = run(home.cred_sync().args(targets.args()));
            assert_eq!(ran.code, Some(0), "{}", ran.stderr);
            start.elapsed()
        })
        .collect();
    durations.sort();
    let span = durations[2].as_micros() as u64 * 12 / 10;

    let (mut killed, mut finished, mut moved) = (0, 0, 0);
    let mut base = now_ms() + 8 * HOUR_MS;
    for _ in 0..200 {
        let before: Vec<Option<String>> = targets.all().iter().map(|p| complete_version(p).unwrap()).collect();
        let access = access_token();
        base += 1000;
        write_source(&home.source(), &claude_json(&access, &refresh_token(), base, "a"), WriteStyle::Rename);
        let mut child = home
            .cred_sync()
            .args(targets.args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(random_u64() % span.max(1)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.code().is_some() {
            finished += 1;
        } else {
            killed += 1;
        }
        for (p, old) in targets.all().iter().zip(&before) {
            let now = complete_version(p).unwrap_or_else(|e| panic!("{} incomplete after kill -9: {e}", p.display()));
            assert!(
                now == *old || now.as_ref() == Some(&access),
                "{} holds neither the old nor the new token",
                p.display()
            );
            moved += usize::from(now != *old);
        }
    }
    eprintln!("200 runs: {killed} killed by SIGKILL, {finished} finished first; {moved} target writes landed");
    assert!(killed > 0, "no run was killed: the test proved nothing");

    // A run to the end cleans up the temp files the killed writers left (they hold tokens).
    write_source(&home.source(), &claude_json(&access_token(), &refresh_token(), base + 1000, "a"), WriteStyle::Rename);
    assert_eq!(run(home.cred_sync().args(targets.args())).code, Some(0));
    let leftovers: Vec<_> = std::fs::read_dir(home.dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}
