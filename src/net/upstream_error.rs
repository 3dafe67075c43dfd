//! Why an upstream exchange gave no answer: the kinds a `502` names, and how a client error
//! is classified into one (connect, TLS with a hint about the CA, cut).

use hyper::StatusCode;

/// Why no answer could be had from the upstream. Rendered into the 502 the client gets.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// TCP connect failed (refused, unreachable, DNS).
    #[error("cannot connect to upstream {url}: {cause}")]
    Connect {
        /// Upstream URL of the request.
        url: String,
        /// Error chain.
        cause: String,
    },
    /// The TLS handshake failed (unknown CA, wrong name, expired certificate).
    #[error("TLS with upstream {url} failed: {cause}")]
    Tls {
        /// Upstream URL of the request.
        url: String,
        /// Error chain.
        cause: String,
    },
    /// No complete answer within `--upstream-timeout`.
    #[error("upstream {url} gave no complete answer within {secs} s (--upstream-timeout)")]
    Timeout {
        /// Upstream URL of the request.
        url: String,
        /// The timeout in seconds.
        secs: f64,
    },
    /// The connection closed or broke before the answer was complete.
    #[error("upstream {url} cut the connection before the answer was complete: {cause}")]
    Cut {
        /// Upstream URL of the request.
        url: String,
        /// Error chain.
        cause: String,
    },
    /// The answer's status line or headers are not HTTP ims-vcr reads: garbage, a header folded
    /// over lines (obs-fold), a head of more than 100 headers or over hyper's size limit.
    #[error("upstream {url} sent an answer head that is not HTTP ims-vcr can read{limits}: {cause}")]
    InvalidHead {
        /// Upstream URL of the request.
        url: String,
        /// What limit it passed, when it was too large.
        limits: &'static str,
        /// Error chain.
        cause: String,
    },
    /// A reused connection took the request and closed before its answer was whole: sent again
    /// once when the method is safe (see `Upstream::send`), else reported as a cut.
    #[error("upstream {url} cut the connection before the answer was complete: {cause}")]
    Unanswered {
        /// Upstream URL of the request.
        url: String,
        /// Error chain.
        cause: String,
    },
    /// The body exceeded the cap, as sent or once decoded.
    #[error("upstream {url} sent a body larger than {limit} bytes (--max-answer-body)")]
    TooLarge {
        /// Upstream URL of the request.
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// A `Content-Encoding` body that does not decode.
    #[error("upstream {url} sent a {encoding} body that does not decode: {cause}")]
    Decode {
        /// Upstream URL of the request.
        url: String,
        /// The encoding.
        encoding: String,
        /// Decoder error.
        cause: String,
    },
    /// An informational (`1xx`) final answer, e.g. `101 Switching Protocols` to a plain request:
    /// a proxy that records whole answers cannot relay or replay it.
    #[error(
        "upstream {url} answered {status}, an informational (1xx) status; ims-vcr relays and records only final answers"
    )]
    Informational {
        /// Upstream URL of the request.
        url: String,
        /// The status.
        status: StatusCode,
    },
    /// A status past 599 (hyper reads any three digits): no HTTP status, so no client could
    /// make sense of it, and no cassette may hold it.
    #[error(
        "upstream {url} answered status {status}, which is no HTTP status (100 to 599); ims-vcr relays and records only those"
    )]
    NotAStatus {
        /// Upstream URL of the request.
        url: String,
        /// The status as received.
        status: u16,
    },
}

impl UpstreamError {
    /// Short machine-readable kind for the 502 body and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect { .. } => "connect",
            UpstreamError::Tls { .. } => "tls",
            UpstreamError::Timeout { .. } => "timeout",
            UpstreamError::Cut { .. } | UpstreamError::Unanswered { .. } => "cut",
            UpstreamError::InvalidHead { .. } => "invalid-head",
            UpstreamError::TooLarge { .. } => "too-large",
            UpstreamError::Decode { .. } => "decode",
            UpstreamError::Informational { .. } => "informational",
            UpstreamError::NotAStatus { .. } => "status",
        }
    }
}

/// The error and its sources, joined with ": ".
pub(super) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// Adds what to do when the upstream's certificate comes from a CA the proxy does not trust (a
/// private CA, a stand-in's test CA): the flag that adds one. (rustls's error reaches here
/// inside an `io::Error`, whose `source()` skips it, so its text is what can be matched.)
/// What rustls says of a record that is no TLS record (the first bytes of a plain HTTP answer):
/// a TLS failure, and [`with_ca_hint`] says what it likely means.
const NOT_TLS: [&str; 2] = ["InvalidContentType", "corrupt message"];

fn with_ca_hint(cause: String) -> String {
    if cause.contains("UnknownIssuer") {
        format!(
            "{cause}; the upstream's certificate is signed by a CA that is not among the public \
             roots: pass that CA's certificate with --upstream-ca PEM"
        )
    } else if cause.contains("CaUsedAsEndEntity") {
        format!(
            "{cause}; the upstream presents a CA certificate (basicConstraints CA:TRUE, as a plain \
             `openssl req -x509` makes) as its own: the upstream needs a leaf certificate (CA:FALSE) \
             signed by a CA, and --upstream-ca names that CA. Make both with openssl: see \
             \"Trusting a private upstream\" in docs/guide.md"
        )
    } else if NOT_TLS.iter().any(|word| cause.contains(word)) {
        // rustls read a record that is no TLS record: the first bytes of a plain HTTP answer.
        format!(
            "{cause}; the upstream does not speak TLS on that port (a plain HTTP server?): use an http:// upstream URL, or the server's HTTPS port"
        )
    } else {
        cause
    }
}

pub(super) fn classify(url: &str, error: &crate::net::pool::PoolError) -> UpstreamError {
    let cause = chain(error);
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return UpstreamError::Tls {
                url: url.to_owned(),
                cause: with_ca_hint(cause),
            };
        }
        source = e.source();
    }
    if error.is_connect() {
        // A TLS failure surfaces as an io::Error wrapping the rustls error on some paths.
        if ["certificate", "tls", "TLS"].iter().chain(&NOT_TLS).any(|word| cause.contains(word)) {
            return UpstreamError::Tls {
                url: url.to_owned(),
                cause: with_ca_hint(cause),
            };
        }
        // The proxy's own limit, not the upstream's fault: said so.
        let cause = match cause.contains("Too many open files") {
            true => format!(
                "{cause} (ims-vcr ran out of file descriptors, with one per client connection \
                 and one per upstream connection: raise its limit, `ulimit -n`, or lower the \
                 clients' concurrency)"
            ),
            false => cause,
        };
        UpstreamError::Connect {
            url: url.to_owned(),
            cause,
        }
    } else if let Some(parse) = hyper_parse_error(error) {
        UpstreamError::InvalidHead {
            url: url.to_owned(),
            limits: match parse.is_parse_too_large() {
                true => " (at most 100 headers, and a head of at most about 400 KiB)",
                false => "",
            },
            cause,
        }
    } else if matches!(error, crate::net::pool::PoolError::Unanswered(_)) {
        UpstreamError::Unanswered {
            url: url.to_owned(),
            cause,
        }
    } else {
        UpstreamError::Cut {
            url: url.to_owned(),
            cause,
        }
    }
}

/// The hyper error in `error`'s chain when it is one reading the answer's head.
fn hyper_parse_error(error: &crate::net::pool::PoolError) -> Option<&hyper::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>()
            && hyper.is_parse()
        {
            return Some(hyper);
        }
        source = e.source();
    }
    None
}
