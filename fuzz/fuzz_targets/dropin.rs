//! systemd drop-ins: parsing never panics, a parsed file prints back byte for byte, and setting
//! or removing a variable gives a file that reads back with exactly that change.
#![no_main]

use credmap::dropin;
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 4] = ["ANTHROPIC_OAUTH_TOKEN", "A", "B", "x_1"];
const VALUES: [&str; 3] = ["sk-ant-oat01-FUZZ_tok", "", "a b \"c\" 'd' \\e %f %%g \t"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(unit) = dropin::parse(text) else { return };
    assert_eq!(unit.to_string(), text, "parse -> Display must give the input back");

    for key in KEYS {
        for value in VALUES {
            let mut edited = unit.clone();
            edited.set_env(key, value).expect("a valid key and value are accepted");
            let reread = dropin::parse(&edited.to_string()).expect("an edited drop-in parses");
            assert_eq!(reread.get_env(key).as_deref(), Some(value));
            for other in KEYS.iter().filter(|o| **o != key) {
                assert_eq!(reread.get_env(other), unit.get_env(other), "another variable changed");
            }
            assert!(
                !edited.set_env(key, value).expect("accepted again"),
                "setting the same value twice changed the text"
            );
        }
        let mut removed = unit.clone();
        removed.remove_env(key);
        let reread = dropin::parse(&removed.to_string()).expect("a drop-in with a variable removed parses");
        assert_eq!(reread.get_env(key), None);
    }
});
