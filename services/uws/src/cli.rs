//! `uws api-client create --username U`: a user in the `api_clients` group and a token that
//! does not expire, printed on stdout (the original did this in Django admin).

use clap::Subcommand;

use crate::Result;
use crate::config::UwsConfig;
use crate::prepare::{Overrides, prepare};

// The service's own commands (a doc comment here would replace the binary's about).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage API clients (who may log users in with POST /tokens/ in local mode)
    #[command(name = "api-client", subcommand)]
    ApiClient(ApiClient),
}

/// `api-client` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApiClient {
    /// Create (or renew) an API client and print its 40-hex token; earlier tokens stop working
    Create {
        /// The client's username.
        #[arg(long)]
        username: String,
        /// Its e-mail address.
        #[arg(long, default_value = "")]
        email: String,
    },
}

/// Runs `command`.
pub async fn execute(
    command: Command,
    config: &(dyn Fn() -> Result<UwsConfig> + Sync),
) -> Result<()> {
    match command {
        Command::ApiClient(ApiClient::Create { username, email }) => {
            let core = prepare(config()?, Overrides::default()).await?;
            let token = core.uws.create_api_client(&username, &email).await?;
            println!("{token}");
            Ok(())
        }
    }
}
