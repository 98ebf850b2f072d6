//! `tessera objects put|get|ls|rm|presign`: operator access to the configured object store
//! (S3 when `s3_bucket` is set, else the local directory `objects_root`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::json;
use tessera_kit::objects::{
    ByteRange, ByteStream, ContentMd5, ObjectKey, ObjectStore, PresignPut, PutRequest,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::{Error, Result, TesseraConfig};

/// Bytes per chunk read from a file or standard input.
const CHUNK: usize = 256 << 10;

/// `tessera objects …`
#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// Upload FILE (or standard input: -) to KEY and print its metadata as JSON
    Put {
        key: String,
        /// The file to upload, or - for standard input (then --length is required)
        file: PathBuf,
        /// The exact number of bytes (default: the file's size)
        #[arg(long)]
        length: Option<u64>,
        /// The expected MD5, base64 (default: computed from a file; none for standard input)
        #[arg(long)]
        md5: Option<String>,
        /// The media type to store
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Download KEY to FILE (default: standard output)
    Get {
        key: String,
        file: Option<PathBuf>,
        /// Only bytes START..END (END exclusive, optional): e.g. 100..200 or 100..
        #[arg(long, value_name = "START..END")]
        range: Option<String>,
    },
    /// List the objects whose key starts with PREFIX as JSON lines
    Ls {
        #[arg(default_value = "")]
        prefix: String,
    },
    /// Delete KEY (an error when there is no such object)
    Rm { key: String },
    /// Print a presigned URL (and the headers to send) as JSON
    Presign {
        /// get or put
        #[arg(value_parser = ["get", "put"])]
        method: String,
        key: String,
        /// Seconds the URL stays valid
        #[arg(long, default_value_t = 3600)]
        expires: u64,
        /// For put: the file whose length and MD5 the URL binds
        #[arg(long)]
        file: Option<PathBuf>,
        /// For put: the content type the URL binds
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
    },
}

/// The configured store: S3 when `s3_bucket` is set, else the local directory.
pub async fn open_store(config: &TesseraConfig) -> Result<Arc<dyn ObjectStore>> {
    let objects =
        tessera_service::objects::open_objects(crate::config::PREFIX, &config.s3, &config.objects)
            .await?;
    Ok(objects.store)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A reader as a body stream of [`CHUNK`]-sized chunks.
fn stream_of(reader: impl AsyncRead + Send + Unpin + 'static) -> ByteStream {
    futures::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; CHUNK];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), reader))
            }
            Err(err) => Some((
                Err(tessera_kit::objects::Error::Body(Box::new(err))),
                reader,
            )),
        }
    })
    .boxed()
}

/// The MD5 and length of a file, read once.
async fn md5_of_file(path: &Path) -> Result<(ContentMd5, u64)> {
    let file = tokio::fs::File::open(path).await.map_err(io(path))?;
    let mut body = stream_of(file);
    let mut hasher = Md5::new();
    let mut length = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| Error::Usage(format!("cannot read {}: {err}", path.display())))?;
        length += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((ContentMd5(hasher.finalize().into()), length))
}

fn parse_range(text: &str) -> Result<ByteRange> {
    let usage = || Error::Usage(format!("--range {text:?} must be START..END or START.."));
    let (start, end) = text.split_once("..").ok_or_else(usage)?;
    let start: u64 = start.parse().map_err(|_| usage())?;
    if end.is_empty() {
        return Ok(ByteRange::from(start));
    }
    let end: u64 = end.parse().map_err(|_| usage())?;
    Ok(ByteRange::new(start, end)?)
}

