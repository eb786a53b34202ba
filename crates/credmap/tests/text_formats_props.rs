//! Property tests for the line-preserving text formats: `dotenv`, `dropin` and `bare`.
//!
//! Files are generated as random mixes of the shapes people write (comments, blanks, `export`,
//! quoted and unquoted values, systemd sections, quoted multi-assignment `Environment=` lines,
//! continuations, resets), with LF or CRLF line endings and with or without a final newline.

use credmap::{bare, dotenv, dropin};
use proptest::prelude::*;

/// Keys the generated files use (few, so that duplicates are common) and one they never use.
const KEYS: [&str; 5] = ["A", "B", "TOKEN", "ANTHROPIC_OAUTH_TOKEN", "x_1"];
const ALL_KEYS: [&str; 6] = ["A", "B", "TOKEN", "ANTHROPIC_OAUTH_TOKEN", "x_1", "NEW_KEY"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned)
}

fn any_key() -> impl Strategy<Value = String> {
    prop::sample::select(ALL_KEYS.to_vec()).prop_map(str::to_owned)
}

/// Any value `set` accepts: no line break, no NUL; special characters are frequent.
fn settable_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,20}".prop_map(|s| format!("sk-ant-oat01-{s}")),
        "[a-z0-9 \t#'\"$\\\\`%=;:\\[\\]]{0,16}",
        "[^\n\r\0]{0,16}",
    ]
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n")]
}

/// Joins physical lines; `final_newline` adds a terminator after the last one.
fn join(lines: &[String], eol: &str, final_newline: bool) -> String {
    let mut text = lines.join(eol);
    if final_newline && !lines.is_empty() {
        text.push_str(eol);
    }
    text
}

/// The comment lines of a text (without their terminators).
fn comment_lines(text: &str, markers: &[char]) -> Vec<String> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| l.trim_start().starts_with(markers))
        .map(str::to_owned)
        .collect()
}

fn lines_of(text: &str) -> Vec<&str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).collect()
}

/// Line endings and the final newline survive an edit.
fn assert_layout_kept(before: &str, after: &str, eol: &str) {
    if before.is_empty() {
        assert!(after.is_empty() || after.ends_with('\n'), "{after:?}");
    } else if before.ends_with('\n') {
        assert!(after.is_empty() || after.ends_with('\n'), "{before:?} -> {after:?}");
    } else if after.ends_with('\n') {
        // Without a final newline, the text can only end in `\n` when its last line is an empty
        // line that was in the input.
        assert!(lines_of(before).contains(&""), "{before:?} -> {after:?}");
    }
    if eol == "\r\n" && before.contains("\r\n") {
        assert_eq!(after.matches('\n').count(), after.matches("\r\n").count(), "{after:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// dotenv

fn dotenv_double_quote(v: &str) -> String {
    let mut out = String::from("\"");
    for c in v.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn dotenv_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_./:@+#-]{0,12}",
        "[^'\n\r\0]{0,12}".prop_map(|v| format!("'{v}'")),
        "[^\n\r\0]{0,12}".prop_map(|v| dotenv_double_quote(&v)),
    ]
}

fn dotenv_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ \t]{0,2}#[^\n\r\0]{0,20}",
        "[ \t]{0,3}",
        (
            "[ \t]{0,2}",
            any::<bool>(),
            key(),
            prop_oneof![Just("="), Just(" = "), Just("\t=")],
            dotenv_value(),
            prop_oneof![Just(String::new()), "[ \t]{1,3}#[^\n\r\0]{0,10}"],
        )
            .prop_map(|(indent, export, key, eq, value, comment)| {
                let export = if export { "export " } else { "" };
                format!("{indent}{export}{key}{eq}{value}{comment}")
            }),
    ]
}

fn dotenv_file() -> impl Strategy<Value = (String, &'static str)> {
    (prop::collection::vec(dotenv_line(), 0..12), eol(), any::<bool>())
        .prop_map(|(lines, eol, final_newline)| (join(&lines, eol, final_newline), eol))
}

