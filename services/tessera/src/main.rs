//! `tessera`: the operator CLI. It only parses the command line and dispatches; the work
//! is in the library modules ([`tessera::keys`], [`tessera::events`], [`tessera::dev`]).

use std::process::ExitCode;

use clap::Parser;
use tessera::{Cli, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tessera_service::cli::report(&err);
            ExitCode::FAILURE
        }
    }
}
