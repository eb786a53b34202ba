fn main() -> std::process::ExitCode {
    cli_poke::main()
}
