//! The baseline of `perf/replay.sh replay`: the least a hyper 1 server can do to answer
//! `GET /v2/images/{id}`. It answers every request, whatever its method and path, with the
//! shipped seed image's body (the exact bytes `ims-vcr replay` serves for it) and
//! `content-type: application/json`. With `--as-replayed` it sends the very bytes `ims-vcr
//! replay` sends for the seed: the recorded headers, in order, plus `x-ims-vcr: hit` (one
//! `HeaderMap` built at start, cloned per answer), so the two differ only in the work done.
//!
//! It runs the way `ims-vcr` does, so a ratio between the two measures ims-vcr's own work:
//! a multi-thread tokio runtime with the default worker count (one worker per CPU the process
//! may run on, so under `taskset -c 0` both get one worker), hyper-util's auto builder (HTTP/1.1
//! keep-alive and HTTP/2), `TCP_NODELAY`. It leaves out what ims-vcr does per request: the
//! request key, the tape lookup, logging, the header-read timeout.
//!
//! ```sh
//! cargo run --release --example bare_responder -- 0              # prints `listening on http://…`
//! cargo run --release --example bare_responder -- 0 --as-replayed
//! cargo run --release --example bare_responder -- --print-body   # the bytes it serves
//! ```
//! It is also the plain-HTTP upstream of `perf/replay.sh record`.

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The shipped cassette of the seed image, compiled in so the binary runs from any directory.
const SEED_CASSETTE: &str =
    "cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json";
const SEED_JSON: &[u8] = include_bytes!(
    "../cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json"
);

/// The seed answer's body, decoded by the same code that prepares replayed answers, and the
/// headers `ims-vcr replay` sends with it (less the framing hyper adds itself).
fn seed_answer() -> (Bytes, HeaderMap) {
    let (recording, _rules) =
        ims_vcr::formats::cassette::parse(Path::new(SEED_CASSETTE), SEED_JSON)
            .expect("the shipped seed cassette parses");
    let answer = recording.answers.first().expect("the seed has one answer");
    let body = ims_vcr::model::interaction::body_bytes(&answer.response.body)
        .expect("the seed body is JSON");
    let mut headers = HeaderMap::new();
    for (name, value) in &answer.response.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a recorded header name");
        if name != CONTENT_LENGTH {
            headers.append(
                name,
                HeaderValue::from_str(value).expect("a recorded value"),
            );
        }
    }
    headers.insert(
        ims_vcr::net::outcome::OUTCOME_HEADER,
        HeaderValue::from_static("hit"),
    );
    (body, headers)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_else(|| "0".into());
    let (body, replayed) = seed_answer();
    if arg == "--print-body" {
        std::io::stdout().write_all(&body)?;
        return Ok(());
    }
    let usage = "usage: bare_responder [PORT [--as-replayed] | --print-body]";
    let port: u16 = arg.parse().map_err(|_| format!("{usage}, got {arg:?}"))?;
    let headers = match args.next().as_deref() {
        None => {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers
        }
        Some("--as-replayed") => replayed,
        Some(other) => return Err(format!("{usage}, got {other:?}").into()),
    };
    // Same construction as src/main.rs: the default worker count follows the CPU affinity mask.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(
            SocketAddr::from(([127, 0, 0, 1], port)),
            body,
            headers,
        ))
}

async fn serve(
    addr: SocketAddr,
    body: Bytes,
    headers: HeaderMap,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (body, headers) = (body.clone(), headers.clone());
        let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
            let mut response = Response::new(Full::new(body.clone()));
            *response.headers_mut() = headers.clone();
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = connection.into_owned();
        tokio::spawn(async move {
            // A client hanging up mid-request is normal under load; nothing to report.
            let _ = connection.await;
        });
    }
}
