//! The replay anchor of `perf/replay.sh`: a minimal hyper 1 server, the shape of hyper's own
//! "hello world". One fixed body with `content-type: application/json`, for every request
//! whatever its method and path; hyper adds `date` and `content-length`. HTTP/1.1 only
//! (`hyper::server::conn::http1::Builder`, keep-alive), `#[tokio::main]` (a multi-thread runtime
//! whose worker count follows the CPU affinity mask, as in `ims-vcr`: one worker under
//! `taskset -c 0`), `TCP_NODELAY` as `ims-vcr` sets it. No header-read timeout, no logging, no
//! lookup: the least a hyper server does to answer.
//!
//! The body is the shipped seed image's, the exact bytes `ims-vcr replay` serves for it (784
//! bytes), or the contents of BODY_FILE. `perf/replay.sh` also uses it as the upstream of its
//! forward and record blocks, and records the replay block's store from it.
//!
//! ```sh
//! cargo run --release --example minimal_hyper -- 0              # prints `listening on http://…`
//! cargo run --release --example minimal_hyper -- 0 body.json    # serves the bytes of body.json
//! cargo run --release --example minimal_hyper -- --print-body   # the seed body it serves
//! ```

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const SEED_CASSETTE: &str =
    "cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json";
const SEED_JSON: &[u8] = include_bytes!(
    "../cassettes/get_v2_images_bc6bed6e-ba3a-4447-afcc-449174a3eb52_b89dc4cb3292.json"
);
const USAGE: &str = "usage: minimal_hyper [PORT [BODY_FILE] | --print-body]";

/// The seed answer's body, decoded by the code that prepares replayed answers.
fn seed_body() -> Bytes {
    let (recording, _rules) =
        ims_vcr::formats::cassette::parse(Path::new(SEED_CASSETTE), SEED_JSON)
            .expect("the shipped seed cassette parses");
    let answer = recording.answers.first().expect("the seed has one answer");
    ims_vcr::model::interaction::body_bytes(&answer.response.body).expect("the seed body is JSON")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let arg = args.next().unwrap_or_else(|| "0".into());
    if arg == "--print-body" {
        std::io::stdout().write_all(&seed_body())?;
        return Ok(());
    }
    let port: u16 = arg.parse().map_err(|_| format!("{USAGE}, got {arg:?}"))?;
    let body = match args.next() {
        Some(file) => Bytes::from(std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?),
        None => seed_body(),
    };

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                async move { Ok::<_, Infallible>(response) }
            });
            // A client hanging up mid-request is normal under load; nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
