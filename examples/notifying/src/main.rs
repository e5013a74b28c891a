//! The `notifying` binary: the `librarycache` command line with the Notifying concept added
//! beside the standard ones (`notifying serve --syncs DIR`, `notifying trace FILE`, …).

fn main() -> std::process::ExitCode {
    librarycache::App::standard()
        .concept(notifying_example::Notifying::new())
        .main()
}
