//! Fixtures: fake tokens, hermetic commands, and compose projects on the private test engine.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code, unreachable_pub)]

use credmap::{Fingerprint, Secret};
use keeper_docker_test_engine::{Compose, Engine, run_ok, unique_name};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_compose-recreate");

pub const KEY: &str = "ANTHROPIC_OAUTH_TOKEN";

/// Every option's environment variable, removed so the test environment cannot leak in.
const KEEPER_VARS: [&str; 21] = [
    "KEEPER_SERVICES",
    "KEEPER_PROJECT_DIR",
    "KEEPER_COMPOSE_FILES",
    "KEEPER_ENV_FILE",
    "KEEPER_COMPOSE_PROJECT",
    "KEEPER_RECREATE_MODE",
    "KEEPER_RECREATE_STOP_TIMEOUT",
    "KEEPER_RECREATE_IF_STALE",
    "KEEPER_RECREATE_DRY_RUN",
    "KEEPER_ENV_KEY",
    "KEEPER_RECREATE_TIMEOUT",
    "KEEPER_RECREATE_STDIN",
    "KEEPER_RECREATE_QUIET_PERIOD",
    "KEEPER_RECREATE_MIN_INTERVAL",
    "KEEPER_RECREATE_RETRIES",
    "KEEPER_DOCKER",
    "KEEPER_COMPOSE_CMD",
    "KEEPER_RECREATE_JSON",
    "JOURNAL_STREAM",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
];

/// A fake access token of a realistic length, different on every call: `sk-ant-oat01-TEST<hex>…`.
pub fn token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 ^ (u64::from(std::process::id()) << 32);
    let mut x = seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let mut body = String::new();
    while body.len() < 88 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = write!(body, "{x:016x}");
    }
    body.truncate(88);
    format!("sk-ant-oat01-TEST{body}")
}

pub fn fingerprint(token: &str) -> Fingerprint {
    Secret::new(token).fingerprint()
}

/// Panics when `text` holds any part of a test token's secret body (`TEST` and 20 more characters).
pub fn assert_no_token(text: &str) {
    for (i, _) in text.match_indices("TEST") {
        let body: String = text[i..].chars().take_while(char::is_ascii_alphanumeric).collect();
        assert!(body.len() < 24, "a token leaked into the output (fingerprint {})", Secret::new(body).fingerprint());
    }
}

/// A `Command` for the binary with no config file and no `KEEPER_*` variables.
pub fn tool() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("KEEPER_CONFIG", "/dev/null").stdin(Stdio::null());
    for var in KEEPER_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// (exit code, stdout, stderr), after checking that neither output holds a token.
pub fn outcome(out: &Output) -> (i32, String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_no_token(&stdout);
    assert_no_token(&stderr);
    (out.status.code().expect("exited normally"), stdout, stderr)
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    outcome(&cmd.output().unwrap())
}

/// Runs `test` for every Compose at once (each in its own project), on scoped threads: the tests
/// mostly wait for the engine. A failure in any fails the test.
pub fn for_each_compose(composes: &[Compose], test: impl Fn(&Compose) + Sync) {
    std::thread::scope(|scope| {
        for compose in composes {
            let test = &test;
            std::thread::Builder::new()
                .name(format!("{}: {}", std::thread::current().name().unwrap_or("test"), compose.label()))
                .spawn_scoped(scope, move || test(compose))
                .unwrap();
        }
    });
}

/// A compose service that records its environment at every start into `/rec/start-<n>-<host>`,
/// stops at once on SIGTERM, and (with a healthcheck) turns healthy one second after starting.
pub fn recording_service(image: &str, rec: &Path, extra: &str) -> String {
    format!(
        r#"    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; n=$$(ls /rec | wc -l); env > /rec/start-$$n-$$(hostname); (sleep 1; touch /tmp/ready) & while :; do sleep 3600 & wait $$!; done"]
    volumes: ["{rec}:/rec"]
{extra}"#,
        rec = rec.display()
    )
}

/// A service that just runs until stopped.
pub fn idle_service(image: &str) -> String {
    format!(
        "    image: {image}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while :; do sleep 3600 & wait $$!; done\"]\n"
    )
}

pub const ENV_FILE: &str = "    env_file: .env\n";
pub const ENVIRONMENT: &str = "    environment:\n      ANTHROPIC_OAUTH_TOKEN: ${ANTHROPIC_OAUTH_TOKEN}\n";
pub const HEALTHCHECK: &str = "    healthcheck:\n      test: [\"CMD\", \"test\", \"-f\", \"/tmp/ready\"]\n      interval: 300ms\n      timeout: 2s\n      retries: 20\n";

