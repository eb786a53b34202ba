//! Finding and running `docker` and Compose: every call through `keeper_core::process` (a
//! process group of its own, killed whole at the deadline: a hung daemon must not hang us), and
//! everything that comes back redacted.

use crate::redact::Redactor;
use crate::{EXIT_DOCKER, Failure};
use keeper_core::process::{self, Ended, Finished};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The programs to run.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// The `docker` client, for `docker inspect`.
    pub(crate) docker: PathBuf,
    /// The Compose command: `[docker, "compose"]` (v2) or `[docker-compose]` (v1), or as given.
    pub(crate) compose: Vec<OsString>,
}

impl Programs {
    /// Uses the given programs, or finds them: `docker` with `which`; Compose v2 when
    /// `docker compose version` succeeds, else `docker-compose` (v1, or a standalone v2).
    /// `docker compose version` gets `deadline`, like every other call.
    pub(crate) fn find(docker: Option<&Path>, compose: Option<&str>, deadline: Duration) -> Result<Self, Failure> {
        let docker = match docker {
            Some(path) => path.to_path_buf(),
            None => which::which("docker").map_err(|_| {
                Failure::new(EXIT_DOCKER, "docker not found on PATH (install docker.io, or name it with --docker)")
            })?,
        };
        if let Some(words) = compose {
            let compose: Vec<OsString> = words.split_whitespace().map(OsString::from).collect();
            if compose.is_empty() {
                return Err(Failure::new(EXIT_DOCKER, "--compose-cmd is empty"));
            }
            return Ok(Self { docker, compose });
        }
        let mut probe = Command::new(&docker);
        probe.args(["compose", "version"]);
        let plugin = process::run(probe, None, deadline).is_ok_and(|f| f.success());
        if plugin {
            return Ok(Self { compose: vec![docker.clone().into_os_string(), "compose".into()], docker });
        }
        match which::which("docker-compose") {
            Ok(standalone) => Ok(Self { docker, compose: vec![standalone.into_os_string()] }),
            Err(_) => Err(Failure::new(
                EXIT_DOCKER,
                "no Docker Compose found: neither `docker compose` (v2 plugin) nor `docker-compose` (v1) works; \
                 name one with --compose-cmd",
            )),
        }
    }
}

/// Runs the commands of one project, stripping the token's variable from their environment.
#[derive(Debug, Clone)]
pub(crate) struct Runner {
    pub(crate) programs: Programs,
    /// Compose's global options: `-f`, `--env-file`, `-p`, `--project-directory`.
    pub(crate) global: Vec<OsString>,
    /// Where Compose runs.
    pub(crate) dir: PathBuf,
    /// The variable removed from every child's environment.
    pub(crate) scrub: String,
    /// How long any one docker or compose command may run before its process group is killed.
    pub(crate) deadline: Duration,
    pub(crate) redactor: Redactor,
}

impl Runner {
    /// `compose GLOBAL… ARGS…`.
    pub(crate) fn compose<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.programs.compose[0]);
        cmd.args(&self.programs.compose[1..]).args(&self.global).args(args);
        self.prepare(&mut cmd);
        cmd
    }

    /// `docker ARGS…`.
    pub(crate) fn docker<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = Command::new(&self.programs.docker);
        cmd.args(args);
        self.prepare(&mut cmd);
        cmd
    }

    fn prepare(&self, cmd: &mut Command) {
        // The .env is the one source of the token: a stale copy in our own environment would win
        // over it in Compose's interpolation, and a token must not travel in an environment.
        cmd.current_dir(&self.dir).env_remove(&self.scrub);
    }

    /// Runs a command to completion (at most [`Runner::deadline`]); its stdout, redacted, or a
    /// [`Failure`] naming `step`, the exit status and the redacted output.
    pub(crate) fn run(&self, step: &str, cmd: Command) -> Result<String, Failure> {
        self.run_unredacted(step, cmd).map(|stdout| self.redactor.redact(&stdout))
    }

    /// As [`Runner::run`], but stdout comes back as it is: only for `docker inspect`, whose
    /// document holds the container's environment (the token) and is parsed in memory, every
    /// field kept for display redacted there ([`crate::inspect::parse`]).
    pub(crate) fn run_unredacted(&self, step: &str, cmd: Command) -> Result<String, Failure> {
        let line = self.redactor.redact(&shell_line(&cmd));
        let program = self.redactor.redact(&cmd.get_program().to_string_lossy());
        let f = process::run(cmd, None, self.deadline)
            .map_err(|e| Failure::new(EXIT_DOCKER, format!("{step}: cannot run {program}: {e}")))?;
        if f.success() {
            return Ok(String::from_utf8_lossy(&f.stdout).into_owned());
        }
        Err(Failure::new(EXIT_DOCKER, self.failed(step, &line, &f)))
    }

    /// The message for a command that failed or ran out of time (tokens redacted).
    fn failed(&self, step: &str, line: &str, f: &Finished) -> String {
        let mut output = String::from_utf8_lossy(&f.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&f.stdout));
        let shown = self.shown_output(&output);
        match f.ended {
            Ended::TimedOut => format!(
                "{step} did not finish within {} (is the Docker daemon answering?): killed it and its process \
                 group: `{line}`\n{shown}",
                humantime::format_duration(self.deadline)
            ),
            Ended::Signalled(sig) => format!("{step} failed (killed by signal {sig}): `{line}`\n{shown}"),
            Ended::Exited(code) => format!("{step} failed (exit status {code}): `{line}`\n{shown}"),
        }
    }

    /// The last lines of a command's output, redacted and indented.
    fn shown_output(&self, output: &str) -> String {
        const MAX_LINES: usize = 30;
        let redacted = self.redactor.redact(output);
        let lines: Vec<&str> = redacted.lines().filter(|l| !l.trim().is_empty()).collect();
        let skip = lines.len().saturating_sub(MAX_LINES);
        let mut shown: Vec<String> = lines[skip..].iter().map(|l| format!("  | {l}")).collect();
        if skip > 0 {
            shown.insert(0, format!("  | ({skip} earlier lines left out)"));
        }
        if shown.is_empty() {
            shown.push("  | (no output)".to_owned());
        }
        shown.join("\n")
    }
}

/// A command as a shell line (single-quoting words that need it), for `--dry-run` and errors.
/// Arguments never hold a token: tokens reach Compose only through the .env file.
pub(crate) fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|w| shell_word(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | ',' | '+' | '@'));
    if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_line_quotes_only_what_needs_it() {
        let mut cmd = Command::new("/usr/bin/docker");
        cmd.args(["compose", "-f", "/srv/my dir/docker-compose.yml", "up", "-d", "it's"]);
        assert_eq!(shell_line(&cmd), r"/usr/bin/docker compose -f '/srv/my dir/docker-compose.yml' up -d 'it'\''s'");
    }
}
