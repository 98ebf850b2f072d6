//! The rules of [`TokenService`] on the real embedded store and Fernet, with mocked IdPs,
//! validator and workspace resolver.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tessera_embedded::EmbeddedStore;
use tessera_kit::dao::{Dao, Filter, JsonDao};

use super::*;
use crate::fernet::Fernet;
use crate::model::{CodeGrant, RefreshGrant};
use crate::ports::{
    MockAccessTokenValidator, MockIdentityResolver, MockTokenExchange, ResolveError,
    ValidationError,
};
use crate::refresh_token_spec;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

#[derive(Debug)]
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Tokens `alice-token` and `bob-token` are valid; the workspace at 10.0.0.1 is carol's.
fn validator() -> MockAccessTokenValidator {
    let mut v = MockAccessTokenValidator::new();
    v.expect_validate().returning(|token| match token {
        "alice-token" => Ok(identity("alice")),
        "bob-token" => Ok(identity("bob")),
        _ => Err(ValidationError("bad signature".into())),
    });
    v
}

fn identity(name: &str) -> Identity {
    Identity {
        subject: format!("sub-{name}"),
        username: name.to_owned(),
    }
}

fn resolver() -> MockIdentityResolver {
    let mut r = MockIdentityResolver::new();
    r.expect_resolve().returning(|caller| {
        Ok((caller.remote_ip == Some(ip("10.0.0.1"))).then(|| "carol".to_owned()))
    });
    r
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn caller(token: Option<&str>, remote: Option<&str>) -> Caller {
    Caller {
        token: token.map(str::to_owned),
        remote_ip: remote.map(ip),
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    dao: Arc<dyn Dao<RefreshTokenRecord>>,
    fernet: Arc<Fernet>,
    clock: Arc<TestClock>,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path().join("wts.sqlite")).unwrap();
        let dao = JsonDao::open(&store, refresh_token_spec("refresh_token"))
            .await
            .unwrap();
        Self {
            _dir: dir,
            dao,
            fernet: Arc::new(Fernet::new(&Fernet::generate_key()).unwrap()),
            clock: Arc::new(TestClock(AtomicI64::new(NOW))),
        }
    }

    fn service_with(
        &self,
        validator: MockAccessTokenValidator,
        resolver: MockIdentityResolver,
        idps: Vec<(&str, &str, MockTokenExchange)>,
    ) -> TokenService {
        let idps = idps
            .into_iter()
            .map(|(id, host, exchange)| Idp {
                id: id.to_owned(),
                name: format!("{id} login"),
                base_url: format!("https://{host}/"),
                commons_host: host.to_owned(),
                login_url: format!("https://wts/oauth2/authorization_url?idp={id}"),
                state_prefix: (id == "shared").then(|| "wts1".to_owned()),
                exchange: Arc::new(exchange),
            })
            .collect();
        TokenService::new(
            self.dao.clone(),
            self.fernet.clone(),
            self.clock.clone(),
            Arc::new(validator),
            Arc::new(resolver),
            idps,
            Settings::default(),
        )
    }

    fn service(&self, idps: Vec<(&str, &str, MockTokenExchange)>) -> TokenService {
        self.service_with(validator(), resolver(), idps)
    }

    async fn store(&self, username: &str, idp: &str, token: &str, expires: i64) -> String {
        let id = Uuid::new_v4().to_string();
        self.dao
            .insert(&RefreshTokenRecord {
                id: id.clone(),
                token_ciphertext: self.fernet.encrypt(token).unwrap(),
                jti: format!("jti-{token}"),
                username: username.to_owned(),
                userid: format!("idp-sub-{username}"),
                idp: idp.to_owned(),
                expires,
            })
            .await
            .unwrap();
        id
    }

    async fn rows(&self) -> Vec<RefreshTokenRecord> {
        let mut rows = self.dao.find_all(&Filter::new()).await.unwrap();
        rows.sort_by(|a, b| {
            (&a.username, &a.idp, a.expires).cmp(&(&b.username, &b.idp, b.expires))
        });
        rows
    }

    fn plain(&self, row: &RefreshTokenRecord) -> String {
        self.fernet.decrypt(&row.token_ciphertext).unwrap()
    }
}

