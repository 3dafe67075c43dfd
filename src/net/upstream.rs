//! The upstream side of record mode: a pooled rustls client, URI and `Host` rewrite, hop-by-hop
//! stripping, one timeout over the whole exchange, body caps and gzip/deflate decoding.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, COOKIE, EXPECT, HOST, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use hyper::http::uri::PathAndQuery;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::error::{Error, Result};
use crate::model::headers::{Order, keeps_upstream_length, strip_hop_by_hop};
use crate::net::pool::Pool;
use crate::net::signer::{self, Credentials};
pub use crate::net::upstream_error::UpstreamError;
use crate::net::decode::decode_body;
use crate::net::upstream_error::{chain, classify};

/// Default cap on an upstream body, encoded or decoded (`--max-answer-body`): an IMS answer is a
/// few KB, an image download (`GET /v2/images/{id}/file`) can be far larger. Answers are held in
/// memory whole in every mode, so this is also the memory one answer may take.
pub const DEFAULT_MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// How to reach the upstream.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// `https://host[:port][/prefix]` (or `http://` for a local stand-in).
    pub url: String,
    /// Extra PEM CA certificates trusted besides the webpki roots (`--upstream-ca`).
    pub ca_file: Option<PathBuf>,
    /// Limit on one whole exchange: connect, request, response head and body.
    pub timeout: Duration,
    /// Cap on the upstream body, before and after decoding (`--max-answer-body`).
    pub max_body: usize,
    /// AK/SK to re-sign every forwarded request with (from `HUAWEICLOUD_SDK_AK`/`_SK`/
    /// `_SECURITY_TOKEN`). A client's signature covers `Host`, which the proxy must change, so
    /// without these a signed request reaches the gateway with a signature that no longer fits.
    pub credentials: Option<Credentials>,
}

impl UpstreamConfig {
    /// A config with the default timeout (30 s) and body cap.
    pub fn new(url: impl Into<String>) -> Self {
        UpstreamConfig {
            url: url.into(),
            ca_file: None,
            timeout: Duration::from_secs(30),
            max_body: DEFAULT_MAX_UPSTREAM_BODY,
            credentials: None,
        }
    }
}

/// A live answer, decoded: hop-by-hop headers, `Content-Length` (kept in an answer to a
/// `HEAD` that is not content-encoded: see [`keeps_upstream_length`]) and (when decoded)
/// `Content-Encoding` removed.
#[derive(Debug)]
pub struct LiveResponse {
    /// Upstream status.
    pub status: StatusCode,
    /// Upstream headers in order, framing headers removed.
    pub headers: HeaderMap,
    /// Decoded body.
    pub body: Bytes,
    /// Time from sending the request to the last body byte.
    pub latency: Duration,
    /// The credential headers as sent upstream (after re-signing): their values, such as the
    /// proxy's own signature, must not be stored if the upstream echoes them.
    pub sent_credentials: HeaderMap,
}

/// The pooled client for one upstream.
pub struct Upstream {
    /// `scheme://authority`, also written into recordings as their provenance.
    origin: String,
    /// Path prefix of `--upstream` without a trailing slash ("" for none).
    prefix: String,
    host: HeaderValue,
    pool: Pool,
    timeout: Duration,
    max_body: usize,
    credentials: Option<Credentials>,
    /// Set once the "signed request without AK/SK" warning was logged (it is said once, not per request).
    warned_unsigned: AtomicBool,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("origin", &self.origin)
            .finish()
    }
}

