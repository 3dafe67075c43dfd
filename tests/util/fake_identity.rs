//! A fake identity service for tests (Keystone v3 shape, with Huawei IAM's extras): real TLS with
//! a CA made at test time, like [`super::fake_ims`].
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | 300, `{"versions": {"values": [v3]}}` |
//! | `GET /v3`, `GET /v3/` | 200, the v3 version document (its `self` link holds the fake's URL) |
//! | `POST /v3/auth/tokens` | password ([`USER`]/[`PASSWORD`]) or token (one it issued): 201, a fresh token in `X-Subject-Token`, the token body with `expires_at` = now + the lifetime, the project, the user and a catalog naming the image service at `ims_url`; else 401 |
//! | `GET /v3/projects[?name=R]` | AK/SK-signed (the verifier) or a token it issued: the project [`PROJECT_ID`] named [`REGION`] (none for another name) |
//! | `POST /v3.0/OS-CREDENTIAL/securitytokens` | with a token it issued: 201, temporary AK/SK and security token ([`TEMP_AK`], [`TEMP_SK`], [`TEMP_SECURITY_TOKEN`]) |
//! | `POST /v3/users/{USER_ID}/credentials/OS-EC2` | with a token it issued: 201, Keystone's EC2 credential ([`EC2_ACCESS`], [`EC2_SECRET`], its `links.self` ending in the access id) |
//! | `GET`, `DELETE /v3/users/{USER_ID}/credentials/OS-EC2/{access}` | with a token it issued: 200 and the credential, or 204 with no body; another access id: 404, Keystone's `Could not find credential: {access}.` |
//! | anything else | 404 |

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::fake_ims::{SeenRequest, Verifier};
use super::tls::{self, TestCa};

pub const USER: &str = "ims-vcr-tester";
pub const USER_ID: &str = "7116d1a88ead4de6a9fbd3bbc1a9e7ed";
pub const PASSWORD: &str = "S3cret-Passw0rd-for-the-fake";
pub const DOMAIN: &str = "ims-vcr-domain";
pub const DOMAIN_ID: &str = "0f8c5d7a6e4b4c3da1b2c3d4e5f60718";
pub const PROJECT_ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
pub const REGION: &str = "cn-north-4";
pub const TEMP_AK: &str = "HSTATEMPORARYACCESS01";
pub const TEMP_SK: &str = "temporary-secret-key-abcdefghijklmnop";
pub const TEMP_SECURITY_TOKEN: &str = "gQpjbi1ub3J0aC00temporary-security-token-0123456789";
pub const EC2_ACCESS: &str = "27d4cb633a204b75a1b2c3d4e5f60718";
pub const EC2_SECRET: &str = "ec2-secret-5f60718293a4b5c6d7e8f90a";

/// Tokens a [`FakeIdentity`] issued; shared with a fake IMS that accepts them
/// ([`Tokens::verifier`]).
#[derive(Clone, Default)]
pub struct Tokens(Arc<Mutex<Vec<String>>>);

impl Tokens {
    /// Every token issued so far, oldest first.
    pub fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn issue(&self, n: u64) -> String {
        let token = format!("MIIT-fake-keystone-token-{n:04}-{}", std::process::id());
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(token.clone());
        token
    }

    fn valid(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(|known| known == t)
        })
    }

    /// A fake IMS verifier: `X-Auth-Token` must be an issued token; version discovery (`GET /`,
    /// `/v2`) needs none.
    pub fn verifier(&self) -> Verifier {
        let tokens = self.clone();
        Arc::new(move |parts, _| {
            if matches!(parts.uri.path(), "/" | "/v2" | "/v2/") {
                return Ok(());
            }
            let sent = parts
                .headers
                .get("x-auth-token")
                .and_then(|v| v.to_str().ok());
            if tokens.valid(sent) {
                Ok(())
            } else {
                Err(format!("unknown token {sent:?}"))
            }
        })
    }
}

