//! [`HttpAccessCheck`]: the domain's [`AccessCheck`] port over the auth service's claims
//! repository API (wps.md §5).
//!
//! One GET per question, no auth header, no retries, one timeout. Answers:
//! - single checks: 200 with an RFC 3339 date is access until then; 200 with `null`,
//!   `false` or `""` is no access; 404 is no access; any other status, a body that is not
//!   JSON, another JSON value or a bad date is an error;
//! - lists: 200 with an object of id to date, in the API's key order; 404 is an empty list;
//!   anything else (a non-object, a non-string value, a bad date, a box key that is not a
//!   UUID) is an error.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use tessera_work_orders::datetime::parse_rfc3339;
use tessera_work_orders::{AccessCheck, AccessCheckError};
use uuid::Uuid;

use crate::{Error, Result};

/// The access API client.
#[derive(Debug, Clone)]
pub struct HttpAccessCheck {
    base: String,
    client: reqwest::Client,
}

/// Characters kept as they are in a path segment (RFC 3986 unreserved); everything else is
/// percent-encoded so that an id can never leave its segment.
fn encode_segment(segment: &str) -> String {
    // URL parsers resolve dot segments, which would move the request to another path.
    if segment == "." || segment == ".." {
        return segment.replace('.', "%2E");
    }
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn parse_date(text: &str) -> Result<DateTime<Utc>, AccessCheckError> {
    parse_rfc3339(text)
        .map_err(|e| AccessCheckError::with_source(format!("invalid date {text:?}"), e))
}

impl HttpAccessCheck {
    /// A client for the API at `base_url` (a trailing `/` is dropped) whose requests give up
    /// after `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| Error::AccessClient(e.to_string()))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// GETs `path`; `Ok(None)` for a 404, the JSON body for a 200, an error otherwise.
    async fn get_json(&self, path: &str) -> Result<Option<Value>, AccessCheckError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| AccessCheckError::with_source(format!("GET {url} failed"), e))?;
        match response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::OK => {
                let body = response.bytes().await.map_err(|e| {
                    AccessCheckError::with_source(format!("reading the answer of GET {url}"), e)
                })?;
                serde_json::from_slice(&body).map(Some).map_err(|e| {
                    AccessCheckError::with_source(format!("GET {url} answered invalid JSON"), e)
                })
            }
            status => Err(AccessCheckError::new(format!(
                "GET {url} answered {status}"
            ))),
        }
    }

    /// A single check: until when, or `None`.
    async fn check(&self, path: &str) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        match self.get_json(path).await? {
            None | Some(Value::Null | Value::Bool(false)) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => parse_date(&s).map(Some),
            Some(other) => Err(AccessCheckError::new(format!(
                "GET {path} answered {other} instead of a date"
            ))),
        }
    }

    /// A list: `(key, until)` pairs in the API's key order.
    async fn list(&self, path: &str) -> Result<Vec<(String, DateTime<Utc>)>, AccessCheckError> {
        let map = match self.get_json(path).await? {
            None => return Ok(Vec::new()),
            Some(Value::Object(map)) => map,
            Some(other) => {
                return Err(AccessCheckError::new(format!(
                    "GET {path} answered {other} instead of an object"
                )));
            }
        };
        map.into_iter()
            .map(|(key, value)| match value {
                Value::String(date) => Ok((key, parse_date(&date)?)),
                other => Err(AccessCheckError::new(format!(
                    "GET {path} answered {other} for {key:?} instead of a date"
                ))),
            })
            .collect()
    }
}

#[async_trait]
impl AccessCheck for HttpAccessCheck {
    async fn check_download_access(
        &self,
        user_id: Uuid,
        dataset_id: &str,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        self.check(&format!(
            "/download-access/users/{user_id}/datasets/{}",
            encode_segment(dataset_id)
        ))
        .await
    }

    async fn list_download_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(String, DateTime<Utc>)>, AccessCheckError> {
        self.list(&format!("/download-access/users/{user_id}/datasets"))
            .await
    }

    async fn check_upload_access(
        &self,
        user_id: Uuid,
        box_id: Uuid,
    ) -> Result<Option<DateTime<Utc>>, AccessCheckError> {
        self.check(&format!("/upload-access/users/{user_id}/boxes/{box_id}"))
            .await
    }

    async fn list_upload_access(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, AccessCheckError> {
        self.list(&format!("/upload-access/users/{user_id}/boxes"))
            .await?
            .into_iter()
            .map(|(key, until)| {
                Uuid::parse_str(&key).map(|id| (id, until)).map_err(|e| {
                    AccessCheckError::with_source(format!("box key {key:?} is not a UUID"), e)
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("GHGAD0001"), "GHGAD0001");
        assert_eq!(encode_segment("a/b c?"), "a%2Fb%20c%3F");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment("a.b"), "a.b");
        assert_eq!(encode_segment("ü"), "%C3%BC");
    }
}
