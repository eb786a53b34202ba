//! One recreation: the Compose commands, then the wait for each new container and the check of
//! the token inside it.

use crate::docker::Runner;
use crate::inspect::{self, Container};
use crate::{EXIT_DOCKER, EXIT_ENV_FILE, EXIT_MISMATCH, EXIT_NOT_RUNNING, Failure, Mode};
use credmap::Secret;
use keeper_core::input::{Source, read_bounded};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How often a starting container is inspected.
const POLL: Duration = Duration::from_millis(100);

/// What to recreate and how to check it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) services: Vec<String>,
    /// The variable holding the token.
    pub(crate) key: String,
    /// How long a new container may take to run (and become healthy).
    pub(crate) timeout: Duration,
    /// Seconds Compose gives the old container to stop (`--timeout`), when set.
    pub(crate) stop_timeout: Option<u32>,
}

/// A new container that runs with the .env's token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) service: String,
    pub(crate) container: Container,
}

/// Reads the token from the .env file: [`EXIT_ENV_FILE`] when the file cannot be read or parsed,
/// or holds no non-empty value for `key`.
pub(crate) fn expected_token(env_file: &Path, key: &str) -> Result<Secret, Failure> {
    let fail = |problem: String| Failure::new(EXIT_ENV_FILE, format!("{}: {problem}", env_file.display()));
    let bytes = read_bounded(&Source::File(env_file.to_path_buf())).map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    let env = credmap::dotenv::parse(&text).map_err(|e| fail(e.to_string()))?;
    match env.get(key) {
        None => Err(fail(format!("no {key}= line: nothing to verify the container against"))),
        Some(value) if value.trim().is_empty() => Err(fail(format!("{key} is empty"))),
        Some(value) => Ok(Secret::new(value)),
    }
}

/// The commands that change containers, in order.
pub(crate) fn commands(runner: &Runner, plan: &Plan) -> Vec<(&'static str, Command)> {
    let timeout: Vec<String> =
        plan.stop_timeout.map(|t| vec!["--timeout".to_owned(), t.to_string()]).unwrap_or_default();
    match plan.mode {
        Mode::Recreate => {
            let mut args: Vec<String> = ["up", "-d", "--force-recreate", "--no-deps"].map(str::to_owned).to_vec();
            args.extend(timeout);
            args.extend(plan.services.iter().cloned());
            vec![("compose up --force-recreate", runner.compose(&args))]
        }
        Mode::DownUp => {
            let mut down = vec!["down".to_owned()];
            down.extend(timeout);
            vec![("compose down", runner.compose(&down)), ("compose up", runner.compose(&["up", "-d"]))]
        }
    }
}

/// The IDs of the service's containers, running or not.
fn container_ids(runner: &Runner, service: &str) -> Result<Vec<String>, Failure> {
    let ids = runner.run("compose ps", runner.compose(&["ps", "-a", "-q", service]))?;
    Ok(ids.split_whitespace().map(str::to_owned).collect())
}

/// Inspects containers (one-off `compose run` containers left out; vanished ones too).
fn inspect_ids(runner: &Runner, ids: &[String], key: &str) -> Result<Vec<Container>, Failure> {
    let mut found = Vec::new();
    for id in ids {
        // One at a time: a container removed meanwhile fails only its own inspect.
        let inspect = runner.docker(&["inspect", "--type", "container", id]);
        let json = match runner.run_unredacted("docker inspect", inspect) {
            Ok(json) => json,
            // A daemon that does not answer is not a vanished container.
            Err(failure) if failure.message.contains("did not finish within") => return Err(failure),
            Err(_) => continue,
        };
        let parsed = inspect::parse(&json, key, &runner.redactor).map_err(|e| Failure::new(EXIT_DOCKER, e))?;
        found.extend(parsed.into_iter().filter(|c| !c.one_off));
    }
    Ok(found)
}

fn containers(runner: &Runner, service: &str, key: &str) -> Result<Vec<Container>, Failure> {
    inspect_ids(runner, &container_ids(runner, service)?, key)
}

