//! The shared config file, in systemd `EnvironmentFile=` syntax (`KEY=value` lines).
//!
//! Every option of every tool has an environment variable (named in its `--help`); the config
//! file supplies values for those variables. Precedence, highest first: command-line flag,
//! process environment (what systemd's `EnvironmentFile=` sets), config file, built-in default.
//! Keys a tool does not know are ignored, so one file serves all tools.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The variable naming the config file (also `--config FILE`).
pub const CONFIG_ENV: &str = "KEEPER_CONFIG";

/// The `--config` option every tool flattens into its arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Read option defaults from this KEY=value file (systemd EnvironmentFile syntax; keys are
    /// the options' environment variables). Default: /etc/openclaw-oauth-keeper/keeper.env for
    /// root, else ~/.config/openclaw-oauth-keeper/keeper.env, when it exists. Flags and
    /// environment variables override it.
    #[arg(long, env = CONFIG_ENV, value_name = "FILE", global = true, help_heading = "Configuration")]
    pub config: Option<PathBuf>,
}

/// A config file that could not be used.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config file {}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Loads `KEY=value` pairs: from `explicit` (which must exist), else from the default file when it
/// exists, else none.
pub fn load(explicit: Option<&Path>) -> Result<Vec<(String, String)>, ConfigError> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => (crate::paths::default_config_file(), false),
    };
    // `--config /dev/null`, the usual way to say "no config file", is a device the bounded
    // reader refuses.
    if path == Path::new("/dev/null") {
        return Ok(Vec::new());
    }
    // The one bounded reader: a FIFO named by --config is refused, never waited on.
    let text = match crate::input::read_bounded(&crate::input::Source::File(path.clone())) {
        Ok(bytes) => bytes,
        Err(crate::input::ReadError::NotFound) if !required => return Ok(Vec::new()),
        Err(e) => return Err(ConfigError { path, problem: e.to_string() }),
    };
    let text =
        String::from_utf8(text).map_err(|_| ConfigError { path: path.clone(), problem: "not UTF-8 text".into() })?;
    let env = credmap::dotenv::parse(&text).map_err(|e| ConfigError { path: path.clone(), problem: e.to_string() })?;
    Ok(env.entries())
}

/// Finds `--config FILE` / `--config=FILE` on a command line (before `--`), else `$KEEPER_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(s) = arg.to_str() else { continue };
        if s == "--" {
            break;
        }
        if s == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = s.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Parses a command line with the config file's values as defaults for every argument that has
/// an environment variable not set in the process environment.
///
/// Returns a clap error for bad flags, or a [`ConfigError`] (as a clap `Io` error carrying the
/// message) when the config file is unusable.
pub fn parse_args<P: clap::Parser>(args: impl IntoIterator<Item = impl Into<OsString>>) -> Result<P, clap::Error> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut cmd = P::command();
    let entries = match load(config_path(&args).as_deref()) {
        Ok(entries) => entries,
        Err(e) => return Err(cmd.error(clap::error::ErrorKind::Io, e)),
    };
    let overrides: Vec<(clap::Id, String)> = cmd
        .get_arguments()
        .filter_map(|arg| {
            let env = arg.get_env()?.to_str()?;
            if std::env::var_os(env).is_some() {
                return None; // the process environment wins over the file
            }
            let value = entries.iter().rev().find(|(k, _)| k == env)?.1.clone();
            let takes_value = arg.get_action().takes_values();
            Some((arg.get_id().clone(), if takes_value { value } else { boolish(&value).to_owned() }))
        })
        .collect();
    for (id, value) in overrides {
        cmd = cmd.mut_arg(id, |a| a.default_value(value));
    }
    let matches = cmd.try_get_matches_from(args)?;
    <P as clap::FromArgMatches>::from_arg_matches(&matches)
}

/// systemd-style booleans for flags set from the file.
fn boolish(v: &str) -> &'static str {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "on" => "true",
        _ => "false",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// Variable names unique to this test so the process environment cannot interfere.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, env = "KEEPER_TEST_CFG_WITHIN", default_value = "5m")]
        within: String,
        #[arg(long, env = "KEEPER_TEST_CFG_FORCE")]
        force: bool,
        #[arg(long, env = "KEEPER_TEST_CFG_TO", value_delimiter = ' ')]
        to: Vec<String>,
    }

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keeper.env");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn config_file_supplies_defaults_and_flags_override_them() {
        let (_d, path) = write_config(
            "# written by setup.sh\nKEEPER_TEST_CFG_WITHIN=90m\nKEEPER_TEST_CFG_FORCE=yes\nKEEPER_TEST_CFG_TO=\"a:/x b:/y\"\nOTHER_TOOL_KEY=ignored\n",
        );
        let p = path.to_str().unwrap();
        let cli: Cli = parse_args(["t", "--config", p]).unwrap();
        assert_eq!(cli.within, "90m");
        assert!(cli.force);
        assert_eq!(cli.to, ["a:/x", "b:/y"]);
        let cli: Cli = parse_args(["t", &format!("--config={p}"), "--within", "1h"]).unwrap();
        assert_eq!(cli.within, "1h");
    }

    #[test]
    fn falsy_flag_in_config_is_false_and_builtin_default_applies_without_config() {
        let (_d, path) = write_config("KEEPER_TEST_CFG_FORCE=no\n");
        let cli: Cli = parse_args(["t", "--config", path.to_str().unwrap()]).unwrap();
        assert!(!cli.force);
        assert_eq!(cli.within, "5m");
    }

    #[test]
    fn regression_a_fifo_as_config_file_blocked_every_tool() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("keeper.env");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = load(Some(&fifo)).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        assert!(err.to_string().contains("keeper.env"), "{err}");
        assert!(load(Some(Path::new("/dev/null"))).unwrap().is_empty(), "--config /dev/null means no config");
    }

    #[test]
    fn explicit_config_must_exist_and_parse() {
        let err = parse_args::<Cli>(["t", "--config", "/nonexistent/keeper.env"]).unwrap_err();
        assert!(err.to_string().contains("config file /nonexistent/keeper.env"), "{err}");
        let (_d, path) = write_config("this line is not KEY=value\n");
        let err = parse_args::<Cli>(["t", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