/// An exchange that refreshes `<refresh>` into `access-for-<refresh>`, without rotation.
fn refreshing() -> MockTokenExchange {
    let mut x = MockTokenExchange::new();
    x.expect_refresh().returning(|rt| {
        Ok(RefreshGrant {
            access_token: format!("access-for-{rt}"),
            refresh_token: None,
        })
    });
    x
}

fn untouched() -> MockTokenExchange {
    MockTokenExchange::new()
}

// ---- /token ----

#[tokio::test]
async fn default_idp_uses_the_workspace_only_even_with_a_token() {
    let h = Harness::new().await;
    h.store("carol", "default", "rt-carol", NOW + DAY).await;
    let mut v = MockAccessTokenValidator::new();
    v.expect_validate().never();
    let svc = h.service_with(v, resolver(), vec![("default", "fence", refreshing())]);
    let token = svc
        .access_token(&caller(Some("alice-token"), Some("10.0.0.1")), None, None)
        .await
        .unwrap();
    assert_eq!(token, "access-for-rt-carol");
    let err = svc
        .access_token(
            &caller(Some("alice-token"), Some("10.9.9.9")),
            Some("default"),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotAuthenticated), "{err:?}");
}

#[tokio::test]
async fn other_idps_take_a_token_first_then_the_workspace() {
    let h = Harness::new().await;
    h.store("alice", "ext", "rt-alice", NOW + DAY).await;
    h.store("carol", "ext", "rt-carol", NOW + DAY).await;
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("ext", "ext.org", refreshing()),
    ]);
    let by_token = svc
        .access_token(
            &caller(Some("alice-token"), Some("10.0.0.1")),
            Some("ext"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(by_token, "access-for-rt-alice");
    let by_pod = svc
        .access_token(&caller(None, Some("10.0.0.1")), Some("ext"), None)
        .await
        .unwrap();
    assert_eq!(by_pod, "access-for-rt-carol");
    let invalid = svc
        .access_token(&caller(Some("forged"), Some("10.0.0.1")), Some("ext"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&invalid, Error::Unauthenticated(m) if m == "bad signature"),
        "{invalid:?}"
    );
}

#[tokio::test]
async fn checks_run_in_the_original_order() {
    let h = Harness::new().await;
    let svc = h.service(vec![("default", "fence", untouched())]);
    let anonymous = caller(None, Some("10.9.9.9"));
    let err = svc
        .access_token(&anonymous, Some("nope"), Some("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NotAuthenticated),
        "identity first: {err:?}"
    );
    let carol = caller(None, Some("10.0.0.1"));
    let err = svc
        .access_token(&carol, Some("nope"), Some("1.5"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidExpires),
        "then expires: {err:?}"
    );
    let err = svc
        .access_token(&carol, Some("nope"), Some(" 3600 "))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownIdp(i) if i == "nope"),
        "then the idp: {err:?}"
    );
    let err = svc
        .access_token(&carol, None, Some("-5"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NoRefreshToken),
        "then the row: {err:?}"
    );
}

#[tokio::test]
async fn the_newest_row_wins_and_an_expired_newest_row_refuses() {
    let h = Harness::new().await;
    h.store("carol", "default", "rt-old", NOW + DAY).await;
    h.store("carol", "default", "rt-new", NOW + 2 * DAY).await;
    h.store("carol", "other", "rt-other", NOW + 3 * DAY).await;
    let svc = h.service(vec![
        ("default", "fence", refreshing()),
        ("other", "o", untouched()),
    ]);
    let carol = caller(None, Some("10.0.0.1"));
    assert_eq!(
        svc.access_token(&carol, None, None).await.unwrap(),
        "access-for-rt-new"
    );
    h.clock.0.store(NOW + 2 * DAY, Ordering::SeqCst);
    let err = svc.access_token(&carol, None, None).await.unwrap_err();
    assert!(matches!(err, Error::RefreshTokenExpired), "{err:?}");
}

