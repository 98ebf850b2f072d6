//! [`Browser`]: a cookie-keeping HTTP client that logs a user in at the test OpenID
//! provider's interaction pages (`scripts/infra/oidc/op.mjs`: oidc-provider's dev login form,
//! then, for native clients, its consent form), as a person's browser would.

// A helper fails the test the way tests fail (the crate's rule).
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

/// The redirect URI the shared test provider registers by default (any loopback port: its
/// clients are native ones).
pub const REDIRECT_URI: &str = "http://127.0.0.1:9999/callback";

/// A browser: no redirects followed, cookies kept by name (whatever their host).
#[derive(Debug)]
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser without cookies.
    ///
    /// # Panics
    /// When the HTTP client cannot be built.
    pub fn new() -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an http client"),
            cookies: BTreeMap::new(),
        }
    }

    /// The client to build requests with (then [`Self::send`] them).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The value of the cookie `name`, if the browser has it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Keeps the cookies `response` sets; an empty value or `Max-Age=0` deletes one.
    ///
    /// # Panics
    /// On a `Set-Cookie` header that is not `name=value…`.
    pub fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().expect("an ascii set-cookie");
            let pair = value.split(';').next().unwrap_or_default();
            let (name, v) = pair.split_once('=').expect("a name=value cookie");
            if v.is_empty() || value.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), v.to_owned());
            }
        }
    }

    /// The `Cookie` header of every kept cookie.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends `request` with the kept cookies and keeps what the answer sets.
    ///
    /// # Panics
    /// When the request cannot be sent.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("the request is sent");
        self.keep_cookies(&response);
        response
    }

    /// [`Self::log_in_to`] for a client whose redirect URI is [`REDIRECT_URI`].
    pub async fn log_in(
        &mut self,
        issuer: &str,
        auth_url: &str,
        login: &str,
        password: &str,
    ) -> reqwest::Url {
        self.log_in_to(issuer, auth_url, login, password, REDIRECT_URI)
            .await
    }

    /// Logs `login` in through the provider's forms (login, then consent), starting at
    /// `auth_url`; returns the final redirect to the client (`redirect_uri?code=…&state=…`),
    /// which it does not follow.
    ///
    /// # Panics
    /// When a page has no form, a form is refused, or the login does not come back to
    /// `redirect_uri` within ten steps.
    pub async fn log_in_to(
        &mut self,
        issuer: &str,
        auth_url: &str,
        login: &str,
        password: &str,
        redirect_uri: &str,
    ) -> reqwest::Url {
        let base = reqwest::Url::parse(issuer).expect("an issuer url");
        let absolute = |location: &str| base.join(location).expect("a url");
        let location_of = |response: &reqwest::Response| {
            response.headers()["location"]
                .to_str()
                .expect("an ascii location")
                .to_owned()
        };
        let mut location = auth_url.to_owned();
        for _ in 0..10 {
            if location.starts_with(redirect_uri) {
                return reqwest::Url::parse(&location).expect("a callback url");
            }
            let url = absolute(&location);
            let response = self.send(self.client.get(url.clone())).await;
            if response.status().is_redirection() {
                location = location_of(&response);
                continue;
            }
            assert_eq!(response.status(), 200, "{url}");
            let page = response.text().await.expect("a page");
            let action = page
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no form at {url}: {page}"))
                .replace("&amp;", "&");
            // The login form, then (native clients) the consent form.
            let form: Vec<(&str, &str)> = if page.contains(r#"name="prompt" value="consent""#) {
                vec![("prompt", "consent")]
            } else {
                vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", password),
                ]
            };
            let response = self
                .send(self.client.post(absolute(&action)).form(&form))
                .await;
            let status = response.status();
            assert!(
                status.is_redirection(),
                "the form at {url} answered {status}: {}",
                response.text().await.unwrap_or_default()
            );
            location = location_of(&response);
        }
        panic!("the login did not come back to {redirect_uri}");
    }
}
