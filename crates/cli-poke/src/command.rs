//! The command that runs the CLI: on the host, in a container (`docker exec`), or a command the
//! user gives. Built as plain data so that every form can be checked without running it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The Anthropic API, for the per-command `ANTHROPIC_BASE_URL` override.
pub(crate) const ANTHROPIC_API: &str = "https://api.anthropic.com";

/// Variables that carry a token (or make the CLI ignore its credentials file). Never passed to a
/// program we start: `CLAUDE_CODE_OAUTH_TOKEN` makes the CLI use that token verbatim and never
/// refresh, an API key makes it skip OAuth.
pub(crate) const TOKEN_VARS: [&str; 5] = [
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_REFRESH_TOKEN",
    "ANTHROPIC_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
];

/// A program, its arguments and the environment changes to start it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The program.
    pub(crate) program: PathBuf,
    /// Its arguments.
    pub(crate) args: Vec<OsString>,
    /// Variables set for it (never a token).
    pub(crate) set_env: Vec<(String, String)>,
    /// For `docker exec`: what runs inside the container, to be stopped there when the client is
    /// killed at the time limit (killing `docker exec` leaves the command inside running).
    pub(crate) inside: Option<Inside>,
}

/// The variable that marks the processes of one `docker exec` inside the container: every
/// process the CLI starts inherits it, so [`Inside::kill`] finds them all and nothing else.
pub(crate) const RUN_MARKER_VAR: &str = "KEEPER_CLI_POKE_RUN";

/// A command run inside a container through `docker exec`, marked by [`RUN_MARKER_VAR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inside {
    pub(crate) docker: PathBuf,
    pub(crate) container: String,
    /// This run's value of [`RUN_MARKER_VAR`].
    pub(crate) marker: String,
}

/// Stops every process in the container whose environment holds `KEEPER_CLI_POKE_RUN=$1`:
/// SIGTERM, then after a second SIGKILL to those left; prints how many it found. Needs only
/// `sh`, `/proc`, `tr`, `grep` and `sleep` in the container (busybox has them, as does every
/// Debian- or Alpine-based image).
const KILL_MARKED: &str = r#"m="KEEPER_CLI_POKE_RUN=$1"
marked() {
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] && continue
    tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qxF "$m" && echo "$p"
  done
}
found=$(marked)
[ -n "$found" ] || { echo 0; exit 0; }
kill -TERM $found 2>/dev/null
sleep 1
left=$(marked)
[ -z "$left" ] || kill -KILL $left 2>/dev/null
echo $found | wc -w
"#;

impl Inside {
    /// `docker exec CONTAINER sh -c KILL_MARKED sh MARKER`: as the same (default) user as the
    /// CLI's `docker exec`, without the marker itself in its environment.
    pub(crate) fn kill(&self) -> Invocation {
        let args = ["exec", &self.container, "sh", "-c", KILL_MARKED, "sh", &self.marker].map(OsString::from).to_vec();
        Invocation { program: self.docker.clone(), args, set_env: Vec::new(), inside: None }
    }
}

/// A value for [`RUN_MARKER_VAR`] unique to this run: our pid and the time.
fn run_marker() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos:x}", std::process::id())
}

impl Invocation {
    /// The names of variables of `env` to remove before starting the program: the token variables
    /// and any variable whose value holds something token-shaped.
    pub(crate) fn env_to_remove(env: impl Iterator<Item = (OsString, OsString)>) -> Vec<OsString> {
        env.filter(|(k, v)| TOKEN_VARS.iter().any(|t| OsStr::new(t) == k) || v.to_string_lossy().contains("sk-ant-"))
            .map(|(k, _)| k)
            .collect()
    }
}

impl fmt::Display for Invocation {
    /// The command line as a shell would need it, for logs (it never holds a token).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.set_env {
            write!(f, "{k}={} ", quote(v))?;
        }
        f.write_str(&quote(&self.program.to_string_lossy()))?;
        for a in &self.args {
            write!(f, " {}", quote(&a.to_string_lossy()))?;
        }
        Ok(())
    }
}

