//! The `librarycache` binary: the standard concepts behind the command line (`src/cli/command.rs`).

fn main() -> std::process::ExitCode {
    librarycache::App::standard().main()
}