#[tokio::test]
async fn a_rotated_refresh_token_replaces_the_row() {
    let h = Harness::new().await;
    let id = h.store("carol", "default", "rt-1", NOW + DAY).await;
    let mut x = MockTokenExchange::new();
    x.expect_refresh()
        .times(1)
        .withf(|rt| rt == "rt-1")
        .returning(|_| {
            Ok(RefreshGrant {
                access_token: "at-1".into(),
                refresh_token: Some(IssuedRefreshToken {
                    token: "rt-2".into(),
                    expires: None,
                    jti: Some("jti-2".into()),
                }),
            })
        });
    x.expect_refresh()
        .times(1)
        .withf(|rt| rt == "rt-2")
        .returning(|_| {
            Ok(RefreshGrant {
                access_token: "at-2".into(),
                refresh_token: Some(IssuedRefreshToken {
                    token: "rt-3".into(),
                    expires: Some(NOW + 5 * DAY),
                    jti: None,
                }),
            })
        });
    let svc = h.service(vec![("default", "fence", x)]);
    let carol = caller(None, Some("10.0.0.1"));
    assert_eq!(svc.access_token(&carol, None, None).await.unwrap(), "at-1");
    let rows = h.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].id.as_str(), rows[0].jti.as_str()),
        (id.as_str(), "jti-2")
    );
    assert_eq!(h.plain(&rows[0]), "rt-2");
    assert_eq!(
        rows[0].expires,
        NOW + DAY,
        "an opaque rotated token keeps the old expiry"
    );
    assert_eq!(svc.access_token(&carol, None, None).await.unwrap(), "at-2");
    let rows = h.rows().await;
    assert_eq!(h.plain(&rows[0]), "rt-3");
    assert_eq!(rows[0].expires, NOW + 5 * DAY);
    assert!(
        Uuid::parse_str(&rows[0].jti).is_ok(),
        "a token without jti gets a uuid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_a_rotating_idp_take_turns() {
    use std::collections::HashSet;
    use std::sync::Mutex;

    let h = Harness::new().await;
    h.store("carol", "default", "rt-0", NOW + DAY).await;
    // Like oidc-provider: each refresh token works once and is replaced.
    let spent = Arc::new(Mutex::new(HashSet::new()));
    let mut x = MockTokenExchange::new();
    x.expect_refresh().returning(move |rt| {
        if !spent.lock().unwrap().insert(rt.to_owned()) {
            return Err(ExchangeError::Rejected {
                status: 400,
                body: "reused".into(),
            });
        }
        let n: u32 = rt.trim_start_matches("rt-").parse().unwrap();
        Ok(RefreshGrant {
            access_token: format!("at-{n}"),
            refresh_token: Some(IssuedRefreshToken {
                token: format!("rt-{}", n + 1),
                expires: None,
                jti: None,
            }),
        })
    });
    let svc = Arc::new(h.service(vec![("default", "fence", x)]));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.access_token(&caller(None, Some("10.0.0.1")), None, None)
                    .await
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap().unwrap());
    }
    tokens.sort();
    assert_eq!(tokens, ["at-0", "at-1", "at-2", "at-3", "at-4", "at-5"]);
    assert_eq!(h.plain(&h.rows().await[0]), "rt-6");
    assert!(
        svc.refreshing.lock().unwrap().is_empty(),
        "locks are released"
    );
}

#[tokio::test]
async fn refresh_failures_map_to_their_errors() {
    let h = Harness::new().await;
    h.store("carol", "default", "rt", NOW + DAY).await;
    let mut x = MockTokenExchange::new();
    x.expect_refresh()
        .times(1)
        .returning(|_| Err(ExchangeError::Unreachable("timed out".into())));
    x.expect_refresh().times(1).returning(|_| {
        Err(ExchangeError::Rejected {
            status: 400,
            body: r#"{"error":"invalid_grant"}"#.into(),
        })
    });
    let svc = h.service(vec![("default", "fence", x)]);
    let carol = caller(None, Some("10.0.0.1"));
    let err = svc.access_token(&carol, None, None).await.unwrap_err();
    assert!(matches!(err, Error::IdpUnreachable { .. }), "{err:?}");
    let err = svc.access_token(&carol, None, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::RefreshRefused { status: 400, body, .. } if body.contains("invalid_grant")),
        "{err:?}"
    );
}

