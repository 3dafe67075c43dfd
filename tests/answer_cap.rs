//! `--max-answer-body`: the cap on an upstream answer's body (as sent and once decoded), in the
//! forwarding modes of the binary. Over it, a 502 `too-large` naming the flag; raised, the same
//! answer is served, recorded and replayed byte for byte. A bad value is a usage error.

use std::io::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::util::*;

/// 200 KiB: over a 100 KiB cap, under a 1 MiB one.
const ANSWER_LEN: usize = 200 * 1024;
const SMALL_CAP: &str = "102400";
const LARGE_CAP: &str = "1048576";

/// An image file of [`ANSWER_LEN`] bytes that are not UTF-8 and do not compress.
fn image() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..ANSWER_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// What `/v2/images/gz/file` decodes to: a few hundred bytes on the wire, 200 KiB decoded.
fn inflated() -> Vec<u8> {
    vec![b'a'; ANSWER_LEN]
}

/// A plain-HTTP upstream: `/v2/images/x/file` is [`image`], `/v2/images/gz/file` is
/// [`inflated`] sent gzip-encoded.
async fn image_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&inflated()).unwrap();
    let (plain, gzipped) = (Bytes::from(image()), Bytes::from(gz.finish().unwrap()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (plain, gzipped) = (plain.clone(), gzipped.clone());
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let answer = Response::builder().header("content-type", "application/octet-stream");
                let answer = match request.uri().path() {
                    "/v2/images/gz/file" => answer
                        .header("content-encoding", "gzip")
                        .body(Full::new(gzipped.clone())),
                    "/v2/images/x/file" => answer.body(Full::new(plain.clone())),
                    _ => answer.status(404).body(Full::new(Bytes::new())),
                };
                async move { Ok::<_, std::convert::Infallible>(answer.unwrap()) }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    url
}

/// Both files through `proxy` get a 502 `too-large` naming the cap and the flag.
async fn assert_refused(proxy: &Running, mode: &str) {
    for file in ["x", "gz"] {
        let reply = get(&format!("{}/v2/images/{file}/file", proxy.uri)).await;
        assert_eq!(reply.status, 502, "{mode} {file}: {}", reply.text());
        assert_eq!(reply.header("x-ims-vcr"), Some("upstream-error"), "{mode}");
        let body = reply.json();
        assert_eq!(
            body["ims_vcr"]["kind"], "too-large",
            "{mode} {file}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "larger than {SMALL_CAP} bytes (--max-answer-body)"
            )),
            "{mode} {file}: {message}"
        );
    }
    proxy.assert_no_panic();
}

/// Both files through `proxy` come whole: the image byte for byte, the gzip one decoded.
async fn assert_served(proxy: &Running, mode: &str) {
    let x = get(&format!("{}/v2/images/x/file", proxy.uri)).await;
    assert_eq!(x.status, 200, "{mode}: {}", x.text());
    assert!(
        x.body == image(),
        "{mode}: the image changed ({} bytes)",
        x.body.len()
    );
    let gz = get(&format!("{}/v2/images/gz/file", proxy.uri)).await;
    assert_eq!(gz.status, 200, "{mode}: {}", gz.text());
    assert!(gz.body == inflated(), "{mode}: {} bytes", gz.body.len());
    proxy.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_answer_body_refuses_a_larger_answer_naming_the_flag_and_serves_it_once_raised() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = image_upstream().await;
    let forward = |mode: &'static str, cap: &'static str, store: &'static str| {
        let mut args = vec![mode, "--upstream", upstream.as_str(), "--listen", "0"];
        args.extend(["--max-answer-body", cap]);
        if mode == "record" {
            args.extend(["--store", store]);
        }
        Running::start(&args, dir.path())
    };

    let proxy = forward("passthrough", SMALL_CAP, "");
    assert_refused(&proxy, "passthrough").await;
    assert!(proxy.terminate().success());
    let proxy = forward("passthrough", LARGE_CAP, "");
    assert_served(&proxy, "passthrough").await;
    assert!(proxy.terminate().success());

    let proxy = forward("record", SMALL_CAP, "refused");
    assert_refused(&proxy, "record").await;
    assert!(proxy.terminate().success());
    assert_eq!(stored_answers(&dir.path().join("refused")), 0);

    let proxy = forward("record", LARGE_CAP, "store");
    assert_served(&proxy, "record").await;
    assert!(proxy.terminate().success());
    assert_eq!(stored_answers(&dir.path().join("store")), 2);
    // Replay needs no cap: what was stored is served as it was.
    let replay = Running::start(&["replay", "--store", "store", "--listen", "0"], dir.path());
    assert_served(&replay, "replay").await;
    assert!(replay.terminate().success());
}

#[test]
fn a_bad_max_answer_body_is_a_usage_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = ["--upstream", "http://127.0.0.1:9"];
    for command in [
        &["passthrough"][..],
        &["record"],
        &["auto"],
        &["drift"],
        &["run", "--mode", "passthrough"],
    ] {
        for value in ["lots", "-1"] {
            let mut args = command.to_vec();
            args.extend(upstream);
            args.extend(["--max-answer-body", value]);
            if command[0] == "run" {
                args.extend(["--", "true"]);
            }
            let (code, err) = run(&args, dir.path());
            assert_eq!(code, 2, "{args:?}: {err}");
            assert!(err.contains("--max-answer-body"), "{args:?}: {err}");
            assert!(err.contains(value), "{args:?}: {err}");
        }
    }
    let (code, help, _) = run_with_stdout(&["passthrough", "--help"], dir.path());
    assert_eq!(code, 0);
    assert!(help.contains("--max-answer-body <BYTES>"), "{help}");
}
