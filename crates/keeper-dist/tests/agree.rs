//! The generated man pages and completions agree with what the built tools print for `--help`
//! (every long flag, both ways), carry its exit-code tables and examples, render without a groff
//! warning, and `--version` names the commit the tools were built from.

use keeper_dist::{SHELLS, TOOLS, completion, man_page};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The four tools' real binaries (this test binary's profile).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| keeper_install_tests::build_workspace_packages(&TOOLS))
}

fn run(tool: &str, arg: &str) -> String {
    let out = Command::new(bin_dir().join(tool)).arg(arg).env_clear().output().expect("the tool runs");
    assert!(out.status.success(), "{tool} {arg}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn command(tool: &str) -> clap::Command {
    keeper_dist::commands().into_iter().find(|c| c.get_name() == tool).expect("a tool's command")
}

/// The long flags `--help` lists: the `--flag` words at the start of its option lines.
fn help_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        // Option lines are indented 2 ("  -V, --version") or 6 ("      --to <TARGET>"); their
        // descriptions 10, and may start with a flag too.
        let indent = line.len() - line.trim_start().len();
        let line = line.trim_start();
        if indent > 6 || !line.starts_with('-') {
            continue;
        }
        // "-V, --version", "--to <TARGET>", "--within <DURATION>  Exit 1 when…": the option
        // part ends at the first run of two spaces.
        let head = line.split("  ").next().unwrap_or("");
        for word in head.split([' ', ',']) {
            if let Some(name) = word.strip_prefix("--") {
                let name = name.split(['=', '[', '<']).next().unwrap_or("");
                if !name.is_empty() {
                    flags.insert(name.to_owned());
                }
            }
        }
    }
    flags
}

/// Roff source as text: font escapes dropped, `\-` and friends made plain again.
fn unroff(roff: &str) -> String {
    roff.replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "")
        .replace("\\fP", "")
        .replace("\\(aq", "'")
        .replace("\\*(Aq", "'")
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\e", "\\")
        .replace("\\\\", "\\")
}

/// Every `--name` in `text` (a name: lowercase letters, digits, inner hyphens).
fn dashed_words(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at + 2;
        let before_ok = i + at == 0 || !(bytes[i + at - 1].is_ascii_alphanumeric() || bytes[i + at - 1] == b'-');
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(text.len() - start);
        let name = text[start..start + len].trim_end_matches('-');
        if before_ok && name.starts_with(|c: char| c.is_ascii_lowercase()) {
            out.insert(name.to_owned());
        }
        i = start + len.max(1).min(text.len() - start);
        if i >= text.len() {
            break;
        }
    }
    out
}

/// The flag a zsh `_arguments` spec line offers, if it offers a long one.
fn zsh_spec_flag(line: &str) -> Option<String> {
    let spec = line.trim_start().strip_prefix(['\'', '"'])?;
    let spec = if spec.starts_with('(') { &spec[spec.find(')')? + 1..] } else { spec };
    let name = spec.trim_start_matches('*').strip_prefix("--")?;
    let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(name.len());
    (end > 0).then(|| name[..end].to_owned())
}

/// The man page's option entries: the `--flag`s on the line after each `.TP` before EXIT STATUS.
fn man_option_flags(roff: &str) -> BTreeSet<String> {
    let options = roff.split(".SH \"EXIT STATUS\"").next().unwrap().split(".SH EXIT STATUS").next().unwrap();
    let lines: Vec<&str> = options.lines().collect();
    let mut flags = BTreeSet::new();
    for pair in lines.windows(2) {
        if pair[0] == ".TP" {
            flags.extend(dashed_words(&unroff(pair[1]).split('<').next().unwrap_or("").replace(", ", " ")));
        }
    }
    flags
}

/// The section of a man page's roff source that starts at `.SH NAME` (quoted or not).
fn man_section<'a>(roff: &'a str, name: &str) -> &'a str {
    let heads = [format!(".SH \"{name}\"\n"), format!(".SH {name}\n")];
    let start = heads.iter().find_map(|h| roff.find(h.as_str()).map(|at| at + h.len()));
    let start = start.unwrap_or_else(|| panic!("no {name} section in:\n{roff}"));
    let rest = &roff[start..];
    &rest[..rest.find("\n.SH ").map_or(rest.len(), |at| at + 1)]
}

