//! A fake Huawei Cloud IMS endpoint for tests: real TLS with a CA made at test time, answers like
//! the IMS reference.
//!
//! [`FakeIms::start`] binds `127.0.0.1:0` and serves HTTP/1.1 (over TLS unless
//! [`FakeOptions::plain_http`]). Every answer is compact JSON with
//! `Content-Type: application/json;charset=utf8`, a counter-based `X-Request-Id` and two
//! `X-Fake-Repeat` headers (`one`, then `two`). Routes:
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | 300, Glance versions document holding the fake's absolute URL |
//! | `GET /v2`, `GET /v2/` | 200, same versions document |
//! | `GET /v2/schemas/image` | 200, a Glance image schema |
//! | `GET /v2/images[?owner=X]` | 200, `{"images":[seed],...}` filtered by owner |
//! | `GET /v2/images/{SEED_IMAGE_ID}` | 200, [`seed_image_json`] |
//! | `GET /v2/images/{POLLING_IMAGE_ID}` | 200, status `queued`, `saving`, then `active` |
//! | `GET /v2/images/{error_image_id(s)}` | status `s` with an IMS or API-gateway error body |
//! | `GET /v2/images/{other}` | 404, `IMG.0027` naming the id |
//! | `GET /slow` | 200 `{}` after 30 s |
//! | `GET /cut` | head with `Content-Length: 10000`, 100 body bytes, then the connection drops |
//! | `GET /big` | 200, about 300 KB of images |
//! | `GET /headers-echo` | 200, the request headers as `[[name, value], ...]` |
//! | `POST`/`PUT`/`PATCH /v2/images[/...]` | 200, `{"method","path","body"}` echo |
//! | anything else | 404, `IMG.0027` |
//!
//! `HEAD` is answered like `GET` (hyper leaves the body out).

// Each integration-test binary includes this module but uses only some of its helpers.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use super::gzip;
use super::tls::{self, TestCa};

/// The image of the reference's example response.
pub const SEED_IMAGE_ID: &str = "bc6bed6e-ba3a-4447-afcc-449174a3eb52";
/// An image that does not exist: 404 (same as `error_image_id(404)`).
pub const UNKNOWN_IMAGE_ID: &str = "00000000-0000-4000-8000-000000000404";
/// An image whose status moves `queued`, `saving`, `active`, `active`... one step per GET.
pub const POLLING_IMAGE_ID: &str = "5ee0a9b4-1c2d-4e5f-8a9b-0c1d2e3f4a5b";

/// Prefix of the image ids that answer a fixed error status.
const ERROR_ID_PREFIX: &str = "00000000-0000-4000-8000-";

/// The example body of the IMS reference ("Example response"), byte for byte.
const SEED_IMAGE_TEXT: &str = r#"{
      "schema": "/v2/schemas/image",
      "min_disk": 100,
      "created_at": "2018-09-06T14:03:27Z",
      "__image_source_type": "uds",
      "container_format": "bare",
      "file": "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52/file",
      "updated_at": "2018-09-06T15:17:33Z",
      "protected": true,
      "checksum": "d41d8cd98f00b204e9800998ecf8427e",
      "id": "bc6bed6e-ba3a-4447-afcc-449174a3eb52",
      "__isregistered": "true",
      "min_ram": 2048,
      "__lazyloading": "true",
      "owner": "1bed856811654c1cb661a6ca845ebc77",
      "__os_type": "Linux",
      "__imagetype": "gold",
      "visibility": "public",
      "virtual_env_type": "FusionCompute",
      "tags": [],
      "__platform": "CentOS",
      "size": 0,
      "__os_bit": "64",
      "__os_version": "CentOS 7.3 64bit",
      "name": "CentOS 7.3 64bit vivado",
      "self": "/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52",
      "disk_format": "zvhd2",
      "virtual_size": null,
      "status": "active"
}"#;

