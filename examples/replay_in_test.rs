//! Replay the shipped cassettes in-process, the way a Rust test would, using only the public API.
//!
//! Run it with `cargo run --example replay_in_test` from the repository root.

use ims_vcr::ProxyServer;

#[tokio::main]
async fn main() -> ims_vcr::Result<()> {
    // A free loopback port; `start()` returns once it accepts connections.
    let server = ProxyServer::builder()
        .replay()
        .cassettes("cassettes")
        .start()
        .await?;
    println!("replaying cassettes/ at {}", server.uri());

    // Point the code under test at `server.uri()`; here a plain HTTP GET stands in for it.
    let url = format!(
        "{}/v2/images/bc6bed6e-ba3a-4447-afcc-449174a3eb52",
        server.uri()
    );
    let body = fetch(&url).await;
    let image: serde_json::Value =
        serde_json::from_str(&body).expect("the recorded answer is JSON");
    println!("image {} is {}", image["name"], image["status"]);

    // Drains connections and reports what happened; a test can assert on it.
    let summary = server.shutdown().await?;
    assert_eq!((summary.hits, summary.miss_count()), (1, 0));
    print!("{summary}");
    Ok(())
}

/// A minimal HTTP/1.1 GET over a TCP stream, to keep the example free of client crates.
async fn fetch(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("the proxy accepts");
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}
