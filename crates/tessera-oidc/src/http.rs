//! The HTTP client and the mapping of its failures.

use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use tessera_tokens::ExchangeError;

use crate::{Error, Result};

/// The longest part of an error body kept for messages.
const MAX_BODY: usize = 1000;

/// A client for IdPs: no redirects followed (a token endpoint that redirects is
/// misconfigured), and `timeout` per request.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client> {
    http_client_with_roots(timeout, &[])
}

/// [`http_client`] trusting `roots` besides the system's CA certificates (a private CA of
/// the IdPs).
pub fn http_client_with_roots(
    timeout: Duration,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout);
    for root in roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder
        .build()
        .map_err(|e| Error::Config(format!("cannot build the http client: {e}")))
}

/// How a [`LazyClient`] builds its client.
type Build = Box<dyn Fn() -> std::result::Result<reqwest::Client, String> + Send + Sync>;

/// An HTTP client built on first use. Building a client loads the system's CA
/// certificates into OpenSSL (measured: about 0.85 MiB of heap per client), which a service
/// that has not called out yet should not hold while idle. A failed build is kept: it would
/// fail the same way again.
pub struct LazyClient {
    build: Build,
    client: OnceLock<std::result::Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.is_built())
            .finish_non_exhaustive()
    }
}

impl LazyClient {
    /// An [`http_client`] with `timeout` per request, not built yet.
    pub fn new(timeout: Duration) -> Self {
        Self::with(move || http_client(timeout).map_err(|e| e.to_string()))
    }

    /// A client `build` makes, on first use (its error is the message of [`Error::Config`]).
    pub fn with(
        build: impl Fn() -> std::result::Result<reqwest::Client, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            build: Box::new(build),
            client: OnceLock::new(),
        }
    }

    /// The client, built now if this is the first call.
    ///
    /// # Errors
    /// [`Error::Config`] if the client cannot be built (the TLS backend did not initialise).
    pub fn get(&self) -> Result<&reqwest::Client> {
        match self.client.get_or_init(|| (self.build)()) {
            Ok(client) => Ok(client),
            Err(message) => Err(Error::Config(message.clone())),
        }
    }

    /// Whether the client has been built (tests of laziness).
    pub fn is_built(&self) -> bool {
        self.client.get().is_some()
    }
}

/// GETs a JSON object.
pub(crate) async fn get_json(client: &reqwest::Client, url: &str) -> Result<Map<String, Value>> {
    let fetch = |reason: String| Error::Fetch {
        url: url.to_owned(),
        reason,
    };
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fetch(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(fetch(format!("status {status}")));
    }
    let bytes = response.bytes().await.map_err(|e| fetch(e.to_string()))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Document {
            url: url.to_owned(),
            reason: "not a json object".to_owned(),
        }),
    }
}

/// Sends a token-endpoint style request and returns the JSON object of a 2xx answer.
/// Network failures and timeouts are `Unreachable`, error statuses `Rejected`.
pub(crate) async fn send_for_json(
    request: reqwest::RequestBuilder,
) -> Result<Map<String, Value>, ExchangeError> {
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| ExchangeError::Unreachable(error_text(&e)))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| ExchangeError::Unreachable(error_text(&e)))?;
    if !status.is_success() {
        return Err(ExchangeError::Rejected {
            status: status.as_u16(),
            body: shorten(&String::from_utf8_lossy(&body)),
        });
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ExchangeError::InvalidResponse(
            "the answer is not a json object".to_owned(),
        )),
    }
}

/// Sends a request whose answer body does not matter (revocation).
pub(crate) async fn send_expect_success(
    request: reqwest::RequestBuilder,
) -> Result<(), ExchangeError> {
    let response = request
        .send()
        .await
        .map_err(|e| ExchangeError::Unreachable(error_text(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(ExchangeError::Rejected {
        status: status.as_u16(),
        body: shorten(&body),
    })
}

fn error_text(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else {
        // The chain holds the useful part (connection refused, dns); reqwest's own text
        // is generic.
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 wants the
/// client id and secret encoded so before HTTP Basic authentication).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_follows_the_html_rules() {
        assert_eq!(form_encode("abc-._*09"), "abc-._*09");
        assert_eq!(form_encode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }

    #[test]
    fn long_bodies_are_shortened() {
        assert_eq!(shorten("short"), "short");
        let long = "é".repeat(MAX_BODY + 5);
        assert_eq!(shorten(&long).chars().count(), MAX_BODY + 1);
    }

    #[test]
    fn a_lazy_client_is_built_once_on_first_use() {
        let lazy = LazyClient::new(Duration::from_secs(5));
        assert!(!lazy.is_built());
        let first = lazy.get().unwrap() as *const reqwest::Client;
        assert!(lazy.is_built());
        let second = lazy.get().unwrap() as *const reqwest::Client;
        assert_eq!(first, second);

        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let failing = LazyClient::with(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err("no TLS".to_owned())
        });
        assert!(failing.get().is_err() && failing.get().is_err());
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a failure is kept"
        );
    }
}