/// Size of the `/big` body, at least.
const BIG_BODY_BYTES: usize = 300 * 1024;
/// `/cut` announces this many body bytes...
const CUT_ANNOUNCED_BYTES: usize = 10_000;
/// ...and sends only this many before dropping the connection.
const CUT_SENT_BYTES: usize = 100;
/// How long `/slow` waits before answering.
const SLOW_DELAY: Duration = Duration::from_secs(30);

/// Image id answering `status` (400, 401, 403, 404, 429, 500 and 503 have tailored bodies; any
/// other 4xx/5xx gets a generic IMS error): `00000000-0000-4000-8000-000000000503` for 503.
pub fn error_image_id(status: u16) -> String {
    format!("{ERROR_ID_PREFIX}{status:012}")
}

/// The reference's example body, key order kept.
pub fn seed_image_json() -> Value {
    serde_json::from_str(SEED_IMAGE_TEXT).expect("the seed example is valid JSON")
}

/// Checks a request (head and whole body); `Err(reason)` makes the fake answer 401.
pub type Verifier = Arc<dyn Fn(&Parts, &[u8]) -> Result<(), String> + Send + Sync>;

/// How a [`FakeIms`] behaves.
#[derive(Clone, Default)]
pub struct FakeOptions {
    /// Serve `http://` instead of `https://`.
    pub plain_http: bool,
    /// Gzip bodies when the request's `Accept-Encoding` allows gzip.
    pub gzip: bool,
    /// Require `X-Auth-Token: <this>` (unless the verifier accepts the request); else 401
    /// IMS-style JSON.
    pub require_token: Option<String>,
    /// Called on every request; `Err(reason)` gives 401 API-gateway JSON (`APIGW.0301`) unless
    /// `require_token` is set and matched.
    pub verifier: Option<Verifier>,
    /// Sleep this long before answering every request.
    pub delay: Option<Duration>,
}

impl FakeOptions {
    /// Plain `http://`, otherwise the defaults.
    pub fn plain() -> FakeOptions {
        FakeOptions {
            plain_http: true,
            ..Default::default()
        }
    }
}

/// One request as the fake received it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path_and_query: String,
    /// Lower-case names, in hyper's `HeaderMap` order (repeated names stay in their order).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A running fake IMS endpoint; dropping it shuts it down in the background, `stop` waits.
pub struct FakeIms {
    addr: SocketAddr,
    base_url: String,
    ca_pem: String,
    state: Arc<State>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl FakeIms {
    /// Binds `127.0.0.1:0` and starts serving; connections are accepted once this returns.
    pub async fn start(opts: FakeOptions) -> FakeIms {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake IMS to 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake IMS local address");
        let (acceptor, ca_pem) = if opts.plain_http {
            (None, String::new())
        } else {
            let (acceptor, ca_pem) = tls_acceptor();
            (Some(acceptor), ca_pem)
        };
        let scheme = if opts.plain_http { "http" } else { "https" };
        let base_url = format!("{scheme}://{addr}");
        let state = Arc::new(State::new(opts, base_url.clone()));
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, acceptor, state.clone(), shutdown_rx));
        FakeIms {
            addr,
            base_url,
            ca_pem,
            state,
            shutdown,
            task,
        }
    }

    /// `https://127.0.0.1:PORT` (or `http://` with `plain_http`), no trailing slash.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signed the server certificate (empty with `plain_http`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`Self::ca_pem`] to `dir/ca.pem` and returns that path.
    pub fn write_ca_pem(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the fake IMS CA PEM");
        path
    }

    /// A rustls client config (ring provider) trusting only this fake's CA; ALPN unset.
    pub fn tls_client_config(&self) -> rustls::ClientConfig {
        tls::client_config(&self.ca_pem)
    }

    /// TCP connections accepted so far (counted before any TLS handshake).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order (recorded before auth checks and delay).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes the listener and every open connection; afterwards connecting to `addr` is refused.
    pub async fn stop(self) {
        let FakeIms { shutdown, task, .. } = self;
        // An Err only means the accept loop is already gone.
        let _ = shutdown.send(());
        let _ = task.await;
    }
}

