//! The report mode: exit codes, output formats, format detection and bad input.

mod common;

use common::{
    HOUR, MINUTE, SECOND, access_token, claude_json, claude_json_with_refresh_expiry, cmd, now_ms, oauth_json,
    profiles_json, run, std_cmd, stub_json, write,
};
use credmap::{ExpiresAt, Secret};
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

fn rfc3339(ms: i64) -> String {
    ExpiresAt::from_millis(ms).unwrap().to_string()
}

fn shown(token: &str) -> String {
    Secret::new(token).to_string()
}

fn fingerprint(token: &str) -> String {
    Secret::new(token).fingerprint().to_string()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

// ---- exit codes -------------------------------------------------------------------------------

#[test]
fn exit_0_for_a_valid_token_with_one_text_line() {
    let dir = tempfile::tempdir().unwrap();
    let tok = access_token();
    let expires = now_ms() + 8 * HOUR;
    let f = write(dir.path(), ".credentials.json", claude_json(&tok, expires));
    let (code, out, err) = run([&f]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    let line = out.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'));
    let head = format!("{}: ok, 7h 59m 5", p(&f));
    assert!(line.starts_with(&head), "{line}");
    let tail = format!("s left, expires {}, claude, {}", rfc3339(expires), shown(&tok));
    assert!(line.ends_with(&tail), "{line}");
}

#[test]
fn exit_0_with_more_than_within_left() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + 2 * HOUR));
    cmd().args(["--within", "1h30m"]).arg(&f).assert().code(0).stdout(predicate::str::contains(": ok, 1h 59m"));
}

#[test]
fn exit_1_within_duration_and_0_without_within() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + 30 * MINUTE));
    cmd().args(["--within", "1h"]).arg(&f).assert().code(1).stdout(predicate::str::contains(": within, 29m 5"));
    cmd().args(["--within", "90m"]).arg(&f).assert().code(1);
    cmd().args(["--within", "29m"]).arg(&f).assert().code(0);
    cmd().arg(&f).assert().code(0).stdout(predicate::str::contains(": ok, 29m 5"));
}

#[test]
fn exit_2_expired() {
    let dir = tempfile::tempdir().unwrap();
    let expires = now_ms() - 3 * MINUTE - 5 * SECOND;
    let f = write(dir.path(), "c.json", claude_json(&access_token(), expires));
    let (code, out, _) = run([&f]);
    assert_eq!(code, 2);
    let (head, tail) = (format!("{}: expired, 3m ", p(&f)), format!("s ago, expires {}, claude, ", rfc3339(expires)));
    assert!(out.starts_with(&head) && out.contains(&tail), "{out}");
    // --within does not turn an expired token into "within"
    cmd().args(["--within", "5m"]).arg(&f).assert().code(2);
}

#[test]
fn exit_3_logged_out_stub() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", stub_json());
    cmd()
        .arg(&f)
        .assert()
        .code(3)
        .stdout(format!("{}: logged-out, the Claude CLI is logged out: run `claude auth login`, claude\n", p(&f)))
        .stderr("");
}

#[test]
fn exit_4_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nope.json");
    cmd().arg(&f).assert().code(4).stdout("").stderr(format!("{}: error: no such file\n", p(&f)));
}

#[test]
fn exit_5_no_expiry_for_dotenv_dropin_and_bare_token() {
    let dir = tempfile::tempdir().unwrap();
    let tok = access_token();
    let env =
        write(dir.path(), ".env", format!("# compose\nOPENCLAW_IMAGE=openclaw:latest\nANTHROPIC_OAUTH_TOKEN={tok}\n"));
    let dropin = write(
        dir.path(),
        "token.conf",
        format!("[Service]\nEnvironment=OTHER=1\nEnvironment=ANTHROPIC_OAUTH_TOKEN={tok}\n"),
    );
    let bare = write(dir.path(), "setup-token", format!("{tok}\n"));
    for (f, kind) in [
        (&env, "dotenv ANTHROPIC_OAUTH_TOKEN"),
        (&dropin, "systemd-dropin ANTHROPIC_OAUTH_TOKEN"),
        (&bare, "bare-token"),
    ] {
        cmd()
            .arg(f)
            .assert()
            .code(5)
            .stdout(format!("{}: no-expiry, no expiry recorded, {kind}, {}\n", p(f), shown(&tok)))
            .stderr("");
    }
}

