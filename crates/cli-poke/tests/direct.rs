//! `cli-poke --direct`: the refresh at the token endpoint, under the CLI's locks, against
//! `tests/anthropic-mock` (a real HTTPS server on 127.0.0.1 with a throw-away CA, reached through
//! `HTTPS_PROXY` as the real endpoint would be). As root each test runs in a network namespace of
//! its own with only loopback up, so nothing can leave the machine.

mod common;

use common::{BIN, HOUR, MINUTE, Webhook, has_token_shape, now_ms};
use keeper_anthropic_mock::{Request, RequestKind, TokenAnswer, TokenEndpoint, fingerprint, isolate_network};
use serde_json::{Value, json};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const CLI_SCOPES: &str =
    "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload user:plugins";
const DAY: i64 = 24 * HOUR;

/// Runs `test` on a thread of its own, in a network namespace of its own when we are root (the
/// mock is started there, so cli-poke reaches it and nothing else).
fn isolated(test: impl FnOnce() + Send + 'static) {
    let name = std::thread::current().name().unwrap_or("direct").to_owned();
    let joined = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            if nix::unistd::geteuid().is_root() {
                isolate_network().unwrap();
            }
            test();
        })
        .unwrap()
        .join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
}

/// What one run printed.
#[derive(Debug)]
struct Out {
    code: i32,
    stderr: String,
    took: Duration,
}

/// A home with the CLI's credentials file, OpenClaw's directory (for the flag) and the mock.
struct World {
    base: common::MockHome,
    /// Every token written into the file: none may appear in any output.
    written: std::cell::RefCell<Vec<String>>,
}

impl std::ops::Deref for World {
    type Target = common::MockHome;
    fn deref(&self) -> &common::MockHome {
        &self.base
    }
}

impl World {
    fn new() -> Self {
        Self { base: common::MockHome::new(), written: std::cell::RefCell::default() }
    }

    /// Writes a 2.1.332-style credentials file expiring at `expires_ms` (mode 0640, to see it
    /// kept), with keys the refresh must keep; `edit` changes `claudeAiOauth` first. The refresh
    /// token is live at the mock. Returns (access, refresh).
    fn write_creds_with(&self, expires_ms: i64, edit: impl FnOnce(&mut Value)) -> (String, String) {
        let (access, refresh) = (common::access_token(), common::refresh_token());
        let mut oauth = json!({
            "accessToken": access,
            "refreshToken": refresh,
            "expiresAt": expires_ms,
            "scopes": ["user:inference", "user:profile", "user:sessions:claude_code"],
            "subscriptionType": "max",
            "rateLimitTier": "default_claude_max_20x",
            "futureField": {"kept": true}
        });
        edit(&mut oauth);
        let doc = json!({
            "claudeAiOauth": oauth,
            "mcpOAuth": {"srv|1": {"accessToken": "mcp-opaque", "expiresAt": 1}},
            "trustedDeviceToken": "opaque-device"
        });
        std::fs::write(&self.creds, doc.to_string()).unwrap();
        std::fs::set_permissions(&self.creds, std::fs::Permissions::from_mode(0o640)).unwrap();
        self.mock.add_refresh_token(&refresh);
        self.written.borrow_mut().extend([access.clone(), refresh.clone()]);
        (access, refresh)
    }

    fn write_creds(&self, expires_ms: i64) -> (String, String) {
        self.write_creds_with(expires_ms, |_| {})
    }

