//! [`WtsConfig`]: every setting of the service, as flat keys (`.wts.yaml`, `WTS_<KEY>`), and
//! the IdP list derived from it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_config::{Secret, is_default};
use tessera_embedded::EmbeddedConfig;
use tessera_http::{HttpConfig, LogConfig};
use tessera_mongodb::MongoConfig;
use tessera_oidc::http::form_encode;
use tessera_oidc::{ClientSettings, IdpKind};
use tessera_tokens::{DEFAULT_IDP, Fernet};

use crate::{Error, Result, VERSION};

/// Environment prefix and YAML file stem: `WTS_*`, `.wts.yaml`, `WTS_CONFIG_YAML`.
pub const PREFIX: &str = "wts";

/// The scope asked of Fence (the original's default client).
pub const FENCE_SCOPE: &str = "openid data user";

/// Where the identity of a request without a user token comes from (idp `default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// Kubernetes when running in a cluster (or `kubernetes_api_url` is set), else none.
    Auto,
    /// The pod behind the caller's address, through the Kubernetes API (the original).
    Kubernetes,
    /// `static_identities`: an address or a token to a username.
    Static,
    /// Nobody: `/token?idp=default` always answers 403.
    None,
}

/// The Workspace Token Service's settings. The keys of the original (§B5) keep their
/// names; the rest are additions, documented in the README.
///
/// `wts_base_url`, `fence_base_url`, `encryption_key`, `secret_key`, `oidc_client_id` and
/// `oidc_client_secret` are required: they are left out of the serialised default, so
/// loading names them when they are set nowhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WtsConfig {
    /// The public URL of this service, e.g. `https://commons.org/wts/`.
    #[serde(skip_serializing_if = "is_default")]
    pub wts_base_url: String,
    /// The commons' Fence, e.g. `https://commons.org/user/` (the `default` IdP).
    #[serde(skip_serializing_if = "is_default")]
    pub fence_base_url: String,
    /// The Fernet key (32 bytes, URL-safe base64) of the stored refresh tokens.
    #[serde(skip_serializing_if = "is_default")]
    pub encryption_key: Secret,
    /// The key that signs the login session cookie.
    #[serde(skip_serializing_if = "is_default")]
    pub secret_key: Secret,
    /// This service's client id at Fence.
    #[serde(skip_serializing_if = "is_default")]
    pub oidc_client_id: String,
    /// This service's client secret at Fence.
    #[serde(skip_serializing_if = "is_default")]
    pub oidc_client_secret: Secret,
    /// Paths `/aggregate/<path>` may call on every commons, e.g. `["/user/user"]`.
    pub aggregate_endpoint_allowlist: Vec<String>,
    /// Other IdPs (Fence-style commons and generic OIDC providers).
    pub external_oidc: Vec<ExternalOidc>,
    /// Issuers of accepted user tokens; empty means `fence_base_url` without its `/`.
    pub allowed_issuers: Vec<String>,
    /// An audience user tokens must carry (authutils 8: `gen3`); null skips the check.
    pub access_token_audience: Option<String>,
    /// JWS algorithms of user tokens (the original: `RS256` only).
    pub access_token_algorithms: Vec<String>,
    /// Where workspace identities come from: `auto`, `kubernetes`, `static` or `none`.
    pub identity_source: IdentitySource,
    /// The Kubernetes API; null means the in-cluster `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub kubernetes_api_url: Option<String>,
    /// The service-account token (re-read on every lookup, as it rotates).
    pub kubernetes_token_file: PathBuf,
    /// The CA of the Kubernetes API (used when the file exists).
    pub kubernetes_ca_file: PathBuf,
    /// `identity_source: static`: a client address or a bearer token to a username.
    pub static_identities: BTreeMap<String, String>,
    /// Trusted proxies in front of the service: the client address is the `n`-th
    /// `X-Forwarded-For` entry from the right; 0 (the default) uses the peer and trusts no
    /// forwarded header. Behind Gen3's reverse proxy set 1 (what the original trusts).
    pub forwarded_for_hops: usize,
    /// A PEM bundle of CA certificates trusted for the IdPs and the commons (`/aggregate`)
    /// besides the system roots; null uses the system roots (and `SSL_CERT_FILE`) only.
    pub ca_bundle_file: Option<PathBuf>,
    /// Seconds one call to an IdP may take (the original: 5).
    pub idp_timeout_seconds: u64,
    /// Seconds one `/aggregate` call to a commons may take.
    pub aggregate_timeout_seconds: u64,
    /// Least seconds between two key-set fetches of one issuer on unknown key ids.
    pub jwks_refresh_interval_seconds: u64,
    /// Lifetime assumed for refresh tokens whose expiry the IdP does not tell (opaque
    /// tokens without `refresh_expires_in`).
    pub opaque_refresh_token_lifetime_seconds: u32,
    /// Seconds between purges of expired refresh tokens; 0 keeps them, as the original.
    pub purge_interval_seconds: u64,
    /// Seconds a started login stays valid (the session cookie's lifetime).
    pub login_session_seconds: u32,
    /// Mark the session cookie `Secure` (turn off only for plain-HTTP development).
    pub session_cookie_secure: bool,
    /// The collection of refresh tokens.
    pub refresh_token_collection: String,
    /// HTTP server settings.
    #[serde(flatten)]
    pub http: HttpConfig,
    /// Logging settings.
    #[serde(flatten)]
    pub log: LogConfig,
    /// Where the embedded store lives (used when `mongo_dsn` is empty).
    #[serde(flatten)]
    pub embedded: EmbeddedConfig,
    /// MongoDB (`mongo_dsn`, `db_name`, `mongo_timeout`); an empty `mongo_dsn` means the
    /// embedded store, where `db_name` prefixes the collection name.
    #[serde(flatten)]
    pub mongo: MongoConfig,
}

