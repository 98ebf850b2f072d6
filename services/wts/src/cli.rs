//! The commands of `wts` beyond the shared ones of `tessera-service` (`serve`, `run-rest`,
//! `config example|check`): `wts purge` and `wts generate-key`.

use clap::Subcommand;
use tessera_tokens::Fernet;

use crate::Result;
use crate::config::WtsConfig;
use crate::prepare::{Overrides, prepare};

/// The commands of `wts` beyond the shared ones.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Delete expired refresh tokens once and exit
    Purge,
    /// Print a fresh Fernet key for `encryption_key`
    GenerateKey,
}

/// Runs one of the commands; `config` loads and validates the config.
pub async fn execute(command: Command, config: impl FnOnce() -> Result<WtsConfig>) -> Result<()> {
    match command {
        Command::GenerateKey => {
            println!("{}", Fernet::generate_key());
            Ok(())
        }
        Command::Purge => {
            let core = prepare(config()?, Overrides::default()).await?;
            let purged = core.service.purge_expired().await?;
            println!("{purged} expired refresh tokens deleted");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use tessera_service::cli::{self, Command as Parsed, Shared};

    use super::*;

    #[test]
    fn parses_the_subcommands_and_documents_the_keys() {
        let parse = |args: &[&str]| cli::parse::<crate::Core>(args);
        assert!(matches!(
            parse(&["wts", "serve"]),
            Ok(Parsed::Shared(Shared::Serve))
        ));
        assert!(matches!(
            parse(&["wts", "config"]),
            Ok(Parsed::Shared(Shared::ConfigExample))
        ));
        assert!(matches!(
            parse(&["wts", "generate-key"]),
            Ok(Parsed::Service(Command::GenerateKey))
        ));
        assert!(parse(&["wts", "nope"]).is_err());
        assert!(
            parse(&["wts", "consume-events"]).is_err(),
            "wts has no consumer"
        );
        let help = cli::command::<crate::Core>().render_long_help().to_string();
        for key in [
            "WTS_ENCRYPTION_KEY",
            "WTS_EXTERNAL_OIDC",
            "WTS_IDENTITY_SOURCE",
            "serve",
            "purge",
        ] {
            assert!(help.contains(key), "{key} missing from --help");
        }
    }
}
