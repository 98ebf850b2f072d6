//! `tessera token mint`: an internal user token (GHGA's auth-adapter shape), for
//! development and tests: `{name, email, title, roles, id, iat, exp}` signed ES256 with the
//! development auth key (or a given private JWK).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::{Error, Result, TesseraConfig, dev};

/// `tessera token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a signed internal user token (for `Authorization: Bearer …`)
    Mint(MintArgs),
}

/// `tessera token mint` arguments.
#[derive(Debug, Args)]
pub struct MintArgs {
    /// The internal user id (a UUID4 for GHGA services)
    #[arg(long)]
    pub id: String,
    /// The user's full name
    #[arg(long)]
    pub name: String,
    /// The user's email address
    #[arg(long)]
    pub email: String,
    /// An academic title: Dr. or Prof.
    #[arg(long)]
    pub title: Option<String>,
    /// A role (repeatable)
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Minutes until the token expires
    #[arg(long, default_value_t = 60)]
    pub valid_minutes: i64,
    /// A file with the private JWK to sign with (default: the `tessera dev` auth key)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// The claims of a user token issued at `now` (seconds since the epoch).
pub fn claims(args: &MintArgs, now: i64) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("id".into(), json!(args.id));
    claims.insert("name".into(), json!(args.name));
    claims.insert("email".into(), json!(args.email));
    claims.insert("title".into(), json!(args.title));
    claims.insert("roles".into(), json!(args.roles));
    claims.insert("iat".into(), json!(now));
    claims.insert("exp".into(), json!(now + args.valid_minutes * 60));
    claims
}

/// Runs `tessera token …`.
pub fn run(config: &TesseraConfig, cmd: TokenCommand) -> Result<()> {
    let TokenCommand::Mint(args) = cmd;
    if args.valid_minutes <= 0 {
        return Err(Error::Usage("--valid-minutes must be positive".into()));
    }
    let jwk = match &args.key {
        Some(path) => std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?,
        None => {
            let secrets = dev::secrets(&dev::keys_dir(config, None))?;
            let [private, _] = secrets.get_or_generate(wps::DEV_AUTH_KEYS, || {
                tessera_auth::generate_es256_jwk_pair()
                    .map(|(private, public)| [private, public])
                    .map_err(Into::into)
            })?;
            private
        }
    };
    let signer = tessera_auth::JwtSigner::from_jwk_json(&jwk)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    println!("{}", signer.sign(&claims(&args, now))?);
    Ok(())
}