#[tokio::test]
async fn resolver_and_cipher_failures_are_errors_not_anonymity() {
    let h = Harness::new().await;
    let id = h.store("carol", "default", "rt", NOW + DAY).await;
    let mut r = MockIdentityResolver::new();
    r.expect_resolve()
        .times(1)
        .returning(|_| Err(ResolveError("kubernetes api unreachable".into())));
    r.expect_resolve().returning(|_| Ok(Some("carol".into())));
    let svc = h.service_with(validator(), r, vec![("default", "fence", untouched())]);
    let err = svc
        .access_token(&Caller::default(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Identity(_)), "{err:?}");
    let mut row = h.dao.get_by_id(&id).await.unwrap();
    row.token_ciphertext = Fernet::new(&Fernet::generate_key())
        .unwrap()
        .encrypt("rt")
        .unwrap();
    h.dao.update(&row).await.unwrap();
    let err = svc
        .access_token(&Caller::default(), None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Cipher(_)), "{err:?}");
}

// ---- login ----

#[tokio::test]
async fn start_login_checks_the_redirect_then_the_idp() {
    let h = Harness::new().await;
    let mut x = MockTokenExchange::new();
    x.expect_authorization_url().returning(|req| {
        Ok(format!(
            "https://idp/auth?state={}&challenge={}",
            req.state, req.code_challenge
        ))
    });
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("shared", "s.org", x),
    ]);
    for bad in [
        "https://evil",
        "evil",
        "//evil.org/x",
        "/\\evil",
        "/\t/evil.example",
        "/\r/evil.example",
        "/\n/evil.example",
        "/\u{b}/evil.example",
        "/ok\\..\\evil",
        "/ok\nSet-Cookie: x=1",
        "/%09/evil.example",
        "/%2509/evil.example",
        "/%252F/evil.example",
        "/%5C/evil.example",
        "/%2F/evil.example",
    ] {
        let err = svc.start_login(Some("nope"), Some(bad)).await.unwrap_err();
        assert!(matches!(err, Error::AbsoluteRedirect), "{bad}: {err:?}");
    }
    let err = svc
        .start_login(Some("nope"), Some("/ok"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownIdp(_)), "{err:?}");
    for good in ["/", "/back?x=1", "/a%20b/c", "/x?next=%2Fhome"] {
        let start = svc.start_login(Some("shared"), Some(good)).await.unwrap();
        assert_eq!(start.session.redirect.as_deref(), Some(good));
    }
    let start = svc
        .start_login(Some("shared"), Some("/back?x=1"))
        .await
        .unwrap();
    let s = &start.session;
    let random = s
        .state
        .strip_prefix("wts1-")
        .expect("shared redirect uri: prefixed state");
    assert_eq!(random.len(), 30);
    assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(s.redirect.as_deref(), Some("/back?x=1"));
    assert_eq!(s.idp, "shared");
    assert!(s.code_verifier.len() >= 43 && s.nonce.len() >= 16);
    assert_eq!(
        start.url,
        format!(
            "https://idp/auth?state={}&challenge={}",
            s.state,
            pkce_challenge(&s.code_verifier)
        )
    );
    let again = svc.start_login(Some("shared"), Some("")).await.unwrap();
    assert_ne!(again.session.state, s.state);
    assert_eq!(again.session.redirect, None, "an empty redirect is none");
}

