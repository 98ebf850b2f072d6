fn main() -> std::process::ExitCode {
    tessera_service::cli::main::<uws::Core>()
}