fn quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if plain { s.to_owned() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// What to tell the CLI besides its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliEnv {
    /// Point `ANTHROPIC_BASE_URL` at the Anthropic API for this one command.
    pub(crate) base_url_override: bool,
    /// `CLAUDE_CODE_MAX_RETRIES` for the CLI's API call.
    pub(crate) max_retries: Option<u32>,
    /// `CLAUDE_CONFIG_DIR` for a CLI on the host, when the credentials file is not where the CLI
    /// would look by default.
    pub(crate) config_dir: Option<PathBuf>,
}

impl CliEnv {
    fn pairs(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if self.base_url_override {
            env.push(("ANTHROPIC_BASE_URL".to_owned(), ANTHROPIC_API.to_owned()));
        }
        if let Some(n) = self.max_retries {
            env.push(("CLAUDE_CODE_MAX_RETRIES".to_owned(), n.to_string()));
        }
        if let Some(dir) = &self.config_dir {
            env.push(("CLAUDE_CONFIG_DIR".to_owned(), dir.to_string_lossy().into_owned()));
        }
        env
    }
}

/// The CLI on the host: `CLI ARGS…` with the variables in its environment.
pub(crate) fn host(cli: &Path, cli_args: &[String], env: &CliEnv) -> Invocation {
    Invocation {
        program: cli.to_path_buf(),
        args: cli_args.iter().map(OsString::from).collect(),
        set_env: env.pairs(),
        inside: None,
    }
}

/// The CLI in a running container: `docker exec [-e VAR=value…] -e KEEPER_CLI_POKE_RUN=MARKER
/// CONTAINER CLI ARGS…`. The `-e` variables apply to this one command; the container's own
/// environment is unchanged. The marker lets [`Inside::kill`] stop the CLI inside the container.
pub(crate) fn container(docker: &Path, container: &str, cli: &str, cli_args: &[String], env: &CliEnv) -> Invocation {
    let marker = run_marker();
    let mut args: Vec<OsString> = vec!["exec".into()];
    for (k, v) in env.pairs().into_iter().filter(|(k, _)| k != "CLAUDE_CONFIG_DIR") {
        args.push("-e".into());
        args.push(format!("{k}={v}").into());
    }
    args.push("-e".into());
    args.push(format!("{RUN_MARKER_VAR}={marker}").into());
    args.push(container.into());
    args.push(cli.into());
    args.extend(cli_args.iter().map(OsString::from));
    let inside = Inside { docker: docker.to_path_buf(), container: container.to_owned(), marker };
    Invocation { program: docker.to_path_buf(), args, set_env: Vec::new(), inside: Some(inside) }
}

/// A user-given command (`docker compose exec -T svc claude`) with the CLI arguments appended;
/// the variables go into its environment. `docker exec`, `docker container exec`, `docker compose
/// … exec` and `docker-compose … exec` do not pass the caller's environment on, so for those the
/// variables are also inserted as `-e VAR=value` right after `exec` (unless the command already
/// sets that variable); any other wrapper must pass them on itself.
pub(crate) fn custom(words: &[String], cli_args: &[String], env: &CliEnv) -> Invocation {
    let (program, rest) = words.split_first().expect("a custom command has at least one word");
    let mut rest: Vec<String> = rest.to_vec();
    if let Some(at) = docker_exec_at(words) {
        let given = &words[at + 1..];
        let inserted: Vec<String> = env
            .pairs()
            .into_iter()
            .filter(|(k, _)| k != "CLAUDE_CONFIG_DIR" && !sets_var(given, k))
            .flat_map(|(k, v)| ["-e".to_owned(), format!("{k}={v}")])
            .collect();
        // `at` counts the program; `rest` does not.
        rest.splice(at..at, inserted);
    }
    let args = rest.iter().chain(cli_args).map(OsString::from).collect();
    Invocation { program: PathBuf::from(program), args, set_env: env.pairs(), inside: None }
}

/// The index of `exec` in a `docker exec` / `docker container exec` / `docker compose … exec` /
/// `docker-compose … exec` command (the program being `docker` or `docker-compose`, by any path).
fn docker_exec_at(words: &[String]) -> Option<usize> {
    let name = Path::new(words.first()?).file_name()?.to_str()?;
    let exec = |from: usize| words.iter().skip(from).position(|w| w == "exec").map(|i| i + from);
    match (name, words.get(1).map(String::as_str)) {
        ("docker", Some("exec")) => Some(1),
        ("docker", Some("container")) => (words.get(2).map(String::as_str) == Some("exec")).then_some(2),
        ("docker", Some("compose")) => exec(2),
        ("docker-compose", _) => exec(1),
        _ => None,
    }
}