/// How a [`FakeIdentity`] behaves.
#[derive(Clone)]
pub struct IdentityOptions {
    /// The image service's URL in the catalog (the fake IMS's base URL).
    pub ims_url: String,
    /// `expires_at - issued_at` of every token.
    pub token_lifetime: Duration,
    /// Checks AK/SK-signed requests (`GET /v3/projects`); `None` accepts any signature.
    pub verifier: Option<Verifier>,
    /// The tokens issued (share them with the fake IMS).
    pub tokens: Tokens,
}

/// A running fake identity service; `stop` closes it.
pub struct FakeIdentity {
    base_url: String,
    ca_pem: String,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

struct State {
    opts: IdentityOptions,
    base_url: String,
    issued: AtomicU64,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
}

impl FakeIdentity {
    /// Binds `127.0.0.1:0` and serves HTTPS with a fresh test CA.
    pub async fn start(opts: IdentityOptions) -> FakeIdentity {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let ca = TestCa::new();
        let (cert, key) = ca.leaf(&["127.0.0.1", "localhost"], false);
        let acceptor = tls::tls_acceptor(&cert, &key, &[b"http/1.1"]);
        let base_url = format!("https://{addr}");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(State {
            opts,
            base_url: base_url.clone(),
            issued: AtomicU64::new(0),
            requests: requests.clone(),
        });
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    biased;
                    _ = &mut stop => break,
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { continue };
                        let (acceptor, state) = (acceptor.clone(), state.clone());
                        conns.spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else { return };
                            let service = service_fn(move |req| {
                                let state = state.clone();
                                async move { Ok::<_, Infallible>(handle(&state, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(tls), service)
                                .await;
                        });
                    }
                }
            }
            drop(listener);
            conns.shutdown().await;
        });
        FakeIdentity {
            base_url,
            ca_pem: ca.pem,
            requests,
            shutdown,
            task,
        }
    }

    /// `https://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes the listener and every connection.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Keystone's time format: `2026-12-02T15:04:05.000000Z`.
pub fn keystone_time(at: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap()
        .format(&f)
        .unwrap()
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    state
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(SeenRequest {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect(),
            body: body.to_vec(),
        });
    let (status, value, token) = answer(state, &parts, &body);
    let mut response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("x-iam-trace-id", "fake-iam-trace");
    if let Some(token) = token {
        response = response.header("x-subject-token", token);
    }
    if status == StatusCode::NO_CONTENT {
        return response.body(Full::new(Bytes::new())).unwrap();
    }
    response
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap()
}

fn unauthorized() -> (StatusCode, Value, Option<String>) {
    (
        StatusCode::UNAUTHORIZED,
        json!({"error": {"code": 401, "title": "Unauthorized",
                         "message": "The request you have made requires authentication."}}),
        None,
    )
}