#[test]
fn key_selects_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let tok = access_token();
    let env = write(dir.path(), ".env", format!("MY_TOKEN={tok}\n"));
    cmd()
        .arg(&env)
        .assert()
        .code(4)
        .stderr(format!("{}: error: `ANTHROPIC_OAUTH_TOKEN` is not set (see --key)\n", p(&env)));
    cmd().args(["--key", "MY_TOKEN"]).arg(&env).assert().code(5).stdout(predicate::str::contains(shown(&tok)));
    cmd().env("KEEPER_ENV_KEY", "MY_TOKEN").arg(&env).assert().code(5);
}

#[test]
fn exit_64_for_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + HOUR));
    let g = write(dir.path(), "d.json", claude_json(&access_token(), now_ms() + HOUR));
    let cases: [&[&str]; 8] = [
        &["--no-such-flag"],
        &["--within", "soon"],
        &["--within"],
        &["--format", "yaml"],
        &["--json", "--seconds"],
        &["--seconds", "--prometheus"],
        &["--output", "xml"],
        &["--wait-until-within", "5m", "-"],
    ];
    for args in cases {
        cmd().args(args).arg(&f).assert().code(64).stdout("");
    }
    cmd()
        .args(["--wait-until-within", "5m"])
        .args([&f, &g])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("exactly one FILE"));
    cmd().arg("--config").arg(dir.path().join("missing.env")).arg(&f).assert().code(64);
}

#[test]
fn help_documents_the_exit_codes_and_exits_0() {
    cmd()
        .arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("64  usage error"))
        .stdout(predicate::str::contains("4 > 3 > 2 > 1 > 6 > 5 > 0"))
        .stdout(predicate::str::contains("128+N"));
}

// ---- several files ----------------------------------------------------------------------------

#[test]
fn the_worst_status_wins() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let ok = write(dir.path(), "ok.json", claude_json(&access_token(), now + 8 * HOUR));
    let within = write(dir.path(), "within.json", claude_json(&access_token(), now + 10 * MINUTE));
    let expired = write(dir.path(), "expired.json", claude_json(&access_token(), now - MINUTE));
    let stub = write(dir.path(), "stub.json", stub_json());
    let missing = dir.path().join("missing.json");
    let no_expiry = write(dir.path(), ".env", format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token()));
    // rank: 4 > 3 > 2 > 1 > 5 > 0
    let cases = [
        (vec![&ok, &no_expiry], 5),
        (vec![&no_expiry, &within], 1),
        (vec![&within, &expired, &ok], 2),
        (vec![&expired, &stub, &within], 3),
        (vec![&stub, &missing, &ok], 4),
        (vec![&missing, &ok, &no_expiry, &within, &expired, &stub], 4),
        (vec![&ok, &ok], 0),
    ];
    for (files, want) in cases {
        let (code, out, _) = run(["--within", "1h"].iter().map(Path::new).chain(files.iter().map(|f| f.as_path())));
        assert_eq!(code, want, "{files:?}");
        let valid_files = files.iter().filter(|f| **f != &missing).count();
        assert_eq!(out.lines().count(), valid_files, "one line per readable file: {out}");
        // and in reverse order
        let (code, _, _) = run(["--within", "1h"].iter().map(Path::new).chain(files.iter().rev().map(|f| f.as_path())));
        assert_eq!(code, want, "reversed {files:?}");
    }
}

// ---- output formats ---------------------------------------------------------------------------

