fn main() -> std::process::ExitCode {
    token_expiry::main()
}
