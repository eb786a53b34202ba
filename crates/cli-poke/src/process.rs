//! Runs the CLI (or docker) through `keeper_core::process`: a process group of its own, output
//! captured, the whole group ended at the time limit — with the token variables removed from its
//! environment.

use crate::command::{Inside, Invocation};
pub(crate) use keeper_core::process::{Ended, Finished};
use std::io;
use std::process::Command;
use std::time::Duration;

/// How long stopping a timed-out command inside its container may take.
const KILL_INSIDE_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts `inv` (stdin from /dev/null, token variables removed from its environment) in a new
/// process group and waits up to `timeout`. Fails only when it cannot be started. A `docker
/// exec` that times out is stopped inside its container too ([`Invocation::inside`]): killing
/// the client alone leaves the CLI running there, holding its lock.
pub(crate) fn run(inv: &Invocation, timeout: Duration) -> io::Result<Finished> {
    let finished = run_here(inv, timeout)?;
    if finished.ended == Ended::TimedOut
        && let Some(inside) = &inv.inside
    {
        kill_inside(inside);
    }
    Ok(finished)
}

/// Stops the marked command inside its container, logging what it did.
fn kill_inside(inside: &Inside) {
    use keeper_core::log::{Level, log};
    let program = crate::PROGRAM;
    let name = &inside.container;
    match run_here(&inside.kill(), KILL_INSIDE_TIMEOUT) {
        Ok(f) if f.success() => {
            let n = String::from_utf8_lossy(&f.stdout).trim().to_owned();
            log(Level::Info, program, format_args!("stopped the CLI inside container {name} too ({n} processes)"));
        }
        Ok(f) => {
            let said = crate::redact::redact(&String::from_utf8_lossy(&f.stderr));
            let said = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").to_owned();
            log(
                Level::Warning,
                program,
                format_args!(
                    "could not stop the CLI inside container {name} (docker exec … sh {}: {said}): it may run on                      until it finishes by itself",
                    f.describe()
                ),
            );
        }
        Err(e) => log(Level::Warning, program, format_args!("could not stop the CLI inside container {name}: {e}")),
    }
}

fn run_here(inv: &Invocation, timeout: Duration) -> io::Result<Finished> {
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.args);
    for name in Invocation::env_to_remove(std::env::vars_os()) {
        cmd.env_remove(name);
    }
    for (k, v) in &inv.set_env {
        cmd.env(k, v);
    }
    keeper_core::process::run(cmd, None, timeout)
}