proptest! {
    #[test]
    fn dotenv_round_trips((text, _) in dotenv_file()) {
        let env = dotenv::parse(&text).unwrap();
        prop_assert_eq!(env.to_string(), text.clone());
        prop_assert_eq!(dotenv::parse(&env.to_string()).unwrap(), env);
    }

    #[test]
    fn dotenv_set_changes_only_the_key((text, eol) in dotenv_file(), k in any_key(), v in settable_value()) {
        let before = dotenv::parse(&text).unwrap();
        let mut env = before.clone();
        let changed = env.set(&k, &v).unwrap();
        let out = env.to_string();
        prop_assert_eq!(changed, out != text);
        prop_assert_eq!(env.get(&k), Some(v.clone()));
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(env.get(other), before.get(other), "{}", other);
        }
        let out_lines = lines_of(&out);
        for comment in comment_lines(&text, &['#']) {
            prop_assert!(out_lines.contains(&comment.as_str()), "lost {:?}", comment);
        }
        assert_layout_kept(&text, &out, eol);
        // The output reads back the same, and setting again changes nothing.
        let reread = dotenv::parse(&out).unwrap();
        prop_assert_eq!(reread.get(&k), Some(v.clone()));
        prop_assert!(!env.set(&k, &v).unwrap());
        prop_assert_eq!(env.to_string(), out);
    }

    #[test]
    fn dotenv_remove_changes_only_the_key((text, eol) in dotenv_file(), k in key()) {
        let before = dotenv::parse(&text).unwrap();
        let mut env = before.clone();
        let changed = env.remove(&k);
        let out = env.to_string();
        prop_assert_eq!(changed, out != text);
        prop_assert_eq!(env.get(&k), None);
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(env.get(other), before.get(other));
        }
        let out_lines = lines_of(&out);
        for comment in comment_lines(&text, &['#']) {
            prop_assert!(out_lines.contains(&comment.as_str()));
        }
        assert_layout_kept(&text, &out, eol);
        prop_assert_eq!(dotenv::parse(&out).unwrap().entries(), env.entries());
    }

    #[test]
    fn dotenv_parse_never_panics(text in "[^\0]{0,200}") {
        if let Ok(env) = dotenv::parse(&text) {
            prop_assert_eq!(env.to_string(), text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// dropin

/// An `Environment=` word assigning `v` to `k`, in one of the forms systemd reads.
fn env_word() -> impl Strategy<Value = String> {
    prop_oneof![
        (key(), "[A-Za-z0-9_./:@+-]{0,10}", any::<bool>()).prop_map(|(k, v, pct)| if pct {
            format!("{k}={v}%%")
        } else {
            format!("{k}={v}")
        }),
        (key(), "[^\n\r\0]{0,12}").prop_map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('"', "\\\"").replace('%', "%%");
            format!("\"{k}={v}\"")
        }),
        (key(), "[^\n\r\0]{0,12}").prop_map(|(k, v)| {
            let v = v.replace('\\', "\\\\").replace('\'', "\\'").replace('%', "%%");
            format!("'{k}={v}'")
        }),
        (key(), "[a-z]{1,6}").prop_map(|(k, v)| format!("{k}=\"{v} {v}\"")),
        Just("junk".to_owned()),
    ]
}

/// One logical line of a drop-in, as its physical lines.
fn dropin_line(service: bool) -> BoxedStrategy<Vec<String>> {
    let comment = "[ \t]{0,2}[#;][^\n\r\0]{0,20}".prop_map(|c| vec![c]);
    let blank = "[ \t]{0,3}".prop_map(|b| vec![b]);
    let directive = prop_oneof![
        "[A-Za-z0-9 ./%-]{0,20}".prop_map(|v| format!("Description={v}")),
        Just("ExecStart=".to_owned()),
        Just("ExecStart=%h/.local/bin/openclaw gateway --port 18789".to_owned()),
        Just("Restart=on-failure".to_owned()),
    ]
    .prop_map(|d| vec![d]);
    let env = (
        prop::collection::vec((env_word(), 0..4usize), 0..4),
        prop_oneof![Just("Environment="), Just("Environment = ")],
    )
        .prop_map(|(words, head)| {
            let mut lines = vec![head.to_owned()];
            for (i, (word, sep)) in words.into_iter().enumerate() {
                let last = lines.last_mut().expect("not empty");
                if i > 0 {
                    match sep {
                        0 | 1 => last.push(' '),
                        2 => last.push_str("\t "),
                        _ => {
                            last.push_str(" \\");
                            lines.push("  ".to_owned());
                        }
                    }
                }
                lines.last_mut().expect("not empty").push_str(&word);
            }
            lines
        });
    if service {
        prop_oneof![2 => comment, 2 => blank, 2 => directive, 5 => env].boxed()
    } else {
        prop_oneof![comment, blank, directive, env].boxed()
    }
}

fn dropin_section() -> impl Strategy<Value = Vec<String>> {
    prop::sample::select(vec!["Unit", "Service", "Service", "Install"]).prop_flat_map(|name| {
        prop::collection::vec(dropin_line(name == "Service"), 0..6).prop_map(move |body| {
            let mut lines = vec![format!("[{name}]")];
            lines.extend(body.into_iter().flatten());
            lines
        })
    })
}

fn dropin_file() -> impl Strategy<Value = (String, &'static str)> {
    (
        prop::collection::vec("[ \t]{0,2}#[^\n\r\0]{0,20}|", 0..3),
        prop::collection::vec(dropin_section(), 0..4),
        eol(),
        any::<bool>(),
    )
        .prop_map(|(preamble, sections, eol, final_newline)| {
            let mut lines = preamble;
            lines.extend(sections.into_iter().flatten());
            (join(&lines, eol, final_newline), eol)
        })
}

proptest! {
    #[test]
    fn dropin_round_trips((text, _) in dropin_file()) {
        let unit = dropin::parse(&text).unwrap();
        prop_assert_eq!(unit.to_string(), text.clone());
        prop_assert_eq!(dropin::parse(&unit.to_string()).unwrap(), unit);
    }

    #[test]
    fn dropin_set_changes_only_the_key((text, eol) in dropin_file(), k in any_key(), v in settable_value()) {
        let before = dropin::parse(&text).unwrap();
        let mut unit = before.clone();
        let changed = unit.set_env(&k, &v).unwrap();
        let out = unit.to_string();
        prop_assert_eq!(changed, out != text);
        prop_assert_eq!(unit.get_env(&k), Some(v.clone()));
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(unit.get_env(other), before.get_env(other), "{}", other);
        }
        let out_lines = lines_of(&out);
        for comment in comment_lines(&text, &['#', ';']) {
            prop_assert!(out_lines.contains(&comment.as_str()), "lost {:?}", comment);
        }
        assert_layout_kept(&text, &out, eol);
        let reread = dropin::parse(&out).unwrap();
        prop_assert_eq!(reread.get_env(&k), Some(v.clone()));
        prop_assert!(!unit.set_env(&k, &v).unwrap());
        prop_assert_eq!(unit.to_string(), out);
    }

    #[test]
    fn dropin_remove_changes_only_the_key((text, eol) in dropin_file(), k in key()) {
        let before = dropin::parse(&text).unwrap();
        let mut unit = before.clone();
        let changed = unit.remove_env(&k);
        let out = unit.to_string();
        prop_assert_eq!(changed, out != text);
        prop_assert_eq!(unit.get_env(&k), None);
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(unit.get_env(other), before.get_env(other));
        }
        let out_lines = lines_of(&out);
        for comment in comment_lines(&text, &['#', ';']) {
            prop_assert!(out_lines.contains(&comment.as_str()));
        }
        assert_layout_kept(&text, &out, eol);
        prop_assert_eq!(dropin::parse(&out).unwrap().to_string(), out);
    }

    #[test]
    fn dropin_parse_never_panics(text in "[^\0]{0,200}") {
        if let Ok(unit) = dropin::parse(&text) {
            prop_assert_eq!(unit.to_string(), text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// bare

proptest! {
    #[test]
    fn bare_token_is_found_in_any_banner(
        body in "[A-Za-z0-9_-]{1,120}",
        before in "[^\0]{0,40}",
        after in "[^\0]{0,40}",
    ) {
        let token = format!("{}{body}", bare::OAUTH_TOKEN_PREFIX);
        prop_assume!(!before.contains(bare::OAUTH_TOKEN_PREFIX) && !after.contains(bare::OAUTH_TOKEN_PREFIX));
        prop_assert_eq!(bare::parse(&format!(" \n{token}\r\n")).unwrap().expose().to_owned(), token.clone());
        // Separate the token from the banner the way output does (a blank or a line break).
        let text = format!("{before}\n{token}\n{after}");
        prop_assert_eq!(bare::find_token(&text).unwrap().expose().to_owned(), token);
    }

    #[test]
    fn bare_errors_never_quote_the_input(text in "[^\0]{0,80}") {
        for result in [bare::parse(&text), bare::find_token(&text)] {
            match result {
                Ok(secret) => prop_assert!(secret.expose().starts_with(bare::OAUTH_TOKEN_PREFIX)),
                Err(e) => {
                    let message = e.to_string();
                    let quoted = text.trim().chars().count() >= 6 && message.contains(text.trim());
                    prop_assert!(!quoted, "{}", message);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Edits on odd but parseable text: lines made of random syntax fragments.

fn odd_text(starts: &'static [&'static str], fragments: &'static [&'static str]) -> impl Strategy<Value = String> {
    let line =
        (prop::sample::select(starts.to_vec()), prop::collection::vec(prop::sample::select(fragments.to_vec()), 0..6))
            .prop_map(|(start, rest)| format!("{start}{}", rest.concat()));
    (prop::collection::vec((line, eol()), 0..10), any::<bool>()).prop_map(|(lines, final_newline)| {
        let mut text: String = lines.iter().flat_map(|(l, e)| [l.as_str(), e]).collect();
        if !final_newline {
            let trimmed = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t));
            text = trimmed.unwrap_or(&text).to_owned();
        }
        text
    })
}

fn odd_dotenv() -> impl Strategy<Value = String> {
    odd_text(
        &["", "A=", "B=", "export A=", "x_1 = ", "#", " "],
        &[
            "A", "B", "x_1", "=", "#", ";", "'", "\"", "\\", " ", "\t", "%", "$", "é", "\u{b}", "\u{feff}", "export ",
            "v", "\"q q\"", "'s s'", " #c",
        ],
    )
}

fn odd_dropin() -> impl Strategy<Value = String> {
    let body = odd_text(
        &[
            "",
            "[Service]",
            "[Unit]",
            "Environment=",
            "Environment=",
            "Environment=A=",
            "Environment=B=x_1=",
            "#",
            ";",
            "X=",
            " ",
        ],
        &[
            "A",
            "B=",
            "x_1=",
            "=",
            " ",
            "\t",
            "%",
            "%%",
            "\\\\",
            "\\s",
            "\\x41",
            "\\",
            "\"",
            "'",
            "\"B=2 3\"",
            "'x_1=%%'",
            "é",
            "\u{b}",
            "#",
            ";",
            "[",
            "]",
        ],
    );
    (any::<bool>(), body).prop_map(|(service, body)| if service { format!("[Service]\n{body}") } else { body })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dotenv_edits_on_odd_text(text in odd_dotenv(), k in key(), v in settable_value()) {
        let Ok(before) = dotenv::parse(&text) else { return Ok(()) };
        prop_assert_eq!(before.to_string(), text.clone());
        let mut env = before.clone();
        env.set(&k, &v).unwrap();
        prop_assert_eq!(env.get(&k), Some(v.clone()));
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(env.get(other), before.get(other));
        }
        prop_assert_eq!(dotenv::parse(&env.to_string()).unwrap().get(&k), Some(v.clone()));
        env.remove(&k);
        prop_assert_eq!(env.get(&k), None);
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(env.get(other), before.get(other));
        }
    }

    #[test]
    fn dropin_edits_on_odd_text(text in odd_dropin(), k in key(), v in settable_value()) {
        let Ok(before) = dropin::parse(&text) else { return Ok(()) };
        prop_assert_eq!(before.to_string(), text.clone());
        let mut unit = before.clone();
        unit.set_env(&k, &v).unwrap();
        prop_assert_eq!(unit.get_env(&k), Some(v.clone()));
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(unit.get_env(other), before.get_env(other));
        }
        prop_assert_eq!(dropin::parse(&unit.to_string()).unwrap().get_env(&k), Some(v.clone()));
        unit.remove_env(&k);
        prop_assert_eq!(unit.get_env(&k), None);
        for other in ALL_KEYS.iter().filter(|o| **o != k) {
            prop_assert_eq!(unit.get_env(other), before.get_env(other));
        }
    }
}