/// A compose project in a temporary directory, with a unique project name, torn down on drop.
pub struct Project {
    pub engine: &'static Engine,
    pub compose: Compose,
    pub dir: tempfile::TempDir,
    pub name: String,
}

impl Project {
    /// `services` is the YAML under `services:`; `{rec}` in it is replaced by the recording dir.
    pub fn new(engine: &'static Engine, compose: &Compose, services: &str, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rec")).unwrap();
        let project = Self { engine, compose: compose.clone(), dir, name: unique_name("cr") };
        project.write_compose(services);
        project.set_token(token);
        project
    }

    /// A project whose one service, `gateway`, takes `token` from `.env` and records each start;
    /// up and running.
    pub fn running_gateway(engine: &'static Engine, compose: &Compose, token: &str) -> Self {
        let project = Self::new(engine, compose, "", token);
        project.write_compose(&format!(
            "  gateway:\n{}",
            recording_service(engine.busybox_image(), &project.rec(), ENV_FILE)
        ));
        project.compose_ok(&["up", "-d"]);
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rec(&self) -> PathBuf {
        self.path().join("rec")
    }

    pub fn write_compose(&self, services: &str) {
        std::fs::write(self.path().join("docker-compose.yml"), format!("services:\n{services}")).unwrap();
    }

    /// Writes the .env as cred-sync would: other lines kept around the token.
    pub fn set_token(&self, token: &str) {
        std::fs::write(self.path().join(".env"), format!("# compose settings\nOPENCLAW_PORT=18789\n{KEY}={token}\n"))
            .unwrap();
    }

    /// Runs compose (`-p NAME ARGS`) in the project and returns stdout; panics on failure.
    pub fn compose_ok(&self, args: &[&str]) -> String {
        let mut cmd = self.compose.command(self.engine);
        cmd.current_dir(self.path()).args(["-p", &self.name]).args(args).env_remove(KEY);
        run_ok(&mut cmd)
    }

    /// The tool, pointed at this project, the engine and this compose.
    pub fn tool(&self) -> Command {
        let mut cmd = tool();
        self.engine.apply_env(&mut cmd);
        cmd.arg("--project-dir")
            .arg(self.path())
            .args(["-p", &self.name, "--compose-cmd", &self.compose.command_line()])
            .arg("--docker")
            .arg(self.engine.docker_bin());
        cmd
    }

    /// The running container of a service (found by Compose's labels: `docker ps` is much faster
    /// than `docker-compose ps`).
    pub fn container_id(&self, service: &str) -> String {
        let ids = self.engine.docker_ok(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ]);
        let ids: Vec<&str> = ids.split_whitespace().collect();
        assert_eq!(ids.len(), 1, "{}: one container of {service}", self.compose.label());
        ids[0].to_owned()
    }

    /// A field of `docker inspect` (a Go template), for a container.
    pub fn inspect(&self, id: &str, template: &str) -> String {
        self.engine.docker_ok(&["inspect", "--format", template, id]).trim().to_owned()
    }

    /// The fingerprint of the token variable in a service's container, read with `docker inspect`.
    pub fn token_in_container(&self, service: &str) -> Option<Fingerprint> {
        let id = self.container_id(service);
        let env = self.inspect(&id, "{{json .Config.Env}}");
        let env: Vec<String> = serde_json::from_str(&env).unwrap();
        env.iter().rev().find_map(|e| e.strip_prefix(&format!("{KEY}="))).map(Fingerprint::of)
    }

    /// The token each recorded start saw, in start order (`None`: the variable was not set).
    pub fn recorded_starts(&self) -> Vec<Option<Fingerprint>> {
        let mut starts: Vec<(usize, Option<Fingerprint>)> = std::fs::read_dir(self.rec())
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let name = entry.file_name().to_string_lossy().into_owned();
                let n: usize = name.split('-').nth(1).unwrap().parse().unwrap();
                let env = std::fs::read_to_string(entry.path()).unwrap();
                (n, env.lines().find_map(|l| l.strip_prefix(&format!("{KEY}="))).map(Fingerprint::of))
            })
            .collect();
        starts.sort_by_key(|(n, _)| *n);
        starts.into_iter().map(|(_, fp)| fp).collect()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let mut cmd = self.compose.command(self.engine);
        cmd.current_dir(self.path()).args(["-p", &self.name, "down", "--timeout", "0"]);
        let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}
