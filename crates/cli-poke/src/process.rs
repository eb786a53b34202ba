//! Runs the CLI (or docker) through `keeper_core::process`: a process group of its own, output
//! captured, the whole group ended at the time limit — with the token variables removed from its
//! environment.

use crate::command::Invocation;
pub(crate) use keeper_core::process::{Ended, Finished};
use std::io;
use std::process::Command;
use std::time::Duration;

/// Starts `inv` (stdin from /dev/null, token variables removed from its environment) in a new
/// process group and waits up to `timeout`. Fails only when it cannot be started.
pub(crate) fn run(inv: &Invocation, timeout: Duration) -> io::Result<Finished> {
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
