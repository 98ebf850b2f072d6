//! RFC 7662 token introspection, as Globus Auth implements it (and any OIDC provider with an
//! introspection endpoint): the client authenticates with HTTP Basic, an inactive token is a
//! refusal. The e-mail address and names come from the introspection response when it has
//! them (Globus does), else from the provider's userinfo endpoint; groups from a `groups`
//! claim.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_workspaces::identity::{Error, Identity, Introspector};

/// An introspection client.
#[derive(Debug, Clone)]
pub struct HttpIntrospector {
    http: reqwest::Client,
    introspection_url: String,
    userinfo_url: Option<String>,
    client_id: String,
    client_secret: String,
}

impl HttpIntrospector {
    /// A client for `introspection_url` (and `userinfo_url`) as `client_id`.
    pub fn new(
        introspection_url: String,
        userinfo_url: Option<String>,
        client_id: String,
        client_secret: String,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            introspection_url,
            userinfo_url,
            client_id,
            client_secret,
        })
    }

    async fn userinfo(&self, token: &str) -> Result<Value, Error> {
        let Some(url) = &self.userinfo_url else {
            return Ok(Value::Null);
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("userinfo: {e}")))?;
        if response.status().is_client_error() {
            return Err(Error::Rejected(format!("userinfo: {}", response.status())));
        }
        if !response.status().is_success() {
            return Err(Error::Unavailable(format!(
                "userinfo: {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("userinfo: {e}")))
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[async_trait]
impl Introspector for HttpIntrospector {
    async fn introspect(&self, token: &str) -> Result<Identity, Error> {
        let response = self
            .http
            .post(&self.introspection_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("introspection: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Unavailable(format!(
                "introspection: {}",
                response.status()
            )));
        }
        let claims: Value = response
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("introspection: {e}")))?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(Error::Rejected("token is not active".into()));
        }
        let sub = text(&claims, "sub").ok_or_else(|| Error::Rejected("no sub".into()))?;
        let info = if text(&claims, "email").is_some() {
            Value::Null
        } else {
            self.userinfo(token).await?
        };
        let pick = |key: &str| text(&claims, key).or_else(|| text(&info, key));
        let email = pick("email").ok_or_else(|| Error::Rejected("no e-mail address".into()))?;
        let name = pick("name").unwrap_or_default();
        let (first, last) = match (pick("given_name"), pick("family_name")) {
            (Some(f), Some(l)) => (f, l),
            _ => match name.split_once(' ') {
                Some((f, l)) => (f.to_owned(), l.to_owned()),
                None => (name.clone(), String::new()),
            },
        };
        let groups = claims.get("groups").and_then(Value::as_array).map(|gs| {
            gs.iter()
                .filter_map(|g| g.as_str().map(str::to_owned).or_else(|| text(g, "id")))
                .collect()
        });
        let mut details = serde_json::Map::new();
        for (k, v) in [&claims, &info]
            .into_iter()
            .filter_map(Value::as_object)
            .flatten()
        {
            details.insert(k.clone(), v.clone());
        }
        Ok(Identity {
            sub,
            email,
            first_name: first,
            last_name: last,
            groups,
            details: Value::Object(details),
        })
    }
}