    fn creds_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(&self.creds).unwrap()).unwrap()
    }

    fn oauth(&self) -> Value {
        self.creds_json()["claudeAiOauth"].clone()
    }

    /// `cli-poke --direct` on this home, pointed at the mock, nothing of the caller's
    /// KEEPER_/CLAUDE_/ANTHROPIC_ variables.
    fn direct(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["KEEPER_", "CLAUDE_", "ANTHROPIC_"].iter().any(|p| k.starts_with(p)) || k == "JOURNAL_STREAM" {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("KEEPER_CONFIG", "/dev/null")
            .env("HOME", &self.home)
            .env("KEEPER_STATE_DIR", self.dir.path().join("state"))
            .arg("--direct")
            .arg("--creds")
            .arg(&self.creds);
        self.mock.apply_env(&mut cmd);
        cmd
    }

    /// Checks that nothing token-shaped, and no token written or issued, is in `text`.
    fn assert_no_token(&self, text: &str) {
        assert!(!has_token_shape(text), "something token-shaped in the output:\n{text}");
        for t in self.written.borrow().iter() {
            assert!(!text.contains(t.as_str()), "a written token in the output");
        }
        for issued in self.mock.issued() {
            assert!(!text.contains(&issued.access), "an issued access token in the output");
            if let Some(r) = &issued.refresh {
                assert!(!text.contains(r.as_str()), "an issued refresh token in the output");
            }
        }
    }

    fn run(&self, cmd: &mut Command) -> Out {
        let start = Instant::now();
        let out = cmd.output().unwrap();
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        self.assert_no_token(&format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)));
        Out { code: out.status.code().expect("exited normally"), stderr, took }
    }

    fn token_requests(&self) -> Vec<Request> {
        self.mock.requests().into_iter().filter(|r| matches!(r.kind, RequestKind::OAuthToken { .. })).collect()
    }

    fn locks(&self) -> [PathBuf; 4] {
        [
            self.claude_dir.join(".oauth_refresh.lock"),
            self.home.join(".claude.lock"),
            self.claude_dir.join(".storage-write.lock"),
            self.claude_dir.join(".oauth_refresh.lock.owner"),
        ]
    }

    fn assert_no_lock_left(&self) {
        for p in self.locks() {
            assert!(!p.exists(), "{} was left behind", p.display());
        }
    }
}

fn refresh_fp(r: &Request) -> Option<String> {
    match &r.kind {
        RequestKind::OAuthToken { refresh_fingerprint, .. } => refresh_fingerprint.clone(),
        _ => None,
    }
}

#[test]
fn in_the_window_it_refreshes_as_the_cli_does_and_keeps_everything_else() {
    isolated(|| {
        let w = World::new();
        let (access, refresh) = w.write_creds(now_ms() + 30 * MINUTE);
        let before = w.creds_json();
        let ino = std::fs::metadata(&w.creds).unwrap().ino();
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);

        // The request: the CLI's JSON body, client id and scopes, our User-Agent, once.
        let reqs = w.token_requests();
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        assert_eq!(reqs[0].connect_host, "platform.claude.com");
        assert_eq!(reqs[0].path, "/v1/oauth/token");
        assert_eq!(
            reqs[0].kind,
            RequestKind::OAuthToken {
                content_type: Some("application/json".into()),
                grant_type: Some("refresh_token".into()),
                client_id: Some(CLIENT_ID.into()),
                scope: Some(CLI_SCOPES.into()),
                refresh_fingerprint: Some(fingerprint(&refresh)),
            }
        );
        let ua = format!("openclaw-oauth-keeper/{} cli-poke", env!("CARGO_PKG_VERSION"));
        assert_eq!(reqs[0].user_agent.as_deref(), Some(ua.as_str()));

        // The file: both tokens rotated, expiresAt = now + expires_in, the rest as it was.
        let [issued] = w.mock.issued().try_into().unwrap();
        let o = w.oauth();
        assert_eq!(o["accessToken"], issued.access.as_str());
        assert_eq!(o["refreshToken"].as_str(), issued.refresh.as_deref());
        assert_ne!(o["accessToken"], access.as_str());
        let expires = o["expiresAt"].as_i64().unwrap();
        let want = now_ms() + 8 * HOUR;
        assert!((want - MINUTE..=want).contains(&expires), "expiresAt {expires}, want ~{want}");
        let mut kept = before.clone();
        for (k, v) in
            [("accessToken", &o["accessToken"]), ("refreshToken", &o["refreshToken"]), ("expiresAt", &o["expiresAt"])]
        {
            kept["claudeAiOauth"][k] = v.clone();
        }
        assert_eq!(w.creds_json(), kept, "only the two tokens and the expiry changed");
        let text = std::fs::read_to_string(&w.creds).unwrap();
        let keys: Vec<&str> = ["accessToken", "refreshToken", "expiresAt", "scopes", "futureField"]
            .iter()
            .map(|k| text.find(k).map(|_| *k).unwrap())
            .collect();
        assert_eq!(keys.len(), 5);
        assert!(text.find("accessToken") < text.find("futureField"), "keys keep their places");
        let meta = std::fs::metadata(&w.creds).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o640, "the mode is kept");
        assert_ne!(meta.ino(), ino, "written by rename, atomically");
        assert!(!w.flag.exists());
        w.assert_no_lock_left();

        // The log: fingerprints only.
        assert!(out.stderr.contains("refreshed directly"), "{}", out.stderr);
        assert!(out.stderr.contains(&fingerprint(&issued.access)), "{}", out.stderr);
        assert!(out.stderr.contains(&fingerprint(issued.refresh.as_deref().unwrap())), "{}", out.stderr);
        assert_eq!(w.mock.refresh_reuses(), 0);
    });
}

