//! Fetching over HTTP without SSRF: only https (and http to private addresses when allowed),
//! every resolved address checked, redirects followed by hand and checked the same way, size
//! and time limits. Also the recipe loader: an https directory or one under the local root.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::Url;
use tessera_oidc::LazyClient;
use tessera_recipes::RecipeLoader;
use tessera_recipes::recipe::{self, DataoneInput, META_FILE, Recipe};

use crate::dataone::DataoneNode;
use crate::engines::steps::Claims;
use tokio::io::AsyncWriteExt;

/// Largest recipe file read.
const RECIPE_FILE_MAX: u64 = 1 << 20;
/// Redirects followed.
const MAX_REDIRECTS: usize = 5;

/// The rules of outgoing requests.
#[derive(Debug, Clone)]
pub struct Fetcher {
    /// Built on first use (see `LazyClient`): an idle service holds no CA certificates.
    client: Arc<LazyClient>,
    allow_private: bool,
    timeout: Duration,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Scheme, host or address not allowed.
    #[error("{0}")]
    NotAllowed(String),
    /// 404.
    #[error("not found: {0}")]
    NotFound(String),
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
                || v4.octets()[0] >= 224)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

impl Fetcher {
    /// A fetcher; `allow_private` lets requests reach loopback and private addresses, over
    /// http too.
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        let client = Arc::new(LazyClient::with(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .user_agent(concat!("tessera-ogdc/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| e.to_string())
        }));
        Self {
            client,
            allow_private,
            timeout,
        }
    }

    /// Checks the scheme and every address the host resolves to.
    pub async fn check(&self, url: &Url) -> Result<(), FetchError> {
        let scheme_ok = match url.scheme() {
            "https" => true,
            "http" => self.allow_private,
            _ => false,
        };
        if !scheme_ok {
            return Err(FetchError::NotAllowed(format!(
                "scheme {}:// is not allowed (https only)",
                url.scheme()
            )));
        }
        if self.allow_private {
            return Ok(());
        }
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::NotAllowed("URL without a host".into()))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| FetchError::Failed(format!("cannot resolve {host}: {e}")))?;
        for addr in addrs {
            if !is_public(addr.ip()) {
                return Err(FetchError::NotAllowed(format!(
                    "{host} resolves to a non-public address"
                )));
            }
        }
        Ok(())
    }

    /// GETs `url`, following checked redirects; the response of the final hop.
    async fn get(&self, url: &str) -> Result<(Url, reqwest::Response), FetchError> {
        let mut url =
            Url::parse(url).map_err(|e| FetchError::NotAllowed(format!("bad URL: {e}")))?;
        for _ in 0..=MAX_REDIRECTS {
            self.check(&url).await?;
            let client = self
                .client
                .get()
                .map_err(|e| FetchError::Failed(e.to_string()))?;
            let response = client
                .get(url.clone())
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| FetchError::Failed(format!("GET {url}: {e}")))?;
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        FetchError::Failed(format!("GET {url}: redirect without Location"))
                    })?;
                url = url
                    .join(location)
                    .map_err(|e| FetchError::Failed(format!("bad redirect: {e}")))?;
                continue;
            }
            if response.status() == reqwest::StatusCode::NOT_FOUND {
                return Err(FetchError::NotFound(url.to_string()));
            }
            if !response.status().is_success() {
                return Err(FetchError::Failed(format!(
                    "GET {url}: status {}",
                    response.status()
                )));
            }
            return Ok((url, response));
        }
        Err(FetchError::Failed(format!("GET {url}: too many redirects")))
    }

    /// The body of `url` as text, at most `max` bytes.
    pub async fn text(&self, url: &str, max: u64) -> Result<String, FetchError> {
        let (url, response) = self.get(url).await?;
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Failed(format!("GET {url}: {e}")))?;
            body.extend_from_slice(&chunk);
            if body.len() as u64 > max {
                return Err(FetchError::Failed(format!(
                    "{url} is larger than {max} bytes"
                )));
            }
        }
        String::from_utf8(body).map_err(|_| FetchError::Failed(format!("{url} is not UTF-8 text")))
    }

    /// Downloads `url` into `dir` (named as `wget --content-disposition` would), at most
    /// `max` bytes; returns the file path. Nothing is left of a failed download.
    pub async fn download(&self, url: &str, dir: &Path, max: u64) -> Result<PathBuf, FetchError> {
        let (final_url, response) = self.get(url).await?;
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(disposition_filename)
            .or_else(|| {
                final_url
                    .path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_owned))
            })
            .filter(|n| safe_file_name(n))
            .unwrap_or_else(|| "index.html".to_owned());
        let path = dir.join(&name);
        let io = |e: std::io::Error| FetchError::Failed(format!("writing {name}: {e}"));
        let result = async {
            let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
            let mut written = 0u64;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| FetchError::Failed(format!("GET {final_url}: {e}")))?;
                written += chunk.len() as u64;
                if written > max {
                    return Err(FetchError::Failed(format!(
                        "{url} is larger than {max} bytes"
                    )));
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        Ok(path)
    }
}

