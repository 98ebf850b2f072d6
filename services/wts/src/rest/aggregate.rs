//! `GET /aggregate/<path>`: the same allowlisted call on every commons, at once.
//!
//! The targets are the distinct commons hosts of the configured IdPs. With a user token
//! (401 if invalid), each commons gets an access token from the user's newest unexpired
//! refresh token among its IdPs; without one, or when the refresh fails, the call is
//! anonymous. Each call is `GET <scheme>://<host><path>` with the request's other query
//! parameters. The reply maps each host to its JSON body, or `null` when the call failed;
//! `filters=a&filters=b` reduces each object body to `{a: …, b: …}` (`null` when absent).

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use reqwest::Url;
use serde_json::{Map, Value};
use tessera_oidc::LazyClient;

use super::{ApiError, RestState, caller, query};

/// The fan-out: the allowlist, the scheme of each commons host, and the client.
#[derive(Debug)]
pub struct Aggregator {
    allowlist: Vec<String>,
    schemes: BTreeMap<String, String>,
    /// Built on the first call (see `LazyClient`): an idle service holds no CA certificates.
    http: LazyClient,
}

impl Aggregator {
    /// An aggregator for `allowlist`, calling hosts with their `schemes`, each call limited
    /// to `timeout`, trusting `roots` besides the system's.
    pub fn new(
        allowlist: Vec<String>,
        schemes: BTreeMap<String, String>,
        timeout: Duration,
        roots: &[reqwest::Certificate],
    ) -> crate::Result<Self> {
        let roots = roots.to_vec();
        let http = LazyClient::with(move || {
            let mut http = reqwest::Client::builder().timeout(timeout);
            for root in &roots {
                http = http.add_root_certificate(root.clone());
            }
            http.build().map_err(|e| e.to_string())
        });
        Ok(Self {
            allowlist,
            schemes,
            http,
        })
    }

    /// Whether `/path` may be called: an allowlist entry, either with or without a
    /// trailing `/` on either side.
    pub fn allows(&self, endpoint: &str) -> bool {
        let endpoint = endpoint.strip_suffix('/').unwrap_or(endpoint);
        self.allowlist
            .iter()
            .any(|p| p.strip_suffix('/').unwrap_or(p) == endpoint)
    }

    async fn call(
        &self,
        host: &str,
        endpoint: &str,
        params: &[(String, String)],
        token: Option<&str>,
    ) -> Value {
        let scheme = self.schemes.get(host).map_or("https", String::as_str);
        let Ok(mut url) = Url::parse(&format!("{scheme}://{host}{endpoint}")) else {
            return Value::Null;
        };
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        let http = match self.http.get() {
            Ok(http) => http,
            Err(e) => {
                tracing::warn!(host, error = %e, "aggregate call failed");
                return Value::Null;
            }
        };
        let mut request = http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                tracing::warn!(host, status = %response.status(), "aggregate call failed");
                return Value::Null;
            }
            Err(e) => {
                tracing::warn!(host, error = %e, "aggregate call failed");
                return Value::Null;
            }
        };
        response.json::<Value>().await.unwrap_or(Value::Null)
    }
}

/// Keeps only the `filters` keys of an object body.
pub fn filter_body(body: Value, filters: &[String]) -> Value {
    match body {
        Value::Object(mut map) if !filters.is_empty() => Value::Object(
            filters
                .iter()
                .map(|k| (k.clone(), map.remove(k).unwrap_or(Value::Null)))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

pub(super) async fn aggregate(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = format!("/{}", path.into_inner());
    let aggregator = &state.aggregator;
    if !aggregator.allows(&endpoint) {
        return Err(ApiError::NotAllowlisted);
    }
    let tokens = state
        .service
        .commons_tokens(&caller(&req, state.forwarded_for_hops))
        .await?;
    let (filters, params): (Vec<_>, Vec<_>) =
        query(&req).into_iter().partition(|(k, _)| k == "filters");
    let filters: Vec<String> = filters.into_iter().map(|(_, v)| v).collect();
    let calls = tokens.iter().map(|(host, token)| {
        let (endpoint, params, filters) = (&endpoint, &params, &filters);
        async move {
            let body = aggregator
                .call(host, endpoint, params, token.as_deref())
                .await;
            (host.clone(), filter_body(body, filters))
        }
    });
    let results: Map<String, Value> = futures::future::join_all(calls).await.into_iter().collect();
    Ok(HttpResponse::Ok().json(results))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_allowlist_ignores_a_trailing_slash_on_either_side() {
        let aggregator = Aggregator::new(
            vec!["/user/user".into(), "/index/index/".into()],
            BTreeMap::new(),
            Duration::from_secs(1),
            &[],
        )
        .unwrap();
        for allowed in ["/user/user", "/user/user/", "/index/index", "/index/index/"] {
            assert!(aggregator.allows(allowed), "{allowed}");
        }
        for refused in ["/user", "/user/user/x", "/index", "/user/user//", "/"] {
            assert!(!aggregator.allows(refused), "{refused}");
        }
    }

    #[test]
    fn filters_keep_top_level_keys_with_null_for_missing() {
        let body = json!({"a": 1, "b": {"c": 2}, "d": 3});
        assert_eq!(
            filter_body(body.clone(), &["b".into(), "x".into()]),
            json!({"b": {"c": 2}, "x": null})
        );
        assert_eq!(filter_body(body.clone(), &[]), body);
        assert_eq!(filter_body(json!([1, 2]), &["a".into()]), json!([1, 2]));
        assert_eq!(filter_body(Value::Null, &["a".into()]), Value::Null);
    }
}