#[test]
fn every_long_flag_of_help_is_in_the_man_page_and_in_every_completion_and_nothing_else() {
    for tool in TOOLS {
        let help = run(tool, "--help");
        // The options end where the after_help text (exit codes, notes, examples) begins.
        let after = command(tool).get_after_help().expect("after_help").to_string();
        let first = after.lines().next().unwrap();
        let options = &help[..help.find(first).expect("--help ends with after_help")];
        let flags = help_flags(options);
        assert!(
            flags.len() >= 8 && flags.contains("help") && flags.contains("version") && flags.contains("config"),
            "{tool}: {flags:?}"
        );

        let man = String::from_utf8(man_page(&command(tool))).unwrap();
        assert_eq!(man_option_flags(&man), flags, "{tool}: the man page's options differ from --help");

        for shell in SHELLS {
            let script = String::from_utf8(completion(shell, &command(tool))).unwrap();
            let offered: BTreeSet<String> = match shell {
                // fish: `complete -c TOOL -l NAME`
                clap_complete::Shell::Fish => script
                    .split(" -l ")
                    .skip(1)
                    .map(|rest| rest.split(|c: char| c.is_whitespace()).next().unwrap().to_owned())
                    .collect(),
                // zsh: one `'(EXCLUDED)*--NAME=[help]:VALUE:…'` spec per line (the help text
                // may name other flags, so only the spec's own flag counts).
                clap_complete::Shell::Zsh => script.lines().filter_map(zsh_spec_flag).collect(),
                _ => dashed_words(&script),
            };
            assert_eq!(offered, flags, "{tool}: the {shell} completion's flags differ from --help");
        }
    }
}

#[test]
fn the_exit_status_tables_and_the_examples_of_help_are_in_the_man_page() {
    for tool in TOOLS {
        let help = run(tool, "--help");
        let man = String::from_utf8(man_page(&command(tool))).unwrap();
        let exit = unroff(man_section(&man, "EXIT STATUS"));
        // Every code row of every table in --help ("  N   meaning") is a .TP entry N.
        let mut codes = 0;
        for line in help.lines() {
            let Some(rest) = line.strip_prefix("  ") else { continue };
            let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if code.is_empty() || !rest[code.len()..].starts_with("  ") {
                continue;
            }
            let meaning = rest[code.len()..].trim();
            let entry = format!(".TP\n{code}\n{meaning}");
            assert!(exit.contains(&entry), "{tool}: exit code {code} ({meaning}) missing from EXIT STATUS:\n{exit}");
            codes += 1;
        }
        assert!(codes >= 4, "{tool}: only {codes} exit codes in --help");
        assert!(exit.contains(".TP\n64\nusage error"), "{tool}:\n{exit}");

        let examples = unroff(man_section(&man, "EXAMPLES"));
        let listed: Vec<&str> = help
            .split("Examples:\n")
            .nth(1)
            .expect("an Examples block")
            .lines()
            .take_while(|l| !l.is_empty())
            .collect();
        assert!(!listed.is_empty(), "{tool}");
        for line in listed {
            let line = line.strip_prefix("  ").unwrap_or(line).trim_end();
            assert!(examples.lines().any(|l| l == line), "{tool}: example line {line:?} missing:\n{examples}");
        }
    }
}

#[test]
fn every_man_page_renders_without_a_groff_warning() {
    let have_man = Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success());
    if !have_man {
        assert!(std::env::var_os("KEEPER_REQUIRE_PACKAGE").is_none(), "man (man-db) is required");
        eprintln!("SKIPPED: man (man-db) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = keeper_dist::generate(dir.path()).unwrap();
    assert_eq!(files.len(), TOOLS.len() * (1 + SHELLS.len()), "{files:?}");
    for tool in TOOLS {
        let page = dir.path().join(format!("man/{tool}.1"));
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&page)
            .env("MANWIDTH", "80")
            .env("MAN_KEEP_FORMATTING", "0")
            .env("LC_ALL", "C.UTF-8")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let (text, warnings) = (plain(&String::from_utf8_lossy(&out.stdout)), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{tool}: man failed: {warnings}");
        assert!(warnings.trim().is_empty(), "{tool}: man --warnings:\n{warnings}");
        for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
            assert!(text.lines().any(|l| l == heading), "{tool}: no {heading} in\n{text}");
        }
    }
}

/// Terminal text without overstrike (bold `X\bX`, underline `_\bX`).
fn plain(text: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

#[test]
fn version_names_the_version_and_the_commit_built_from() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap();
    let commit = Command::new("git")
        .args(["-C"])
        .arg(repo)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_owned(), |o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = std::env::var("KEEPER_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).unwrap_or(commit);
    for tool in TOOLS {
        let version = run(tool, "--version");
        assert_eq!(version.trim_end(), format!("{tool} {} (commit {commit})", env!("CARGO_PKG_VERSION")), "{tool}");
    }
    assert_eq!(keeper_core_long_version(), format!("{} (commit {commit})", env!("CARGO_PKG_VERSION")));
}

/// The version the commands carry (what the man page's title and VERSION section show).
fn keeper_core_long_version() -> String {
    command("cred-sync").get_version().unwrap().to_owned()
}