#[test]
fn the_files_client_id_and_scopes_are_sent_when_it_has_its_own_client() {
    isolated(|| {
        let w = World::new();
        let (_, refresh) = w.write_creds_with(now_ms() + 10 * MINUTE, |o| {
            o["clientId"] = json!("00000000-0000-4000-8000-00000000c4a9");
            o["scopes"] = json!(["user:inference", "user:file_upload"]);
        });
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let RequestKind::OAuthToken { client_id, scope, refresh_fingerprint, .. } = &w.token_requests()[0].kind else {
            panic!("no token request")
        };
        assert_eq!(client_id.as_deref(), Some("00000000-0000-4000-8000-00000000c4a9"));
        assert_eq!(scope.as_deref(), Some("user:inference user:file_upload"));
        assert_eq!(refresh_fingerprint.as_deref(), Some(fingerprint(&refresh).as_str()));
        assert_eq!(w.oauth()["clientId"], "00000000-0000-4000-8000-00000000c4a9");
    });
}

#[test]
fn an_answer_without_a_refresh_token_keeps_the_old_one() {
    isolated(|| {
        let w = World::new();
        w.mock.set_token_endpoint(TokenEndpoint::Rotate {
            expires_in: 3600,
            refresh_token_expires_in: None,
            include_refresh_token: false,
        });
        let (access, refresh) = w.write_creds(now_ms() + 20 * MINUTE);
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let [issued] = w.mock.issued().try_into().unwrap();
        let o = w.oauth();
        assert_eq!(o["accessToken"], issued.access.as_str());
        assert_ne!(o["accessToken"], access.as_str());
        assert_eq!(o["refreshToken"], refresh.as_str(), "the old refresh token is kept");
        let want = now_ms() + HOUR;
        assert!((want - MINUTE..=want).contains(&o["expiresAt"].as_i64().unwrap()), "expires_in is read");
        assert!(out.stderr.contains("refresh token kept"), "{}", out.stderr);
    });
}