/// One `external_oidc` entry: a client at one server, with one IdP per login option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalOidc {
    /// The server's base URL; a Fence's commons URL (`/user/` is added).
    pub base_url: String,
    /// The client id there.
    pub oidc_client_id: String,
    /// The client secret there.
    pub oidc_client_secret: Secret,
    /// A redirect URI shared with other WTS instances; states then carry this instance's
    /// host label.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The IdPs, by name (unique across the whole config).
    pub login_options: BTreeMap<String, LoginOption>,
}

/// One login option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginOption {
    /// The display name.
    pub name: String,
    /// Fence: parameters added to the authorization URL. Generic (has `auth_url` and
    /// `token_url`): the endpoints (relative to `base_url`), `scope`,
    /// `id_token_username_field`, `issuer`, and extra authorization parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Value>,
}

impl Default for WtsConfig {
    fn default() -> Self {
        Self {
            wts_base_url: String::new(),
            fence_base_url: String::new(),
            encryption_key: Secret::default(),
            secret_key: Secret::default(),
            oidc_client_id: String::new(),
            oidc_client_secret: Secret::default(),
            aggregate_endpoint_allowlist: Vec::new(),
            external_oidc: Vec::new(),
            allowed_issuers: Vec::new(),
            access_token_audience: Some("gen3".into()),
            access_token_algorithms: vec!["RS256".into()],
            identity_source: IdentitySource::Auto,
            kubernetes_api_url: None,
            kubernetes_token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            kubernetes_ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into(),
            static_identities: BTreeMap::new(),
            forwarded_for_hops: 0,
            ca_bundle_file: None,
            idp_timeout_seconds: 5,
            aggregate_timeout_seconds: 10,
            jwks_refresh_interval_seconds: 60,
            opaque_refresh_token_lifetime_seconds: 30 * 24 * 3600,
            purge_interval_seconds: 3600,
            login_session_seconds: 900,
            session_cookie_secure: true,
            refresh_token_collection: tessera_tokens::DEFAULT_COLLECTION.into(),
            http: HttpConfig {
                port: 8000,
                ..HttpConfig::default()
            },
            log: LogConfig::default(),
            embedded: EmbeddedConfig::default(),
            mongo: MongoConfig {
                db_name: "wts".into(),
                ..MongoConfig::default()
            },
        }
    }
}

/// One IdP as configured: the client settings and what the listing and `/aggregate` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpSpec {
    /// `default` or the login option's key.
    pub id: String,
    /// The display name.
    pub name: String,
    /// `base_url` as configured.
    pub base_url: String,
    /// `host[:port]` of `base_url`.
    pub commons_host: String,
    /// `http` or `https`, from `base_url` (the original always calls `https`).
    pub commons_scheme: String,
    /// `<wts_base_url>oauth2/authorization_url?idp=<id>`.
    pub login_url: String,
    /// The state prefix for a shared redirect URI.
    pub state_prefix: Option<String>,
    /// The client.
    pub client: ClientSettings,
}