impl Upstream {
    /// Validates the URL, loads the CA file and builds the pooled client.
    pub fn new(config: &UpstreamConfig) -> Result<Upstream> {
        let bad =
            |reason: &str| {
                let shown = crate::model::credentials::shown_url(&config.url);
                Error::Config(format!("invalid --upstream {shown:?}: {reason}"))
            };
        let uri = Uri::from_str(&config.url).map_err(|e| bad(&e.to_string()))?;
        let scheme = uri.scheme().cloned().ok_or_else(|| {
            bad("it needs a scheme, e.g. https://ims.cn-north-4.myhuaweicloud.com")
        })?;
        if scheme != hyper::http::uri::Scheme::HTTPS && scheme != hyper::http::uri::Scheme::HTTP {
            return Err(bad(
                "the scheme must be https:// (or http:// for a local stand-in)",
            ));
        }
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| bad("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "credentials in the URL are not supported; pass them as the client does",
            ));
        }
        if uri.query().is_some() {
            return Err(bad("it must not have a query string"));
        }
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("invalid host"))?;

        let tls = tls_config(config.ca_file.as_deref())?;
        let mut http = HttpConnector::new();
        // hyper-rustls decides http vs https; HttpConnector must let https URIs through.
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let destination = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        let pool = Pool::new(https, destination, Duration::from_secs(30));
        Ok(Upstream {
            origin: format!("{scheme}://{authority}"),
            prefix,
            host,
            pool,
            timeout: config.timeout,
            max_body: config.max_body,
            credentials: config.credentials.clone(),
            warned_unsigned: AtomicBool::new(false),
        })
    }

    /// `scheme://authority` of the upstream.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the proxy signs requests to this upstream with the AK/SK in its environment.
    pub fn signs(&self) -> bool {
        self.credentials.is_some()
    }

    /// The value the proxy puts in `Host` (the upstream authority, port included when given).
    pub fn host(&self) -> &str {
        self.host
            .to_str()
            .expect("built from a valid authority string")
    }

    /// Forwards one request and collects the whole answer, decoded, with the credential headers
    /// as sent (see [`LiveResponse::sent_credentials`]).
    pub async fn forward(
        &self,
        method: &Method,
        path_and_query: &str,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> std::result::Result<LiveResponse, UpstreamError> {
        let target = self.target(path_and_query);
        self.send_or_resend(method, target, client_headers, body, true).await
    }

    /// [`Upstream::forward`] for a request as the proxy received it (its target reused as parsed
    /// when the upstream has no prefix). `keep_credentials` when the answer may be stored: the
    /// leak gate's `sent_credentials` are filled, and its headers keep their [`Order::Kept`].
    pub async fn relay(
        &self,
        request: &hyper::http::request::Parts,
        body: Bytes,
        keep_credentials: bool,
    ) -> std::result::Result<LiveResponse, UpstreamError> {
        let target = match request.uri.path_and_query() {
            Some(target) if self.prefix.is_empty() => target.clone(),
            target => self.target(target.map_or("/", |pq| pq.as_str())),
        };
        self.send_or_resend(&request.method, target, &request.headers, body, keep_credentials)
            .await
    }

    /// Builds the upstream request, keeps its credential headers when asked, and exchanges it.
    async fn send(
        &self,
        method: &Method,
        target: PathAndQuery,
        client_headers: &HeaderMap,
        body: Bytes,
        keep_credentials: bool,
    ) -> std::result::Result<LiveResponse, UpstreamError> {
        let request = self.build_request(method, target, client_headers, body);
        let mut sent_credentials = HeaderMap::new();
        if keep_credentials {
            for (name, value) in request.headers() {
                if crate::model::headers::is_credential(name.as_str()) {
                    sent_credentials.append(name.clone(), value.clone());
                }
            }
        }
        let order = if keep_credentials { Order::Kept } else { Order::Any };
        // Boxed: the exchange's future (1.9 KB: the pool's send, the timeout, the answer's
        // collection) made this future 2.4 KB and every one that awaits it larger still, each
        // moved whole into the next (the relay's was 2.9 KB); boxed, they are 0.5 and 1 KB, and
        // a forwarded request runs 660 instructions fewer (memory copies) for one allocation
        // (docs/performance-history.md, Thirty-seventh pass).
        let mut live = Box::pin(self.exchange(request, order)).await?;
        live.sent_credentials = sent_credentials;
        Ok(live)
    }

    /// [`Upstream::send`], once more when a reused connection took the request and closed
    /// without answering (its keep-alive timeout ran out as the request went) and the request is
    /// safe: sent again on another connection, as Go's net/http does. A `PUT`, `DELETE` or
    /// `POST` never is: the upstream may have acted on it, and hyper cannot tell a connection
    /// that closed with no answer from one that closed in the middle of one.
    async fn send_or_resend(
        &self,
        method: &Method,
        target: PathAndQuery,
        client_headers: &HeaderMap,
        body: Bytes,
        keep_credentials: bool,
    ) -> std::result::Result<LiveResponse, UpstreamError> {
        let first = self.send(method, target.clone(), client_headers, body.clone(), keep_credentials);
        match first.await {
            Err(UpstreamError::Unanswered { .. }) if is_safe(method) => {
                tracing::debug!("a reused upstream connection closed before answering; sending again");
                // Boxed: a rare path, whose future would otherwise grow every send's.
                Box::pin(self.send(method, target, client_headers, body, keep_credentials)).await
            }
            other => other,
        }
    }

    /// The upstream's prefix and `path_and_query`.
    fn target(&self, path_and_query: &str) -> PathAndQuery {
        PathAndQuery::from_maybe_shared(Bytes::from(format!("{}{}", self.prefix, path_and_query)))
            .expect("a path prefix and an origin-form target always make a path")
    }

    /// One exchange under the timeout: the whole answer, decoded.
    async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
        order: Order,
    ) -> std::result::Result<LiveResponse, UpstreamError> {
        // Kept for messages only: the text is made when one is needed.
        let uri = request.uri().clone();
        let full = Url(&self.origin, &uri);
        let url = || full.to_string();
        let method = request.method().clone();
        let started = Instant::now();
        let exchange = async {
            let (response, connection) = self
                .pool
                .send(request)
                .await
                .map_err(|e| classify(&url(), &e))?;
            let (parts, body) = response.into_parts();
            if parts.status.is_informational() {
                return Err(UpstreamError::Informational {
                    url: url(),
                    status: parts.status,
                });
            }
            if parts.status.as_u16() > 599 {
                return Err(UpstreamError::NotAStatus {
                    url: url(),
                    status: parts.status.as_u16(),
                });
            }
            let collected = Limited::new(body, self.max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        UpstreamError::TooLarge {
                            url: url(),
                            limit: self.max_body,
                        }
                    } else {
                        UpstreamError::Cut {
                            url: url(),
                            cause: chain(e.as_ref()),
                        }
                    }
                })?;
            connection.release();
            Ok((parts, collected.to_bytes()))
        };
        let (parts, raw) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout {
                url: url(),
                secs: self.timeout.as_secs_f64(),
            })??;
        let latency = started.elapsed();
        // No length and no chunks: the answer ended when the connection did, which over plain
        // HTTP also reads a connection cut short as a whole answer (TLS's close_notify says
        // which it was, and a TLS cut is a `cut` already).
        let close_delimited = self.origin.starts_with("http://")
            && !parts.headers.contains_key(CONTENT_LENGTH)
            && !parts.headers.contains_key(TRANSFER_ENCODING);
        let mut headers = parts.headers;
        // A transfer coding besides `chunked` (`Transfer-Encoding: gzip, chunked`): hyper undoes
        // only `chunked`, and `Transfer-Encoding` goes with the hop-by-hop headers, so the others
        // are undone as content codings are, applied after them (so undone first). Else the
        // body would be served and stored compressed with no coding named.
        let only_chunked = |value: &HeaderValue| value.as_bytes().eq_ignore_ascii_case(b"chunked");
        if headers.get(TRANSFER_ENCODING).is_some_and(|te| !only_chunked(te)) {
            let transfer = crate::model::encodings::codings(
                (headers.get_all(TRANSFER_ENCODING).iter())
                    .map(|v| String::from_utf8_lossy(v.as_bytes())),
            );
            for coding in transfer.iter().filter(|coding| *coding != "chunked") {
                // Not a header value (a control byte): `decode_body` refuses it by name.
                let value = HeaderValue::from_str(coding)
                    .unwrap_or(HeaderValue::from_static("unreadable"));
                headers.append(CONTENT_ENCODING, value);
            }
        }
        // Framing is the proxy's own, except the length a `HEAD` answer gives (the size of what
        // a `GET` brings), kept when the answer is not content-encoded. The rest keep their
        // order.
        let drop_length = !keeps_upstream_length(&method, &headers);
        strip_hop_by_hop(&mut headers, |name| drop_length && name == CONTENT_LENGTH, order);
        let body = decode_body(full, &mut headers, raw, self.max_body)?;
        if close_delimited && json_cut_short(&headers, &body) {
            return Err(UpstreamError::Cut {
                url: url(),
                cause: "the answer gave no length and ended with the connection, and its JSON \
                        does not parse: the connection was cut before the answer was whole"
                    .into(),
            });
        }
        Ok(LiveResponse {
            status: parts.status,
            headers,
            body,
            latency,
            sent_credentials: HeaderMap::new(),
        })
    }

    /// The upstream request: URI and `Host` rewritten, hop-by-hop headers stripped, and
    /// `Accept-Encoding` limited to what the proxy can decode (`identity` for a `HEAD`).
    fn build_request(
        &self,
        method: &Method,
        target: PathAndQuery,
        client_headers: &HeaderMap,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        // Origin form (`/path?query`), as an HTTP/1.1 request line to an origin server has it:
        // the upstream's host is in `Host`, and error messages add its origin (`Url`).
        let signing = self.credentials.is_some() && signer::wants_proxy_signature(client_headers);
        let rewritten = match target.query().map(signer::query_to_sign) {
            Some(std::borrow::Cow::Owned(query)) if signing => Uri::try_from(format!("{}?{query}", target.path())).ok(),
            _ => None,
        };
        let uri = rewritten.unwrap_or_else(|| Uri::from(target));
        let mut headers = client_headers.clone();
        // `Expect: 100-continue` too: the proxy holds the whole body already.
        let dropped = |name: &HeaderName| name == CONTENT_LENGTH || name == EXPECT;
        strip_hop_by_hop(&mut headers, dropped, Order::Kept);
        // hyper's client only adds Host when absent; the client's Host names the proxy.
        headers.insert(HOST, self.host.clone());
        // An empty body still has its length said where a body is expected (a `POST` with
        // nothing in it, as python-requests, curl and Go send it): hyper's client leaves it out,
        // and an upstream that wants a length answers 411.
        let said = client_headers.contains_key(CONTENT_LENGTH);
        if body.is_empty() && (said || [Method::POST, Method::PUT, Method::PATCH].contains(method)) {
            headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        join_cookies(&mut headers);
        // A `HEAD`'s `Content-Length`, and a `Range`'s bytes, count the body in the coding asked
        // for: they fit the decoded body the proxy serves only when it is asked for as is.
        let as_is = *method == Method::HEAD || client_headers.contains_key(hyper::header::RANGE);
        let accepted = if as_is { "identity" } else { "gzip, deflate" };
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(accepted));
        self.sign(signing, method, &uri, &mut headers, &body);
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri;
        // Always HTTP/1.1 upstream: an HTTP/2 client's version would not fit the pooled HTTP/1 connection.
        *request.version_mut() = hyper::Version::HTTP_11;
        *request.headers_mut() = headers;
        request
    }
}

