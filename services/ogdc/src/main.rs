//! `ogdc`: the shared service command line (`tessera-service`) over [`ogdc::Core`].

fn main() -> std::process::ExitCode {
    tessera_service::cli::main::<ogdc::Core>()
}