/// What the fake shares between its connections.
struct State {
    opts: FakeOptions,
    base_url: String,
    connections: AtomicUsize,
    requests: Mutex<Vec<SeenRequest>>,
    polls: AtomicUsize,
    request_ids: AtomicU64,
}

impl State {
    fn new(opts: FakeOptions, base_url: String) -> State {
        State {
            opts,
            base_url,
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            polls: AtomicUsize::new(0),
            request_ids: AtomicU64::new(0),
        }
    }

    fn next_request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::SeqCst) + 1;
        format!("fake-ims-{n:06}")
    }

    fn record(&self, parts: &Parts, body: &[u8]) {
        let seen = SeenRequest {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
            headers: header_pairs(parts),
            body: body.to_vec(),
        };
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
    }
}

// ---------------------------------------------------------------------------------------------
// TLS

/// A fresh test CA and a leaf for `127.0.0.1`, `::1` and `localhost`; returns the acceptor and the
/// CA PEM.
fn tls_acceptor() -> (TlsAcceptor, String) {
    let ca = TestCa::new();
    let (cert, key) = ca.leaf(&["127.0.0.1", "::1", "localhost"], false);
    (tls::tls_acceptor(&cert, &key, &[b"http/1.1"]), ca.pem)
}

// ---------------------------------------------------------------------------------------------
// Connections

/// Accepts until told to stop (or the `FakeIms` is dropped), then closes the listener and aborts
/// every connection task before returning.
async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    state: Arc<State>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                state.connections.fetch_add(1, Ordering::SeqCst);
                conns.spawn(serve_tcp(tcp, acceptor.clone(), state.clone()));
            }
        }
    }
    drop(listener);
    conns.shutdown().await;
}

async fn serve_tcp(tcp: TcpStream, acceptor: Option<TlsAcceptor>, state: Arc<State>) {
    // Best effort: only latency depends on it.
    let _ = tcp.set_nodelay(true);
    match acceptor {
        None => serve_io(tcp, state).await,
        Some(acceptor) => {
            if let Ok(tls) = acceptor.accept(tcp).await {
                serve_io(tls, state).await;
            }
        }
    }
}

async fn serve_io<I>(io: I, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    // Connection errors (client gone, `/cut`) are part of what the fake is for.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

// ---------------------------------------------------------------------------------------------
// Requests

type FakeBody = BoxBody<Bytes, io::Error>;

/// One request being answered.
struct Ctx<'a> {
    state: &'a State,
    parts: &'a Parts,
    body: &'a [u8],
    request_id: &'a str,
}

/// An answer before headers and encoding are added.
struct Reply {
    status: StatusCode,
    body: ReplyBody,
    retry_after: bool,
}

enum ReplyBody {
    Json(Value),
    Cut,
    /// No body at all (a `304 Not Modified`).
    Empty,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: ReplyBody::Json(body),
            retry_after: false,
        }
    }

    fn ok(body: Value) -> Reply {
        Reply::json(StatusCode::OK, body)
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<FakeBody> {
    let request_id = state.next_request_id();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let reply = ims_error(
                StatusCode::BAD_REQUEST,
                "IMG.0001",
                &format!("unreadable body: {e}"),
            );
            return finish(state, &parts, &request_id, reply);
        }
    };
    state.record(&parts, &body);
    if let Some(delay) = state.opts.delay {
        tokio::time::sleep(delay).await;
    }
    let cx = Ctx {
        state,
        parts: &parts,
        body: &body,
        request_id: &request_id,
    };
    let reply = match authorize(&cx) {
        Ok(()) => route(&cx).await,
        Err(reply) => reply,
    };
    finish(state, &parts, &request_id, reply)
}