#[test]
fn json_lines_carry_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let (tok, tok2) = (access_token(), access_token());
    let expires = now + 2 * HOUR;
    let refresh_expires = now + 20 * 24 * HOUR;
    let claude = write(dir.path(), "c.json", claude_json_with_refresh_expiry(&tok, expires, refresh_expires));
    let profiles = write(
        dir.path(),
        "auth-profiles.json",
        profiles_json(&[("anthropic:claude-code", "token", &tok2, Some(now - HOUR))]),
    );
    let stub = write(dir.path(), "stub.json", stub_json());
    let env = write(dir.path(), ".env", format!("ANTHROPIC_OAUTH_TOKEN={tok}\n"));
    let bad = write(dir.path(), "bad.json", "{\"claudeAiOauth\":{\"acc");
    let (code, out, err) =
        run([Path::new("--json"), Path::new("--within"), Path::new("3h"), &claude, &profiles, &stub, &env, &bad]);
    assert_eq!(code, 4);
    assert_eq!(
        err,
        format!("{}: error: truncated JSON: input ends early at line 1 column 22 (half-written file?)\n", p(&bad))
    );
    let v = json_lines(&out);
    assert_eq!(v.len(), 5);

    let c = &v[0];
    assert_eq!(c["file"], p(&claude));
    assert_eq!(c["format"], "claude");
    assert!(c.get("profile").is_none());
    assert_eq!(c["status"], "within");
    assert_eq!(c["exit_code"], 1);
    assert_eq!(c["expires_at"], rfc3339(expires));
    assert_eq!(c["expires_at_ms"], expires);
    let remaining = c["remaining_seconds"].as_i64().unwrap();
    assert!((7190..=7200).contains(&remaining), "{remaining}");
    assert_eq!(c["fingerprint"], fingerprint(&tok));
    assert_eq!(c["fingerprint"].as_str().unwrap().len(), 8);
    assert_eq!(c["refresh_token_expires_at"], rfc3339(refresh_expires));
    assert!(c.get("error").is_none());

    let pr = &v[1];
    assert_eq!(pr["format"], "openclaw-profiles");
    assert_eq!(pr["profile"], "anthropic:claude-code");
    assert_eq!(pr["status"], "expired");
    assert_eq!(pr["exit_code"], 2);
    assert!((-3605..=-3600).contains(&pr["remaining_seconds"].as_i64().unwrap()));
    assert_eq!(pr["fingerprint"], fingerprint(&tok2));
    assert!(pr.get("refresh_token_expires_at").is_none());

    assert_eq!(v[2], serde_json::json!({"file": p(&stub), "format": "claude", "status": "logged-out", "exit_code": 3}));
    assert_eq!(
        v[3],
        serde_json::json!({
            "file": p(&env), "format": "dotenv", "status": "no-expiry", "exit_code": 5, "fingerprint": fingerprint(&tok)
        })
    );
    assert_eq!(
        v[4],
        serde_json::json!({"file": p(&bad), "status": "invalid", "exit_code": 4,
            "error": "truncated JSON: input ends early at line 1 column 22 (half-written file?)"})
    );
}

#[test]
fn output_style_from_the_environment_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + HOUR));
    let out = cmd().env("KEEPER_OUTPUT", "json").arg(&f).assert().code(0).get_output().stdout.clone();
    assert_eq!(json_lines(&String::from_utf8(out).unwrap())[0]["status"], "ok");
    cmd()
        .env("KEEPER_OUTPUT", "json")
        .arg("--seconds")
        .arg(&f)
        .assert()
        .code(0)
        .stdout(predicate::str::is_match("^3[0-9]{3}\n$").unwrap());
    cmd()
        .args(["--output", "seconds"])
        .arg(&f)
        .assert()
        .code(0)
        .stdout(predicate::str::is_match("^3[0-9]{3}\n$").unwrap());
}

