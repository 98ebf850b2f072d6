//! `wps`: the shared service command line (`tessera-service`) over [`wps::Core`].

fn main() -> std::process::ExitCode {
    tessera_service::cli::main::<wps::Core>()
}