fn answer(state: &State, parts: &Parts, body: &[u8]) -> (StatusCode, Value, Option<String>) {
    let base = &state.base_url;
    let v3 = json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/v3/")}],
        "media-types": [{"base": "application/json",
                         "type": "application/vnd.openstack.identity-v3+json"}],
    });
    let token_sent = parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok());
    let tokens = &state.opts.tokens;
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/") => (
            StatusCode::MULTIPLE_CHOICES,
            json!({"versions": {"values": [v3]}}),
            None,
        ),
        (&Method::GET, "/v3" | "/v3/") => (StatusCode::OK, json!({"version": v3}), None),
        (&Method::POST, "/v3/auth/tokens") => {
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return unauthorized();
            };
            let identity = &request["auth"]["identity"];
            let password = &identity["password"]["user"];
            let methods = identity["methods"].clone();
            let by_password = password["name"] == USER && password["password"] == PASSWORD;
            let by_token = tokens.valid(identity["token"]["id"].as_str());
            if !(by_password || by_token) {
                return unauthorized();
            }
            let n = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
            let token = tokens.issue(n);
            let now = time::OffsetDateTime::now_utc();
            let expires = now + state.opts.token_lifetime;
            let domain = json!({"id": DOMAIN_ID, "name": DOMAIN});
            // Keystone lists a token's roles from a set, so each of its worker processes lists
            // them in an order of its own: here every other token lists them the other way.
            let mut roles = vec![
                json!({"id": "1ab2c3d4e5f60718293a4b5c6d7e8f90", "name": "te_admin"}),
                json!({"id": "2bc3d4e5f60718293a4b5c6d7e8f90a1", "name": "readonly"}),
            ];
            if n.is_multiple_of(2) {
                roles.reverse();
            }
            let body = json!({"token": {
                "methods": methods,
                "expires_at": keystone_time(expires),
                "issued_at": keystone_time(now),
                "user": {"id": USER_ID, "name": USER, "domain": domain,
                         "password_expires_at": ""},
                "project": {"id": PROJECT_ID, "name": REGION, "domain": domain},
                "roles": roles,
                "catalog": [
                    {"type": "image", "id": "c7a1e6f2b3d44e5f8a9b0c1d2e3f4a5b", "name": "ims",
                     "endpoints": [{"id": "e1", "interface": "public", "region": REGION,
                                    "region_id": REGION, "url": state.opts.ims_url}]},
                    {"type": "identity", "id": "d8b2f7a3c4e55f6a9b0c1d2e3f4a5b6c", "name": "iam",
                     "endpoints": [{"id": "e2", "interface": "public", "region": "*",
                                    "region_id": "*", "url": format!("{base}/v3")}]},
                ],
            }});
            (StatusCode::CREATED, body, Some(token))
        }
        (&Method::GET, "/v3/projects") => {
            let signed = match &state.opts.verifier {
                Some(verify) => verify(parts, body).is_ok(),
                None => parts.headers.contains_key("authorization"),
            };
            if !(signed || tokens.valid(token_sent)) {
                return unauthorized();
            }
            let name = parts
                .uri
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|p| p.strip_prefix("name="));
            let projects: Vec<Value> = [json!({
                "id": PROJECT_ID, "name": REGION, "domain_id": DOMAIN_ID, "enabled": true,
                "is_domain": false, "parent_id": DOMAIN_ID, "description": "",
                "links": {"self": format!("{base}/v3/projects/{PROJECT_ID}")},
            })]
            .into_iter()
            .filter(|_| name.is_none_or(|n| n == REGION))
            .collect();
            let body = json!({"projects": projects,
                              "links": {"self": format!("{base}/v3/projects"),
                                        "previous": null, "next": null}});
            (StatusCode::OK, body, None)
        }
        (&Method::POST, "/v3.0/OS-CREDENTIAL/securitytokens") => {
            if !tokens.valid(token_sent) {
                return unauthorized();
            }
            let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(900);
            let body = json!({"credential": {
                "access": TEMP_AK, "secret": TEMP_SK, "securitytoken": TEMP_SECURITY_TOKEN,
                "expires_at": keystone_time(expires),
            }});
            (StatusCode::CREATED, body, None)
        }
        (method, path) if path.starts_with(&format!("/v3/users/{USER_ID}/credentials/OS-EC2")) => {
            if !tokens.valid(token_sent) {
                return unauthorized();
            }
            let credentials = format!("/v3/users/{USER_ID}/credentials/OS-EC2");
            let credential = json!({"credential": {
                "user_id": USER_ID, "tenant_id": PROJECT_ID, "access": EC2_ACCESS,
                "secret": EC2_SECRET, "trust_id": null,
                "links": {"self": format!("{base}{credentials}/{EC2_ACCESS}")},
            }});
            match (method, path.strip_prefix(&credentials)) {
                (&Method::POST, Some("")) => (StatusCode::CREATED, credential, None),
                (&Method::GET | &Method::DELETE, Some(access)) if access.starts_with('/') => {
                    let access = &access[1..];
                    match (access == EC2_ACCESS, method) {
                        (true, &Method::GET) => (StatusCode::OK, credential, None),
                        (true, _) => (StatusCode::NO_CONTENT, Value::Null, None),
                        (false, _) => (
                            StatusCode::NOT_FOUND,
                            json!({"error": {"code": 404, "title": "Not Found",
                                             "message": format!("Could not find credential: {access}.")}}),
                            None,
                        ),
                    }
                }
                _ => (
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"error": {"code": 405}}),
                    None,
                ),
            }
        }
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": 404, "title": "Not Found",
                             "message": format!("Could not find {}", parts.uri.path())}}),
            None,
        ),
    }
}
