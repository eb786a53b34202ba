fn main() -> std::process::ExitCode {
    claude_stand_in::main()
}