#[test]
fn a_refresh_never_extends_the_login() {
    isolated(|| {
        let w = World::new();
        let end_30d = now_ms() + 30 * DAY;
        let rotate = |rte: Option<u64>| TokenEndpoint::Rotate {
            expires_in: 28_800,
            refresh_token_expires_in: rte,
            include_refresh_token: true,
        };
        // 1. The answer's end (2 days) is earlier than the file's (30 days): it is taken.
        w.write_creds_with(now_ms() + 5 * MINUTE, |o| o["refreshTokenExpiresAt"] = json!(end_30d));
        w.mock.set_token_endpoint(rotate(Some(2 * 24 * 3600)));
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let end = w.oauth()["refreshTokenExpiresAt"].as_i64().unwrap();
        let want = now_ms() + 2 * DAY;
        assert!((want - MINUTE..=want).contains(&end), "refreshTokenExpiresAt {end}, want ~{want}");
        // 2. The answer's end (60 days) is later: the file's stays (a refresh never extends it).
        w.mock.set_token_endpoint(rotate(Some(60 * 24 * 3600)));
        let out = w.run(w.direct().arg("--force"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(w.oauth()["refreshTokenExpiresAt"].as_i64(), Some(end));
        // 3. The answer says nothing: the file's stays.
        w.mock.set_token_endpoint(rotate(None));
        let out = w.run(w.direct().arg("--force"));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(w.oauth()["refreshTokenExpiresAt"].as_i64(), Some(end));
        assert_eq!(w.mock.issued().len(), 3);
        // 4. A file without the field does not get one (as the CLI: only a sign-in sets it).
        w.write_creds(now_ms() + 5 * MINUTE);
        w.mock.set_token_endpoint(rotate(Some(2 * 24 * 3600)));
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(w.oauth().get("refreshTokenExpiresAt").is_none(), "{}", w.oauth());
        assert_eq!(w.mock.refresh_reuses(), 0, "each run rotated from the previous run's refresh token");
    });
}

#[test]
fn invalid_grant_is_reauth_with_the_flag_and_one_post_and_the_file_untouched() {
    isolated(|| {
        let w = World::new();
        let hook = Webhook::start();
        let (_, refresh) = w.write_creds(now_ms() - 10 * MINUTE);
        let before = std::fs::read(&w.creds).unwrap();
        w.mock.set_token_endpoint(TokenEndpoint::InvalidGrant);
        let out = w.run(w.direct().args(["--notify-url", &hook.url]));
        assert_eq!(out.code, 3, "{}", out.stderr);
        assert_eq!(std::fs::read(&w.creds).unwrap(), before, "no stub, nothing written");
        let flag = std::fs::read_to_string(&w.flag).unwrap();
        assert!(flag.contains(&format!("refresh_token={}", credmap::Secret::new(&refresh))), "{flag}");
        assert!(flag.contains("invalid_grant") && flag.contains("refresh token is dead"), "{flag}");
        assert_eq!(w.token_requests().len(), 1, "invalid_grant is not retried");
        // The same episode: nobody is told twice, and the flag stays as it was.
        let again = w.run(w.direct().args(["--notify-url", &hook.url]));
        assert_eq!(again.code, 3, "{}", again.stderr);
        let posts = hook.received();
        assert_eq!(posts.len(), 1, "one post per episode: {posts:?}");
        assert!(posts[0].contains("only a human can renew it"), "{}", posts[0]);
        assert_eq!(std::fs::read(&w.creds).unwrap(), before);
        w.assert_no_lock_left();
        // A new login (what `claude auth login` writes) ends the episode on the next run.
        w.mock.set_token_endpoint(TokenEndpoint::default());
        w.write_creds(now_ms() + 3 * HOUR);
        let next = w.run(w.direct().args(["--notify-url", &hook.url]));
        assert_eq!(next.code, 1, "{}", next.stderr);
        assert!(!w.flag.exists());
    });
}

#[test]
fn a_429_with_retry_after_is_waited_for_then_it_refreshes() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        w.mock.queue_token_answers([TokenAnswer::TooManyRequests { retry_after: Some(2) }]);
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let reqs = w.token_requests();
        assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [429, 200]);
        let gap = reqs[1].at.duration_since(reqs[0].at).unwrap();
        assert!(gap >= Duration::from_secs(2) && gap < Duration::from_secs(4), "Retry-After: 2 honoured: {gap:?}");
        assert!(out.stderr.contains("HTTP 429") && out.stderr.contains("trying again in 2.0s"), "{}", out.stderr);
        assert_eq!(refresh_fp(&reqs[0]), refresh_fp(&reqs[1]), "the same refresh token, which a 429 did not use up");
        assert_eq!(w.oauth()["accessToken"], w.mock.issued()[0].access.as_str());
    });
}

