//! `tessera keys generate`: key material for a deployment.
//!
//! - The work-order signing key: a P-256 JWK pair. The private JWK goes into a service's
//!   signing-key setting (e.g. WPS `work_package_signing_key`), the public one to the
//!   services that verify work-order tokens.
//! - A Crypt4GH key pair, as a user (or a test) would hold: the public key in the
//!   `CRYPT4GH PUBLIC KEY` armor, the secret key as an unencrypted Crypt4GH key file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use crate::{Error, Result};

/// `tessera keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a P-256 JWK pair (work-order signing) and a Crypt4GH key pair.
    ///
    /// Without --out-dir, prints one JSON object with the four keys. With it, writes
    /// signing.jwk.json (0600), signing.pub.jwk.json, crypt4gh.pub and crypt4gh.sec (0600),
    /// and refuses to overwrite existing files.
    Generate {
        /// Write the keys as files into this directory instead of printing them
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Generated key material, as text.
#[derive(Debug)]
pub struct GeneratedKeys {
    pub signing_private_jwk: String,
    pub signing_public_jwk: String,
    pub crypt4gh_public: String,
    pub crypt4gh_private: String,
}

/// Generates both key pairs.
pub fn generate() -> Result<GeneratedKeys> {
    let (signing_private_jwk, signing_public_jwk) = tessera_auth::generate_es256_jwk_pair()?;
    let pair = tessera_crypt::Crypt4ghKeyPair::generate();
    Ok(GeneratedKeys {
        signing_private_jwk,
        signing_public_jwk,
        crypt4gh_public: pair.public_armored(),
        crypt4gh_private: pair.private_armored(),
    })
}

/// Runs `tessera keys …`.
pub fn run(cmd: KeysCommand) -> Result<()> {
    let KeysCommand::Generate { out_dir } = cmd;
    let keys = generate()?;
    match out_dir {
        None => {
            let out = json!({
                "signing_private_jwk": keys.signing_private_jwk,
                "signing_public_jwk": keys.signing_public_jwk,
                "crypt4gh_public_key": keys.crypt4gh_public,
                "crypt4gh_private_key": keys.crypt4gh_private,
            });
            println!("{out:#}");
            Ok(())
        }
        Some(dir) => write_files(&dir, &keys),
    }
}

fn write_files(dir: &Path, keys: &GeneratedKeys) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let files = [
        ("signing.jwk.json", &keys.signing_private_jwk, true),
        ("signing.pub.jwk.json", &keys.signing_public_jwk, false),
        ("crypt4gh.pub", &keys.crypt4gh_public, false),
        ("crypt4gh.sec", &keys.crypt4gh_private, true),
    ];
    // Check first, so that a refusal writes nothing at all.
    for (name, _, _) in &files {
        let path = dir.join(name);
        if path.exists() {
            return Err(Error::Usage(format!(
                "{} exists; refusing to overwrite key material",
                path.display()
            )));
        }
    }
    for (name, content, secret) in files {
        let path = dir.join(name);
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = secret;
        let mut file = options.open(&path).map_err(io(&path))?;
        file.write_all(content.as_bytes()).map_err(io(&path))?;
        println!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_work_together() {
        let keys = generate().unwrap();
        let signer = tessera_auth::JwtSigner::from_jwk_json(&keys.signing_private_jwk).unwrap();
        let verifier = tessera_auth::JwtVerifier::from_jwk_json(
            &keys.signing_public_jwk,
            &["ES256".to_owned()],
        )
        .unwrap();
        let mut claims = serde_json::Map::new();
        claims.insert("x".into(), json!(1));
        let token = signer.sign(&claims).unwrap();
        assert_eq!(verifier.verify(&token).unwrap()["x"], json!(1));

        let public: tessera_crypt::Crypt4ghPublicKey = keys.crypt4gh_public.parse().unwrap();
        let pair =
            tessera_crypt::Crypt4ghKeyPair::from_private_armored(&keys.crypt4gh_private).unwrap();
        assert_eq!(pair.public_key(), public);
    }

    #[test]
    fn writing_files_refuses_to_overwrite_and_writes_nothing_then() {
        let dir = tempfile::tempdir().unwrap();
        let keys = generate().unwrap();
        write_files(dir.path(), &keys).unwrap();
        let before = fs::read_to_string(dir.path().join("crypt4gh.pub")).unwrap();
        fs::remove_file(dir.path().join("signing.jwk.json")).unwrap();
        let again = generate().unwrap();
        assert!(matches!(
            write_files(dir.path(), &again),
            Err(Error::Usage(_))
        ));
        assert!(!dir.path().join("signing.jwk.json").exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("crypt4gh.pub")).unwrap(),
            before
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("crypt4gh.sec"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
