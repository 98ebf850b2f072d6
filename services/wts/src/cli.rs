//! The `wts` command line: `wts serve`, `wts purge`, `wts generate-key`, `wts config`.
//! `--help` lists every config key with its variable and default.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tessera_tokens::Fernet;

use crate::config::{PREFIX, WtsConfig};
use crate::prepare::{Overrides, prepare};
use crate::{Result, run};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "wts",
    version,
    about = "Workspace Token Service: refresh tokens per user and IdP, access tokens on demand"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and the purge of expired refresh tokens)
    Serve,
    /// Delete expired refresh tokens once and exit
    Purge,
    /// Print a fresh Fernet key for `encryption_key`
    GenerateKey,
    /// Print an example YAML config with every key and its default
    Config,
}

/// `--help` with the config keys appended.
pub fn command() -> clap::Command {
    let keys = tessera_config::help_text::<WtsConfig>(PREFIX).unwrap_or_default();
    Cli::command().after_long_help(keys)
}

/// Parses `args` (the first is the program name).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Runs a parsed command.
pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::GenerateKey => {
            println!("{}", Fernet::generate_key());
            Ok(())
        }
        Command::Config => {
            let header = "Workspace Token Service configuration (defaults).\nRequired keys are commented out.";
            print!("{}", tessera_config::example_yaml::<WtsConfig>(header)?);
            Ok(())
        }
        Command::Serve => {
            let config = WtsConfig::load()?;
            tessera_http::init_logging(&config.log)?;
            run(config).await
        }
        Command::Purge => {
            let config = WtsConfig::load()?;
            tessera_http::init_logging(&config.log)?;
            let core = prepare(config, Overrides::default()).await?;
            let purged = core.service.purge_expired().await?;
            println!("{purged} expired refresh tokens deleted");
            Ok(())
        }
    }
}

/// The binary: parse, run on a multi-threaded runtime, report errors with their causes.
pub fn main() -> ExitCode {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("wts: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wts: {}", tessera_http::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subcommands_and_documents_the_keys() {
        assert!(matches!(
            parse(["wts", "serve"]).unwrap().command,
            Command::Serve
        ));
        assert!(matches!(
            parse(["wts", "generate-key"]).unwrap().command,
            Command::GenerateKey
        ));
        assert!(parse(["wts", "nope"]).is_err());
        let help = command().render_long_help().to_string();
        for key in [
            "WTS_ENCRYPTION_KEY",
            "WTS_EXTERNAL_OIDC",
            "WTS_IDENTITY_SOURCE",
            "serve",
        ] {
            assert!(help.contains(key), "{key} missing from --help");
        }
    }
}