#[test]
fn a_500_is_retried_with_backoff_then_it_refreshes() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        w.mock.queue_token_answers([TokenAnswer::ServerError]);
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        let reqs = w.token_requests();
        assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
        let gap = reqs[1].at.duration_since(reqs[0].at).unwrap();
        assert!(gap >= Duration::from_secs(1) && gap < Duration::from_secs(3), "1-1.5 s backoff: {gap:?}");
        assert_eq!(w.oauth()["accessToken"], w.mock.issued()[0].access.as_str());
        assert!(!w.flag.exists());
    });
}

#[test]
fn a_failing_endpoint_is_refresh_failed_will_retry_with_the_streak_and_its_post() {
    isolated(|| {
        let w = World::new();
        let hook = Webhook::start();
        // Expired 40 minutes ago: past --notify-failing-after (30 min), so the streak is posted.
        w.write_creds(now_ms() - 40 * MINUTE);
        let before = std::fs::read(&w.creds).unwrap();
        w.mock.set_token_endpoint(TokenEndpoint::ServerError);
        let out = w.run(w.direct().args(["--notify-url", &hook.url, "--direct-deadline", "5s"]));
        assert_eq!(out.code, 7, "{}", out.stderr);
        assert!(out.took < Duration::from_secs(8), "the deadline: {:?}", out.took);
        let n = w.token_requests().len();
        assert!((2..=4).contains(&n), "retried within the deadline: {n}");
        assert!(out.stderr.contains("refresh failed, will retry") && out.stderr.contains("HTTP 500"), "{}", out.stderr);
        assert_eq!(std::fs::read(&w.creds).unwrap(), before, "the file is untouched");
        assert!(!w.flag.exists(), "a 500 is no REAUTH");
        let streak = std::fs::read_to_string(w.dir.path().join("state/refresh-failing")).unwrap();
        assert!(streak.contains("failures=1"), "{streak}");
        let posts = hook.received();
        assert_eq!(posts.len(), 1, "{posts:?}");
        assert!(posts[0].contains("failing"), "{}", posts[0]);
        // The endpoint is back: the same refresh token refreshes, the streak ends with one post.
        w.mock.set_token_endpoint(TokenEndpoint::default());
        let next = w.run(w.direct().args(["--notify-url", &hook.url]));
        assert_eq!(next.code, 0, "{}", next.stderr);
        assert!(!w.dir.path().join("state/refresh-failing").exists());
        assert_eq!(hook.received().len(), 2);
        assert!(hook.received()[1].contains("recovered"), "{}", hook.received()[1]);
        w.assert_no_lock_left();
    });
}

#[test]
fn an_endpoint_that_never_answers_is_a_timeout_within_the_deadline() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        let before = std::fs::read(&w.creds).unwrap();
        w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
        let out = w.run(w.direct().args(["--direct-deadline", "3s"]));
        assert_eq!(out.code, 7, "{}", out.stderr);
        assert!(out.took >= Duration::from_secs(2) && out.took < Duration::from_secs(6), "{:?}", out.took);
        assert!(out.stderr.contains("no complete response before the deadline"), "{}", out.stderr);
        assert_eq!(std::fs::read(&w.creds).unwrap(), before);
        assert!(!w.flag.exists());
        w.assert_no_lock_left();
    });
}

#[test]
fn a_malformed_answer_is_a_failure_and_the_file_is_untouched() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        let before = std::fs::read(&w.creds).unwrap();
        w.mock.queue_token_answers([TokenAnswer::Malformed]);
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 7, "{}", out.stderr);
        assert!(out.stderr.contains("HTTP 200 but its answer is cut short"), "{}", out.stderr);
        assert_eq!(w.token_requests().len(), 1, "a 200 is never sent again (it may have rotated the token)");
        assert_eq!(std::fs::read(&w.creds).unwrap(), before);
        assert!(!w.flag.exists());
        w.assert_no_lock_left();
    });
}

