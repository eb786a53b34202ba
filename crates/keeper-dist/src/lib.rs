//! What the Debian package ships besides the binaries, generated from the tools' own clap
//! definitions (the ones `--help` prints), so it cannot drift from `--help`: one man page per tool
//! (`clap_mangen`, plus EXIT STATUS, NOTES and EXAMPLES sections made from the tool's
//! `after_help` text) and bash, zsh and fish completions (`clap_complete`).
//!
//! `scripts/package.sh` runs the `keeper-dist` binary (`keeper-dist OUT_DIR`) before `cargo deb`;
//! this package also carries the `.deb`'s cargo-deb configuration (`Cargo.toml`).

use clap_complete::Shell;
use roff::{Roff, bold, roman};
use std::io;
use std::path::{Path, PathBuf};

/// The four tools, in the order the package lists them.
pub const TOOLS: [&str; 4] = ["token-expiry", "cred-sync", "cli-poke", "compose-recreate"];

/// The shells completions are generated for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Each tool's clap command, as its binary builds it.
#[must_use]
pub fn commands() -> Vec<clap::Command> {
    vec![token_expiry::command(), cred_sync::command(), cli_poke::command(), compose_recreate::command()]
}

/// Where a generated file goes, relative to the output directory (and, under `usr/share/`, in the
/// package): `man/NAME.1`, `bash/NAME`, `zsh/_NAME`, `fish/NAME.fish`.
#[must_use]
pub fn completion_file(shell: Shell, name: &str) -> PathBuf {
    match shell {
        Shell::Bash => PathBuf::from(format!("bash/{name}")),
        Shell::Zsh => PathBuf::from(format!("zsh/_{name}")),
        Shell::Fish => PathBuf::from(format!("fish/{name}.fish")),
        other => PathBuf::from(format!("{other}/{name}")),
    }
}

/// The completion script of `cmd` for `shell`.
#[must_use]
pub fn completion(shell: Shell, cmd: &clap::Command) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The man page (roff source, section 1) of `cmd`: `clap_mangen`'s NAME, SYNOPSIS, DESCRIPTION and
/// option sections, then the tool's `after_help` as EXIT STATUS, NOTES and EXAMPLES, then SEE
/// ALSO and VERSION.
///
/// # Panics
/// Never in practice: rendering writes into memory.
#[must_use]
pub fn man_page(cmd: &clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let version = cmd.get_version().unwrap_or_default().to_owned();
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("openclaw-oauth-keeper {version}"))
        .manual("openclaw-oauth-keeper");
    let mut out = Vec::new();
    let w: &mut dyn io::Write = &mut out;
    man.render_title(w).expect("in memory");
    man.render_name_section(w).expect("in memory");
    man.render_synopsis_section(w).expect("in memory");
    man.render_description_section(w).expect("in memory");
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w).expect("in memory");
    }
    let after = cmd.get_after_long_help().or_else(|| cmd.get_after_help()).map(ToString::to_string).unwrap_or_default();
    let mut roff = Roff::new();
    render_after_help(&mut roff, &parse_blocks(&after));
    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<String> = TOOLS.iter().filter(|t| **t != name).map(|t| format!("{t}(1)")).collect();
    roff.text([roman(format!("{}, systemctl(1), and /usr/share/doc/openclaw-oauth-keeper/.", others.join(", ")))]);
    roff.control("SH", ["VERSION"]);
    roff.text([roman(version)]);
    out.extend_from_slice(roff.to_roff().as_bytes());
    out
}

/// Writes every man page and completion under `out`; returns the files written.
///
/// # Errors
/// When a directory or file cannot be written.
pub fn generate(out: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut put = |rel: PathBuf, bytes: &[u8]| -> io::Result<()> {
        let path = out.join(rel);
        std::fs::create_dir_all(path.parent().expect("a file"))?;
        std::fs::write(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    for cmd in commands() {
        let name = cmd.get_name().to_owned();
        put(PathBuf::from(format!("man/{name}.1")), &man_page(&cmd))?;
        for shell in SHELLS {
            put(completion_file(shell, &name), &completion(shell, &cmd))?;
        }
    }
    Ok(written)
}

/// One part of the `after_help` text: the lines between blank lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// An unindented first line ending in `:` (without the colon), e.g. `Exit status`.
    pub header: Option<String>,
    /// The rest, in order.
    pub parts: Vec<Part>,
}

/// What a block holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A paragraph of running text (its lines joined).
    Text(String),
    /// An indented paragraph that is not a table row.
    Indented(String),
    /// A table row: `  TERM   text` (continuation lines indented deeper are joined to the text).
    Item(String, String),
    /// A line kept as written (the lines of an `Examples:` block), without its first indent.
    Verbatim(String),
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `  TERM   text`: two spaces, a term without a run of two spaces, two or more spaces, text.
fn table_row(line: &str) -> Option<(String, String)> {
    if indent(line) != 2 {
        return None;
    }
    let rest = &line[2..];
    let gap = rest.find("  ")?;
    let (term, text) = (rest[..gap].trim(), rest[gap..].trim());
    (!term.is_empty() && !text.is_empty()).then(|| (term.to_owned(), text.to_owned()))
}

/// Splits `after_help` text into [`Block`]s.
#[must_use]
pub fn parse_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    for chunk in text.split("\n\n") {
        let mut lines = chunk.lines().filter(|l| !l.trim().is_empty()).peekable();
        let Some(first) = lines.peek().copied() else { continue };
        let header = (indent(first) == 0 && first.trim_end().ends_with(':')).then(|| {
            lines.next();
            first.trim_end().trim_end_matches(':').to_owned()
        });
        let verbatim = header.as_deref() == Some("Examples");
        let mut parts: Vec<Part> = Vec::new();
        for line in lines {
            if verbatim {
                parts.push(Part::Verbatim(line.strip_prefix("  ").unwrap_or(line).trim_end().to_owned()));
                continue;
            }
            let words = line.trim();
            if let Some((term, text)) = table_row(line) {
                parts.push(Part::Item(term, text));
                continue;
            }
            match (indent(line), parts.last_mut()) {
                (i, Some(Part::Item(_, text))) if i > 2 => push_words(text, words),
                (0, Some(Part::Text(text))) | (1.., Some(Part::Indented(text))) => push_words(text, words),
                (0, _) => parts.push(Part::Text(words.to_owned())),
                _ => parts.push(Part::Indented(words.to_owned())),
            }
        }
        blocks.push(Block { header, parts });
    }
    blocks
}

