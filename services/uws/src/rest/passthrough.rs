//! The passthrough reverse proxy `/passthrough/<host>/<port>/…` (§A1; nginx's job in the
//! original deployment, an open relay there): HTTP and websockets, only to the web server of
//! one of the caller's own running jobs (`Uws::passthrough_allowed`), so it is never an
//! open proxy.
//!
//! The caller is the `UWS-Authorization` header's user, or the `uws_token` query parameter's
//! (a browser's first page load: the answer then sets it as an `HttpOnly`, `SameSite=Strict`
//! cookie scoped to the job's path, which the page's own requests and websockets carry), or
//! that cookie's. None of the three reaches the job's server. The upstream path is the
//! request's path unchanged (the job's server runs with `base_url` `/passthrough/<host>/
//! <port>/`); the browser's `Origin` is not forwarded, as the proxy has already decided who
//! may reach the job (the job's server would otherwise refuse every request whose origin is
//! uws's own).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tessera_workspaces::Uws;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use super::{AUTH_HEADER, Answer, RestState};

/// The credential's cookie and query parameter.
const TOKEN_NAME: &str = "uws_token";
/// The largest request body relayed.
const BODY_LIMIT: usize = 256 * 1024 * 1024;
/// The largest websocket message relayed from the browser.
const MESSAGE_LIMIT: usize = 64 * 1024 * 1024;

/// Request headers never relayed: hop-by-hop ones, the ones the client library sets, and
/// the proxy's own credential (the cookie is relayed without it).
const REQUEST_SKIPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "origin",
    "cookie",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
];

/// Response headers never relayed (hop-by-hop, and the length, which actix sets).
const RESPONSE_SKIPPED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

fn failure(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": false, "message": message}))
}

/// The `Cookie` header without the proxy's credential, and that credential.
fn split_cookies(req: &HttpRequest) -> (Option<String>, Option<String>) {
    let mut kept = Vec::new();
    let mut token = None;
    for value in req.headers().get_all(header::COOKIE) {
        for pair in String::from_utf8_lossy(value.as_bytes()).split(';') {
            let pair = pair.trim();
            match pair
                .strip_prefix(TOKEN_NAME)
                .and_then(|r| r.strip_prefix('='))
            {
                Some(value) => token = Some(value.to_owned()),
                None if !pair.is_empty() => kept.push(pair.to_owned()),
                None => {}
            }
        }
    }
    ((!kept.is_empty()).then(|| kept.join("; ")), token)
}

/// The query string without `uws_token`, and that parameter.
fn split_query(query: &str) -> (String, Option<String>) {
    let mut token = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix(TOKEN_NAME) {
            Some(rest) if rest.starts_with('=') => {
                token = Some(rest[1..].to_owned());
                false
            }
            _ => !pair.is_empty(),
        })
        .collect();
    (kept.join("&"), token)
}

/// `host:port` for a URL (IPv6 in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `/passthrough/{host}/{port}/{tail}`, any method.
pub(super) async fn passthrough(
    state: web::Data<RestState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    payload: web::Payload,
) -> Answer {
    let (host, port, _) = path.into_inner();
    let (cookies, cookie_token) = split_cookies(&req);
    let (query, query_token) = split_query(req.query_string());
    let credential = req
        .headers()
        .get(AUTH_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| query_token.as_ref().map(|t| format!("Token {t}")))
        .or_else(|| cookie_token.map(|t| format!("Token {t}")));
    let user = Uws::require(state.uws.authenticate(credential.as_deref())?)?;
    let port = match port.parse::<u16>() {
        Ok(port) if state.uws.passthrough_allowed(user.id, &host, port) => port,
        _ => return Ok(failure(StatusCode::NOT_FOUND, "Not found.")),
    };
    let target = authority(&host, port);
    let path_and_query = if query.is_empty() {
        req.path().to_owned()
    } else {
        format!("{}?{query}", req.path())
    };
    let is_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let mut response = if is_upgrade {
        relay_socket(
            &state,
            &req,
            payload,
            &format!("ws://{target}{path_and_query}"),
            cookies,
        )
        .await?
    } else {
        relay_http(
            &state,
            &req,
            payload,
            &format!("http://{target}{path_and_query}"),
            cookies,
        )
        .await?
    };
    // A browser's first load: keep the credential for the page's own requests.
    if let Some(token) = query_token.filter(|_| response.status().is_success()) {
        let secure = if req.connection_info().scheme() == "https" {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{TOKEN_NAME}={token}; Path=/passthrough/{host}/{port}/; HttpOnly; SameSite=Strict{secure}"
        );
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

fn relayed_request_headers(req: &HttpRequest) -> impl Iterator<Item = (&str, &[u8])> {
    req.headers().iter().filter_map(|(name, value)| {
        let name = name.as_str();
        let skipped = REQUEST_SKIPPED.contains(&name) || name.eq_ignore_ascii_case(AUTH_HEADER);
        (!skipped).then_some((name, value.as_bytes()))
    })
}

async fn relay_http(
    state: &RestState,
    req: &HttpRequest,
    payload: web::Payload,
    url: &str,
    cookies: Option<String>,
) -> Answer {
    let body = match payload.to_bytes_limited(BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => {
            return Ok(failure(
                StatusCode::BAD_REQUEST,
                &format!("Invalid body: {e}"),
            ));
        }
        Err(_) => return Ok(failure(StatusCode::PAYLOAD_TOO_LARGE, "Body too large.")),
    };
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| tessera_workspaces::Error::bad(e.to_string()))?;
    let mut upstream = state.upstream.request(method, url).body(body);
    for (name, value) in relayed_request_headers(req) {
        upstream = upstream.header(name, value);
    }
    if let Some(cookies) = cookies {
        upstream = upstream.header("cookie", cookies);
    }
    let answer = match upstream.send().await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::warn!(url, error = %e, "the job's web server could not be reached");
            return Ok(failure(
                StatusCode::BAD_GATEWAY,
                "The job's web server could not be reached.",
            ));
        }
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !RESPONSE_SKIPPED.contains(&name.as_str()) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    let body = futures::stream::unfold(answer, |mut answer| async move {
        match answer.chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), answer)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), answer)),
        }
    });
    Ok(response.streaming(body))
}