/// Whether every service has a running container and each running one already holds `expected`.
pub(crate) fn is_current(runner: &Runner, plan: &Plan, expected: &Secret) -> Result<bool, Failure> {
    for service in &plan.services {
        let running: Vec<Container> =
            containers(runner, service, &plan.key)?.into_iter().filter(Container::running).collect();
        if running.is_empty() || running.iter().any(|c| c.value.as_ref() != Some(expected)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Recreates the services, waits for the new containers and checks the token in each.
pub(crate) fn recreate(runner: &Runner, plan: &Plan, expected: &Secret) -> Result<Vec<Verified>, Failure> {
    let mut old_ids = Vec::new();
    for service in &plan.services {
        old_ids.extend(containers(runner, service, &plan.key)?.into_iter().map(|c| c.id));
    }
    for (step, cmd) in commands(runner, plan) {
        runner.run(step, cmd)?;
    }
    let deadline = Instant::now() + plan.timeout;
    let mut verified = Vec::new();
    for service in &plan.services {
        for container in wait_ready(runner, plan, service, deadline)? {
            if old_ids.contains(&container.id) {
                let level = keeper_core::log::Level::Warning;
                keeper_core::log::log(
                    level,
                    crate::PROGRAM,
                    format_args!("{service}: container {} was not recreated", container.short_id()),
                );
            }
            check_token(service, &container, &plan.key, expected)?;
            verified.push(Verified { service: service.clone(), container });
        }
    }
    Ok(verified)
}

/// Waits until every container of the service runs (healthy, when it has a healthcheck).
fn wait_ready(runner: &Runner, plan: &Plan, service: &str, deadline: Instant) -> Result<Vec<Container>, Failure> {
    let mut ids = container_ids(runner, service)?;
    loop {
        let found = inspect_ids(runner, &ids, &plan.key)?;
        let timed_out = Instant::now() >= deadline;
        if let Some(stopped) = found.iter().find(|c| c.stopped()) {
            return Err(not_running(service, stopped, "stopped"));
        }
        if !found.is_empty() && found.iter().all(Container::ready) {
            return Ok(found);
        }
        if timed_out {
            return Err(match found.iter().find(|c| !c.ready()) {
                Some(c) => {
                    not_running(service, c, &format!("not ready after {}", humantime::format_duration(plan.timeout)))
                }
                None => Failure::new(
                    EXIT_NOT_RUNNING,
                    format!("{service}: no container after {}", humantime::format_duration(plan.timeout)),
                ),
            });
        }
        std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        if found.len() < ids.len() || ids.is_empty() {
            ids = container_ids(runner, service)?; // some vanished (a restart policy replaced it?)
        }
    }
}

fn not_running(service: &str, c: &Container, what: &str) -> Failure {
    Failure::new(
        EXIT_NOT_RUNNING,
        format!(
            "{service}: new container {} ({}) {what}: {}; see `docker logs {}`",
            c.name,
            c.short_id(),
            c.state(),
            c.short_id()
        ),
    )
}

/// [`EXIT_MISMATCH`] unless the container's variable holds the .env's token.
fn check_token(service: &str, c: &Container, key: &str, expected: &Secret) -> Result<(), Failure> {
    match &c.value {
        Some(value) if value == expected => Ok(()),
        None => Err(Failure::new(
            EXIT_MISMATCH,
            format!(
                "{service}: container {} has no {key} in its environment, but .env has {expected}. \
                 Likely cause: the compose file does not pass the variable to the container: the .env \
                 only feeds ${{VAR}} interpolation unless the service has `env_file: .env` or an \
                 `environment:` entry `{key}: ${{{key}}}` (older OpenClaw compose files have neither)",
                c.name
            ),
        )),
        Some(value) => Err(Failure::new(
            EXIT_MISMATCH,
            format!(
                "{service}: container {} has {key}={value}, but .env has {expected}. Likely cause: the \
                 compose file sets it from elsewhere: an `environment:` entry with a literal value or \
                 another variable, or another env_file",
                c.name
            ),
        )),
    }
}
