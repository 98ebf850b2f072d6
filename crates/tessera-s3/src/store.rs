//! [`S3ObjectStore`]: the object storage protocol on object_store's `AmazonS3`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, GetRange, MultipartUpload, ObjectStore as _,
    ObjectStoreExt as _, PutMultipartOptions, PutOptions, PutPayload,
};
use tessera_kit::objects::{
    self, ByteRange, ByteStream, GetObject, ObjectKey, ObjectMeta, ObjectStore, PresignPut,
    PresignedRequest, PutRequest, UploadCheck, check_content_type, check_expiry, check_prefix,
};

use crate::sigv4::{Presign, Signer, uri_encode};
use crate::{Error, Result, S3Config};

/// Uploads larger than this go as multipart uploads of parts this size (S3's minimum part
/// is 5 MiB); smaller ones as one `PUT`.
pub const PART_SIZE: usize = 8 << 20;
/// Parts in flight at once: memory stays below `(PARTS_IN_FLIGHT + 1) * PART_SIZE`.
pub const PARTS_IN_FLIGHT: usize = 2;

/// The object storage protocol on one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Arc<AmazonS3>,
    signer: Signer,
    bucket: String,
    /// `scheme://authority` of the bucket (with the bucket as a subdomain when
    /// virtual-hosted).
    origin: String,
    host: String,
    /// `/<bucket>` in path style, empty when virtual-hosted.
    bucket_path: String,
}