#[test]
fn outside_the_window_nothing_is_sent() {
    isolated(|| {
        let w = World::new();
        let (access, _) = w.write_creds(now_ms() + 2 * HOUR);
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("not due") && out.stderr.contains("last 55m"), "{}", out.stderr);
        let ok = w.run(w.direct().arg("--not-due-ok"));
        assert_eq!(ok.code, 0, "{}", ok.stderr);
        let wide = w.run(w.direct().args(["--direct-window", "1h59m"]));
        assert_eq!(wide.code, 1, "{}", wide.stderr);
        assert!(w.mock.requests().is_empty(), "no request at all: {:?}", w.mock.requests());
        assert_eq!(w.oauth()["accessToken"], access.as_str());
        assert!(!w.locks()[0].exists(), "no lock taken either");
        // --force: whatever is left.
        let forced = w.run(w.direct().arg("--force"));
        assert_eq!(forced.code, 0, "{}", forced.stderr);
        assert_eq!(w.token_requests().len(), 1);
        assert_ne!(w.oauth()["accessToken"], access.as_str());
    });
}

/// Holds `lock` (a fresh directory, as a live CLI's: no owner record, so nothing says its holder
/// is gone) for `hold`, while a `--direct` runs; returns its result and when the lock went.
fn with_lock_held(w: &World, lock: &std::path::Path, hold: Duration) -> (Out, SystemTime) {
    std::fs::create_dir(lock).unwrap();
    let mut cmd = w.direct();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().unwrap();
    std::thread::sleep(hold);
    assert!(w.token_requests().is_empty(), "a request went out while {} was held", lock.display());
    let released = SystemTime::now();
    std::fs::remove_dir(lock).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    w.assert_no_token(&stderr);
    (Out { code: out.status.code().unwrap(), stderr, took: start.elapsed() }, released)
}

#[test]
fn each_of_the_clis_locks_held_is_waited_for_then_it_refreshes() {
    isolated(|| {
        let w = World::new();
        for lock in [w.locks()[0].clone(), w.locks()[1].clone(), w.locks()[2].clone()] {
            w.write_creds(now_ms() + 10 * MINUTE);
            w.mock.clear();
            let (out, released) = with_lock_held(&w, &lock, Duration::from_millis(2500));
            assert_eq!(out.code, 0, "{}: {}", lock.display(), out.stderr);
            assert!(out.stderr.contains(&format!("waiting for the CLI's lock {}", lock.display())), "{}", out.stderr);
            let reqs = w.token_requests();
            assert_eq!(reqs.len(), 1, "{}", lock.display());
            assert!(reqs[0].at >= released, "{}: the request went out before the lock was free", lock.display());
            w.assert_no_lock_left();
        }
        assert_eq!(w.mock.refresh_reuses(), 0);
    });
}

#[test]
fn a_lock_held_through_every_try_gives_up_with_nothing_sent() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        let before = std::fs::read(&w.creds).unwrap();
        let lock = &w.locks()[1];
        std::fs::create_dir(lock).unwrap();
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 4, "{}", out.stderr);
        assert!(out.stderr.contains("is held by a live process"), "{}", out.stderr);
        assert!(out.stderr.contains("nothing was sent, nothing written"), "{}", out.stderr);
        assert!((5..=14).contains(&out.took.as_secs()), "6 tries 1-2 s apart: {:?}", out.took);
        assert!(w.mock.requests().is_empty());
        assert_eq!(std::fs::read(&w.creds).unwrap(), before);
        assert!(lock.is_dir(), "a live holder's lock is never broken");
        // What it took before giving up is released.
        assert!(!w.locks()[0].exists() && !w.locks()[3].exists());
    });
}

