//! HuBMAP's dataset lookup (storage type `HubmapLocalFileSystemStorage`, §A8.2): `POST
//! {root_url}/datasets/file-system-abs-path` with the JSON list of uuids and the user's
//! Globus groups token as a bearer token. The ingest API answers a list of
//! `{"uuid", "path"}` (the dataset's directory under the data root of its access level) or
//! `{"uuid", "error"}` per uuid.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tessera_workspaces::datasets::{DatasetResolver, Error, Resolved, Result};

/// The ingest API client.
#[derive(Debug, Clone)]
pub struct HubmapDatasets {
    http: reqwest::Client,
    url: String,
}

/// Longest piece of an error answer kept for the client's message.
const MAX_ERROR_TEXT: usize = 500;

impl HubmapDatasets {
    /// A client of the API at `root_url`.
    pub fn new(root_url: &str, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().timeout(timeout).build()?,
            url: format!(
                "{}/datasets/file-system-abs-path",
                root_url.trim_end_matches('/')
            ),
        })
    }
}

/// The per-uuid answers of `body`, in the order of `uuids`.
fn parse(body: &str, uuids: &[String]) -> Result<Vec<Resolved>> {
    let garbage = |why: &str| Error::Garbage(why.to_owned());
    let items: Vec<Value> = serde_json::from_str(body).map_err(|_| garbage("not a JSON list"))?;
    let mut found = HashMap::new();
    for item in items {
        let uuid = item
            .get("uuid")
            .and_then(Value::as_str)
            .ok_or_else(|| garbage("an item without a uuid"))?;
        let answer = match (item.get("path"), item.get("error")) {
            (_, Some(Value::String(e))) => Resolved::Error(e.clone()),
            (_, Some(e)) if !e.is_null() => Resolved::Error(e.to_string()),
            (Some(Value::String(path)), _) => Resolved::Path(path.clone()),
            _ => return Err(garbage("an item without a path or an error")),
        };
        found.insert(uuid.to_owned(), answer);
    }
    Ok(uuids
        .iter()
        .map(|uuid| {
            found
                .remove(uuid)
                .unwrap_or_else(|| Resolved::Error("not in the answer of the dataset API".into()))
        })
        .collect())
}

#[async_trait]
impl DatasetResolver for HubmapDatasets {
    async fn resolve(&self, uuids: &[String], groups_token: &str) -> Result<Vec<Resolved>> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(groups_token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(uuids).map_err(|e| Error::Garbage(e.to_string()))?)
            .send()
            .await
            .map_err(|e| Error::Unreachable(Box::new(e)))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Error::Unreachable(Box::new(e)))?;
        if !status.is_success() {
            let mut body = body;
            if body.len() > MAX_ERROR_TEXT {
                let cut = (0..=MAX_ERROR_TEXT)
                    .rev()
                    .find(|i| body.is_char_boundary(*i))
                    .unwrap_or(0);
                body.truncate(cut);
            }
            return Err(Error::Status {
                status: status.as_u16(),
                body,
            });
        }
        parse(&body, uuids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn answers_follow_the_asked_order_and_missing_uuids_are_errors() {
        let body = r#"[{"uuid":"b","path":"/data/b"},{"uuid":"a","error":"not found"}]"#;
        assert_eq!(
            parse(body, &uuids(&["a", "b", "c"])).unwrap(),
            vec![
                Resolved::Error("not found".into()),
                Resolved::Path("/data/b".into()),
                Resolved::Error("not in the answer of the dataset API".into()),
            ]
        );
    }

    #[test]
    fn garbage_is_refused() {
        for body in [
            "<html>",
            "{}",
            r#"[{"path":"/x"}]"#,
            r#"[{"uuid":"a"}]"#,
            r#"[{"uuid":"a","path":3}]"#,
        ] {
            assert!(
                matches!(parse(body, &uuids(&["a"])), Err(Error::Garbage(_))),
                "{body}"
            );
        }
    }
}