/// Token and verifier checks; a request passes when either configured check accepts it.
fn authorize(cx: &Ctx<'_>) -> Result<(), Reply> {
    let opts = &cx.state.opts;
    if opts.require_token.is_none() && opts.verifier.is_none() {
        return Ok(());
    }
    let sent_token = cx
        .parts
        .headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok());
    let token_ok = opts
        .require_token
        .as_deref()
        .is_some_and(|t| sent_token == Some(t));
    let verdict = opts
        .verifier
        .as_ref()
        .map(|verify| verify(cx.parts, cx.body));
    if token_ok || matches!(verdict, Some(Ok(()))) {
        return Ok(());
    }
    Err(match verdict {
        Some(Err(reason)) => gateway_401(cx.request_id, &reason),
        _ => ims_error(
            StatusCode::UNAUTHORIZED,
            "IMG.0002",
            "Authentication required: missing or invalid X-Auth-Token",
        ),
    })
}

async fn route(cx: &Ctx<'_>) -> Reply {
    let path = cx.parts.uri.path();
    let method = &cx.parts.method;
    if *method == Method::GET || *method == Method::HEAD {
        if let Some(reply) = get_route(cx, path).await {
            return reply;
        }
    } else if matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        && (path == "/v2/images" || path.starts_with("/v2/images/"))
    {
        return Reply::ok(echo(cx));
    }
    not_found(&format!("resource {path} could not be found"))
}

async fn get_route(cx: &Ctx<'_>, path: &str) -> Option<Reply> {
    let base_url = &cx.state.base_url;
    let reply = match path {
        "/" => Reply::json(StatusCode::MULTIPLE_CHOICES, versions_doc(base_url)),
        "/v2" | "/v2/" => Reply::ok(versions_doc(base_url)),
        "/v2/schemas/image" => Reply::ok(image_schema()),
        "/v2/images" => Reply::ok(image_list(cx.parts.uri.query())),
        "/slow" => {
            tokio::time::sleep(SLOW_DELAY).await;
            Reply::ok(json!({}))
        }
        "/cut" => Reply {
            status: StatusCode::OK,
            body: ReplyBody::Cut,
            retry_after: false,
        },
        "/big" => Reply::ok(big_doc()),
        "/headers-echo" => Reply::ok(headers_echo(cx.parts)),
        // A conditional GET: `If-None-Match: "v1"` gets a 304, anything else the document.
        "/etagged" => match cx.parts.headers.get(header::IF_NONE_MATCH) {
            Some(v) if v == "\"v1\"" => Reply {
                status: StatusCode::NOT_MODIFIED,
                body: ReplyBody::Empty,
                retry_after: false,
            },
            _ => Reply::ok(json!({"version": "v1"})),
        },
        _ => {
            return path
                .strip_prefix("/v2/images/")
                .map(|id| image_reply(cx, id));
        }
    };
    Some(reply)
}

fn image_reply(cx: &Ctx<'_>, id: &str) -> Reply {
    if id == SEED_IMAGE_ID {
        return Reply::ok(seed_image_json());
    }
    if id == POLLING_IMAGE_ID {
        let step = cx.state.polls.fetch_add(1, Ordering::SeqCst);
        let status = ["queued", "saving"].get(step).copied().unwrap_or("active");
        return Reply::ok(image_with(POLLING_IMAGE_ID, status));
    }
    let fixed = id
        .strip_prefix(ERROR_ID_PREFIX)
        .filter(|tail| tail.len() == 12)
        .and_then(|tail| tail.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|s| s.is_client_error() || s.is_server_error());
    match fixed {
        Some(status) => error_reply(status, id, cx.request_id),
        None => image_not_found(id),
    }
}