/// Whether the words after `exec` already set `var` (`-e VAR=…`, `--env VAR=…`, `-eVAR=…`,
/// `--env=VAR=…`, or `-e VAR` passing the caller's value).
fn sets_var(words: &[String], var: &str) -> bool {
    let names = |w: &str| w == var || w.strip_prefix(var).is_some_and(|r| r.starts_with('='));
    words.iter().enumerate().any(|(i, w)| {
        let next = words.get(i + 1).map(String::as_str);
        ((w == "-e" || w == "--env") && next.is_some_and(names))
            || w.strip_prefix("--env=").is_some_and(names)
            || (w.len() > 2 && w.strip_prefix("-e").is_some_and(names))
    })
}

/// `docker inspect` arguments that print whether the container runs and its environment, one
/// JSON value per line. Parsed in memory: the environment may hold secrets and is never shown.
pub(crate) fn inspect(docker: &Path, container: &str) -> Invocation {
    let format = r#"{{json .State.Running}}{{"\n"}}{{json .Config.Env}}"#;
    let args = ["inspect", "--type", "container", "--format", format, container].map(OsString::from).to_vec();
    Invocation { program: docker.to_path_buf(), args, set_env: Vec::new(), inside: None }
}

/// What `docker inspect` told about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerInfo {
    /// Whether it is running.
    pub(crate) running: bool,
    /// Its `ANTHROPIC_BASE_URL`, if set and not empty.
    pub(crate) base_url: Option<String>,
    /// Names of token variables it sets (its CLI then ignores the credentials file, or skips OAuth).
    pub(crate) token_vars: Vec<String>,
}

/// Parses [`inspect`]'s output.
pub(crate) fn parse_inspect(output: &str) -> Result<ContainerInfo, String> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let running = match lines.next().map(str::trim) {
        Some("true") => true,
        Some("false") => false,
        _ => return Err("docker inspect printed no running state".into()),
    };
    let env: Vec<String> = match lines.next() {
        None => Vec::new(),
        Some(l) => match serde_json::from_str::<Option<Vec<String>>>(l.trim()) {
            Ok(env) => env.unwrap_or_default(),
            Err(_) => return Err("docker inspect printed an environment that is not a JSON list of strings".into()),
        },
    };
    let value = |name: &str| {
        env.iter().rev().find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('='))).map(str::to_owned)
    };
    Ok(ContainerInfo {
        running,
        base_url: value("ANTHROPIC_BASE_URL").filter(|v| !v.is_empty()),
        token_vars: TOKEN_VARS
            .iter()
            .filter(|t| value(t).is_some_and(|v| !v.is_empty()))
            .map(|t| (*t).to_owned())
            .collect(),
    })
}

/// Whether an `ANTHROPIC_BASE_URL` value points anywhere but the Anthropic API.
#[must_use]
pub(crate) fn base_url_elsewhere(url: &str) -> bool {
    let url = url.trim();
    if url.is_empty() {
        return false;
    }
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port.split(':').next().unwrap_or("");
    !host.eq_ignore_ascii_case("api.anthropic.com")
}

