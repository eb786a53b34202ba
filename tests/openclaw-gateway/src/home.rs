//! A temporary HOME with an OpenClaw state directory configured for one generation.

use crate::generation::Generation;
use crate::run::{self, COMMAND_LIMIT, Output};
use keeper_anthropic_mock::Mock;
use serde_json::{Value, json};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// The gateway's shared secret (`gateway.auth.token`): a fixed test value, not a credential.
pub const GATEWAY_TOKEN: &str = "keeper-test-gateway-token-not-a-secret-0123456789";
/// The gateway's port. Every test runs in its own network namespace, so a fixed port is safe.
pub const GATEWAY_PORT: u16 = 18789;
/// The profile the keeper writes (the one `cred-sync --to openclaw-paste` pastes).
pub const PROFILE_ID: &str = "anthropic:claude-code";
/// The model every agent uses; the mock answers any model.
pub const MODEL: &str = "anthropic/claude-opus-4-6";

/// A temporary `HOME` (removed on drop) whose `.openclaw/openclaw.json` configures a loopback
/// gateway with token auth, the given agents (the first is the default) and [`MODEL`], for one
/// [`Generation`] only (each rejects the other's config).
///
/// Every command it builds sees only this home, the [`Mock`] (as proxy and CA) and the
/// telemetry/update-check opt-outs; nothing of the caller's environment but `PATH`.
pub struct OpenClawHome<'m> {
    generation: Generation,
    program: PathBuf,
    dir: TempDir,
    agents: Vec<String>,
    mock: &'m Mock,
}

impl fmt::Debug for OpenClawHome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenClawHome")
            .field("generation", &self.generation)
            .field("program", &self.program)
            .field("home", &self.dir.path())
            .field("agents", &self.agents)
            .finish_non_exhaustive()
    }
}

impl<'m> OpenClawHome<'m> {
    /// Creates the home and writes `openclaw.json` for `agents` (at least one; the first is the
    /// default). Panics when `generation` is not installed: check with
    /// [`crate::openclaw_or_skip`] first.
    #[must_use]
    pub fn new(generation: Generation, mock: &'m Mock, agents: &[&str]) -> Self {
        assert!(!agents.is_empty(), "at least one agent");
        let program = generation.program().unwrap_or_else(|| {
            panic!("{} is not set: call openclaw_or_skip!({generation:?}) first", generation.env_var())
        });
        let dir = tempfile::Builder::new().prefix("keeper-gateway-test.").tempdir().expect("a temporary HOME");
        let home = Self { generation, program, dir, agents: agents.iter().map(|&a| a.to_owned()).collect(), mock };
        std::fs::create_dir_all(home.state_dir()).expect("creating the state directory");
        home.write_config(&home.initial_config());
        home
    }

