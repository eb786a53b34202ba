fn main() -> std::process::ExitCode {
    compose_recreate::main()
}
