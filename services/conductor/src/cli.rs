//! The commands of `conductor` beyond the shared ones: `permissions grant|revoke|list`,
//! `generate-key`, `packages remove` and `reindex`.

use clap::Subcommand;
use serde_json::{Map, Value};

use crate::config::ConductorConfig;
use crate::prepare::{Overrides, prepare};
use crate::{Error, Result};

/// The commands of `conductor` beyond the shared ones.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage permission rows (per user id, or `*` for everybody, and service)
    #[command(subcommand)]
    Permissions(Permissions),
    /// Print a new RSA private key (PEM) for `private_key`
    GenerateKey,
    /// Manage package records
    #[command(subcommand)]
    Packages(PackagesCommand),
    /// Rebuild the search index from the stored package records
    Reindex,
}

/// `conductor packages …`.
#[derive(Debug, Subcommand)]
pub enum PackagesCommand {
    /// Delete packages (record, index entry; with --purge their stored objects too)
    Remove {
        /// Package ids (`<owner>:<name>`).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Also delete the package's objects in the datastore.
        #[arg(long)]
        purge: bool,
    },
}

/// `conductor permissions …`.
#[derive(Debug, Subcommand)]
pub enum Permissions {
    /// Add permissions to a row: `grant <userid|*> <service> name[=json] …`
    Grant {
        /// The user id (md5 of the email) or `*`.
        userid: String,
        /// The service, e.g. `os.datastore`.
        service: String,
        /// Permissions: `name` (true) or `name=<json value>`.
        #[arg(required = true)]
        permissions: Vec<String>,
    },
    /// Remove permissions from a row (all of them, deleting it, when none are named)
    Revoke {
        /// The user id or `*`.
        userid: String,
        /// The service.
        service: String,
        /// The permission names.
        names: Vec<String>,
    },
    /// List rows, optionally of one user and/or service
    List {
        /// Only this user id.
        #[arg(long)]
        userid: Option<String>,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
    },
}

/// `name` or `name=<json>` (a value that is not JSON is a string).
fn parse_permission(text: &str) -> Result<(String, Value)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (
            name,
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned())),
        ),
        None => (text, Value::Bool(true)),
    };
    if name.is_empty() {
        return Err(Error::Usage(format!("permission {text:?} has no name")));
    }
    Ok((name.to_owned(), value))
}

/// Runs one of the commands; `config` loads and validates the config.
pub async fn execute(
    command: Command,
    config: &(dyn Fn() -> Result<ConductorConfig> + Sync),
) -> Result<()> {
    let permissions = match command {
        Command::GenerateKey => {
            print!("{}", crate::keys::generate_private_key()?);
            return Ok(());
        }
        Command::Permissions(p) => p,
        Command::Packages(PackagesCommand::Remove { ids, purge }) => {
            let core = prepare(config()?, Overrides::default()).await?;
            let mut missing = 0;
            for id in ids {
                if core.packages.remove_any(&id, purge).await? {
                    println!("Package \"{id}\" removed.");
                } else {
                    println!("Package \"{id}\" not found in index.");
                    missing += 1;
                }
            }
            if missing > 0 {
                return Err(Error::Usage(format!("{missing} package(s) not found")));
            }
            return Ok(());
        }
        Command::Reindex => {
            let core = prepare(config()?, Overrides::default()).await?;
            let n = core.packages.reindex().await?;
            println!("{n} package(s) indexed.");
            return Ok(());
        }
    };
    let core = prepare(config()?, Overrides::default()).await?;
    let identity = &core.identity;
    match permissions {
        Permissions::Grant {
            userid,
            service,
            permissions,
        } => {
            let mut map = Map::new();
            for text in &permissions {
                let (name, value) = parse_permission(text)?;
                map.insert(name, value);
            }
            let row = identity.grant(&userid, &service, map).await?;
            show(&row);
        }
        Permissions::Revoke {
            userid,
            service,
            names,
        } => match identity.revoke(&userid, &service, &names).await? {
            Some(row) => show(&row),
            None => println!("deleted the row of {userid} on {service}"),
        },
        Permissions::List { userid, service } => {
            for row in identity
                .list_permissions(userid.as_deref(), service.as_deref())
                .await?
            {
                show(&row);
            }
        }
    }
    Ok(())
}

/// A row as one JSON line.
fn show(row: &tessera_conductor::PermissionRow) {
    println!(
        "{}",
        serde_json::json!({
            "userid": row.userid, "service": row.service, "permissions": row.permissions
        })
    );
}

#[cfg(test)]
mod tests {
    use tessera_service::cli::{self, Command as Parsed};

    use super::*;

    #[test]
    fn parses_permission_commands_and_values() {
        let parse = |args: &[&str]| cli::parse::<crate::Core>(args);
        assert!(matches!(
            parse(&[
                "conductor",
                "permissions",
                "grant",
                "*",
                "os.datastore",
                "datapackage-upload"
            ]),
            Ok(Parsed::Service(Command::Permissions(
                Permissions::Grant { .. }
            )))
        ));
        assert!(parse(&["conductor", "permissions", "grant", "u", "s"]).is_err());
        assert!(matches!(
            parse(&["conductor", "permissions", "list", "--service", "s"]),
            Ok(Parsed::Service(Command::Permissions(
                Permissions::List { .. }
            )))
        ));
        assert_eq!(
            parse_permission("a").unwrap(),
            ("a".into(), Value::Bool(true))
        );
        assert_eq!(
            parse_permission("a=[1,2]").unwrap(),
            ("a".into(), serde_json::json!([1, 2]))
        );
        assert_eq!(
            parse_permission("a=x").unwrap(),
            ("a".into(), Value::from("x"))
        );
        assert!(parse_permission("=x").is_err());
        let help = cli::command::<crate::Core>().render_long_help().to_string();
        for key in [
            "OS_BASE_URL",
            "OS_STORAGE_BUCKET_NAME",
            "OS_CLIENT_API_KEYS",
            "permissions",
        ] {
            assert!(help.contains(key), "{key} missing from --help");
        }
    }
}