/// The answer of `error_image_id(status)`.
fn error_reply(status: StatusCode, id: &str, request_id: &str) -> Reply {
    let mut reply = match status.as_u16() {
        400 => ims_error(
            status,
            "IMG.0001",
            "invalid request: the image id or a parameter is malformed",
        ),
        401 => gateway_401(request_id, "verify aksk signature fail"),
        403 => ims_error(
            status,
            "IMG.0003",
            "forbidden: you do not have the rights to perform the operation",
        ),
        404 => image_not_found(id),
        429 => gateway_error(
            status,
            "APIGW.0308",
            "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute",
            request_id,
        ),
        500 => ims_error(
            status,
            "IMG.0013",
            "internal error: the image service failed to handle the request",
        ),
        503 => ims_error(
            status,
            "IMG.0010",
            "service unavailable: the image service is busy, try again later",
        ),
        code => ims_error(
            status,
            &format!("IMG.0{code}"),
            &format!("fake error {code}"),
        ),
    };
    reply.retry_after = matches!(status.as_u16(), 429 | 503);
    reply
}

fn ims_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(status, json!({"error": {"code": code, "message": message}}))
}

fn gateway_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Reply {
    Reply::json(
        status,
        json!({"error_msg": message, "error_code": code, "request_id": request_id}),
    )
}

fn gateway_401(request_id: &str, reason: &str) -> Reply {
    let message = format!("Incorrect IAM authentication information: {reason}");
    gateway_error(StatusCode::UNAUTHORIZED, "APIGW.0301", &message, request_id)
}

fn image_not_found(id: &str) -> Reply {
    not_found(&format!("image {id} could not be found"))
}

fn not_found(message: &str) -> Reply {
    ims_error(StatusCode::NOT_FOUND, "IMG.0027", message)
}

// ---------------------------------------------------------------------------------------------
// Documents

/// The seed image with another id (and self/file links) and status.
fn image_with(id: &str, status: &str) -> Value {
    let mut image = seed_image_json();
    image["id"] = json!(id);
    image["self"] = json!(format!("/v2/images/{id}"));
    image["file"] = json!(format!("/v2/images/{id}/file"));
    image["status"] = json!(status);
    image
}

fn versions_doc(base_url: &str) -> Value {
    json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": format!("{base_url}/v2/"), "rel": "self"}],
    }]})
}

fn image_list(query: Option<&str>) -> Value {
    let owner = query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(key, value)| (key == "owner").then_some(value));
    let images: Vec<Value> = [seed_image_json()]
        .into_iter()
        .filter(|image| owner.is_none_or(|o| image["owner"] == o))
        .collect();
    json!({"images": images, "schema": "/v2/schemas/images", "first": "/v2/images"})
}

/// `{"images": [seed, seed, ...]}` of at least [`BIG_BODY_BYTES`].
fn big_doc() -> Value {
    let seed = seed_image_json();
    let one = serde_json::to_vec(&seed).expect("serialize the seed").len();
    let copies = BIG_BODY_BYTES / one + 1;
    json!({"images": vec![seed; copies]})
}

