//! The `wts` binary; everything is in [`wts::cli`].

fn main() -> std::process::ExitCode {
    wts::cli::main()
}