fn safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.len() <= 255
}

fn disposition_filename(value: &str) -> Option<String> {
    value.split(';').map(str::trim).find_map(|part| {
        let rest = part.strip_prefix("filename=")?;
        Some(rest.trim_matches('"').to_owned())
    })
}

/// Loads recipes from https directories and, when configured, from under a local root.
#[derive(Debug, Clone)]
pub struct Loader {
    fetcher: Fetcher,
    local_root: Option<PathBuf>,
    dataone: Option<DataoneNode>,
    claims: Claims,
}

impl Loader {
    /// A loader; `local_root` enables local paths beneath it.
    pub fn new(fetcher: Fetcher, local_root: Option<PathBuf>) -> Self {
        Self {
            fetcher,
            local_root,
            dataone: None,
            claims: Claims::default(),
        }
    }

    /// Allows `pvc_mount` inputs of the claims `claims` allows (without, they are refused).
    #[must_use]
    pub fn with_claims(mut self, claims: Claims) -> Self {
        self.claims = claims;
        self
    }

    /// Refuses `pvc_mount` inputs of claims not allowed.
    fn check_claims(&self, recipe: &Recipe) -> Result<(), recipe::Error> {
        match recipe
            .pvc_inputs()
            .into_iter()
            .find(|p| self.claims.dir(&p.claim_name).is_none())
        {
            Some(p) => Err(recipe::Error::Invalid(format!(
                "pvc_mount claim {:?} is not allowed: only the workflow volume and OGDC_ALLOWED_INPUT_PVCS",
                p.claim_name
            ))),
            None => Ok(()),
        }
    }

    /// Resolves `dataone` inputs on `node` (without one they are refused).
    #[must_use]
    pub fn with_dataone(mut self, node: DataoneNode) -> Self {
        self.dataone = Some(node);
        self
    }

    /// Replaces the recipe's DataONE inputs by the object URLs they stand for.
    async fn resolve_dataone(&self, mut recipe: Recipe) -> Result<Recipe, recipe::Error> {
        let inputs: Vec<DataoneInput> = recipe.dataone_inputs().into_iter().cloned().collect();
        if inputs.is_empty() {
            return Ok(recipe);
        }
        let node = self.dataone.as_ref().ok_or_else(|| {
            recipe::Error::Invalid(
                "dataone inputs need a DataONE member node (DATAONE_NODE_URL)".into(),
            )
        })?;
        let mut resolved = Vec::new();
        for input in &inputs {
            resolved.push(node.resolve(input).await?);
        }
        recipe.resolve_dataone(resolved);
        Ok(recipe)
    }

    async fn load_url(&self, url: &str) -> Result<Recipe, recipe::Error> {
        let base = format!("{}/", url.trim_end_matches('/'));
        let get = |name: String| {
            let url = format!("{base}{name}");
            async move {
                match self.fetcher.text(&url, RECIPE_FILE_MAX).await {
                    Ok(text) => Ok(Some(text)),
                    Err(FetchError::NotFound(_)) => Ok(None),
                    Err(FetchError::NotAllowed(m)) => Err(recipe::Error::PathNotAllowed(m)),
                    Err(FetchError::Failed(m)) => Err(recipe::Error::Unreadable(m)),
                }
            }
        };
        let meta = get(META_FILE.into())
            .await?
            .ok_or_else(|| recipe::Error::MissingMeta(url.to_owned()))?;
        let parsed = recipe::Meta::parse(&meta)?;
        let mut files = std::collections::BTreeMap::new();
        for name in parsed.files() {
            if let Some(text) = get(name.clone()).await? {
                files.insert(name, text);
            }
        }
        Recipe::new(parsed, &files)
    }