    /// The generation this home is for.
    #[must_use]
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The `openclaw` this home runs.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The mock every command here is pointed at.
    #[must_use]
    pub fn mock(&self) -> &'m Mock {
        self.mock
    }

    /// The configured agents, the default first.
    #[must_use]
    pub fn agents(&self) -> &[String] {
        &self.agents
    }

    /// The default agent (the first of [`OpenClawHome::new`]'s list).
    #[must_use]
    pub fn default_agent(&self) -> &str {
        &self.agents[0]
    }

    /// `HOME`.
    #[must_use]
    pub fn home(&self) -> &Path {
        self.dir.path()
    }

    /// `OPENCLAW_STATE_DIR`: `HOME/.openclaw`.
    #[must_use]
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".openclaw")
    }

    /// `HOME/.openclaw/openclaw.json`.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.state_dir().join("openclaw.json")
    }

    /// An agent's directory, `HOME/.openclaw/agents/ID/agent`.
    #[must_use]
    pub fn agent_dir(&self, agent: &str) -> PathBuf {
        self.state_dir().join("agents").join(agent).join("agent")
    }

    /// The JSON era's per-agent credential store, `agents/ID/agent/auth-profiles.json`.
    #[must_use]
    pub fn profiles_path(&self, agent: &str) -> PathBuf {
        self.agent_dir(agent).join("auth-profiles.json")
    }

    /// The SQLite era's shared store, `state/openclaw.sqlite` (the default agent's credentials,
    /// used by every agent without its own).
    #[must_use]
    pub fn shared_store_path(&self) -> PathBuf {
        self.state_dir().join("state").join("openclaw.sqlite")
    }

    /// The SQLite era's per-agent store, `agents/ID/agent/openclaw-agent.sqlite`.
    #[must_use]
    pub fn agent_store_path(&self, agent: &str) -> PathBuf {
        self.agent_dir(agent).join("openclaw-agent.sqlite")
    }

    /// `OPENCLAW_STATE_DIR/.env`, which the gateway reads at start.
    #[must_use]
    pub fn dotenv_path(&self) -> PathBuf {
        self.state_dir().join(".env")
    }

    /// Where [`crate::Gateway`] keeps the gateway's stdout and stderr (appended across restarts).
    #[must_use]
    pub fn gateway_log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    /// The log file every OpenClaw process of this home writes besides its console
    /// (`logging.file`), `HOME/openclaw.log`.
    #[must_use]
    pub fn file_log_path(&self) -> PathBuf {
        self.dir.path().join("openclaw.log")
    }

    /// Panics when the gateway's console log or [`OpenClawHome::file_log_path`] holds any of
    /// `tokens`, or a 32-character piece of one (the message names the fingerprint, never the
    /// token).
    pub fn assert_no_token_logged(&self, tokens: &[&str]) {
        for path in [self.gateway_log_path(), self.file_log_path()] {
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
            for token in tokens {
                let piece = token.get(13..45).unwrap_or(token);
                assert!(
                    !text.contains(piece),
                    "{} holds (part of) the token {}",
                    path.display(),
                    keeper_anthropic_mock::fingerprint(token)
                );
            }
        }
    }

    /// This OpenClaw in this home: `HOME`, `OPENCLAW_STATE_DIR`, `NO_COLOR`, the mock's proxy
    /// and CA, the telemetry and update-check opt-outs, `PATH`; no gateway token.
    #[must_use]
    pub fn openclaw(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare(args);
        self.mock.apply_env(&mut cmd);
        cmd
    }

    /// [`OpenClawHome::openclaw`] with `OPENCLAW_GATEWAY_TOKEN`, for commands that must reach the
    /// gateway whatever the config says.
    #[must_use]
    pub fn openclaw_with_gateway_token(&self, args: &[&str]) -> Command {
        let mut cmd = self.openclaw(args);
        cmd.env("OPENCLAW_GATEWAY_TOKEN", GATEWAY_TOKEN);
        cmd
    }

    /// The environment without the mock: what `openclaw agent` gets (see [`crate::Gateway::turn`]).
    pub(crate) fn bare(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("OPENCLAW_STATE_DIR", self.state_dir())
            .env("NO_COLOR", "1")
            // The update check is also the telemetry ping (telemetry.openclaw.ai in 2026.9.6,
            // the npm registry in 2026.6.1); both skip it with this set (and with
            // `update.checkOnStart: false`, which the config carries too).
            .env("OPENCLAW_NO_AUTO_UPDATE", "1")
            // 2026.9.6 would otherwise upgrade a consented ping to a feature-stats POST.
            .env("DO_NOT_TRACK", "1")
            // Install attribution headers (both generations read it).
            .env("OPENCLAW_TELEMETRY", "0");
        cmd
    }

    /// Runs `openclaw ARGS` here (with the mock, without a gateway token) to completion.
    #[must_use]
    pub fn run(&self, args: &[&str]) -> Output {
        run::run(self.openclaw(args), None, COMMAND_LIMIT)
    }

    /// `printf '%s\n' TOKEN | openclaw models auth paste-token --provider anthropic
    /// --profile-id anthropic:claude-code --expires-in EXPIRES_IN [--agent AGENT]`, as cred-sync
    /// and a user run it (token on stdin, gateway token only from the config). Not checked:
    /// callers assert on the [`Output`].
    #[must_use]
    pub fn paste(&self, token: &str, agent: Option<&str>, expires_in: &str) -> Output {
        let mut args = vec![
            "models",
            "auth",
            "paste-token",
            "--provider",
            "anthropic",
            "--profile-id",
            PROFILE_ID,
            "--expires-in",
            expires_in,
        ];
        if let Some(agent) = agent {
            args.extend(["--agent", agent]);
        }
        run::run(self.openclaw(&args), Some(format!("{token}\n").as_bytes()), COMMAND_LIMIT)
    }

    /// Writes the JSON era's `auth-profiles.json` for `agent`: one `token` profile
    /// ([`PROFILE_ID`]) holding `token`, expiring at `expires_ms`; atomically (a temporary file
    /// renamed over it), as cred-sync does.
    pub fn write_profile(&self, agent: &str, token: &str, expires_ms: i64) {
        let store = json!({
            "version": 1,
            "profiles": {
                PROFILE_ID: {"type": "token", "provider": "anthropic", "token": token, "expires": expires_ms}
            }
        });
        let text = serde_json::to_string_pretty(&store).expect("JSON") + "\n";
        write_atomically(&self.profiles_path(agent), text.as_bytes());
    }

    /// Writes `OPENCLAW_STATE_DIR/.env` (atomically) with these `KEY=value` lines.
    pub fn write_dotenv(&self, vars: &[(&str, &str)]) {
        let text: String = vars.iter().flat_map(|(k, v)| [k, "=", v, "\n"]).collect();
        write_atomically(&self.dotenv_path(), text.as_bytes());
    }

    /// The agent `openclaw agents list --json` marks `isDefault`.
    #[must_use]
    pub fn listed_default_agent(&self) -> Option<String> {
        let out = self.run(&["agents", "list", "--json"]);
        assert!(out.success(), "openclaw agents list --json: {}", out.text());
        let agents: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("agents list --json printed no JSON ({e}): {}", out.stdout));
        let agents = agents.as_array().map(Vec::as_slice).unwrap_or_default();
        agents.iter().find(|a| a["isDefault"] == true).and_then(|a| a["id"].as_str()).map(str::to_owned)
    }

    /// The current `openclaw.json` (OpenClaw itself rewrites it, e.g. `paste-token` adds
    /// `auth.profiles`).
    #[must_use]
    pub fn config(&self) -> Value {
        let text = std::fs::read_to_string(self.config_path()).expect("reading openclaw.json");
        serde_json::from_str(&text).expect("openclaw.json is JSON")
    }

    /// Replaces `openclaw.json` (atomically).
    pub fn write_config(&self, config: &Value) {
        let text = serde_json::to_string_pretty(config).expect("JSON") + "\n";
        write_atomically(&self.config_path(), text.as_bytes());
    }

    /// Puts [`GATEWAY_TOKEN`] into `gateway.auth.token`, or takes it out (then only a process
    /// with `OPENCLAW_GATEWAY_TOKEN` can reach the gateway).
    pub fn set_gateway_token_in_config(&self, present: bool) {
        let mut config = self.config();
        let auth = &mut config["gateway"]["auth"];
        if present {
            auth["token"] = GATEWAY_TOKEN.into();
        } else if let Some(auth) = auth.as_object_mut() {
            auth.remove("token");
        }
        self.write_config(&config);
    }

    fn initial_config(&self) -> Value {
        let first = self.default_agent();
        let mut defaults = json!({"model": {"primary": MODEL}});
        let mut config = json!({
            "gateway": {
                "mode": "local",
                "bind": "loopback",
                "port": GATEWAY_PORT,
                "auth": {"mode": "token", "token": GATEWAY_TOKEN}
            },
            // The opt-out of the start-up update check (and with it 2026.9.6's telemetry ping).
            "update": {"checkOnStart": false},
            // Not the default /tmp/openclaw/openclaw-DATE.log, which every home would share.
            "logging": {"file": self.file_log_path()}
        });
        match self.generation {
            Generation::Sqlite => {
                // Otherwise 2026.9.6 sends a second, background `/v1/messages`
                // (claude-haiku-4-5, a generated title) just after the first turn, which would
                // land in the next turn.
                defaults["utilityModel"] = "".into();
                config["telemetry"] = json!({"enabled": false});
                // The Anthropic provider is a plugin here; the 12 others a default install
                // loads (browser, canvas, github, openai, …) have nothing to do with its
                // credentials and make the first turn about twice as slow.
                config["plugins"] = json!({"allow": ["anthropic"]});
            }
            Generation::Json => {
                // 2026.6.1 fetches OpenRouter's and LiteLLM's price lists at start.
                config["models"] = json!({"pricing": {"enabled": false}});
            }
        }
        // A lone `main` is OpenClaw's implicit default agent: no roster, as a fresh install has.
        let roster = (self.agents.len() > 1 || first != "main").then(|| self.roster(&mut defaults));
        let mut agents = json!({"defaults": defaults});
        if let Some((key, value)) = roster {
            agents[key] = value;
            if self.generation == Generation::Sqlite {
                // What `openclaw agents add` stamps on a multi-agent config.
                agents["ownership"] = "explicit".into();
            }
        }
        config["agents"] = agents;
        config
    }

    /// The agent roster in this generation's form, and the defaults that name its owner.
    fn roster(&self, defaults: &mut Value) -> (&'static str, Value) {
        let first = self.default_agent();
        let workspace = |id: &str| self.state_dir().join(format!("workspace-{id}")).to_string_lossy().into_owned();
        let agent_dir = |id: &str| self.agent_dir(id).to_string_lossy().into_owned();
        match self.generation {
            // As `openclaw agents add` writes it: `entries` keyed by id; the default is the
            // `systemAgent` (also the heartbeat owner, else every command warns about it).
            Generation::Sqlite => {
                defaults["systemAgent"] = json!({"agentId": first});
                defaults["heartbeat"] = json!({"agentId": first});
                let entries: serde_json::Map<String, Value> = self
                    .agents
                    .iter()
                    .map(|id| {
                        // The default agent's entry is bare, as `agents add` leaves it.
                        let entry = if id == first {
                            json!({"workspace": workspace(id)})
                        } else {
                            json!({"name": id, "workspace": workspace(id), "agentDir": agent_dir(id)})
                        };
                        (id.clone(), entry)
                    })
                    .collect();
                ("entries", Value::Object(entries))
            }
            // 2026.6.1: `agents.list[]`, the default marked `default: true`.
            Generation::Json => {
                let list: Vec<Value> = self
                    .agents
                    .iter()
                    .map(|id| {
                        let mut entry =
                            json!({"id": id, "name": id, "workspace": workspace(id), "agentDir": agent_dir(id)});
                        if id == first {
                            entry["default"] = true.into();
                        }
                        entry
                    })
                    .collect();
                ("list", Value::Array(list))
            }
        }
    }
}

/// Writes `path` through a temporary file in the same directory renamed over it, so a reader
/// sees the old content or the new, never a half-written file.
fn write_atomically(path: &Path, bytes: &[u8]) {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.keeper-test.tmp"));
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("renaming over {}: {e}", path.display()));
}

/// Milliseconds since the epoch, as OpenClaw stores expiries.
#[must_use]
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
}

/// `now + d` in milliseconds since the epoch.
#[must_use]
pub fn ms_from_now(d: Duration) -> i64 {
    now_ms() + i64::try_from(d.as_millis()).expect("a duration that fits")
}
