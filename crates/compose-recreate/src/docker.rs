//! Finding and running `docker` and Compose, with redacted errors.

use crate::redact::Redactor;
use crate::{EXIT_DOCKER, Failure};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
    pub(crate) fn find(docker: Option<&Path>, compose: Option<&str>) -> Result<Self, Failure> {
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
        let plugin = Command::new(&docker)
            .args(["compose", "version"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
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
        cmd.current_dir(&self.dir).env_remove(&self.scrub).stdin(Stdio::null());
    }

    /// Runs a command to completion; its stdout, or a [`Failure`] naming `step`, the exit status
    /// and the redacted output.
    pub(crate) fn run(&self, step: &str, mut cmd: Command) -> Result<String, Failure> {
        let out = cmd.output().map_err(|e| {
            Failure::new(EXIT_DOCKER, format!("{step}: cannot run {}: {e}", cmd.get_program().to_string_lossy()))
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let status = out.status.code().map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit status {c}"));
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        Err(Failure::new(
            EXIT_DOCKER,
            format!("{step} failed ({status}): `{}`\n{}", shell_line(&cmd), self.shown_output(&output)),
        ))
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