#[test]
fn pkce_challenge_is_rfc7636_s256() {
    // RFC 7636 appendix B.
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

fn session(idp: &str) -> LoginSession {
    LoginSession {
        state: "the-state".into(),
        idp: idp.into(),
        redirect: Some("/home".into()),
        code_verifier: "verifier".into(),
        nonce: "nonce".into(),
    }
}

fn callback(state: &str) -> Callback {
    Callback {
        code: Some("the-code".into()),
        state: Some(state.into()),
        iss: Some("https://idp".into()),
        ..Callback::default()
    }
}

fn code_exchange(
    subject: &str,
    token: &str,
    expires: Option<i64>,
    jti: Option<&str>,
) -> MockTokenExchange {
    let (subject, token, jti) = (subject.to_owned(), token.to_owned(), jti.map(str::to_owned));
    let mut x = MockTokenExchange::new();
    x.expect_exchange_code()
        .withf(|req| {
            req.code == "the-code"
                && req.code_verifier == "verifier"
                && req.nonce == "nonce"
                && req.iss.as_deref() == Some("https://idp")
        })
        .returning(move |_| {
            Ok(CodeGrant {
                subject: subject.clone(),
                idp_username: Some("someone@idp".into()),
                refresh_token: IssuedRefreshToken {
                    token: token.clone(),
                    expires,
                    jti: jti.clone(),
                },
            })
        });
    x
}

#[tokio::test]
async fn finish_login_refuses_a_foreign_state_and_an_unknown_caller_before_the_exchange() {
    let h = Harness::new().await;
    let mut x = MockTokenExchange::new();
    x.expect_exchange_code().never();
    let svc = h.service(vec![("default", "fence", untouched()), ("ext", "e", x)]);
    let alice = caller(Some("alice-token"), None);
    for (session, state) in [(None, "the-state"), (Some(session("ext")), "other")] {
        let err = svc
            .finish_login(&alice, session.as_ref(), &callback(state))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::StateMismatch), "{err:?}");
    }
    let no_state = Callback {
        state: None,
        ..callback("x")
    };
    let err = svc
        .finish_login(&alice, Some(&session("ext")), &no_state)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::StateMismatch), "{err:?}");
    let pod = caller(None, Some("10.0.0.1"));
    let err = svc
        .finish_login(&pod, Some(&session("ext")), &callback("the-state"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unauthenticated(_)),
        "a commons token is required: {err:?}"
    );
    let forged = caller(Some("forged"), None);
    let err = svc
        .finish_login(&forged, Some(&session("ext")), &callback("the-state"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
    let denied = Callback {
        code: None,
        error: Some("access_denied".into()),
        error_description: Some("user said no".into()),
        ..callback("the-state")
    };
    let err = svc
        .finish_login(&alice, Some(&session("ext")), &denied)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::LoginRefused(m) if m == "access_denied user said no"),
        "{err:?}"
    );
    let no_code = Callback {
        code: None,
        ..callback("the-state")
    };
    let err = svc
        .finish_login(&alice, Some(&session("ext")), &no_code)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LoginRefused(_)), "{err:?}");
    let err = svc
        .finish_login(&alice, Some(&session("gone")), &callback("the-state"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownIdp(_)), "{err:?}");
    assert!(h.rows().await.is_empty());
}

#[tokio::test]
async fn finish_login_stores_the_token_encrypted_and_moves_the_account() {
    let h = Harness::new().await;
    // bob linked the same IdP account before; alice has a row at another IdP.
    h.dao
        .insert(&RefreshTokenRecord {
            id: Uuid::new_v4().to_string(),
            token_ciphertext: h.fernet.encrypt("rt-bob").unwrap(),
            jti: "jti-bob".into(),
            username: "bob".into(),
            userid: "ext-sub-1".into(),
            idp: "ext".into(),
            expires: NOW + DAY,
        })
        .await
        .unwrap();
    h.store("alice", "other", "rt-other", NOW + DAY).await;
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        (
            "ext",
            "e",
            code_exchange("ext-sub-1", "rt-alice", Some(NOW + 30 * DAY), Some("jti-a")),
        ),
        ("other", "o", untouched()),
    ]);
    let done = svc
        .finish_login(
            &caller(Some("alice-token"), None),
            Some(&session("ext")),
            &callback("the-state"),
        )
        .await
        .unwrap();
    assert_eq!(done.redirect.as_deref(), Some("/home"));
    let rows = h.rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let ext = rows.iter().find(|r| r.idp == "ext").unwrap();
    assert_eq!(
        (
            ext.username.as_str(),
            ext.userid.as_str(),
            ext.jti.as_str(),
            ext.expires
        ),
        ("alice", "ext-sub-1", "jti-a", NOW + 30 * DAY)
    );
    assert!(!ext.token_ciphertext.contains("rt-alice"));
    assert_eq!(h.plain(ext), "rt-alice");
    assert!(
        rows.iter()
            .any(|r| r.idp == "other" && r.username == "alice")
    );
}

#[tokio::test]
async fn an_opaque_refresh_token_gets_the_default_lifetime_and_a_uuid_jti() {
    let h = Harness::new().await;
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("ext", "e", code_exchange("s", "opaque", None, None)),
    ]);
    svc.finish_login(
        &caller(Some("alice-token"), None),
        Some(&session("ext")),
        &callback("the-state"),
    )
    .await
    .unwrap();
    let rows = h.rows().await;
    assert_eq!(
        rows[0].expires,
        NOW + Settings::default().opaque_refresh_token_lifetime
    );
    assert!(Uuid::parse_str(&rows[0].jti).is_ok());
}