#[test]
fn seconds_prints_remaining_seconds_only() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let ok = write(dir.path(), "ok.json", oauth_json(&access_token(), now + HOUR));
    let expired = write(dir.path(), "expired.json", claude_json(&access_token(), now - 100 * SECOND));
    let env = write(dir.path(), ".env", format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token()));
    let stub = write(dir.path(), "stub.json", stub_json());
    let missing = dir.path().join("missing");
    let (code, out, err) = run([Path::new("--seconds"), &ok, &env, &expired, &stub, &missing]);
    assert_eq!(code, 4);
    let nums: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(nums.len(), 2, "nothing on stdout for files without expiry: {out}");
    assert!((3590..=3600).contains(&nums[0]), "{nums:?}");
    assert!((-105..=-100).contains(&nums[1]), "{nums:?}");
    let errs: Vec<&str> = err.lines().collect();
    assert_eq!(
        errs,
        [
            format!("{}: error: no expiry recorded (dotenv)", p(&env)),
            format!(
                "{}: error: logged-out stub (empty tokens, expiresAt 0): the Claude CLI's refresh token is dead; \
                 run `claude auth login`",
                p(&stub)
            ),
            format!("{}: error: no such file", p(&missing)),
        ]
    );
}

#[test]
fn prometheus_text_is_exact_and_escapes_labels() {
    let dir = tempfile::tempdir().unwrap();
    let expires = now_ms() + 90 * MINUTE;
    let f = write(dir.path(), "we\"ird\\na\nme.json", claude_json(&access_token(), expires));
    let (code, out, err) = run([Path::new("--prometheus"), &f]);
    assert_eq!((code, err.as_str()), (0, ""));
    let label = p(&f).replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    assert!(label.ends_with("we\\\"ird\\\\na\\nme.json"), "{label}");
    let remaining_line = out.lines().find(|l| l.starts_with("openclaw_keeper_token_remaining_seconds{")).unwrap();
    let remaining: i64 = remaining_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((5390..=5400).contains(&remaining), "{remaining}");
    let expected = [
        "# HELP openclaw_keeper_token_expiry_timestamp_seconds When the OAuth access token expires, as Unix time.",
        "# TYPE openclaw_keeper_token_expiry_timestamp_seconds gauge",
        &format!("openclaw_keeper_token_expiry_timestamp_seconds{{file=\"{label}\"}} {}", expires / 1000),
        "# HELP openclaw_keeper_token_remaining_seconds \
         Seconds until the OAuth access token expires (negative once expired).",
        "# TYPE openclaw_keeper_token_remaining_seconds gauge",
        &format!("openclaw_keeper_token_remaining_seconds{{file=\"{label}\"}} {remaining}"),
        "# HELP openclaw_keeper_token_login_expiry_timestamp_seconds \
         When the login ends (claudeAiOauth.refreshTokenExpiresAt; refreshes never move it), as Unix time.",
        "# TYPE openclaw_keeper_token_login_expiry_timestamp_seconds gauge",
        "# HELP openclaw_keeper_token_valid \
         1 when the token has not expired, 0 when it has or the file is a logged-out stub or unreadable.",
        "# TYPE openclaw_keeper_token_valid gauge",
        &format!("openclaw_keeper_token_valid{{file=\"{label}\"}} 1"),
        "# HELP openclaw_keeper_token_read_ok \
         1 when the file was read and understood, 0 when it is missing, unreadable or invalid.",
        "# TYPE openclaw_keeper_token_read_ok gauge",
        &format!("openclaw_keeper_token_read_ok{{file=\"{label}\"}} 1"),
        "",
    ]
    .join("\n");
    assert_eq!(out, expected);
}

