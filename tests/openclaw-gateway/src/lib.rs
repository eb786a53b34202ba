//! Test support: the real OpenClaw gateway, both generations, run offline against
//! [`keeper_anthropic_mock`], so a test can say which token the gateway actually sent.
//!
//! - [`Generation`]: 2026.9.6 (SQLite era, `KEEPER_OPENCLAW_SQLITE`) or 2026.6.1 (JSON era,
//!   `KEEPER_OPENCLAW_JSON`), installed by `scripts/install-openclaw-for-tests.sh`. A test that
//!   needs one starts with [`openclaw_or_skip!`]: a loud `SKIPPED` banner when it is missing, a
//!   failure with `KEEPER_REQUIRE_OPENCLAW=1`.
//! - [`OpenClawHome`]: a temporary `HOME` with `openclaw.json` (loopback gateway, token auth,
//!   the agents, the model, telemetry off), and the ways the keeper writes credentials:
//!   [`OpenClawHome::paste`] (`paste-token`), [`OpenClawHome::write_profile`]
//!   (`auth-profiles.json`), [`OpenClawHome::write_dotenv`].
//! - [`Gateway`]: `openclaw gateway run` in its own process group; start, restart, in-process
//!   restart (SIGUSR1), stop; [`Gateway::turn`] sends one agent turn through it and returns the
//!   `/v1/messages` requests the mock recorded meanwhile, each with its token's fingerprint.
//!
//! ```no_run
//! use keeper_gateway_test::{Gateway, GatewayOptions, Generation, OpenClawHome, isolated_mock, openclaw_or_skip};
//! # fn test() {
//! openclaw_or_skip!(Generation::Sqlite);
//! let (_dir, mock) = isolated_mock();
//! let home = OpenClawHome::new(Generation::Sqlite, &mock, &["main"]);
//! let token = format!("sk-ant-oat01-{}", "x".repeat(95));
//! assert!(home.paste(&token, None, "8h").success());
//! let gateway = Gateway::start(&home, GatewayOptions::default());
//! let turn = gateway.turn("main");
//! assert_eq!(turn.first_fingerprint(), Some(keeper_anthropic_mock::fingerprint(&token).as_str()));
//! # }
//! ```
//!
//! Nothing here prints a token: command output and the gateway's log pass through [`redact`].
//! Each start costs 5–40 s and each turn 5–45 s on 2 cores, so tests should start few gateways.

mod gateway;
mod generation;
mod home;
mod run;

pub use gateway::{Gateway, GatewayOptions, READY_LIMIT, STOP_GRACE, TURN_TIMEOUT, Turn};
pub use generation::{Generation, REQUIRE_ENV};
pub use home::{GATEWAY_PORT, GATEWAY_TOKEN, MODEL, OpenClawHome, PROFILE_ID, ms_from_now, now_ms};
pub use run::{COMMAND_LIMIT, Output, redact, run};

pub use nix::sys::signal::Signal;

use keeper_anthropic_mock::Mock;
use tempfile::TempDir;

/// Moves the calling thread into a fresh loopback-only network namespace
/// ([`keeper_anthropic_mock::isolate_network`]) and starts a [`Mock`] there, its CA in the
/// returned directory. Call it first in a test, and start everything else from the same thread:
/// only processes spawned from it can reach the mock, and nothing they do leaves the machine.
/// Panics when the namespace cannot be made (needs root).
#[must_use]
pub fn isolated_mock() -> (TempDir, Mock) {
    keeper_anthropic_mock::isolate_network().unwrap_or_else(|e| panic!("isolating the network: {e}"));
    let dir = tempfile::Builder::new().prefix("keeper-gateway-mock.").tempdir().expect("a directory for the mock's CA");
    let mock = Mock::start(dir.path()).unwrap_or_else(|e| panic!("starting the Anthropic mock: {e}"));
    (dir, mock)
}
