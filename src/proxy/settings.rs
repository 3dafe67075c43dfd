//! Every serving default in one place, and the settings a proxy is started with: body limits,
//! the body-read timeout, realism (latency, faults), the control token and the listener scheme.

use std::time::Duration;

use crate::proxy::realism::Realism;
use crate::secrets::pseudonym::PseudonymKey;

/// Default cap on a client request body (`--max-body`).
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;
/// How long a client may take to send a request head, and its body (`--header-read-timeout`).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What a proxy is started with; fixed for its lifetime.
#[derive(Debug)]
pub(crate) struct Settings {
    /// Cap on a client request body; larger ones get `413`.
    pub(crate) max_body: usize,
    /// How long a client may take to send a request body: hyper bounds only the head, so
    /// without this a client announcing more bytes than it sends holds its connection and a
    /// task forever.
    pub(crate) body_read_timeout: Duration,
    /// Added latency and injected faults (none by default).
    pub(crate) realism: Realism,
    /// Token that lets non-loopback peers use the control API.
    pub(crate) control_token: Option<String>,
    /// `http`, or `https` when the listener serves TLS: the scheme of the proxy's own URLs.
    pub(crate) scheme: &'static str,
    /// A session's verdict fails when it left recordings unused (`--fail-on-unused`).
    pub(crate) fail_on_unused: bool,
    /// Whether the listener is bound to a loopback address only (no `--allow-remote`): then a
    /// request to be signed must name the proxy as localhost, an IP or an upstream (see
    /// [`crate::proxy::browser::signing_safe`]).
    pub(crate) loopback_listener: bool,
    /// The key answers' access key ids were pseudonymised with when recorded (the redaction
    /// key): a request naming a real key id in its path is looked up again by its pseudonym
    /// (see [`crate::model::access_keys`]).
    pub(crate) access_keys: PseudonymKey,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body: DEFAULT_MAX_BODY,
            body_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            realism: Realism::default(),
            control_token: None,
            scheme: "http",
            fail_on_unused: false,
            loopback_listener: true,
            access_keys: PseudonymKey::from_lookup(|n| std::env::var(n).ok()).0,
        }
    }
}