/// Splits a command line like a POSIX shell does words: blanks separate, `'…'` is literal,
/// `"…"` allows `\"`, `\\`, `\$` and `` \` ``, a backslash outside quotes escapes the next
/// character. No expansion of any kind.
pub(crate) fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("backslash at the end"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Why the CLI cannot be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotRunnable(pub(crate) String);

/// Finds the CLI on the host: an explicit path (a bare name is looked up in `PATH`), else
/// `claude` in `PATH`, else where the CLI's installers put it (`~/.local/bin/claude`,
/// `~/.claude/local/claude`) — systemd units run with a short `PATH`.
pub(crate) fn find_cli(explicit: Option<&Path>, home: &Path) -> Result<PathBuf, NotRunnable> {
    match explicit {
        Some(p) if p.components().count() > 1 || p.is_absolute() => executable(p).map(|()| p.to_path_buf()),
        Some(name) => which::which(name)
            .map_err(|_| NotRunnable(format!("{} not found in PATH", name.display())))
            .and_then(|p| executable(&p).map(|()| p)),
        None => {
            if let Ok(p) = which::which("claude") {
                return Ok(p);
            }
            let fallbacks = [home.join(".local/bin/claude"), home.join(".claude/local/claude")];
            fallbacks.iter().find(|p| executable(p).is_ok()).cloned().ok_or_else(|| {
                NotRunnable(format!(
                    "claude not found in PATH, {} or {} (use --cli PATH)",
                    fallbacks[0].display(),
                    fallbacks[1].display()
                ))
            })
        }
    }
}

fn executable(p: &Path) -> Result<(), NotRunnable> {
    match std::fs::metadata(p) {
        Err(e) => Err(NotRunnable(format!("{}: {e}", p.display()))),
        Ok(m) if m.is_dir() => Err(NotRunnable(format!("{}: is a directory", p.display()))),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err(NotRunnable(format!("{}: not executable", p.display()))),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(inv: &Invocation) -> Vec<&str> {
        inv.args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    fn env(base_url_override: bool, max_retries: Option<u32>) -> CliEnv {
        CliEnv { base_url_override, max_retries, config_dir: None }
    }

    fn say_ok() -> Vec<String> {
        vec!["-p".into(), "say ok".into()]
    }

    #[test]
    fn container_command_without_override() {
        let inv = container(Path::new("docker"), "claude-cli", "claude", &say_ok(), &env(false, None));
        let marker = inv.inside.as_ref().unwrap().marker.clone();
        assert_eq!(inv.program, Path::new("docker"));
        let mark = format!("{RUN_MARKER_VAR}={marker}");
        assert_eq!(args(&inv), ["exec", "-e", &mark, "claude-cli", "claude", "-p", "say ok"]);
        assert!(inv.set_env.is_empty());
        assert_eq!(inv.to_string(), format!("docker exec -e {mark} claude-cli claude -p 'say ok'"));
    }

    /// Killing `docker exec` at --timeout left the CLI running inside the container, holding its
    /// lock: a container command carries a marker and the command that stops it there.
    #[test]
    fn regression_the_cli_inside_the_container_outlived_the_timeout() {
        let inv = container(Path::new("/usr/bin/docker"), "c1", "claude", &say_ok(), &env(false, Some(1)));
        let inside = inv.inside.clone().unwrap();
        assert_eq!((inside.docker.as_path(), inside.container.as_str()), (Path::new("/usr/bin/docker"), "c1"));
        assert!(args(&inv).contains(&format!("{RUN_MARKER_VAR}={}", inside.marker).as_str()));
        let again = container(Path::new("/usr/bin/docker"), "c1", "claude", &say_ok(), &env(false, Some(1)));
        assert_ne!(again.inside.unwrap().marker, inside.marker, "one marker per run");
        let kill = inside.kill();
        assert_eq!(kill.program, Path::new("/usr/bin/docker"));
        assert_eq!(args(&kill)[..4], ["exec", "c1", "sh", "-c"]);
        assert_eq!(args(&kill)[5..], ["sh", inside.marker.as_str()]);
        assert!(!args(&kill).contains(&"-e"), "the kill itself is not marked");
        assert!(kill.inside.is_none());
        assert!(host(Path::new("claude"), &say_ok(), &env(false, None)).inside.is_none());
        assert!(custom(&split_words("docker exec c1 claude").unwrap(), &say_ok(), &env(false, None)).inside.is_none());

        // The script, run here against a marked process tree: it stops the marked ones only.
        let mut marked = std::process::Command::new("/bin/sh");
        marked.args(["-c", "sleep 300 & echo $!; sleep 300"]).env(RUN_MARKER_VAR, &inside.marker);
        let mut child = marked.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut other =
            std::process::Command::new("sleep").arg("300").env(RUN_MARKER_VAR, "another-run").spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", KILL_MARKED, "sh", &inside.marker])
            .env_remove(RUN_MARKER_VAR)
            .output()
            .unwrap();
        let found: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert!(found >= 2, "the shell and its background sleep at least: {found}");
        assert!(child.wait().unwrap().code().is_none(), "killed by a signal");
        let stat = format!("/proc/{}/stat", line.trim());
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z")) {
            assert!(std::time::Instant::now() < end, "the background sleep {} survived", line.trim());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(other.try_wait().unwrap().is_none(), "another run's process is left alone");
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn container_command_with_override_and_retries_puts_e_before_the_container() {
        let env = CliEnv { config_dir: Some("/ignored".into()), ..env(true, Some(1)) };
        let inv = container(Path::new("/usr/bin/docker"), "c1", "/usr/local/bin/claude", &say_ok(), &env);
        let mark = format!("{RUN_MARKER_VAR}={}", inv.inside.as_ref().unwrap().marker);
        assert_eq!(
            args(&inv),
            [
                "exec",
                "-e",
                "ANTHROPIC_BASE_URL=https://api.anthropic.com",
                "-e",
                "CLAUDE_CODE_MAX_RETRIES=1",
                "-e",
                &mark,
                "c1",
                "/usr/local/bin/claude",
                "-p",
                "say ok"
            ]
        );
        // never -t (no terminal under systemd) and never -i (no input)
        assert!(!args(&inv).iter().any(|a| a.starts_with("-t") || a.starts_with("-i")));
        assert!(inv.set_env.is_empty(), "the override goes to the container command, not to docker");
    }

    #[test]
    fn host_and_custom_commands_carry_the_variables_in_their_environment() {
        let env = CliEnv { config_dir: Some("/srv/claude".into()), ..env(true, Some(2)) };
        let inv = host(Path::new("/opt/claude"), &say_ok(), &env);
        assert_eq!(args(&inv), ["-p", "say ok"]);
        assert_eq!(
            inv.set_env,
            [
                ("ANTHROPIC_BASE_URL".into(), ANTHROPIC_API.into()),
                ("CLAUDE_CODE_MAX_RETRIES".into(), "2".into()),
                ("CLAUDE_CONFIG_DIR".into(), "/srv/claude".into())
            ]
        );
        let words = split_words("ssh box claude").unwrap();
        let inv = custom(&words, &say_ok(), &CliEnv { config_dir: None, ..env });
        assert_eq!(inv.program, Path::new("ssh"));
        assert_eq!(args(&inv), ["box", "claude", "-p", "say ok"], "another wrapper's argv is left alone");
        assert_eq!(inv.set_env.len(), 2, "its environment carries the variables");
    }

    /// `docker compose exec` does not pass the caller's environment on, so the README's own
    /// `--cli-cmd 'docker compose exec -T claude claude'` ran the CLI with its default retries:
    /// ~180 s on a dead token, past the 120 s --timeout, so REAUTH was never raised.
    #[test]
    fn regression_max_retries_never_reached_a_cli_behind_docker_compose_exec() {
        let retries = env(false, Some(1));
        let run = |cmd: &str, env: &CliEnv| {
            let inv = custom(&split_words(cmd).unwrap(), &say_ok(), env);
            std::iter::once(inv.program.to_string_lossy().into_owned())
                .chain(inv.args.iter().map(|a| a.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let r = "-e CLAUDE_CODE_MAX_RETRIES=1";
        for (cmd, want) in [
            ("docker compose exec -T claude claude", format!("docker compose exec {r} -T claude claude -p say ok")),
            (
                "docker compose -f /srv/openclaw/compose.yml exec -T claude claude",
                format!("docker compose -f /srv/openclaw/compose.yml exec {r} -T claude claude -p say ok"),
            ),
            ("docker-compose exec -T claude claude", format!("docker-compose exec {r} -T claude claude -p say ok")),
            (
                "docker-compose -p oc exec claude claude",
                format!("docker-compose -p oc exec {r} claude claude -p say ok"),
            ),
            ("docker exec c1 claude", format!("docker exec {r} c1 claude -p say ok")),
            ("/usr/bin/docker exec -u node c1 claude", format!("/usr/bin/docker exec {r} -u node c1 claude -p say ok")),
            ("docker container exec c1 claude", format!("docker container exec {r} c1 claude -p say ok")),
            // not an exec: left alone
            ("docker run --rm img claude", "docker run --rm img claude -p say ok".to_owned()),
            ("docker compose run claude claude", "docker compose run claude claude -p say ok".to_owned()),
            // the command sets it itself: its value wins, no second -e
            (
                "docker compose exec -e CLAUDE_CODE_MAX_RETRIES=3 claude claude",
                "docker compose exec -e CLAUDE_CODE_MAX_RETRIES=3 claude claude -p say ok".to_owned(),
            ),
            (
                "docker exec --env=CLAUDE_CODE_MAX_RETRIES c1 claude",
                "docker exec --env=CLAUDE_CODE_MAX_RETRIES c1 claude -p say ok".to_owned(),
            ),
        ] {
            assert_eq!(run(cmd, &retries), want, "{cmd}");
        }
        // the base-URL override travels the same way; CLAUDE_CONFIG_DIR (a host path) never does
        let both = CliEnv { config_dir: Some("/host/dir".into()), ..env(true, Some(1)) };
        assert_eq!(
            run("docker compose exec -T claude claude", &both),
            format!("docker compose exec -e ANTHROPIC_BASE_URL={ANTHROPIC_API} {r} -T claude claude -p say ok")
        );
        assert_eq!(run("docker exec c1 claude", &env(false, None)), "docker exec c1 claude -p say ok");
    }

    #[test]
    fn inspect_command_and_parsing() {
        let inv = inspect(Path::new("docker"), "c1");
        assert_eq!(args(&inv)[..4], ["inspect", "--type", "container", "--format"]);
        assert_eq!(args(&inv)[5], "c1");
        let out = "true\n[\"PATH=/usr/bin\",\"ANTHROPIC_BASE_URL=http://litellm:4000\",\"ANTHROPIC_API_KEY=x\"]\n";
        let info = parse_inspect(out).unwrap();
        assert!(info.running);
        assert_eq!(info.base_url.as_deref(), Some("http://litellm:4000"));
        assert_eq!(info.token_vars, ["ANTHROPIC_API_KEY"]);
        let info = parse_inspect("false\nnull\n").unwrap();
        assert_eq!(info, ContainerInfo { running: false, base_url: None, token_vars: vec![] });
        let info = parse_inspect("true\n[\"ANTHROPIC_BASE_URL=\",\"ANTHROPIC_BASE_URLX=y\"]").unwrap();
        assert_eq!(info.base_url, None);
        assert!(parse_inspect("").is_err());
        assert!(parse_inspect("true\nnot json").is_err());
    }

    #[test]
    fn base_url_is_elsewhere_unless_it_is_the_anthropic_api() {
        for same in ["https://api.anthropic.com", "https://API.anthropic.com/", "https://api.anthropic.com:443/v1", ""]
        {
            assert!(!base_url_elsewhere(same), "{same}");
        }
        for other in
            ["http://litellm:4000", "https://proxy.example/api.anthropic.com", "https://api.anthropic.com.evil"]
        {
            assert!(base_url_elsewhere(other), "{other}");
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(split_words("  a  b\tc ").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_words(r#"say "it's" 'a "b"' c\ d "\$x\n""#).unwrap(),
            ["say", "it's", r#"a "b""#, "c d", r"$x\n"]
        );
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("").unwrap().is_empty());
        assert_eq!(split_words("'a").unwrap_err(), "unterminated single quote");
        assert_eq!(split_words("\"a").unwrap_err(), "unterminated double quote");
        assert_eq!(split_words("a\\").unwrap_err(), "backslash at the end");
    }

    #[test]
    fn token_variables_and_token_shaped_values_are_removed() {
        let fake = format!("Bearer sk-ant-oat01-{}", "x".repeat(30));
        let env = [("PATH", "/bin"), ("ANTHROPIC_API_KEY", ""), ("MY_SECRET", fake.as_str()), ("HOME", "/root")]
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(Invocation::env_to_remove(env.into_iter()), ["ANTHROPIC_API_KEY", "MY_SECRET"]);
    }

    #[test]
    fn finding_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let missing = home.join("nope");
        assert!(find_cli(Some(&missing), home).unwrap_err().0.contains("No such file"));
        let plain = home.join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        assert!(find_cli(Some(&plain), home).unwrap_err().0.ends_with("not executable"));
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_cli(Some(&plain), home).unwrap(), plain);
        assert!(find_cli(Some(home), home).unwrap_err().0.ends_with("is a directory"));
        assert!(find_cli(Some(Path::new("no-such-program-xyz")), home).unwrap_err().0.contains("not found in PATH"));
    }
}