async fn relay_socket(
    state: &RestState,
    req: &HttpRequest,
    payload: web::Payload,
    url: &str,
    cookies: Option<String>,
) -> Answer {
    let unreachable = || {
        failure(
            StatusCode::BAD_GATEWAY,
            "The job's web server could not be reached.",
        )
    };
    let Ok(mut request) = url.into_client_request() else {
        return Ok(unreachable());
    };
    for (name, value) in relayed_request_headers(req) {
        if let (Ok(name), Ok(value)) = (
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()),
            tungstenite::http::HeaderValue::from_bytes(value),
        ) {
            request.headers_mut().append(name, value);
        }
    }
    if let Some(value) = cookies.and_then(|c| tungstenite::http::HeaderValue::from_str(&c).ok()) {
        request.headers_mut().insert("cookie", value);
    }
    let (upstream, answer) = match tokio_tungstenite::connect_async(request).await {
        Ok(connected) => connected,
        Err(tungstenite::Error::Http(refused)) => {
            let status =
                StatusCode::from_u16(refused.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            return Ok(failure(
                status,
                "The job's web server refused the websocket.",
            ));
        }
        Err(e) => {
            tracing::warn!(url, error = %e, "the job's websocket could not be opened");
            return Ok(unreachable());
        }
    };
    let (mut response, mut session, incoming) = actix_ws::handle(req, payload)
        .map_err(|e| tessera_workspaces::Error::bad(format!("Invalid websocket request: {e}")))?;
    if let Some(protocol) = answer
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|p| header::HeaderValue::from_bytes(p.as_bytes()).ok())
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    let mut incoming = incoming
        .max_frame_size(MESSAGE_LIMIT)
        .aggregate_continuations()
        .max_continuation_size(MESSAGE_LIMIT);
    let mut closing = state.uws.closing();
    let (mut to_job, mut from_job) = upstream.split();
    actix_web::rt::spawn(async move {
        use actix_ws::AggregatedMessage as Browser;
        use tungstenite::Message as Job;
        loop {
            tokio::select! {
                message = incoming.next() => {
                    let relayed = match message {
                        Some(Ok(Browser::Text(text))) => Job::Text(text.to_string().into()),
                        Some(Ok(Browser::Binary(bytes))) => Job::Binary(bytes),
                        Some(Ok(Browser::Ping(bytes))) => Job::Ping(bytes),
                        Some(Ok(Browser::Pong(bytes))) => Job::Pong(bytes),
                        Some(Ok(Browser::Close(_)) | Err(_)) | None => break,
                    };
                    if to_job.send(relayed).await.is_err() {
                        break;
                    }
                }
                message = from_job.next() => {
                    let sent = match message {
                        Some(Ok(Job::Text(text))) => session.text(text.as_str().to_owned()).await,
                        Some(Ok(Job::Binary(bytes))) => session.binary(bytes).await,
                        Some(Ok(Job::Ping(bytes))) => session.ping(&bytes).await,
                        Some(Ok(Job::Pong(bytes))) => session.pong(&bytes).await,
                        Some(Ok(Job::Frame(_))) => Ok(()),
                        Some(Ok(Job::Close(_)) | Err(_)) | None => break,
                    };
                    if sent.is_err() {
                        break;
                    }
                }
                _ = closing.wait_for(|c| *c) => break,
            }
        }
        let _ = to_job.close().await;
        let _ = session.close(None).await;
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_is_taken_out_of_the_query() {
        assert_eq!(
            split_query("token=j&uws_token=u&x=1"),
            ("token=j&x=1".to_owned(), Some("u".to_owned()))
        );
        assert_eq!(
            split_query("uws_tokenx=1"),
            ("uws_tokenx=1".to_owned(), None)
        );
        assert_eq!(split_query(""), (String::new(), None));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        assert_eq!(authority("::1", 80), "[::1]:80");
        assert_eq!(authority("node-1.cluster", 8888), "node-1.cluster:8888");
    }
}