#[tokio::test]
async fn code_exchange_failures_map_to_their_errors() {
    let h = Harness::new().await;
    let mut x = MockTokenExchange::new();
    let answers = [
        ExchangeError::InvalidResponse("missing refresh_token".into()),
        ExchangeError::InvalidIdToken("nonce mismatch".into()),
        ExchangeError::Rejected {
            status: 400,
            body: "bad code".into(),
        },
        ExchangeError::Unreachable("timeout".into()),
    ];
    for answer in answers {
        x.expect_exchange_code()
            .times(1)
            .return_once(move |_| Err(answer));
    }
    let svc = h.service(vec![("default", "fence", untouched()), ("ext", "e", x)]);
    let alice = caller(Some("alice-token"), None);
    let mut errors = Vec::new();
    for _ in 0..4 {
        errors.push(
            svc.finish_login(&alice, Some(&session("ext")), &callback("the-state"))
                .await
                .unwrap_err(),
        );
    }
    assert!(matches!(&errors[0], Error::TokenResponse(m) if m == "missing refresh_token"));
    assert!(matches!(&errors[1], Error::LoginRefused(m) if m.contains("nonce mismatch")));
    assert!(matches!(&errors[2], Error::LoginRefused(_)));
    assert!(matches!(&errors[3], Error::IdpUnreachable { .. }));
    assert!(h.rows().await.is_empty());
}

// ---- connected, logout ----

#[tokio::test]
async fn connected_works_for_every_idp() {
    let h = Harness::new().await;
    h.store("alice", "ext", "rt", NOW + DAY).await;
    h.store("alice", "old", "rt-old", NOW - 1).await;
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("ext", "e", untouched()),
        ("old", "o", untouched()),
    ]);
    let alice = caller(Some("alice-token"), None);
    svc.connected(&alice, Some("ext")).await.unwrap();
    for (idp, who) in [(Some("old"), &alice), (None, &alice)] {
        let err = svc.connected(who, idp).await.unwrap_err();
        assert!(matches!(err, Error::NotConnected), "{idp:?}: {err:?}");
    }
    let bob = caller(Some("bob-token"), None);
    assert!(matches!(
        svc.connected(&bob, Some("ext")).await,
        Err(Error::NotConnected)
    ));
    for who in [caller(None, Some("10.0.0.1")), caller(Some("forged"), None)] {
        assert!(matches!(
            svc.connected(&who, Some("ext")).await,
            Err(Error::NotLoggedIn)
        ));
    }
    assert!(matches!(
        svc.connected(&alice, Some("nope")).await,
        Err(Error::UnknownIdp(_))
    ));
}

#[tokio::test]
async fn logout_revokes_at_each_idp_and_deletes() {
    let h = Harness::new().await;
    h.store("alice", "ext", "rt-ext-1", NOW + DAY).await;
    h.store("alice", "ext", "rt-ext-2", NOW + 2 * DAY).await;
    h.store("alice", "plain", "rt-plain", NOW + DAY).await;
    h.store("bob", "ext", "rt-bob", NOW + DAY).await;
    let mut ext = MockTokenExchange::new();
    ext.expect_revoke()
        .times(2)
        .withf(|t| t == "rt-ext-1" || t == "rt-ext-2")
        .returning(|_| Ok(()));
    let mut plain = MockTokenExchange::new();
    plain
        .expect_revoke()
        .times(1)
        .returning(|_| Err(ExchangeError::Unsupported("no revocation endpoint".into())));
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("ext", "e", ext),
        ("plain", "p", plain),
    ]);
    assert_eq!(
        svc.logout(&caller(Some("alice-token"), None), None)
            .await
            .unwrap(),
        3
    );
    let rows = h.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].username, "bob");
}

#[tokio::test]
async fn logout_of_one_idp_reports_a_failed_revocation_but_deletes() {
    let h = Harness::new().await;
    h.store("carol", "ext", "rt-ext", NOW + DAY).await;
    h.store("carol", "keep", "rt-keep", NOW + DAY).await;
    let mut ext = MockTokenExchange::new();
    ext.expect_revoke().times(1).returning(|_| {
        Err(ExchangeError::Rejected {
            status: 503,
            body: "down".into(),
        })
    });
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("ext", "e", ext),
        ("keep", "k", untouched()),
    ]);
    let err = svc
        .logout(&caller(None, Some("10.0.0.1")), Some("ext"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::LogoutFailed(m) if m.contains("ext")),
        "{err:?}"
    );
    let rows = h.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].idp, "keep");
    for who in [
        caller(None, Some("10.9.9.9")),
        caller(Some("forged"), Some("10.0.0.1")),
    ] {
        assert!(matches!(
            svc.logout(&who, None).await,
            Err(Error::NotLoggedIn)
        ));
    }
    assert!(matches!(
        svc.logout(&caller(None, Some("10.0.0.1")), Some("nope"))
            .await,
        Err(Error::UnknownIdp(_))
    ));
}

