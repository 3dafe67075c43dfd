//! Raw sockets: bytes written to the proxy as they are, HTTP/1 answers parsed off the wire, and
//! upstreams on loopback that misbehave below HTTP (drip, never end, reset, garbage, bad TLS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::tls::tls_acceptor;

/// Writes raw bytes to the proxy and returns everything it answers until it closes or 2 s pass.
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes `raw` on a new connection (a write error is fine: the proxy may answer and close
/// before reading it all), then returns what came back until the proxy closed or `wait` passed.
pub async fn raw(addr: SocketAddr, raw: &[u8], wait: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(raw).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    out
}

/// One HTTP/1 answer read off the wire.
#[derive(Debug)]
pub struct Wire {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Splits raw bytes into the HTTP/1 answers they hold (bodies framed by `Content-Length`).
pub fn parse_wire(mut bytes: &[u8]) -> Vec<Wire> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {status_line:?}"));
        let length = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .map_or(bytes.len() - end - 4, |(_, v)| v.trim().parse().unwrap());
        let body_end = (end + 4 + length).min(bytes.len());
        out.push(Wire {
            status,
            body: bytes[end + 4..body_end].to_vec(),
        });
        bytes = &bytes[body_end..];
    }
    out
}

/// Reads a request head (up to the blank line) and returns it.
pub async fn read_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// How a raw upstream treats one connection (after reading the request head).
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// Sends its answer one byte every 200 ms.
    Drip,
    /// An answer whose chunked body never ends.
    Endless,
    /// An answer announcing a terabyte, then streaming it.
    Huge,
    /// Bytes that are not HTTP, then closes.
    Garbage,
    /// Resets the connection (RST) without answering.
    Reset,
    /// Closes without answering.
    Close,
}

async fn misbehave(mut stream: TcpStream, how: Misbehaviour) {
    read_head(&mut stream).await;
    let chunk = vec![b'x'; 16 * 1024];
    match how {
        Misbehaviour::Drip => {
            let answer =
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            for byte in answer {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if stream.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        }
        Misbehaviour::Endless => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            while stream.write_all(&framed).await.is_ok() {}
        }
        Misbehaviour::Huge => {
            let head = b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000000\r\n\r\n";
            if stream.write_all(head).await.is_err() {
                return;
            }
            while stream.write_all(&chunk).await.is_ok() {}
        }
        Misbehaviour::Garbage => {
            let _ = stream
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02\xff garbage \r\n\r\n")
                .await;
        }
        Misbehaviour::Reset => {
            let _ = stream.set_zero_linger();
        }
        Misbehaviour::Close => {}
    }
}

/// A raw-TCP upstream on loopback: connection `n` misbehaves as `plan(n)`. Returns its URL and
/// the count of connections it accepted.
pub async fn raw_upstream(
    plan: impl Fn(usize) -> Misbehaviour + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(misbehave(stream, plan(n)));
        }
    });
    (url, accepted)
}

/// A plain-HTTP upstream on loopback answering every connection with the bytes of `answer` (a
/// whole HTTP/1.1 response), then closing. Returns its URL. The answer says it closes
/// (`connection: close` is added after the status line when it has no `connection` header):
/// otherwise a proxy may send its next request on the connection before it sees the close, and
/// rightly refuses to send a `POST` again (a 502 the test did not ask for).
pub async fn canned_upstream(answer: Vec<u8>) -> String {
    let answer = announcing_close(answer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                read_head(&mut stream).await;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// `answer` with `connection: close` after its status line, unless its head has a `connection`
/// header already.
fn announcing_close(answer: Vec<u8>) -> Vec<u8> {
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..head_end]).to_ascii_lowercase();
    if head.lines().any(|line| line.starts_with("connection:")) {
        return answer;
    }
    let status_end = answer
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(answer.len(), |i| i + 2);
    let mut announced = answer[..status_end].to_vec();
    announced.extend_from_slice(b"connection: close\r\n");
    announced.extend_from_slice(&answer[status_end..]);
    announced
}

/// A TLS upstream on loopback presenting `cert_pem`; it answers `{}` to whoever gets through.
pub async fn tls_upstream(cert_pem: &str, key_pem: &str) -> String {
    let acceptor = tls_acceptor(cert_pem, key_pem, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    read_head(&mut tls).await;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    url
}

/// A plain-HTTP upstream answering every request with `answer(request head)`: whole raw bytes.
pub async fn scripted_upstream(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    use tokio::io::AsyncWriteExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                let _ = stream
                    .write_all(&answer(&String::from_utf8_lossy(&head)))
                    .await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// A [`scripted_upstream`] answering every request `200 OK` with the JSON `body`.
pub async fn json_upstream(body: impl Into<Vec<u8>>) -> String {
    let body = body.into();
    scripted_upstream(move |_| {
        http_answer("200 OK", &[("content-type", "application/json")], &body)
    })
    .await
}

/// A raw HTTP/1.1 answer, closing the connection.
pub fn http_answer(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A plain-HTTP upstream answering `200` with the JSON `body(n, request head)` for its `n`-th
/// request (0-based), and how many it has been asked: a resource that changes between polls.
pub async fn polled_upstream(
    body: impl Fn(usize, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let url = scripted_upstream(move |head| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let json = [("content-type", "application/json")];
        http_answer("200 OK", &json, body(n, head).as_bytes())
    })
    .await;
    (url, asked)
}
