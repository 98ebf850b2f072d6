//! `ogdc validate-recipe PATH`: validates a recipe directory locally, as the original CLI.

use std::path::PathBuf;

use crate::config::OgdcConfig;
use crate::{Error, Result};

/// The service's own commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate an OGDC recipe directory (meta.yml and the files it names); exit 2 if invalid.
    ValidateRecipe {
        /// The recipe directory.
        path: PathBuf,
    },
}

/// Runs a command.
pub async fn execute(
    command: Command,
    _config: &(dyn Fn() -> Result<OgdcConfig> + Sync),
) -> Result<()> {
    match command {
        Command::ValidateRecipe { path } => {
            let recipe = crate::fetch::validate_local(&path).map_err(Error::Recipe)?;
            println!(
                "Recipe {} is valid (id {}, {} command(s)).",
                path.display(),
                recipe.id,
                recipe.commands.len()
            );
            Ok(())
        }
    }
}