fn push_words(text: &mut String, words: &str) {
    text.push(' ');
    text.push_str(words);
}

/// Which man section a block belongs to.
fn section_of(block: &Block) -> &'static str {
    let header = block.header.as_deref().unwrap_or("");
    let codes = block.parts.iter().filter(|p| matches!(p, Part::Item(..))).count() > 0
        && block.parts.iter().all(|p| match p {
            Part::Item(term, _) => term.chars().all(|c| c.is_ascii_digit()),
            _ => true,
        });
    if header.starts_with("Exit status") || (block.header.is_some() && codes) {
        "EXIT STATUS"
    } else if header == "Examples" {
        "EXAMPLES"
    } else {
        "NOTES"
    }
}

fn render_after_help(roff: &mut Roff, blocks: &[Block]) {
    for section in ["EXIT STATUS", "NOTES", "EXAMPLES"] {
        let mine: Vec<&Block> = blocks.iter().filter(|b| section_of(b) == section).collect();
        if mine.is_empty() {
            continue;
        }
        roff.control("SH", [section]);
        for block in mine {
            if let Some(header) = &block.header {
                if header != "Exit status" && header != "Examples" {
                    roff.control("PP", []);
                    roff.text([bold(format!("{header}:"))]);
                }
            }
            let mut in_verbatim = false;
            for part in &block.parts {
                if in_verbatim && !matches!(part, Part::Verbatim(_)) {
                    roff.control("fi", []).control("RE", []);
                    in_verbatim = false;
                }
                match part {
                    Part::Text(text) => {
                        roff.control("PP", []).text([roman(text.as_str())]);
                    }
                    Part::Indented(text) => {
                        roff.control("IP", ["", "4"]).text([roman(text.as_str())]);
                    }
                    Part::Item(term, text) => {
                        roff.control("TP", []).text([bold(term.as_str())]).text([roman(text.as_str())]);
                    }
                    Part::Verbatim(line) => {
                        if !in_verbatim {
                            roff.control("PP", []).control("RS", ["4"]).control("nf", []);
                            in_verbatim = true;
                        }
                        roff.text([roman(line.as_str())]);
                    }
                }
            }
            if in_verbatim {
                roff.control("fi", []).control("RE", []);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_continuations_and_a_trailing_paragraph() {
        let text = "Exit status (the worst wins):\n  0   fine\n  6   a target failed: unwritable,\n      or timed out\n  64  usage error\n--check exits 7 on drift,\nelse 0.\n\nExamples:\n  tool \\\n      --flag x\n  tool --other";
        let blocks = parse_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].header.as_deref(), Some("Exit status (the worst wins)"));
        assert_eq!(
            blocks[0].parts,
            vec![
                Part::Item("0".into(), "fine".into()),
                Part::Item("6".into(), "a target failed: unwritable, or timed out".into()),
                Part::Item("64".into(), "usage error".into()),
                Part::Text("--check exits 7 on drift, else 0.".into()),
            ]
        );
        assert_eq!(section_of(&blocks[0]), "EXIT STATUS");
        assert_eq!(
            blocks[1].parts,
            vec![
                Part::Verbatim("tool \\".into()),
                Part::Verbatim("    --flag x".into()),
                Part::Verbatim("tool --other".into())
            ]
        );
        assert_eq!(section_of(&blocks[1]), "EXAMPLES");
    }

    #[test]
    fn a_second_code_table_is_exit_status_and_prose_is_notes() {
        let blocks = parse_blocks(
            "With --notify-failed UNIT (no poke):\n  0   logged\n  6   post failed\n\nWhy never restart: it keeps\nthe old environment.\n  {\"target\": \"x\"}\n(unknown fields)",
        );
        assert_eq!(section_of(&blocks[0]), "EXIT STATUS");
        assert_eq!(section_of(&blocks[1]), "NOTES");
        assert_eq!(
            blocks[1].parts,
            vec![
                Part::Text("Why never restart: it keeps the old environment.".into()),
                Part::Indented("{\"target\": \"x\"}".into()),
                Part::Text("(unknown fields)".into()),
            ]
        );
    }
}
