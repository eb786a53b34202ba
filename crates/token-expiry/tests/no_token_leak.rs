//! Regression test: whatever the input and options, no token ever reaches stdout or stderr.

mod common;

use common::{
    HOUR, MINUTE, access_token, claude_json, claude_json_with_refresh_expiry, now_ms, oauth_json, profiles_json,
    refresh_token, std_cmd, stub_json, write,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// Every `TEST<hex>` token body in `text` (the secret part after the public prefix), cut to 24
/// characters: long enough to be unique, short enough to catch a partial leak.
fn secrets_in(text: &str) -> Vec<String> {
    text.match_indices("TEST")
        .map(|(i, _)| text[i..].chars().take_while(char::is_ascii_alphanumeric).take(24).collect::<String>())
        .filter(|s| s.len() == 24)
        .collect()
}

fn spawn(args: &[String]) -> Child {
    std_cmd().args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// stdout and stderr of a finished (or killed) process.
fn collect(child: Child) -> Vec<u8> {
    let out = child.wait_with_output().unwrap();
    let mut all = out.stdout;
    all.extend(out.stderr);
    all
}

type Output = (String, Vec<u8>);

/// Input files of every format, valid and broken, all holding tokens.
fn fixtures(d: &Path) -> Vec<PathBuf> {
    let now = now_ms();
    let (t1, t2, t3) = (access_token(), access_token(), access_token());
    let full = claude_json(&access_token(), now + HOUR);
    vec![
        write(d, "ok.json", claude_json(&access_token(), now + 8 * HOUR)),
        write(d, "within.json", claude_json(&access_token(), now + 10 * MINUTE)),
        write(d, "expired.json", claude_json(&access_token(), now - HOUR)),
        write(d, "rt.json", claude_json_with_refresh_expiry(&access_token(), now + HOUR, now + 500 * HOUR)),
        write(d, "stub.json", stub_json()),
        write(d, "oauth.json", oauth_json(&access_token(), now + HOUR)),
        write(
            d,
            "auth-profiles.json",
            profiles_json(&[
                ("anthropic:api", "api_key", &t1, None),
                ("anthropic:manual", "token", &t2, Some(now + HOUR)),
                ("anthropic:claude-code", "oauth", &t3, Some(now - HOUR)),
                ("anthropic:mistake", "oauth", &access_token(), None),
            ]),
        ),
        write(d, ".env", format!("A=1\nANTHROPIC_OAUTH_TOKEN='{}'\nOTHER={}\n", access_token(), access_token())),
        write(d, "gw.conf", format!("[Service]\nEnvironment=\"ANTHROPIC_OAUTH_TOKEN={}\"\n", access_token())),
        write(d, "setup-token", format!("\n{}\n", access_token())),
        // broken ones, still full of tokens
        write(d, "trunc.json", &full[..full.len() - 20]),
        write(d, "type.json", full.replace("\"expiresAt\":", "\"expiresAt\":[],\"x\":")),
        write(
            d,
            "access-number.json",
            format!(r#"{{"claudeAiOauth":{{"accessToken":7,"refreshToken":"{}"}}}}"#, refresh_token()),
        ),
        write(d, "bad-quote.env", format!("ANTHROPIC_OAUTH_TOKEN=\"{}\n", access_token())),
        write(d, "bad-key.env", format!("{}=x\n", access_token())),
        write(d, "two-tokens", format!("{}\n{}\n", access_token(), access_token())),
        write(d, "bad-char", format!("{}!\n", access_token())),
        write(d, "bad.conf", format!("[Service]\nEnvironment={}\nnot a line {}\n", access_token(), access_token())),
        write(d, "nul.json", format!("{}\0", access_token())),
        write(d, "api-key", format!("sk-ant-api03-{}\n", &access_token()[13..])),
    ]
}

fn run(args: &[String], stdin: Option<&[u8]>) -> Output {
    let mut child = spawn(args);
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    (args.join(" "), collect(child))
}

/// Every output style × forced format (and some option variants) over all files, and each file
/// on stdin.
fn report_runs(files: &[PathBuf]) -> Vec<Output> {
    let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let formats = [
        None,
        Some("claude"),
        Some("openclaw-oauth"),
        Some("openclaw-profiles"),
        Some("dotenv"),
        Some("systemd-dropin"),
        Some("bare-token"),
    ];
    let variants =
        [["--profile-id", "anthropic:api"], ["--profile-id", "anthropic:mistake"], ["--key", "OTHER"], ["--key", "A"]];
    let mut outputs = Vec::new();
    for style in ["--output=text", "--json", "--seconds", "--prometheus"] {
        for format in formats {
            let mut args = vec![style.to_owned(), "--within".to_owned(), "1h".to_owned()];
            if let Some(f) = format {
                args.extend(["--format".to_owned(), f.to_owned()]);
            }
            args.extend(paths.iter().cloned());
            outputs.push(run(&args, None));
        }
        for extra in variants {
            let mut args = vec![style.to_owned()];
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args.extend(paths.iter().cloned());
            outputs.push(run(&args, None));
        }
        for f in files {
            outputs.push(run(&[style.to_owned(), "-".to_owned()], Some(&std::fs::read(f).unwrap())));
        }
    }
    outputs.push(run(&["--help".to_owned()], None));
    outputs
}

/// Wait mode on each file, all at once: a window so large that every token is inside it (exit 0),
/// or exit 3/5 at once, or (invalid files) waiting, stopped by SIGTERM after a moment. Then one
/// that waits, reads a half-written file, and is released; its new token is added to `secrets`.
fn wait_runs(dir: &Path, files: &[PathBuf], secrets: &mut Vec<String>) -> Vec<Output> {
    let waiting: Vec<_> = files
        .iter()
        .map(|f| {
            let args = vec!["--wait-until-within".to_owned(), "100000h".to_owned(), f.display().to_string()];
            (args.join(" "), spawn(&args))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut outputs = Vec::new();
    for (args, child) in waiting {
        let _ = kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), Signal::SIGTERM);
        outputs.push((args, collect(child)));
    }

    let target = write(dir, "wait.json", claude_json(&access_token(), now_ms() + HOUR));
    let child = spawn(&["--wait-until-within".to_owned(), "5m".to_owned(), target.display().to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let next = claude_json(&access_token(), now_ms() + 4 * MINUTE);
    secrets.extend(secrets_in(&next));
    std::fs::write(&target, &next[..next.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&target, &next).unwrap();
    let all = collect(child);
    assert!(String::from_utf8_lossy(&all).contains("truncated JSON"));
    outputs.push(("--wait-until-within 5m (rewritten)".to_owned(), all));
    outputs
}

#[test]
fn no_output_ever_contains_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let files = fixtures(dir.path());
    let mut secrets: Vec<String> = Vec::new();
    for f in &files {
        secrets.extend(secrets_in(&String::from_utf8_lossy(&std::fs::read(f).unwrap())));
    }
    assert!(secrets.len() >= 30, "the fixtures hold many tokens: {}", secrets.len());

    let mut outputs = report_runs(&files);
    outputs.extend(wait_runs(dir.path(), &files, &mut secrets));

    assert!(outputs.len() > 100, "{}", outputs.len());
    let mut fingerprints_seen = 0;
    for (args, output) in &outputs {
        let text = String::from_utf8_lossy(output);
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "token {secret} leaked by `token-expiry {args}`:\n{text}");
        }
        assert!(!text.contains("TEST"), "something token-like leaked by `token-expiry {args}`:\n{text}");
        fingerprints_seen += text.matches("sk-ant-oat01-…(").count();
    }
    assert!(fingerprints_seen > 50, "the runs did report tokens, by fingerprint: {fingerprints_seen}");
}