#[test]
fn prometheus_reports_invalid_and_expired_files_and_lists_help_once() {
    let dir = tempfile::tempdir().unwrap();
    let expired = write(dir.path(), "expired.json", claude_json(&access_token(), now_ms() - HOUR));
    let missing = dir.path().join("missing.json");
    let env = write(dir.path(), ".env", format!("ANTHROPIC_OAUTH_TOKEN={}\n", access_token()));
    let (code, out, err) = run([Path::new("--prometheus"), &expired, &missing, &env]);
    assert_eq!(code, 4);
    assert_eq!(err, format!("{}: error: no such file\n", p(&missing)));
    for metric in ["expiry_timestamp_seconds", "remaining_seconds", "valid", "read_ok"] {
        assert_eq!(out.matches(&format!("# HELP openclaw_keeper_token_{metric} ")).count(), 1);
        assert_eq!(out.matches(&format!("# TYPE openclaw_keeper_token_{metric} gauge\n")).count(), 1);
    }
    let sample = |metric: &str, f: &Path| {
        let prefix = format!("openclaw_keeper_token_{metric}{{file=\"{}\"}} ", p(f));
        out.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_owned)
    };
    assert_eq!(sample("valid", &expired).as_deref(), Some("0"));
    assert_eq!(sample("read_ok", &expired).as_deref(), Some("1"));
    assert!(sample("remaining_seconds", &expired).unwrap().starts_with("-36"));
    assert_eq!(sample("read_ok", &missing).as_deref(), Some("0"));
    assert_eq!(sample("valid", &missing).as_deref(), Some("0"));
    assert_eq!(sample("remaining_seconds", &missing), None);
    assert_eq!(sample("read_ok", &env).as_deref(), Some("1"));
    assert_eq!(sample("valid", &env), None);
}

// ---- inputs -----------------------------------------------------------------------------------

#[test]
fn stdin_dash() {
    let tok = access_token();
    let expires = now_ms() + 3 * HOUR;
    cmd()
        .arg("-")
        .write_stdin(claude_json(&tok, expires))
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with("(stdin): ok, 2h 59m 5"))
        .stdout(predicate::str::ends_with(format!(", claude, {}\n", shown(&tok))));
    cmd().args(["--json", "-"]).write_stdin("").assert().code(4).stderr("(stdin): error: empty input\n");
}

#[test]
fn default_file_is_the_claude_credentials_and_keeper_credentials_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), ".credentials.json", claude_json(&access_token(), now_ms() + HOUR));
    cmd()
        .env("CLAUDE_CONFIG_DIR", dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!("{}: ok", p(&f))));
    let other = write(dir.path(), "other.json", stub_json());
    cmd().env("CLAUDE_CONFIG_DIR", dir.path()).env("KEEPER_CREDENTIALS", &other).assert().code(3);
}

/// CLI 2.1.332 keeps the credentials file in `CLAUDE_SECURESTORAGE_CONFIG_DIR` when that is set;
/// token-expiry's default ignored it and reported the config dir's stale or missing file.
#[test]
fn regression_the_default_file_ignored_claude_securestorage_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let secure = dir.path().join("secure");
    std::fs::create_dir(&secure).unwrap();
    let f = write(&secure, ".credentials.json", claude_json(&access_token(), now_ms() + HOUR));
    write(dir.path(), ".credentials.json", stub_json());
    cmd()
        .env("CLAUDE_CONFIG_DIR", dir.path())
        .env("CLAUDE_SECURESTORAGE_CONFIG_DIR", &secure)
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!("{}: ok", p(&f))));
}

#[test]
fn options_come_from_the_config_file_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", claude_json(&access_token(), now_ms() + 30 * MINUTE));
    let config = write(dir.path(), "keeper.env", "KEEPER_WITHIN=1h\nKEEPER_OUTPUT=seconds\nUNRELATED=1\n");
    cmd()
        .arg("--config")
        .arg(&config)
        .arg(&f)
        .assert()
        .code(1)
        .stdout(predicate::str::is_match("^1[0-9]{3}\n$").unwrap());
    cmd().env("KEEPER_CONFIG", &config).args(["--within", "10m"]).arg(&f).assert().code(0);
}