    async fn load_local(&self, path: &str) -> Result<Recipe, recipe::Error> {
        let not_allowed = || {
            recipe::Error::PathNotAllowed(format!(
                "{path} is neither an https URL nor a directory under the configured local root"
            ))
        };
        let root = self.local_root.as_ref().ok_or_else(not_allowed)?;
        let root = tokio::fs::canonicalize(root)
            .await
            .map_err(|e| recipe::Error::Unreadable(format!("local root: {e}")))?;
        let dir = match tokio::fs::canonicalize(root.join(path)).await {
            Ok(dir) => dir,
            Err(_) => return Err(recipe::Error::MissingMeta(path.to_owned())),
        };
        if !dir.starts_with(&root) {
            return Err(not_allowed());
        }
        let meta = match tokio::fs::read_to_string(dir.join(META_FILE)).await {
            Ok(meta) => meta,
            Err(_) => return Err(recipe::Error::MissingMeta(path.to_owned())),
        };
        let parsed = recipe::Meta::parse(&meta)?;
        let mut files = std::collections::BTreeMap::new();
        for name in parsed.files() {
            let file = tokio::fs::canonicalize(dir.join(&name)).await;
            if let Ok(file) = file
                && file.starts_with(&dir)
                && let Ok(text) = tokio::fs::read_to_string(&file).await
            {
                files.insert(name, text);
            }
        }
        Recipe::new(parsed, &files)
    }
}

#[async_trait]
impl RecipeLoader for Loader {
    async fn load(&self, path: &str) -> Result<Recipe, recipe::Error> {
        let lower = path.to_ascii_lowercase();
        let recipe = if lower.starts_with("https://") || lower.starts_with("http://") {
            self.load_url(path).await?
        } else if path.contains("://") || lower.starts_with("file:") {
            return Err(recipe::Error::PathNotAllowed(format!(
                "{path}: only https URLs and local directories under the configured root"
            )));
        } else {
            self.load_local(path).await?
        };
        self.check_claims(&recipe)?;
        self.resolve_dataone(recipe).await
    }
}

/// `validate-recipe`: loads and validates a local directory (any place; it is the user's
/// own machine) without a server.
pub fn validate_local(dir: &Path) -> Result<Recipe, recipe::Error> {
    let meta = std::fs::read_to_string(dir.join(META_FILE))
        .map_err(|_| recipe::Error::MissingMeta(dir.display().to_string()))?;
    Recipe::parse(&meta, |name| {
        Ok(std::fs::read_to_string(dir.join(name)).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_only() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "100.64.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn schemes_and_private_hosts_are_refused_before_any_request() {
        let fetcher = Fetcher::new(false, Duration::from_secs(1));
        for url in [
            "http://example.org/x",
            "file:///etc/passwd",
            "ftp://x/y",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://localhost/x",
        ] {
            let err = fetcher.check(&Url::parse(url).unwrap()).await.unwrap_err();
            assert!(matches!(err, FetchError::NotAllowed(_)), "{url}: {err}");
        }
        let loader = Loader::new(fetcher, None);
        for path in [
            "file:///etc",
            "s3://bucket/x",
            "github://org:repo@main/x",
            "/etc",
            "relative",
        ] {
            let err = loader.load(path).await.unwrap_err();
            assert!(
                matches!(err, recipe::Error::PathNotAllowed(_)),
                "{path}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn local_paths_must_stay_under_the_root() {
        let root = tempfile::tempdir().unwrap();
        let recipe = root.path().join("r");
        std::fs::create_dir(&recipe).unwrap();
        std::fs::write(
            recipe.join("meta.yml"),
            "name: r\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: url\n      value: https://x.org/a\n",
        )
        .unwrap();
        std::fs::write(recipe.join("recipe.sh"), "ls\n").unwrap();
        let loader = Loader::new(
            Fetcher::new(false, Duration::from_secs(1)),
            Some(root.path().to_owned()),
        );
        assert_eq!(loader.load("r").await.unwrap().id, "r");
        let full = recipe.display().to_string();
        assert_eq!(loader.load(&full).await.unwrap().commands, ["ls"]);
        let err = loader.load("../").await.unwrap_err();
        assert!(matches!(err, recipe::Error::PathNotAllowed(_)), "{err}");
        let err = loader.load("missing").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "Recipe directory not found or without meta.yml: missing"
        );
        assert_eq!(validate_local(&recipe).unwrap().id, "r");
    }
}
