fn main() -> std::process::ExitCode {
    l3map::cli::run()
}