#[test]
fn format_can_be_forced() {
    let dir = tempfile::tempdir().unwrap();
    let tok = access_token();
    let claude = write(dir.path(), "c.json", claude_json(&tok, now_ms() + HOUR));
    cmd().args(["--format", "claude"]).arg(&claude).assert().code(0);
    cmd()
        .args(["--format", "openclaw-oauth"])
        .arg(&claude)
        .assert()
        .code(4)
        .stderr(format!("{}: error: no anthropic entry\n", p(&claude)));
    cmd().env("KEEPER_FORMAT", "openclaw-profiles").arg(&claude).assert().code(4).stderr(predicate::str::contains(
        "no profile `anthropic:claude-code` and no other Anthropic oauth/token profile with an expiry",
    ));
    let oauth = write(dir.path(), "oauth.json", oauth_json(&tok, now_ms() + HOUR));
    cmd().arg(&oauth).assert().code(0).stdout(predicate::str::contains(format!(", openclaw-oauth, {}\n", shown(&tok))));
    // A KEY=value file whose value is a token is read as a bare token only when forced (and fails).
    let env = write(dir.path(), "x.env", format!("ANTHROPIC_OAUTH_TOKEN={tok}\n"));
    cmd()
        .args(["--format", "bare-token"])
        .arg(&env)
        .assert()
        .code(4)
        .stderr(predicate::str::contains(": error: not a token: "));
    cmd().args(["--format", "dotenv"]).arg(&env).assert().code(5);
}

#[test]
fn profiles_default_fallback_and_explicit_id() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let (t_default, t_manual, t_api, t_noexp) = (access_token(), access_token(), access_token(), access_token());
    let with_default = write(
        dir.path(),
        "a.json",
        profiles_json(&[
            ("anthropic:manual", "token", &t_manual, Some(now + HOUR)),
            ("anthropic:claude-code", "oauth", &t_default, Some(now + 8 * HOUR)),
        ]),
    );
    cmd().arg(&with_default).assert().code(0).stdout(predicate::str::contains(format!(
        ", openclaw-profiles profile anthropic:claude-code, {}\n",
        shown(&t_default)
    )));
    cmd().args(["--profile-id", "anthropic:manual", "--within", "2h"]).arg(&with_default).assert().code(1).stdout(
        predicate::str::contains(format!(", openclaw-profiles profile anthropic:manual, {}\n", shown(&t_manual))),
    );

    // Without anthropic:claude-code: the first Anthropic oauth/token profile that has an expiry.
    let without_default = write(
        dir.path(),
        "b.json",
        profiles_json(&[
            ("anthropic:api", "api_key", &t_api, None),
            ("anthropic:noexp", "token", &t_noexp, None),
            ("anthropic:manual", "token", &t_manual, Some(now - MINUTE)),
        ]),
    );
    let out = cmd().arg("--json").arg(&without_default).assert().code(2).get_output().stdout.clone();
    let v = &json_lines(&String::from_utf8(out).unwrap())[0];
    assert_eq!(v["profile"], "anthropic:manual");
    assert_eq!(v["fingerprint"], fingerprint(&t_manual));

    // An explicit id must exist.
    cmd()
        .args(["--profile-id", "anthropic:claude-code"])
        .arg(&without_default)
        .assert()
        .code(4)
        .stderr(format!("{}: error: no profile `anthropic:claude-code`\n", p(&without_default)));
    cmd()
        .env("KEEPER_PROFILE_ID", "anthropic:api")
        .arg(&without_default)
        .assert()
        .code(4)
        .stderr(predicate::str::contains("`profiles.anthropic:api.type` must be \"oauth\" or \"token\""));

    let none = write(dir.path(), "c.json", profiles_json(&[("anthropic:api", "api_key", &t_api, None)]));
    cmd().arg(&none).assert().code(4).stderr(predicate::str::contains("no other Anthropic oauth/token profile"));
}

