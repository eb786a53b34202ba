//! `KEY=value` files: parsing never panics, a parsed file prints back byte for byte, and setting
//! or removing a variable gives a file that reads back with exactly that change.
#![no_main]

use credmap::dotenv;
use libfuzzer_sys::fuzz_target;

const VALUES: [&str; 3] = ["sk-ant-oat01-FUZZ_tok", "", "a b \"c\" 'd' $e \\f #g %h `i`"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(env) = dotenv::parse(text) else { return };
    assert_eq!(env.to_string(), text, "parse -> Display must give the input back");

    let mut keys: Vec<String> = env.entries().into_iter().map(|(k, _)| k).filter(|k| dotenv::is_valid_key(k)).collect();
    keys.truncate(8);
    keys.push("ANTHROPIC_OAUTH_TOKEN".to_owned());
    keys.sort();
    keys.dedup();
    for key in &keys {
        for value in VALUES {
            let mut edited = env.clone();
            edited.set(key, value).expect("a valid key and value are accepted");
            let out = edited.to_string();
            let reread = dotenv::parse(&out).expect("an edited file parses");
            assert_eq!(reread.get(key).as_deref(), Some(value));
            for (other, _) in env.entries() {
                if &other != key {
                    assert_eq!(reread.get(&other), env.get(&other), "another variable changed");
                }
            }
            assert!(!edited.set(key, value).expect("accepted again"), "setting the same value twice changed the text");
        }
        let mut removed = env.clone();
        removed.remove(key);
        let reread = dotenv::parse(&removed.to_string()).expect("a file with a variable removed parses");
        assert_eq!(reread.get(key), None);
    }
});