// ---- listing, aggregate, purge ----

#[tokio::test]
async fn providers_list_external_idps_with_the_time_left() {
    let h = Harness::new().await;
    h.store("alice", "b", "rt-b1", NOW + 29 * DAY + 3600).await;
    h.store("alice", "b", "rt-b0", NOW + DAY).await;
    h.store("alice", "c", "rt-c", NOW - 10).await;
    h.store("alice", "default", "rt-d", NOW + DAY).await;
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("b", "b.org", untouched()),
        ("a", "a.org", untouched()),
        ("c", "c.org", untouched()),
    ]);
    let listing = svc
        .providers(&caller(Some("alice-token"), None), false)
        .await
        .unwrap();
    let got: Vec<(&str, Option<&str>)> = listing
        .iter()
        .map(|p| (p.idp.as_str(), p.refresh_token_expiration.as_deref()))
        .collect();
    assert_eq!(got, vec![("b", Some("29 days")), ("a", None), ("c", None)]);
    assert_eq!(listing[0].name, "b login");
    assert_eq!(
        listing[0].login_url,
        "https://wts/oauth2/authorization_url?idp=b"
    );
    assert_eq!(listing[0].base_url, "https://b.org/");
    let unexpired = svc
        .providers(&caller(Some("alice-token"), None), true)
        .await
        .unwrap();
    assert_eq!(unexpired.len(), 1);
    for anonymous in [Caller::default(), caller(Some("forged"), None)] {
        let listing = svc.providers(&anonymous, false).await.unwrap();
        assert_eq!(listing.len(), 3);
        assert!(listing.iter().all(|p| p.refresh_token_expiration.is_none()));
        assert!(svc.providers(&anonymous, true).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn commons_tokens_pick_the_newest_row_per_host_and_fall_back_to_anonymous() {
    let h = Harness::new().await;
    h.store("alice", "x1", "rt-x1", NOW + DAY).await;
    h.store("alice", "x2", "rt-x2", NOW + 2 * DAY).await;
    h.store("alice", "y", "rt-y", NOW + DAY).await;
    h.store("alice", "z", "rt-z", NOW - 1).await;
    let mut failing = MockTokenExchange::new();
    failing
        .expect_refresh()
        .returning(|_| Err(ExchangeError::Unreachable("down".into())));
    let svc = h.service(vec![
        ("default", "fence", untouched()),
        ("x1", "x.org", untouched()),
        ("x2", "x.org", refreshing()),
        ("y", "y.org", failing),
        ("z", "z.org", untouched()),
    ]);
    let tokens = svc
        .commons_tokens(&caller(Some("alice-token"), None))
        .await
        .unwrap();
    assert_eq!(
        tokens,
        vec![
            ("fence".to_owned(), None),
            ("x.org".to_owned(), Some("access-for-rt-x2".to_owned())),
            ("y.org".to_owned(), None),
            ("z.org".to_owned(), None),
        ]
    );
    let anonymous = svc.commons_tokens(&Caller::default()).await.unwrap();
    assert_eq!(anonymous.len(), 4);
    assert!(anonymous.iter().all(|(_, t)| t.is_none()));
    let err = svc
        .commons_tokens(&caller(Some("forged"), None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthenticated(_)), "{err:?}");
}

#[tokio::test]
async fn purge_deletes_expired_rows_only() {
    let h = Harness::new().await;
    h.store("a", "default", "rt-1", NOW - 100).await;
    h.store("b", "default", "rt-2", NOW).await;
    h.store("c", "default", "rt-3", NOW + 1).await;
    let svc = h.service(vec![("default", "fence", untouched())]);
    assert_eq!(svc.purge_expired().await.unwrap(), 2);
    let rows = h.rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].username, "c");
    assert_eq!(svc.purge_expired().await.unwrap(), 0);
    svc.check_storage().await.unwrap();
}