/// Every kind of bad input: exit 4, nothing on stdout, one line on stderr naming the file and
/// the problem.
#[test]
fn bad_input_gives_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let full = claude_json(&access_token(), now_ms() + HOUR);
    let mut big = full.clone().into_bytes();
    big.resize(1024 * 1024 + 1, b' ');
    let cases = [
        (d.join("missing.json"), "no such file".to_owned()),
        (write(d, "empty.json", ""), "empty input".to_owned()),
        (write(d, "blank.json", " \n\n"), "empty input".to_owned()),
        (
            write(d, "trunc.json", &full[..full.len() / 2]),
            "truncated JSON: input ends early at line 1 column".to_owned(),
        ),
        (write(d, "malformed.json", "{\"claudeAiOauth\": ]"), "invalid JSON at line 1 column 19".to_owned()),
        (
            write(d, "type.json", full.replace("\"expiresAt\":", "\"expiresAt\":\"x\",\"was\":")),
            "`claudeAiOauth.expiresAt` must be a number, found a string".to_owned(),
        ),
        (
            write(
                d,
                "missing-field.json",
                r#"{"claudeAiOauth":{"accessToken":"sk-ant-oat01-TESTx","expiresAt":1767225600000}}"#,
            ),
            "`claudeAiOauth.refreshToken` is missing".to_owned(),
        ),
        (
            write(d, "ms-as-us.json", full.replace("\"expiresAt\":", "\"expiresAt\":1767225600000000,\"was\":")),
            "`claudeAiOauth.expiresAt` = 1767225600000000 is not a usable expiry: after 2200-01-01 (wrong unit?)"
                .to_owned(),
        ),
        (write(d, "binary.bin", b"\x7fELF\x02\x01\x01\x00\x00\x00"), "binary data (contains a NUL byte)".to_owned()),
        (write(d, "latin1.txt", b"caf\xe9\n"), "not valid UTF-8 text".to_owned()),
        (write(d, "big.json", &big), "larger than 1024 KiB".to_owned()),
        (write(d, "other.json", r#"{"some":"thing"}"#), "unrecognised format".to_owned()),
        (write(d, "array.json", "[1,2]"), "`(root)` must be an object, found an array".to_owned()),
        (d.to_path_buf(), "is a directory".to_owned()),
    ];
    for (path, problem) in &cases {
        let (code, out, err) = run([path]);
        assert_eq!(code, 4, "{}: {err}", p(path));
        assert_eq!(out, "", "{}", p(path));
        let prefix = format!("{}: error: ", p(path));
        assert!(err.starts_with(&prefix) && err.contains(problem.as_str()), "{}: {err}", p(path));
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.ends_with('\n'));
    }
    // Exactly 1 MiB is still read.
    let mut exact = full.into_bytes();
    exact.resize(1024 * 1024, b' ');
    let f = write(d, "exact.json", &exact);
    cmd().arg(&f).assert().code(0);
}

// ---- the login's hard end (issue 15, item 5) --------------------------------------------------

