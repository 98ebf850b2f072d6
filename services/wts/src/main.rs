//! `wts`: the shared service command line (`tessera-service`) over [`wts::Core`].

fn main() -> std::process::ExitCode {
    tessera_service::cli::main::<wts::Core>()
}