fn invalid(key: &'static str, message: impl Into<String>) -> Error {
    Error::Config {
        key,
        message: message.into(),
    }
}

fn with_slash(url: &str) -> String {
    if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    }
}

fn http_url(key: &'static str, url: &str) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| invalid(key, format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            key,
            format!("{url:?} must be an http(s) URL with a host"),
        ));
    }
    Ok(parsed)
}

fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn param_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl WtsConfig {
    /// Checks what loading alone cannot: URLs, the Fernet key, unique IdP names, the
    /// static identities, numbers in range. The error names the key.
    pub fn validate(&self) -> Result<()> {
        http_url("wts_base_url", &self.wts_base_url)?;
        http_url("fence_base_url", &self.fence_base_url)?;
        Fernet::new(self.encryption_key.expose())
            .map_err(|e| invalid("encryption_key", format!("must be a Fernet key: {e}")))?;
        if self.secret_key.expose().len() < 16 {
            return Err(invalid("secret_key", "must be at least 16 characters"));
        }
        if self.oidc_client_id.is_empty() {
            return Err(invalid("oidc_client_id", "must not be empty"));
        }
        if self.access_token_algorithms.is_empty() {
            return Err(invalid(
                "access_token_algorithms",
                "must name at least one algorithm",
            ));
        }
        for alg in &self.access_token_algorithms {
            if !matches!(
                alg.as_str(),
                "RS256"
                    | "RS384"
                    | "RS512"
                    | "PS256"
                    | "PS384"
                    | "PS512"
                    | "ES256"
                    | "ES384"
                    | "ES512"
                    | "EdDSA"
            ) {
                return Err(invalid(
                    "access_token_algorithms",
                    format!("{alg:?} is not an asymmetric JWS algorithm"),
                ));
            }
        }
        for path in &self.aggregate_endpoint_allowlist {
            if !path.starts_with('/') {
                return Err(invalid(
                    "aggregate_endpoint_allowlist",
                    format!("{path:?} must start with /"),
                ));
            }
        }
        for issuer in &self.allowed_issuers {
            http_url("allowed_issuers", issuer)?;
        }
        if let Some(url) = &self.kubernetes_api_url {
            http_url("kubernetes_api_url", url)?;
        }
        self.static_identity_map()?;
        self.ca_bundle()?;
        for (key, value) in [
            ("idp_timeout_seconds", self.idp_timeout_seconds),
            ("aggregate_timeout_seconds", self.aggregate_timeout_seconds),
            (
                "opaque_refresh_token_lifetime_seconds",
                u64::from(self.opaque_refresh_token_lifetime_seconds),
            ),
            (
                "login_session_seconds",
                u64::from(self.login_session_seconds),
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        tessera_service::backends::validate_store(PREFIX, &self.mongo)?;
        if self.refresh_token_collection.is_empty() {
            return Err(invalid("refresh_token_collection", "must not be empty"));
        }
        tessera_tokens::refresh_token_spec(&self.collection_name())
            .validate()
            .map_err(|e| invalid("refresh_token_collection", e.to_string()))?;
        self.idps()?;
        Ok(())
    }

    /// Whether the refresh tokens live in MongoDB (`mongo_dsn` is set).
    pub fn uses_mongo(&self) -> bool {
        tessera_service::backends::uses_mongo(&self.mongo)
    }

    /// The collection name in the store: `refresh_token_collection` in MongoDB's `db_name`,
    /// `<db_name>.<refresh_token_collection>` on the embedded store, so that services
    /// sharing one file never collide.
    pub fn collection_name(&self) -> String {
        tessera_service::backends::collection_name(&self.mongo, &self.refresh_token_collection)
    }

    /// The issuers of accepted user tokens.
    pub fn issuers(&self) -> Vec<String> {
        if self.allowed_issuers.is_empty() {
            vec![self.fence_base_url.trim_end_matches('/').to_owned()]
        } else {
            self.allowed_issuers.clone()
        }
    }

    /// The certificates of `ca_bundle_file` (none when it is null).
    pub fn ca_bundle(&self) -> Result<Vec<reqwest::Certificate>> {
        let Some(path) = &self.ca_bundle_file else {
            return Ok(Vec::new());
        };
        let pem = std::fs::read(path)
            .map_err(|e| invalid("ca_bundle_file", format!("{}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| invalid("ca_bundle_file", format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(invalid(
                "ca_bundle_file",
                format!("{}: no PEM certificate", path.display()),
            ));
        }
        Ok(certs)
    }

    /// `static_identities` split into addresses and tokens.
    pub fn static_identity_map(
        &self,
    ) -> Result<(BTreeMap<IpAddr, String>, BTreeMap<String, String>)> {
        let mut by_ip = BTreeMap::new();
        let mut by_token = BTreeMap::new();
        for (key, user) in &self.static_identities {
            if user.is_empty() {
                return Err(invalid(
                    "static_identities",
                    format!("the user of {key:?} is empty"),
                ));
            }
            match key.parse::<IpAddr>() {
                Ok(ip) => {
                    by_ip.insert(ip, user.clone());
                }
                Err(_) => {
                    by_token.insert(key.clone(), user.clone());
                }
            }
        }
        Ok((by_ip, by_token))
    }

    /// The redirect URI of this instance: `<wts_base_url>/oauth2/authorize`.
    pub fn own_redirect_uri(&self) -> String {
        format!("{}oauth2/authorize", with_slash(&self.wts_base_url))
    }

    /// The first DNS label of `wts_base_url`'s host: the state prefix for shared redirect
    /// URIs.
    fn host_label(&self) -> Result<String> {
        let url = http_url("wts_base_url", &self.wts_base_url)?;
        Ok(url
            .host_str()
            .and_then(|h| h.split('.').next())
            .unwrap_or_default()
            .to_owned())
    }

    fn login_url(&self, idp: &str) -> String {
        // Built from wts_base_url as configured, without adding "/" (§B9.6).
        format!(
            "{}oauth2/authorization_url?idp={}",
            self.wts_base_url,
            form_encode(idp)
        )
    }

    /// Every IdP: `default` (the commons' Fence) first, then each login option of each
    /// `external_oidc` entry. Fails on a duplicate or reserved IdP name and unusable URLs.
    pub fn idps(&self) -> Result<Vec<IdpSpec>> {
        let user_agent = format!("Gen3WTS/{VERSION}");
        let fence = http_url("fence_base_url", &self.fence_base_url)?;
        let mut idps = vec![IdpSpec {
            id: DEFAULT_IDP.to_owned(),
            name: DEFAULT_IDP.to_owned(),
            base_url: self.fence_base_url.clone(),
            commons_host: host_port(&fence),
            commons_scheme: fence.scheme().to_owned(),
            login_url: self.login_url(DEFAULT_IDP),
            state_prefix: None,
            client: ClientSettings {
                idp: DEFAULT_IDP.to_owned(),
                kind: IdpKind::Fence {
                    base_url: with_slash(&self.fence_base_url),
                },
                client_id: self.oidc_client_id.clone(),
                client_secret: self.oidc_client_secret.expose().to_owned(),
                redirect_uri: self.own_redirect_uri(),
                scope: FENCE_SCOPE.to_owned(),
                extra_params: Vec::new(),
                username_field: "context.user.name".to_owned(),
                user_agent: user_agent.clone(),
            },
        }];
        const KEY: &str = "external_oidc";
        for entry in &self.external_oidc {
            let base = http_url(KEY, &entry.base_url)?;
            let redirect_uri = entry
                .redirect_uri
                .clone()
                .unwrap_or_else(|| self.own_redirect_uri());
            let state_prefix = (redirect_uri != self.own_redirect_uri())
                .then(|| self.host_label())
                .transpose()?;
            for (id, option) in &entry.login_options {
                if id.is_empty() || idps.iter().any(|i| &i.id == id) {
                    return Err(invalid(
                        KEY,
                        format!("idp name {id:?} is empty, reserved or not unique"),
                    ));
                }
                let params = &option.params;
                let text = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
                let (kind, scope, username_field, extra) =
                    match (text("auth_url"), text("token_url")) {
                        (Some(auth), Some(token)) => {
                            let join = |path: &str| {
                                base.join(path)
                                    .map(|u| u.to_string())
                                    .map_err(|e| invalid(KEY, format!("{id}: {path:?}: {e}")))
                            };
                            // The original sends a generic IdP only the OAuth parameters:
                            // `idp` and any other param stay here.
                            (
                                IdpKind::Generic {
                                    authorization_endpoint: join(&auth)?,
                                    token_endpoint: join(&token)?,
                                    issuer: text("issuer"),
                                    base_url: entry.base_url.clone(),
                                },
                                text("scope").unwrap_or_else(|| "openid".to_owned()),
                                text("id_token_username_field")
                                    .unwrap_or_else(|| "email".to_owned()),
                                Vec::new(),
                            )
                        }
                        _ => {
                            let extra = params
                                .iter()
                                .filter(|(k, _)| k.as_str() != "scope")
                                .map(|(k, v)| (k.clone(), param_text(v)))
                                .collect();
                            (
                                IdpKind::Fence {
                                    base_url: format!(
                                        "{}/user/",
                                        entry.base_url.trim_end_matches('/')
                                    ),
                                },
                                text("scope").unwrap_or_else(|| FENCE_SCOPE.to_owned()),
                                "context.user.name".to_owned(),
                                extra,
                            )
                        }
                    };
                idps.push(IdpSpec {
                    id: id.clone(),
                    name: option.name.clone(),
                    base_url: entry.base_url.clone(),
                    commons_host: host_port(&base),
                    commons_scheme: base.scheme().to_owned(),
                    login_url: self.login_url(id),
                    state_prefix: state_prefix.clone(),
                    client: ClientSettings {
                        idp: id.clone(),
                        kind,
                        client_id: entry.oidc_client_id.clone(),
                        client_secret: entry.oidc_client_secret.expose().to_owned(),
                        redirect_uri: redirect_uri.clone(),
                        scope,
                        extra_params: extra,
                        username_field,
                        user_agent: user_agent.clone(),
                    },
                });
            }
        }
        Ok(idps)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) fn base() -> WtsConfig {
        WtsConfig {
            wts_base_url: "https://wts.commons.org/wts/".into(),
            fence_base_url: "https://commons.org/user".into(),
            encryption_key: Fernet::generate_key().into(),
            secret_key: "a-long-enough-secret".into(),
            oidc_client_id: "wts".into(),
            oidc_client_secret: "s".into(),
            ..WtsConfig::default()
        }
    }

    fn external(value: Value) -> ExternalOidc {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_default_idp_is_the_commons_fence() {
        let config = base();
        config.validate().unwrap();
        let idps = config.idps().unwrap();
        let default = &idps[0];
        assert_eq!(default.id, "default");
        assert_eq!(default.commons_host, "commons.org");
        assert_eq!(
            default.client.kind,
            IdpKind::Fence {
                base_url: "https://commons.org/user/".into()
            }
        );
        assert_eq!(
            default.client.redirect_uri,
            "https://wts.commons.org/wts/oauth2/authorize"
        );
        assert_eq!(default.client.scope, "openid data user");
        assert_eq!(default.client.user_agent, format!("Gen3WTS/{VERSION}"));
        assert_eq!(
            config.issuers(),
            vec!["https://commons.org/user".to_owned()]
        );
    }

    #[test]
    fn external_entries_give_fence_and_generic_idps() {
        let mut config = base();
        config.wts_base_url = "https://wts.commons.org/wts".into();
        config.external_oidc = vec![
            external(json!({
                "base_url": "https://x.org/", "oidc_client_id": "i", "oidc_client_secret": "s",
                "login_options": {"x-kc": {"name": "KC", "params": {
                    "idp": "keycloak", "auth_url": "realms/r/protocol/openid-connect/auth",
                    "token_url": "realms/r/protocol/openid-connect/token"}}}
            })),
            external(json!({
                "base_url": "https://other.org:8443", "oidc_client_id": "j", "oidc_client_secret": "t",
                "redirect_uri": "https://central.org/wts/oauth2/authorize",
                "login_options": {"other-google": {"name": "Google", "params": {"idp": "google", "shib": 1}}}
            })),
        ];
        config.validate().unwrap();
        let idps = config.idps().unwrap();
        let kc = &idps[1];
        assert_eq!(
            kc.client.kind,
            IdpKind::Generic {
                authorization_endpoint: "https://x.org/realms/r/protocol/openid-connect/auth"
                    .into(),
                token_endpoint: "https://x.org/realms/r/protocol/openid-connect/token".into(),
                issuer: None,
                base_url: "https://x.org/".into(),
            }
        );
        // Only the OAuth parameters go to a generic IdP, as in the original.
        assert_eq!(kc.client.extra_params, Vec::new());
        assert_eq!(
            (kc.client.scope.as_str(), kc.client.username_field.as_str()),
            ("openid", "email")
        );
        assert_eq!(kc.state_prefix, None);
        // Built from wts_base_url as configured, without adding a "/" (§B9.6).
        assert_eq!(
            kc.login_url,
            "https://wts.commons.org/wtsoauth2/authorization_url?idp=x-kc"
        );
        let other = &idps[2];
        assert_eq!(
            other.client.kind,
            IdpKind::Fence {
                base_url: "https://other.org:8443/user/".into()
            }
        );
        assert_eq!(other.commons_host, "other.org:8443");
        assert_eq!(other.state_prefix.as_deref(), Some("wts"));
        assert_eq!(
            other.client.redirect_uri,
            "https://central.org/wts/oauth2/authorize"
        );
        assert_eq!(
            other.client.extra_params,
            vec![
                ("idp".to_owned(), "google".to_owned()),
                ("shib".to_owned(), "1".to_owned())
            ]
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let entry = |id: &str| {
            external(json!({
                "base_url": "https://x.org", "oidc_client_id": "i", "oidc_client_secret": "s",
                "login_options": {id: {"name": "n"}}
            }))
        };
        type Change = Box<dyn Fn(&mut WtsConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("wts_base_url", Box::new(|c| c.wts_base_url = "wts".into())),
            (
                "fence_base_url",
                Box::new(|c| c.fence_base_url = "ftp://x".into()),
            ),
            (
                "encryption_key",
                Box::new(|c| c.encryption_key = "short".into()),
            ),
            ("secret_key", Box::new(|c| c.secret_key = "short".into())),
            (
                "access_token_algorithms",
                Box::new(|c| c.access_token_algorithms = vec!["HS256".into()]),
            ),
            (
                "aggregate_endpoint_allowlist",
                Box::new(|c| c.aggregate_endpoint_allowlist = vec!["user".into()]),
            ),
            (
                "external_oidc",
                Box::new(move |c| c.external_oidc = vec![entry("default")]),
            ),
            (
                "external_oidc",
                Box::new(move |c| c.external_oidc = vec![entry("a"), entry("a")]),
            ),
            (
                "idp_timeout_seconds",
                Box::new(|c| c.idp_timeout_seconds = 0),
            ),
            (
                "static_identities",
                Box::new(|c| {
                    c.static_identities.insert("10.0.0.1".into(), String::new());
                }),
            ),
        ];
        for (key, change) in cases {
            let mut config = base();
            change(&mut config);
            match config.validate() {
                Err(Error::Config { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }

    #[test]
    fn loads_from_the_environment_with_json_lists() {
        let key = Fernet::generate_key();
        let env = [
            ("WTS_WTS_BASE_URL", "https://wts.org/"),
            ("WTS_FENCE_BASE_URL", "https://commons.org/user"),
            ("WTS_ENCRYPTION_KEY", key.as_str()),
            ("WTS_SECRET_KEY", "sixteen-chars-at-least"),
            ("WTS_OIDC_CLIENT_ID", "id"),
            ("WTS_OIDC_CLIENT_SECRET", "secret"),
            ("WTS_AGGREGATE_ENDPOINT_ALLOWLIST", r#"["/user/user"]"#),
            (
                "WTS_EXTERNAL_OIDC",
                r#"[{"base_url": "https://x.org", "oidc_client_id": "i", "oidc_client_secret": "s",
                     "login_options": {"x": {"name": "X", "params": {"idp": "google"}}}}]"#,
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = tessera_service::load_config_from::<crate::Core>(env.clone()).unwrap();
        assert_eq!(
            config.aggregate_endpoint_allowlist,
            vec!["/user/user".to_owned()]
        );
        assert_eq!(config.idps().unwrap()[1].id, "x");
        assert!(!format!("{config:?}").contains(&key), "secrets stay masked");
        let missing: Vec<_> = env
            .into_iter()
            .filter(|(k, _)| k != "WTS_ENCRYPTION_KEY")
            .collect();
        let err = tessera_service::load_config_from::<crate::Core>(missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("encryption_key"), "{err}");
    }

    #[test]
    fn static_identities_split_into_addresses_and_tokens() {
        let mut config = base();
        config
            .static_identities
            .insert("10.1.2.3".into(), "alice".into());
        config.static_identities.insert("::1".into(), "bob".into());
        config
            .static_identities
            .insert("sidecar-token".into(), "carol".into());
        let (by_ip, by_token) = config.static_identity_map().unwrap();
        assert_eq!(by_ip.len(), 2);
        assert_eq!(by_token["sidecar-token"], "carol");
    }
}