/// An HTTP/2 client's cookies, one field each (RFC 9113, 8.2.3: browsers split them so),
/// joined with `; ` into the one `Cookie` header an HTTP/1.1 upstream reads (RFC 6265, 5.4).
fn join_cookies(headers: &mut HeaderMap) {
    if headers.get_all(COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined = (headers.get_all(COOKIE).iter())
        .map(HeaderValue::as_bytes)
        .collect::<Vec<_>>()
        .join(&b"; "[..]);
    if let Ok(joined) = HeaderValue::from_bytes(&joined) {
        headers.insert(COOKIE, joined);
    }
}

impl Upstream {
    /// Re-signs for the upstream host with the proxy's own clock when AK/SK are configured (so a
    /// client's skewed clock does not matter) and `signing` (the request wants the proxy's
    /// signature: [`signer::wants_proxy_signature`]); otherwise forwards as it came and, the
    /// first time a signed request passes without keys, says why the upstream will likely refuse it.
    fn sign(&self, signing: bool, method: &Method, uri: &Uri, headers: &mut HeaderMap, body: &[u8]) {
        match &self.credentials {
            Some(_) if !signing => {}
            Some(credentials) => {
                let now = time::OffsetDateTime::now_utc();
                signer::sign(credentials, method, uri, self.host(), headers, body, now);
            }
            // A signature over what the proxy leaves alone (the Go SDK's, which leaves Host
            // out) verifies upstream as it came: no warning for it. A path prefix changes the
            // signed path whatever the headers.
            None if signer::is_aksk_signed(headers)
                && !self.warned_unsigned.load(Ordering::Relaxed) =>
            {
                let mut changed = signer::signed_headers_the_proxy_changes(headers);
                if !self.prefix.is_empty() {
                    changed.push("the path (the upstream's prefix goes before it)");
                }
                if changed.is_empty() || self.warned_unsigned.swap(true, Ordering::Relaxed) {
                    return;
                }
                tracing::warn!(
                    "a request carries an AK/SK signature (SDK-HMAC-SHA256) made for the proxy's \
                         address; it covers {}, which the proxy changes (Host to {}), so \
                         the upstream will most likely answer 401 APIGW.0301. Fix: start the proxy \
                         with {} and {} set (and {} for temporary credentials) so it re-signs each \
                         request; the client can then use any dummy AK/SK",
                    changed.join(" and "),
                    self.host(),
                    signer::ENV_AK,
                    signer::ENV_SK,
                    signer::ENV_SECURITY_TOKEN
                );
            }
            None => {}
        }
    }
}

/// The upstream URL of a request, for messages (a `502`'s body, the log): the upstream's
/// origin and the origin-form target, with the values of credential query and path parameters
/// masked, as everywhere else ims-vcr writes a request.
#[derive(Clone, Copy)]
struct Url<'a>(&'a str, &'a Uri);

impl std::fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = crate::model::credentials::shown_url(&format!("{}{}", self.0, self.1));
        f.write_str(&shown)
    }
}

fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let bad =
            |reason: String| Error::Config(format!("--upstream-ca {}: {reason}", path.display()));
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate found in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    // One crypto provider, chosen explicitly: rustls panics at `builder()` when two are linked.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Methods that only read (RFC 9110 §9.2.1): asking twice changes nothing upstream.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Whether a JSON answer's body (`application/json` or `…+json`, not a stream of documents such
/// as `ndjson`) ends before its document does: cut short. Only asked of an answer that ended
/// with its connection. JSON that is whole but not what a parser accepts (`NaN`, text after it,
/// an HTML error page under a JSON type) is the upstream's own answer, recorded as it is; so is
/// a body nested too deep to check.
fn json_cut_short(headers: &HeaderMap, body: &[u8]) -> bool {
    let json = (headers.get(hyper::header::CONTENT_TYPE))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .is_some_and(|media| media == "application/json" || media.ends_with("+json"));
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    json && !body.is_empty()
        && crate::model::interaction::json_depth(body) < 100
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err_and(|e| e.is_eof())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_in_a_message_has_its_credential_parameters_masked() {
        let uri: Uri = "/v2/images/x?limit=1&token=s3-1&X-Auth-Token=s3-2".parse().unwrap();
        assert_eq!(
            Url("https://ims.example", &uri).to_string(),
            "https://ims.example/v2/images/x?limit=1&token=REDACTED&X-Auth-Token=REDACTED"
        );
        let plain: Uri = "/v2/images/x?limit=1".parse().unwrap();
        assert_eq!(
            Url("https://ims.example", &plain).to_string(),
            "https://ims.example/v2/images/x?limit=1"
        );
    }

    #[test]
    fn upstream_urls_are_validated_with_the_flag_named() {
        for bad in [
            "ims.example.com",
            "ftp://x",
            "https://u:p@x",
            "https://x/?a=1",
        ] {
            let err = Upstream::new(&UpstreamConfig::new(bad)).unwrap_err();
            assert!(err.to_string().contains("--upstream"), "{err}");
        }
    }

    #[test]
    fn a_head_or_a_range_asks_for_the_body_as_it_is() {
        let up = Upstream::new(&UpstreamConfig::new("https://ims.example")).unwrap();
        let asked = |method: Method, range: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            if let Some(range) = range {
                h.insert(hyper::header::RANGE, HeaderValue::from_static(range));
            }
            let req = up.build_request(&method, up.target("/v2/images/x/file"), &h, Bytes::new());
            req.headers()[ACCEPT_ENCODING].to_str().unwrap().to_owned()
        };
        assert_eq!(asked(Method::GET, None), "gzip, deflate");
        assert_eq!(asked(Method::HEAD, None), "identity");
        // Byte ranges of the gzip form would not be ranges of the body the client is served.
        assert_eq!(asked(Method::GET, Some("bytes=0-999")), "identity");
    }

    #[test]
    fn the_upstream_request_is_rewritten_for_the_upstream() {
        let up = Upstream::new(&UpstreamConfig::new("https://ims.example:8443/base/")).unwrap();
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("127.0.0.1:9696"));
        h.insert("connection", HeaderValue::from_static("close, x-hop"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        h.insert("x-auth-token", HeaderValue::from_static("tok"));
        h.insert(ACCEPT_ENCODING, HeaderValue::from_static("br"));
        let req = up.build_request(&Method::GET, up.target("/v2/images?a=1"), &h, Bytes::new());
        // Origin form, as the request line to an origin server has it; the upstream is in Host.
        assert_eq!(req.uri(), "/base/v2/images?a=1");
        assert_eq!(
            Url(up.origin(), req.uri()).to_string(),
            "https://ims.example:8443/base/v2/images?a=1"
        );
        assert_eq!(req.headers()[HOST], "ims.example:8443");
        assert_eq!(req.headers()[ACCEPT_ENCODING], "gzip, deflate");
        assert_eq!(req.headers()["x-auth-token"], "tok");
        assert!(req.headers().get("x-hop").is_none() && req.headers().get("connection").is_none());
        assert_eq!(req.version(), hyper::Version::HTTP_11);
    }

    #[test]
    fn an_empty_body_keeps_its_length_and_split_cookies_are_joined() {
        let up = Upstream::new(&UpstreamConfig::new("https://ims.example")).unwrap();
        let length = |method: Method, said: bool| {
            let mut h = HeaderMap::new();
            if said {
                h.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            let req = up.build_request(&method, up.target("/v2/images/x/action"), &h, Bytes::new());
            req.headers().get(CONTENT_LENGTH).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(length(Method::POST, false).as_deref(), Some("0"));
        assert_eq!(length(Method::PUT, false).as_deref(), Some("0"));
        assert_eq!(length(Method::DELETE, true).as_deref(), Some("0"));
        assert_eq!(length(Method::GET, false), None);
        assert_eq!(length(Method::DELETE, false), None);
        let mut h = HeaderMap::new();
        for cookie in ["a=1", "b=2", "c=3"] {
            h.append(COOKIE, HeaderValue::from_static(cookie));
        }
        let req = up.build_request(&Method::GET, up.target("/v2/images"), &h, Bytes::new());
        let cookies: Vec<_> = req.headers().get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
    }
}