/// A Max login ends ~30 days after `claude auth login` (`refreshTokenExpiresAt`, never moved by a
/// refresh); token-expiry showed it only as a side note in the text and JSON, not in Prometheus,
/// and nothing could check it, so the keeper learnt of it when the login was already dead.
#[test]
fn regression_the_logins_hard_end_was_not_shown_or_checked() {
    let dir = tempfile::tempdir().unwrap();
    let tok = access_token();
    let expires = now_ms() + 8 * HOUR;
    let login_end = now_ms() + 2 * 24 * HOUR;
    let f = write(dir.path(), ".credentials.json", claude_json_with_refresh_expiry(&tok, expires, login_end));
    let plain = write(dir.path(), "plain.json", claude_json(&access_token(), now_ms() + 8 * HOUR));

    // text: the login's end, when and what to do
    let (code, out, _) = run([&f]);
    assert_eq!(code, 0, "without --login-within the login's end is shown, not judged");
    assert!(out.contains(&format!(", login ends {} (in 1d 23h 59m", rfc3339(login_end))), "{out}");
    assert!(out.contains("claude auth login"), "{out}");

    // --login-within: its own exit code 6, status login-ending; more left passes
    let (code, out, _) = run([Path::new("--login-within"), Path::new("3d"), &f]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains(": login-ending, 7h 59m"), "{out}");
    cmd().args(["--login-within", "1d"]).arg(&f).assert().code(0);
    // a file that records no login end passes the check
    cmd().args(["--login-within", "3d"]).arg(&plain).assert().code(0);
    // the access token's own state comes first: --within wins, and 1 outranks 6 across files
    cmd().args(["--login-within", "3d", "--within", "9h"]).arg(&f).assert().code(1);
    let soon = write(dir.path(), "soon.json", claude_json(&access_token(), now_ms() + 30 * MINUTE));
    cmd().args(["--login-within", "3d", "--within", "1h"]).arg(&f).arg(&soon).assert().code(1);
    cmd().args(["--login-within", "3d"]).arg(&f).arg(&plain).assert().code(6);
    // an ended login with a still-valid access token
    let ended = write(
        dir.path(),
        "ended.json",
        claude_json_with_refresh_expiry(&access_token(), now_ms() + HOUR, now_ms() - 2 * HOUR),
    );
    let (code, out, _) = run([Path::new("--login-within"), Path::new("1s"), &ended]);
    assert_eq!(code, 6);
    assert!(out.contains("login ended ") && out.contains("ago; run `claude auth login`"), "{out}");
    // the environment variable named in --help
    cmd().env("KEEPER_LOGIN_WITHIN", "3d").arg(&f).assert().code(6);

    // --json
    let (code, out, _) = run([Path::new("--json"), Path::new("--login-within"), Path::new("3d"), &f]);
    assert_eq!(code, 6);
    let v = &json_lines(&out)[0];
    assert_eq!(v["status"], "login-ending");
    assert_eq!(v["exit_code"], 6);
    assert_eq!(v["login_expires_at"], rfc3339(login_end));
    assert_eq!(v["login_expires_at_ms"], login_end);
    let left = v["login_remaining_seconds"].as_i64().unwrap();
    assert!((2 * 86_400 - 10..=2 * 86_400).contains(&left), "{left}");
    assert_eq!(v["refresh_token_expires_at"], rfc3339(login_end));
    let (_, out, _) = run([Path::new("--json"), &plain]);
    assert!(json_lines(&out)[0].get("login_expires_at").is_none());

    // --prometheus: a gauge for the files that record it
    let (_, out, _) = run([Path::new("--prometheus"), &f, &plain]);
    let name = "openclaw_keeper_token_login_expiry_timestamp_seconds";
    assert!(out.contains(&format!("# TYPE {name} gauge\n")), "{out}");
    assert!(out.contains(&format!("{name}{{file=\"{}\"}} {}\n", p(&f), login_end.div_euclid(1000))), "{out}");
    assert!(!out.contains(&format!("{name}{{file=\"{}\"}}", p(&plain))), "{out}");

    // --help documents the flag, its variable and the exit code
    let help = cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--login-within") && help.contains("KEEPER_LOGIN_WITHIN"), "{help}");
    assert!(help.contains("  6   the access token is fine, but the login ends within DURATION"), "{help}");
}

/// `token-expiry FIFO` never returned: open(2) of a FIFO waits for a writer. Now it is refused
/// at once with the invalid-input code, naming the file and what it is.
#[test]
fn regression_a_fifo_as_input_blocked_forever() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("creds.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut child = std_cmd()
        .arg(&fifo)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            panic!("token-expiry FIFO still running after 10 s: it blocked");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("{}: error: is a FIFO (named pipe), not a regular file: not read\n", p(&fifo))
    );
    // stdin may still be a pipe.
    let tok = access_token();
    cmd().arg("-").write_stdin(claude_json(&tok, now_ms() + HOUR)).assert().code(0);
}

/// A credentials file saved with a UTF-8 byte-order mark was "line 1: invalid character in
/// variable name" (taken for a KEY=value file); the mark is named now.
#[test]
fn regression_a_bom_before_json_was_taken_for_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "c.json", format!("\u{feff}{}", claude_json(&access_token(), now_ms() + HOUR)));
    let (code, out, err) = run([&f]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(err.starts_with(&format!("{}: error: JSON with a UTF-8 byte-order mark", p(&f))), "{err}");
    assert!(!err.contains("variable name"), "{err}");
}