#[test]
fn a_stale_lock_is_taken_over_at_once() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        let lock = &w.locks()[1];
        std::fs::create_dir(lock).unwrap();
        std::fs::File::open(lock).unwrap().set_modified(SystemTime::now() - Duration::from_secs(90)).unwrap();
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr.contains("taking over the CLI's lock") && out.stderr.contains("stale after 60s"),
            "{}",
            out.stderr
        );
        assert!(out.took < Duration::from_secs(3), "{:?}", out.took);
        w.assert_no_lock_left();
    });
}

/// A `--direct` killed (SIGKILL) while it holds the locks, its request unanswered, leaves them
/// with its owner record; the next run takes the refresh locks over from the record's dead pid and
/// the storage lock once it is stale (15 s), then refreshes with the same refresh token (which
/// the unanswered request did not use up).
#[test]
fn a_dead_holders_locks_are_taken_over() {
    isolated(|| {
        let w = World::new();
        let (_, refresh) = w.write_creds(now_ms() + 10 * MINUTE);
        w.mock.set_token_endpoint(TokenEndpoint::Blackhole);
        let mut cmd = w.direct();
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let owner = &w.locks()[3];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::fs::read_to_string(owner).is_ok_and(|r| r.contains(&format!("\"pid\":{}", child.id()))) {
                break;
            }
            assert!(Instant::now() < deadline, "the first run never took the locks");
            std::thread::sleep(Duration::from_millis(20));
        }
        w.mock.wait_until(Duration::from_secs(20), |r| !r.is_empty()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        for p in w.locks() {
            assert!(p.exists(), "the killed run left {}", p.display());
        }
        // The storage lock goes stale 15 s after its last touch; wait until the next run's tries
        // (5-10 s) reach that.
        let storage = &w.locks()[2];
        loop {
            let age = std::fs::metadata(storage).unwrap().modified().unwrap().elapsed().unwrap_or_default();
            if age >= Duration::from_millis(10_500) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        w.mock.set_token_endpoint(TokenEndpoint::default());
        let out = w.run(&mut w.direct());
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("its owner record names pid"), "{}", out.stderr);
        assert!(out.stderr.contains("is not running"), "{}", out.stderr);
        assert!(out.stderr.contains(".storage-write.lock: its mtime is"), "{}", out.stderr);
        let reqs = w.token_requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(refresh_fp(&reqs[1]).as_deref(), Some(fingerprint(&refresh).as_str()));
        assert_eq!(w.oauth()["accessToken"], w.mock.issued()[0].access.as_str());
        w.assert_no_lock_left();
    });
}

/// While it waits (here for `Retry-After: 7`) it holds the locks as a live CLI does: an owner
/// record naming it, and mtimes touched every 5 s, so no CLI takes them over as stale.
#[test]
fn while_it_waits_it_holds_the_locks_like_a_live_cli() {
    isolated(|| {
        let w = World::new();
        w.write_creds(now_ms() + 10 * MINUTE);
        w.mock.queue_token_answers([TokenAnswer::TooManyRequests { retry_after: Some(7) }]);
        let mut cmd = w.direct();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        w.mock.wait_until(Duration::from_secs(20), |r| !r.is_empty()).unwrap();
        let first = Instant::now();
        std::thread::sleep(Duration::from_secs(6));
        let record: Value = serde_json::from_str(&std::fs::read_to_string(&w.locks()[3]).unwrap()).unwrap();
        assert_eq!(record["pid"], child.id());
        for k in ["procStart", "pidDomain", "pidSpace", "lockBirthtimeMs", "legacyLockBirthtimeMs"] {
            assert!(record.get(k).is_some(), "the owner record has no {k}: {record}");
        }
        for lock in &w.locks()[..3] {
            let age = std::fs::metadata(lock).unwrap().modified().unwrap().elapsed().unwrap_or_default();
            assert!(
                age < Duration::from_millis(4500),
                "{} not touched: {age:?} old after {:?}",
                lock.display(),
                first.elapsed()
            );
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        w.assert_no_token(&stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        w.assert_no_lock_left();
    });
}