fn image_schema() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let integer = |description: &str| json!({"type": "integer", "description": description});
    json!({
        "name": "image",
        "properties": {
            "id": {"type": "string", "description": "An identifier for the image",
                   "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"},
            "name": {"type": ["null", "string"], "maxLength": 255, "description": "Descriptive name for the image"},
            "status": {"type": "string", "readOnly": true, "description": "Status of the image",
                       "enum": ["queued", "saving", "active", "killed", "deleted", "pending_delete", "deactivated"]},
            "visibility": {"type": "string", "description": "Scope of image accessibility",
                           "enum": ["public", "private", "shared", "community"]},
            "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
            "checksum": {"type": ["null", "string"], "readOnly": true, "maxLength": 32, "description": "md5 hash of image contents."},
            "owner": {"type": ["null", "string"], "maxLength": 255, "description": "Owner of the image"},
            "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes"},
            "container_format": {"type": ["null", "string"], "description": "Format of the container",
                                 "enum": [null, "ami", "ari", "aki", "bare", "ovf", "ova", "docker"]},
            "disk_format": {"type": ["null", "string"], "description": "Format of the disk",
                            "enum": [null, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "zvhd", "zvhd2"]},
            "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
            "updated_at": {"type": "string", "readOnly": true, "description": "Date and time of the last image modification"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}, "description": "List of strings related to the image"},
            "min_ram": integer("Amount of ram (in MB) required to boot image."),
            "min_disk": integer("Amount of disk space (in GB) required to boot image."),
            "self": {"type": "string", "readOnly": true, "description": "An image self url"},
            "file": {"type": "string", "readOnly": true, "description": "An image file url"},
            "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
            "virtual_env_type": string("Environment where the image is used"),
            "__os_type": string("OS type: Linux, Windows or Other"),
            "__os_version": string("OS version"),
            "__os_bit": string("OS architecture, 32 or 64"),
            "__platform": string("Image platform type"),
            "__imagetype": string("Image type: gold, private, shared or market"),
            "__isregistered": string("Whether the image has been registered"),
            "__lazyloading": string("Whether the image supports lazy loading"),
            "__image_source_type": string("Backend storage of the image"),
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

fn header_pairs(parts: &Parts) -> Vec<(String, String)> {
    parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn headers_echo(parts: &Parts) -> Value {
    let pairs: Vec<Value> = header_pairs(parts)
        .into_iter()
        .map(|(name, value)| json!([name, value]))
        .collect();
    Value::Array(pairs)
}

fn echo(cx: &Ctx<'_>) -> Value {
    let body = serde_json::from_slice::<Value>(cx.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(cx.body).into_owned()));
    json!({"method": cx.parts.method.as_str(), "path": cx.parts.uri.path(), "body": body})
}

// ---------------------------------------------------------------------------------------------
// Responses

/// Adds the common headers and encodes the body (gzip when configured and accepted).
fn finish(state: &State, parts: &Parts, request_id: &str, reply: Reply) -> Response<FakeBody> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, "application/json;charset=utf8")
        .header("x-request-id", request_id)
        .header("x-fake-repeat", "one")
        .header("x-fake-repeat", "two");
    if reply.retry_after {
        builder = builder.header(header::RETRY_AFTER, "1");
    }
    let body = match reply.body {
        ReplyBody::Json(value) => {
            let mut bytes = serde_json::to_vec(&value).expect("serialize a JSON answer");
            if state.opts.gzip && accepts_gzip(parts) {
                bytes = gzip(&bytes);
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
            }
            builder = builder.header(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            Full::new(Bytes::from(bytes))
                .map_err(|never| match never {})
                .boxed()
        }
        ReplyBody::Empty => Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
        ReplyBody::Cut => {
            builder = builder.header(
                header::CONTENT_LENGTH,
                HeaderValue::from(CUT_ANNOUNCED_BYTES),
            );
            CutBody::new().boxed()
        }
    };
    builder.body(body).expect("valid fake response head")
}

/// True when `Accept-Encoding` lists `gzip` (or `x-gzip`) without `q=0`.
fn accepts_gzip(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut fields = item.split(';').map(str::trim);
            let coding = fields.next().unwrap_or_default();
            let refused = fields.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip"))
                && !refused
        })
}

/// The `/cut` body: the first [`CUT_SENT_BYTES`] of the seed JSON, a short pause so hyper flushes
/// them, then an error, which makes hyper drop the connection mid-body.
struct CutBody {
    first: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl CutBody {
    fn new() -> CutBody {
        let seed = serde_json::to_vec(&seed_image_json()).expect("serialize the seed");
        CutBody {
            first: Some(Bytes::copy_from_slice(&seed[..CUT_SENT_BYTES])),
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
        }
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match self.pause.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fake IMS cuts the connection mid-body",
            )))),
        }
    }
}
