//! The OGDC runner as `tessera-service` runs it.

use async_trait::async_trait;
use tessera_http::LogConfig;
use tessera_service::dev::DevEnv;
use tessera_service::{Given, Info, Part, Role, Service, ServiceConfig};

use crate::cli::{self, Command};
use crate::config::{OgdcConfig, PREFIX, UNPREFIXED};
use crate::prepare::{Core, Overrides, prepare};
use crate::{Error, Result};

/// The development secrets: the JWT key and the admin password.
pub const DEV_KEYS: [&str; 2] = ["ogdc_jwt_secret_key", "ogdc_admin_password"];

const LONG_ABOUT: &str = "\
The OGDC runner service, wire-compatible with ogdc-runner 0.3.0.

Users log in at POST /token (form) for a 30-minute HS256 token; the admin, created once
from OGDC_ADMIN_PASSWORD, adds users at POST /create_user. POST /submit takes a recipe
directory (an https URL, or a path under recipe_local_root), validates its meta.yml and
returns the run's name at once; the run goes on in the background on the workflow engine
(the local executor by default). /status/{name}, /output/{name} (a signed URL of the zip
of a `temporary` output, valid 2 h), GET /runs, POST /runs/{name}/cancel and
GET /runs/{name}/logs serve the run's owner and the admin.

ACCESS_MODE=open or read_only drops authentication (every caller is `anonymous`;
read_only refuses submissions and cancels). With OIDC_CLIENT_SECRETS_FILE (JSON
server_metadata_url, client_id, client_secret, redirect_uris), callers bring the OIDC
provider's access tokens instead (iss, aud, azp, exp and the JWKS signature checked; the
owner is `sub`; OGDC_SCOPE_ADMIN, default ogdc:admin, makes an admin) and there are no
/token and /create_user.

With passwords it refuses to start without OGDC_JWT_SECRET_KEY and OGDC_ADMIN_PASSWORD. Users and runs
live in MongoDB when mongo_dsn is set, else in the embedded store under OGDC_DATA_DIR,
with outputs in S3 when INTERNAL_S3_ENDPOINT_URL is set, else under OGDC_DATA_DIR.";

impl ServiceConfig for OgdcConfig {
    const PREFIX: &'static str = PREFIX;
    const UNPREFIXED: &'static [&'static str] = UNPREFIXED;

    fn log(&self) -> &LogConfig {
        &self.log
    }
}

#[async_trait]
impl Service for Core {
    type Config = OgdcConfig;
    type Error = Error;
    type Commands = Command;

    const INFO: Info = Info {
        title: "OGDC runner",
        name: "ogdc",
        about: "OGDC runner: users, recipes and their runs on a workflow engine",
        long_about: LONG_ABOUT,
        version: env!("CARGO_PKG_VERSION"),
        roles: &[Role::Rest],
        migrations: false,
    };

    fn validate(config: &OgdcConfig) -> Result<()> {
        config.validate()
    }

    async fn prepare(config: OgdcConfig, given: Given) -> Result<Self> {
        prepare(
            config,
            Overrides {
                store: given.store,
                ..Overrides::default()
            },
        )
        .await
    }

    fn parts(&self) -> Result<Vec<Part<Error>>> {
        Ok(vec![self.rest_part()?, self.resume_part()])
    }

    async fn command(
        command: Command,
        config: &(dyn Fn() -> Result<OgdcConfig> + Sync),
    ) -> Result<()> {
        cli::execute(command, config).await
    }

    /// Development secrets for the JWT key and the admin password, the data under the
    /// shared store's directory, private URLs allowed.
    fn dev_config(env: &DevEnv) -> Result<OgdcConfig> {
        let [jwt, admin] = env.secrets.get_or_generate(DEV_KEYS, || {
            let token = || {
                rand::random::<[u8; 24]>()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            };
            Ok([token(), token()])
        })?;
        let data_dir = env
            .store
            .path()
            .parent()
            .map(|p| p.join("ogdc"))
            .unwrap_or_else(|| std::path::PathBuf::from(".tessera/ogdc"));
        Ok(OgdcConfig {
            jwt_secret_key: jwt.into(),
            admin_password: admin.into(),
            data_dir,
            public_url: env.base_url().trim_end_matches('/').to_owned(),
            allow_private_urls: true,
            http: env.http.clone(),
            ..OgdcConfig::default()
        })
    }
}
