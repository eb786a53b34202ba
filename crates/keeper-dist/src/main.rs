//! `keeper-dist OUT_DIR`: writes the tools' man pages (`OUT_DIR/man/NAME.1`) and bash, zsh and fish
//! completions (`OUT_DIR/{bash,zsh,fish}/…`), generated from their clap definitions.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: keeper-dist OUT_DIR");
        return ExitCode::from(64);
    };
    match keeper_dist::generate(std::path::Path::new(out)) {
        Ok(files) => {
            for file in files {
                println!("{}", file.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keeper-dist: {e}");
            ExitCode::FAILURE
        }
    }
}
