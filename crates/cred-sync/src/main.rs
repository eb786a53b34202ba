fn main() -> std::process::ExitCode {
    cred_sync::main()
}