/// Runs `tessera objects …`.
pub async fn run(config: &TesseraConfig, cmd: ObjectsCommand) -> Result<()> {
    let store = open_store(config).await?;
    match cmd {
        ObjectsCommand::Put {
            key,
            file,
            length,
            md5,
            content_type,
        } => {
            let key = ObjectKey::parse(key)?;
            let mut expected_md5 = md5.as_deref().map(ContentMd5::from_base64).transpose()?;
            let (body, length) = if file.as_os_str() == "-" {
                let length = length.ok_or_else(|| {
                    Error::Usage("--length is required when reading standard input".to_owned())
                })?;
                (stream_of(tokio::io::stdin()), length)
            } else {
                let (md5, size) = md5_of_file(&file).await?;
                expected_md5.get_or_insert(md5);
                let body = stream_of(tokio::fs::File::open(&file).await.map_err(io(&file))?);
                (body, length.unwrap_or(size))
            };
            let request = PutRequest {
                length,
                md5: expected_md5,
                content_type,
            };
            let meta = store.put(&key, body, request).await?;
            println!(
                "{}",
                json!({"key": meta.key.as_str(), "size": meta.size, "etag": meta.etag})
            );
            Ok(())
        }
        ObjectsCommand::Get { key, file, range } => {
            let key = ObjectKey::parse(key)?;
            let range = range.as_deref().map(parse_range).transpose()?;
            let mut object = store.get(&key, range).await?;
            match file {
                Some(path) => {
                    // Into a temp file beside the target, renamed when complete.
                    let partial = path.with_extension("partial");
                    let mut out = tokio::fs::File::create(&partial)
                        .await
                        .map_err(io(&partial))?;
                    while let Some(chunk) = object.body.next().await {
                        out.write_all(&chunk?).await.map_err(io(&partial))?;
                    }
                    out.sync_all().await.map_err(io(&partial))?;
                    tokio::fs::rename(&partial, &path)
                        .await
                        .map_err(io(&path))?;
                }
                None => {
                    let mut out = tokio::io::stdout();
                    let stdout = Path::new("<stdout>");
                    while let Some(chunk) = object.body.next().await {
                        out.write_all(&chunk?).await.map_err(io(stdout))?;
                    }
                    out.flush().await.map_err(io(stdout))?;
                }
            }
            Ok(())
        }
        ObjectsCommand::Ls { prefix } => {
            for meta in store.list(&prefix).await? {
                println!(
                    "{}",
                    json!({
                        "key": meta.key.as_str(),
                        "size": meta.size,
                        "last_modified": meta.last_modified.to_rfc3339(),
                        "etag": meta.etag,
                    })
                );
            }
            Ok(())
        }
        ObjectsCommand::Rm { key } => {
            let key = ObjectKey::parse(key)?;
            // Deletes are idempotent in the protocol; an operator wants to hear of a typo.
            store.head(&key).await?;
            store.delete(&key).await?;
            Ok(())
        }
        ObjectsCommand::Presign {
            method,
            key,
            expires,
            file,
            content_type,
        } => {
            let key = ObjectKey::parse(key)?;
            let expires_in = Duration::from_secs(expires);
            let request = if method == "get" {
                store.presign_get(&key, expires_in).await?
            } else {
                let file = file.ok_or_else(|| {
                    Error::Usage("presign put needs --file to bind its length and MD5".to_owned())
                })?;
                let (md5, length) = md5_of_file(&file).await?;
                let put = PresignPut {
                    md5,
                    content_type,
                    length,
                    expires_in,
                };
                store.presign_put(&key, &put).await?
            };
            let headers: serde_json::Map<String, serde_json::Value> = request
                .headers
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect();
            println!(
                "{}",
                json!({
                    "method": request.method,
                    "url": request.url,
                    "headers": headers,
                    "expires_at": request.expires_at.to_rfc3339(),
                })
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("2..5").unwrap(), ByteRange::new(2, 5).unwrap());
        assert_eq!(parse_range("7..").unwrap(), ByteRange::from(7));
        for bad in ["", "5", "a..b", "5..5", "5..2", "..3"] {
            assert!(parse_range(bad).is_err(), "{bad:?}");
        }
    }
}
