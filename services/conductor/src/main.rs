//! `conductor`: the shared service command line (`tessera-service`) over [`conductor::Core`].

fn main() -> std::process::ExitCode {
    tessera_service::cli::main::<conductor::Core>()
}
