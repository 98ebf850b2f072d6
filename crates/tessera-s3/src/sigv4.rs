//! AWS Signature Version 4 query presigning (the `X-Amz-*` query parameters), written here
//! because object_store's `signed_url` signs only the `host` header, while an upload URL
//! must bind `Content-MD5`, `Content-Type` and `Content-Length` so that the server refuses
//! any other upload.
//!
//! The algorithm: <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>.
//! The payload is `UNSIGNED-PAYLOAD` (the body is bound through `Content-MD5` instead).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tessera_config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// Credentials and region of one signer.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    pub region: String,
}

/// One request to presign.
#[derive(Debug)]
pub(crate) struct Presign<'a> {
    pub method: &'a str,
    /// `scheme://authority`, no trailing slash.
    pub origin: &'a str,
    /// The authority as the client sends it in `Host`.
    pub host: &'a str,
    /// The path, already URI-encoded (see [`uri_encode`] with `keep_slash`).
    pub path: &'a str,
    /// Headers besides `host` that the client must send as given (names in any case).
    pub headers: &'a [(&'a str, String)],
    pub expires_secs: u64,
    pub now: DateTime<Utc>,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// SigV4's URI encoding: every byte but `A-Za-z0-9-_.~` as `%XX` (upper case); `/` kept
/// when `keep_slash` (paths) and encoded otherwise (query values).
pub(crate) fn uri_encode(value: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Signer {
    /// The presigned URL.
    pub fn presign(&self, request: &Presign<'_>) -> String {
        let date = request.now.format("%Y%m%d").to_string();
        let amz_date = request.now.format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{date}/{}/s3/aws4_request", self.region);

        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        headers.push(("host".to_owned(), request.host.to_owned()));
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let canonical_headers: String = headers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();

        let mut query = vec![
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
            (
                "X-Amz-Credential",
                format!("{}/{scope}", self.access_key_id),
            ),
            ("X-Amz-Date", amz_date.clone()),
            ("X-Amz-Expires", request.expires_secs.to_string()),
            ("X-Amz-SignedHeaders", signed_headers.clone()),
        ];
        if !self.session_token.is_empty() {
            query.push((
                "X-Amz-Security-Token",
                self.session_token.expose().to_owned(),
            ));
        }
        // The parameter names sort the same encoded or not: they are all unreserved.
        query.sort_by(|a, b| a.0.cmp(b.0));
        let canonical_query = query
            .iter()
            .map(|(name, value)| format!("{name}={}", uri_encode(value, false)))
            .collect::<Vec<_>>()
            .join("&");

        let canonical_request = format!(
            "{}\n{}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
            request.method, request.path
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_access_key.expose()).as_bytes(),
            date.as_bytes(),
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
        format!(
            "{}{}?{canonical_query}&X-Amz-Signature={signature}",
            request.origin, request.path
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn aws_example_signer() -> Signer {
        Signer {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: Secret::default(),
            region: "us-east-1".to_owned(),
        }
    }

    /// The worked example of AWS's "Authenticating Requests: Using Query Parameters" page
    /// (a known answer computed by AWS, not by this code).
    #[test]
    fn matches_the_aws_documentation_example() {
        let url = aws_example_signer().presign(&Presign {
            method: "GET",
            origin: "https://examplebucket.s3.amazonaws.com",
            host: "examplebucket.s3.amazonaws.com",
            path: "/test.txt",
            headers: &[],
            expires_secs: 86400,
            now: Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap(),
        });
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
    }

    #[test]
    fn bound_headers_are_signed_and_change_the_signature() {
        let signer = aws_example_signer();
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let sign = |md5: &str| {
            signer.presign(&Presign {
                method: "PUT",
                origin: "http://127.0.0.1:8014",
                host: "127.0.0.1:8014",
                path: "/b/k%2B1",
                headers: &[
                    ("Content-Type", "text/plain".to_owned()),
                    ("Content-MD5", md5.to_owned()),
                    ("Content-Length", "3".to_owned()),
                ],
                expires_secs: 60,
                now,
            })
        };
        let url = sign("rL0Y20zC+Fzt72VPzMSk2A==");
        assert!(url.starts_with("http://127.0.0.1:8014/b/k%2B1?"), "{url}");
        assert!(
            url.contains("X-Amz-SignedHeaders=content-length%3Bcontent-md5%3Bcontent-type%3Bhost"),
            "{url}"
        );
        assert_ne!(url, sign("AAAAAAAAAAAAAAAAAAAAAA=="));
    }

    #[test]
    fn a_session_token_is_a_signed_query_parameter() {
        let mut signer = aws_example_signer();
        signer.session_token = "tok/en+".into();
        let url = signer.presign(&Presign {
            method: "GET",
            origin: "https://h",
            host: "h",
            path: "/k",
            headers: &[],
            expires_secs: 1,
            now: Utc::now(),
        });
        assert!(url.contains("&X-Amz-Security-Token=tok%2Fen%2B&"), "{url}");
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(uri_encode("a/b c+=~", true), "a/b%20c%2B%3D~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
