//! [`SessionCodec`]: a relying party's login session cookie, the [`LoginSession`] and its
//! expiry as base64url JSON, signed with HMAC-SHA256 under the service's secret key (as
//! Flask's and Starlette's signed sessions, which the originals use). It holds the state, the
//! PKCE verifier and the nonce, which are the browser's own secrets; signing stops anyone
//! from planting a session of their own.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tessera_tokens::LoginSession;

#[derive(Serialize, Deserialize)]
struct Signed {
    session: LoginSession,
    expires: i64,
}

/// Makes and reads session cookies.
#[derive(Clone)]
pub struct SessionCodec {
    name: String,
    key: Vec<u8>,
    secure: bool,
    lifetime: i64,
    path: String,
}

impl std::fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCodec")
            .field("name", &self.name)
            .field("secure", &self.secure)
            .field("lifetime", &self.lifetime)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SessionCodec {
    /// A codec of the cookie `name`, signing with `key`; cookies live `lifetime` seconds
    /// under `path` (`/` when empty), with `Secure` when `secure`.
    pub fn new(name: &str, key: &str, secure: bool, lifetime: u32, path: &str) -> Self {
        Self {
            name: name.to_owned(),
            key: key.as_bytes().to_vec(),
            secure,
            lifetime: i64::from(lifetime),
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
        }
    }

    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        // Separates this use of the key from any other (and one cookie name from another).
        mac.update(b"tessera-");
        mac.update(self.name.as_bytes());
        mac.update(b"-login-session\0");
        mac.update(payload.as_bytes());
        Some(mac)
    }

    /// The cookie value for `session`, valid until `now + lifetime`.
    pub fn encode(&self, session: &LoginSession, now: i64) -> Option<String> {
        let signed = Signed {
            session: session.clone(),
            expires: now + self.lifetime,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&signed).ok()?);
        let tag = self.mac(&payload)?.finalize().into_bytes();
        Some(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// The session in a cookie value, if it is signed by this key and not expired.
    pub fn decode(&self, value: &str, now: i64) -> Option<LoginSession> {
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(payload)?.verify_slice(&tag).ok()?;
        let signed: Signed = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (signed.expires > now).then_some(signed.session)
    }

    /// The session of the first cookie of this name in `cookie_headers` (the request's
    /// `Cookie` headers), if it is signed by this key and not expired.
    pub fn read<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        now: i64,
    ) -> Option<LoginSession> {
        cookie_headers
            .into_iter()
            .find_map(|header| cookie_value(header, &self.name))
            .and_then(|value| self.decode(value, now))
    }

    /// A `Set-Cookie` value storing `value`.
    pub fn set_cookie(&self, value: &str) -> String {
        format!(
            "{}={value}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.name,
            self.path,
            self.lifetime,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// A `Set-Cookie` value deleting the cookie.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path={}; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.name,
            self.path,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> LoginSession {
        LoginSession {
            state: "st".into(),
            idp: "default".into(),
            redirect: Some("/x".into()),
            code_verifier: "v".into(),
            nonce: "n".into(),
        }
    }

    #[test]
    fn round_trips_and_refuses_tampering_other_keys_and_age() {
        let codec = SessionCodec::new("wts", "key-one-is-long", true, 600, "/");
        let value = codec.encode(&session(), 1000).unwrap();
        assert_eq!(codec.decode(&value, 1599), Some(session()));
        assert_eq!(codec.decode(&value, 1600), None, "expired");
        let other = SessionCodec::new("wts", "key-two-is-long", true, 600, "/");
        assert_eq!(other.decode(&value, 1000), None);
        let other_name = SessionCodec::new("ogdc", "key-one-is-long", true, 600, "/");
        assert_eq!(
            other_name.decode(&value, 1000),
            None,
            "another cookie's context"
        );
        assert_eq!(
            codec.read(["a=1", &format!("b=2; wts={value}")], 1000),
            Some(session())
        );
        assert_eq!(codec.read(["a=1"], 1000), None);
        let (payload, tag) = value.split_once('.').unwrap();
        let mut evil = session();
        evil.redirect = Some("/elsewhere".into());
        let forged = other.encode(&evil, 1000).unwrap();
        let (forged_payload, _) = forged.split_once('.').unwrap();
        assert_eq!(codec.decode(&format!("{forged_payload}.{tag}"), 1000), None);
        assert_eq!(codec.decode(payload, 1000), None);
        assert_eq!(codec.decode("", 1000), None);
    }

    #[test]
    fn cookie_headers() {
        let codec = SessionCodec::new("wts", "k", true, 600, "");
        assert_eq!(
            codec.set_cookie("v"),
            "wts=v; Path=/; Max-Age=600; HttpOnly; SameSite=Lax; Secure"
        );
        let plain = SessionCodec::new("wts", "k", false, 60, "/api");
        assert_eq!(
            plain.clear_cookie(),
            "wts=; Path=/api; Max-Age=0; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            cookie_value("a=1; wts=abc.def; b=2", "wts"),
            Some("abc.def")
        );
        assert_eq!(cookie_value("wtsx=1", "wts"), None);
    }
}