/// `scheme://authority` of an endpoint URL that has no path.
fn split_endpoint(url: &str) -> Result<(&str, &str)> {
    let bad = |why: &str| Error::Config(format!("s3_endpoint_url {url:?} {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("is not an absolute URL"))?;
    if scheme != "http" && scheme != "https" {
        return Err(bad("must start with http:// or https://"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(bad(
            "must be scheme://host[:port] without path, query or user",
        ));
    }
    Ok((scheme, authority))
}

impl S3ObjectStore {
    /// A store on `config.s3_bucket`. Makes no request: a wrong endpoint or credentials
    /// show at the first call.
    pub fn new(config: &S3Config) -> Result<Self> {
        let bucket = config.s3_bucket.trim();
        if bucket.is_empty() {
            return Err(Error::Config("s3_bucket is empty".to_owned()));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        {
            return Err(Error::Config(format!(
                "s3_bucket {bucket:?} must be lower-case letters, digits, - and ."
            )));
        }
        if config.s3_access_key_id.is_empty() || config.s3_secret_access_key.is_empty() {
            return Err(Error::Config(
                "s3_access_key_id and s3_secret_access_key must be set".to_owned(),
            ));
        }
        let region = config.s3_region.trim();
        let endpoint = if config.s3_endpoint_url.trim().is_empty() {
            format!("https://s3.{region}.amazonaws.com")
        } else {
            config.s3_endpoint_url.trim().to_owned()
        };
        let (scheme, authority) = split_endpoint(&endpoint)?;
        let (host, bucket_path) = if config.s3_virtual_hosted_style {
            (format!("{bucket}.{authority}"), String::new())
        } else {
            (authority.to_owned(), format!("/{bucket}"))
        };
        let origin = format!("{scheme}://{host}");
        let client_endpoint = if config.s3_virtual_hosted_style {
            origin.clone()
        } else {
            format!("{scheme}://{authority}")
        };

        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_endpoint(client_endpoint)
            .with_allow_http(scheme == "http")
            .with_virtual_hosted_style_request(config.s3_virtual_hosted_style)
            .with_access_key_id(&config.s3_access_key_id)
            .with_secret_access_key(config.s3_secret_access_key.expose());
        if !config.s3_session_token.is_empty() {
            builder = builder.with_token(config.s3_session_token.expose());
        }
        let client = builder
            .build()
            .map_err(|err| Error::Backend(Box::new(err)))?;
        Ok(Self {
            client: Arc::new(client),
            signer: Signer {
                access_key_id: config.s3_access_key_id.clone(),
                secret_access_key: config.s3_secret_access_key.clone(),
                session_token: config.s3_session_token.clone(),
                region: region.to_owned(),
            },
            bucket: bucket.to_owned(),
            origin,
            host,
            bucket_path,
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn presign(
        &self,
        method: &'static str,
        key: &ObjectKey,
        headers: &[(&str, String)],
        expires_in: Duration,
    ) -> objects::Result<PresignedRequest> {
        let expires_secs = check_expiry(expires_in)?;
        let now = Utc::now();
        let path = format!("{}/{}", self.bucket_path, uri_encode(key.as_str(), true));
        let url = self.signer.presign(&Presign {
            method,
            origin: &self.origin,
            host: &self.host,
            path: &path,
            headers,
            expires_secs,
            now,
        });
        Ok(PresignedRequest {
            method,
            url,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
            expires_at: now + chrono::Duration::seconds(expires_secs as i64),
        })
    }
}

fn path(key: &ObjectKey) -> objects::Result<Path> {
    // ObjectKey's rules are stricter than object_store's, so this only fails on a bug.
    Path::parse(key.as_str()).map_err(objects::Error::backend)
}

fn map_err(key: &ObjectKey, err: object_store::Error) -> objects::Error {
    match err {
        object_store::Error::NotFound { .. } => objects::Error::NotFound {
            key: key.to_string(),
        },
        other => objects::Error::backend(other),
    }
}

fn meta(key: ObjectKey, meta: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        key,
        size: meta.size,
        last_modified: meta.last_modified,
        etag: meta.e_tag.clone(),
    }
}

fn attributes(content_type: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    if let Some(content_type) = content_type {
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(content_type.to_owned()),
        );
    }
    attributes
}

/// The upload in progress: nothing until the first full part, then a multipart upload.
struct Upload<'a> {
    store: &'a S3ObjectStore,
    path: Path,
    content_type: Option<&'a str>,
    multipart: Option<Box<dyn MultipartUpload>>,
    in_flight: FuturesUnordered<object_store::UploadPart>,
}

impl Upload<'_> {
    async fn send_part(&mut self, part: PutPayload) -> Result<(), object_store::Error> {
        if self.multipart.is_none() {
            let options = PutMultipartOptions {
                attributes: attributes(self.content_type),
                ..Default::default()
            };
            self.multipart = Some(
                self.store
                    .client
                    .put_multipart_opts(&self.path, options)
                    .await?,
            );
        }
        if let Some(upload) = self.multipart.as_mut() {
            self.in_flight.push(upload.put_part(part));
        }
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            if let Some(done) = self.in_flight.next().await {
                done?;
            }
        }
        Ok(())
    }

    /// Sends the last part, waits for every part and completes the upload.
    async fn finish(
        &mut self,
        last: PutPayload,
    ) -> Result<object_store::PutResult, object_store::Error> {
        if last.content_length() > 0 {
            self.send_part(last).await?;
        }
        while let Some(done) = self.in_flight.next().await {
            done?;
        }
        match self.multipart.as_mut() {
            Some(multipart) => multipart.complete().await,
            None => Err(object_store::Error::Generic {
                store: "S3",
                source: "no multipart upload to complete".into(),
            }),
        }
    }

    /// Aborts a started multipart upload, so that no part stays behind.
    async fn abort(mut self) {
        self.in_flight.clear();
        if let Some(mut upload) = self.multipart.take() {
            // Best effort: an abandoned upload is invisible and S3 lifecycle rules reap it.
            let _ = upload.abort().await;
        }
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(
        &self,
        key: &ObjectKey,
        mut body: ByteStream,
        request: PutRequest,
    ) -> objects::Result<ObjectMeta> {
        let mut check = UploadCheck::new(key, &request)?;
        let mut upload = Upload {
            store: self,
            path: path(key)?,
            content_type: request.content_type.as_deref(),
            multipart: None,
            in_flight: FuturesUnordered::new(),
        };
        let mut part: Vec<Bytes> = Vec::new();
        let mut part_len = 0usize;
        while let Some(item) = body.next().await {
            let chunk = match check.chunk(item) {
                Ok(chunk) => chunk,
                Err(err) => {
                    upload.abort().await;
                    return Err(err);
                }
            };
            part_len += chunk.len();
            part.push(chunk);
            if part_len >= PART_SIZE {
                let payload: PutPayload = std::mem::take(&mut part).into_iter().collect();
                part_len = 0;
                if let Err(err) = upload.send_part(payload).await {
                    upload.abort().await;
                    return Err(map_err(key, err));
                }
            }
        }
        let total = match check.finish() {
            Ok(total) => total,
            Err(err) => {
                upload.abort().await;
                return Err(err);
            }
        };

        let payload: PutPayload = part.into_iter().collect();
        let result = if upload.multipart.is_none() {
            let options = PutOptions {
                attributes: attributes(request.content_type.as_deref()),
                ..Default::default()
            };
            self.client.put_opts(&upload.path, payload, options).await
        } else {
            let result = upload.finish(payload).await;
            if result.is_err() {
                upload.abort().await;
            }
            result
        };
        let result = result.map_err(|err| map_err(key, err))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: total,
            last_modified: Utc::now(),
            etag: result.e_tag,
        })
    }

    async fn get(&self, key: &ObjectKey, range: Option<ByteRange>) -> objects::Result<GetObject> {
        let options = GetOptions {
            range: range.map(|r| match r.end {
                Some(end) => GetRange::Bounded(r.start..end),
                None => GetRange::Offset(r.start),
            }),
            ..Default::default()
        };
        let result = match self.client.get_opts(&path(key)?, options).await {
            Ok(result) => result,
            Err(err) => {
                let err = map_err(key, err);
                // S3 answers a range past the end with 416, which object_store reports as a
                // generic error: tell it apart by the size.
                if let (Some(range), objects::Error::Backend(_)) = (range, &err) {
                    let size = self.head(key).await?.size;
                    range.resolve(key, size)?;
                }
                return Err(err);
            }
        };
        let meta = meta(key.clone(), &result.meta);
        let range = result.range.clone();
        let body = result
            .into_stream()
            .map_err(objects::Error::backend)
            .boxed();
        Ok(GetObject { meta, range, body })
    }

    async fn head(&self, key: &ObjectKey) -> objects::Result<ObjectMeta> {
        let found = self
            .client
            .head(&path(key)?)
            .await
            .map_err(|err| map_err(key, err))?;
        Ok(meta(key.clone(), &found))
    }

    async fn delete(&self, key: &ObjectKey) -> objects::Result<()> {
        match self.client.delete(&path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(err) => Err(objects::Error::backend(err)),
        }
    }

    async fn list(&self, prefix: &str) -> objects::Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        // object_store lists whole path segments, so list the directory of the prefix and
        // filter by the string prefix.
        let dir = prefix.rsplit_once('/').map(|(dir, _)| dir);
        let dir = dir
            .map(Path::parse)
            .transpose()
            .map_err(objects::Error::backend)?;
        let mut found: Vec<ObjectMeta> = self
            .client
            .list(dir.as_ref())
            .map_err(objects::Error::backend)
            .try_filter_map(|m| async move {
                let location = m.location.as_ref();
                if !location.starts_with(prefix) {
                    return Ok(None);
                }
                // Objects written by other tools under keys outside ObjectKey's rules are
                // not listed.
                Ok(ObjectKey::parse(location).ok().map(|key| meta(key, &m)))
            })
            .try_collect()
            .await?;
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> objects::Result<()> {
        self.client
            .copy(&path(from)?, &path(to)?)
            .await
            .map_err(|err| map_err(from, err))
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        request: &PresignPut,
    ) -> objects::Result<PresignedRequest> {
        check_content_type(&request.content_type)?;
        let headers = [
            ("Content-MD5", request.md5.to_base64()),
            ("Content-Type", request.content_type.clone()),
            ("Content-Length", request.length.to_string()),
        ];
        self.presign("PUT", key, &headers, request.expires_in)
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: Duration,
    ) -> objects::Result<PresignedRequest> {
        self.presign("GET", key, &[], expires_in)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> S3Config {
        S3Config {
            s3_endpoint_url: "http://127.0.0.1:9000".to_owned(),
            s3_bucket: "data".to_owned(),
            s3_access_key_id: "AK".to_owned(),
            s3_secret_access_key: "SK".into(),
            ..S3Config::default()
        }
    }

    #[test]
    fn path_style_and_virtual_hosted_urls() {
        let store = S3ObjectStore::new(&config()).unwrap();
        let key = ObjectKey::parse("a/b+c").unwrap();
        let url = store
            .presign("GET", &key, &[], Duration::from_secs(60))
            .unwrap()
            .url;
        assert!(
            url.starts_with("http://127.0.0.1:9000/data/a/b%2Bc?X-Amz-"),
            "{url}"
        );

        let vhost = S3ObjectStore::new(&S3Config {
            s3_endpoint_url: String::new(),
            s3_region: "eu-central-1".to_owned(),
            s3_virtual_hosted_style: true,
            ..config()
        })
        .unwrap();
        let url = vhost
            .presign("GET", &key, &[], Duration::from_secs(60))
            .unwrap()
            .url;
        assert!(
            url.starts_with("https://data.s3.eu-central-1.amazonaws.com/a/b%2Bc?"),
            "{url}"
        );
        assert!(url.contains("%2Feu-central-1%2Fs3%2Faws4_request"), "{url}");
    }

    #[test]
    fn bad_configs_are_refused_with_the_key() {
        let cases = [
            (
                S3Config {
                    s3_bucket: String::new(),
                    ..config()
                },
                "s3_bucket is empty",
            ),
            (
                S3Config {
                    s3_bucket: "Upper".to_owned(),
                    ..config()
                },
                "s3_bucket \"Upper\"",
            ),
            (
                S3Config {
                    s3_secret_access_key: "".into(),
                    ..config()
                },
                "s3_secret_access_key",
            ),
            (
                S3Config {
                    s3_endpoint_url: "ftp://h".to_owned(),
                    ..config()
                },
                "http:// or https://",
            ),
            (
                S3Config {
                    s3_endpoint_url: "http://h/path".to_owned(),
                    ..config()
                },
                "without path",
            ),
            (
                S3Config {
                    s3_endpoint_url: "h:9000".to_owned(),
                    ..config()
                },
                "absolute URL",
            ),
        ];
        for (config, expected) in cases {
            let err = S3ObjectStore::new(&config).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }
}
