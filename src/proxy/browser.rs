//! What a web page in the user's browser could send to a proxy on the user's machine, refused.
//!
//! A page cannot read another origin's answers, but it can send requests to `127.0.0.1`
//! (a form, an image, `fetch` with `no-cors`), and with DNS rebinding (its own name resolved to
//! `127.0.0.1`) it can send any request and read the answer. Two things on the proxy are worth
//! a page's while: the control API (switch the mode, reset cursors, read every recording), and
//! the signature the proxy adds with the AK/SK in its environment, which would act on the
//! user's cloud account with the user's keys. Both refuse what only a browser sends. Clients
//! that are not browsers (SDKs, the OpenStack CLI, curl, scripts) send none of it.

use std::net::IpAddr;

use hyper::Method;
use hyper::header::{HeaderValue, ORIGIN};
use hyper::http::request::Parts;

/// The `Sec-Fetch-Site` value a browser gives a request a page of another site started; SDKs
/// never send the header. `same-site` is a page of this machine on another port
/// (`http://localhost:3000`), which the `Origin` check already judges.
const CROSS_SITE: &[&str] = &["cross-site"];

/// Refuses a request the proxy would sign with its own AK/SK when a web page could have sent
/// it: a foreign `Origin` (any method: a page's `POST` and `DELETE` both carry one), a
/// `Sec-Fetch-Site` of another site, or, while the proxy listens on loopback only, a `Host`
/// that is a domain name other than `localhost` and other than an upstream's (DNS rebinding:
/// `evil.example` resolved to 127.0.0.1; a client that maps the real endpoint's name to the
/// proxy in `/etc/hosts` sends the upstream's name, which passes). A proxy started with
/// `--allow-remote` is reachable from other machines, which may name it as they like, so the
/// `Host` check is left to whoever exposed it.
pub fn signing_safe<'a>(
    parts: &Parts,
    loopback_listener: bool,
    upstream_hosts: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    const FIX: &str = "the proxy signs requests with the AK/SK in its environment, so it refuses \
                       what a web page could send; point the client at http://127.0.0.1:PORT \
                       or http://localhost:PORT";
    // Every copy of each header: a second `Host` or `Origin` must not slip past the first.
    if let Some(origin) = parts.headers.get_all(ORIGIN).iter().find(|o| !loopback_origin(o)) {
        let shown = String::from_utf8_lossy(origin.as_bytes());
        return Err(format!(
            "refused a request from a web page of origin {shown:?} (Origin header): {FIX}"
        ));
    }
    let cross_site = parts.headers.get_all("sec-fetch-site").iter().find_map(|site| {
        let site = String::from_utf8_lossy(site.as_bytes()).trim().to_owned();
        CROSS_SITE
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&site))
            .then_some(site)
    });
    if let Some(site) = cross_site {
        return Err(format!(
            "refused a request a web page of another site started (Sec-Fetch-Site: {site}): {FIX}"
        ));
    }
    if loopback_listener {
        let upstreams: Vec<&str> = upstream_hosts.collect();
        let foreign = request_hosts(parts).into_iter().find(|host| {
            !local_host(host) && !upstreams.iter().any(|upstream| same_host(upstream, host))
        });
        if let Some(host) = foreign {
            return Err(format!(
                "refused a request addressed to host {host:?}, which is neither localhost, an IP \
                 address nor an upstream's name (a DNS-rebinding guard): {FIX}"
            ));
        }
    }
    Ok(())
}

/// The hosts a request is addressed to, without ports: the authority of an absolute-form
/// target or HTTP/2's `:authority` (which hyper puts in the URI), and every `Host` header. A
/// value that is not a plain `host[:port]` (user information, `evil.example@127.0.0.1`, or what
/// does not parse) is given whole, so it names no local host.
fn request_hosts(parts: &Parts) -> Vec<String> {
    let mut hosts: Vec<String> = parts.uri.authority().map(|a| a.host().to_owned()).into_iter().collect();
    for value in parts.headers.get_all(hyper::header::HOST) {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if text.trim().is_empty() {
            // An empty `Host` names nothing, as an absent one (HTTP/1.0).
            continue;
        }
        match text.parse::<hyper::http::uri::Authority>() {
            Ok(authority) if !text.contains('@') => hosts.push(authority.host().to_owned()),
            _ => hosts.push(text),
        }
    }
    hosts
}

/// Whether an `Origin` header names a page served from this machine: `localhost`, a name under
/// `.localhost`, or a loopback address. Any other origin, an IP address on the network
/// included, is another site's page; `null` (a sandboxed or file page) is too.
fn loopback_origin(origin: &HeaderValue) -> bool {
    let host = origin
        .to_str()
        .ok()
        .and_then(|o| o.parse::<hyper::Uri>().ok())
        .filter(|uri| uri.authority().is_some_and(|a| !a.as_str().contains('@')))
        .and_then(|uri| uri.host().map(str::to_owned));
    let Some(host) = host else { return false };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host.ends_with(".localhost")
        || ip.parse::<IpAddr>().is_ok_and(loopback_ip)
}

/// Whether `authority` (an upstream's `host[:port]`) names `host`, in any letter case.
fn same_host(authority: &str, host: &str) -> bool {
    let name = authority
        .parse::<hyper::http::uri::Authority>()
        .map(|a| a.host().to_owned())
        .unwrap_or_else(|_| authority.to_owned());
    name.trim_end_matches('.')
        .eq_ignore_ascii_case(host.trim_end_matches('.'))
}

/// Refuses what a web page in the user's browser could send to a loopback proxy: a request
/// whose `Host` is a domain name other than `localhost` (DNS rebinding: `evil.example` resolved
/// to 127.0.0.1 reads the answers), and a state-changing request with a foreign `Origin` or a
/// content type a cross-site form may send without a preflight. IP literals and `localhost`
/// cannot be rebound. Clients that are not browsers (curl, SDKs, scripts) send none of these.
pub fn browser_safe(parts: &Parts) -> Result<(), String> {
    if let Some(host) = request_hosts(parts).into_iter().find(|h| !local_host(h)) {
        return Err(format!(
            "the control API answers requests addressed to localhost or an IP address, not to \
             host {host:?} (a DNS-rebinding guard); use http://127.0.0.1:PORT"
        ));
    }
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Ok(());
    }
    if parts.headers.get_all(ORIGIN).iter().any(|o| !loopback_origin(o)) {
        return Err(
            "the control API refuses state-changing requests from a web page of another \
             origin (Origin header); send them from a script or curl"
                .into(),
        );
    }
    if let Some(content_type) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        let essence = content_type
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            essence.as_str(),
            "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
        ) {
            return Err(format!(
                "the control API refuses content type {essence:?} on {} (a web form could send \
                 it cross-site); send no body, or a JSON body with content-type: \
                 application/json",
                parts.method
            ));
        }
    }
    Ok(())
}

/// A loopback address, an IPv4 one mapped into IPv6 (`::ffff:127.0.0.1`) too.
pub(crate) fn loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// `localhost`, a name under `.localhost`, or an IP literal (v4, or v6 in brackets).
pub(crate) fn local_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    // The loopback names distributions put in `/etc/hosts` (RHEL, Debian) besides `localhost`.
    const ALIASES: &[&str] = &[
        "localhost.localdomain",
        "localhost4",
        "localhost4.localdomain4",
        "localhost6",
        "localhost6.localdomain6",
        "ip6-localhost",
        "ip6-loopback",
    ];
    host == "localhost"
        || host.ends_with(".localhost")
        || ALIASES.contains(&host.as_str())
        || host.parse::<IpAddr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<IpAddr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn control_requests_addressed_to_a_domain_name_are_refused_as_dns_rebinding() {
        for host in ["evil.example", "evil.example:9696", "127.0.0.1.nip.io"] {
            let p = parts("GET", "/__ims-vcr/stats", &[("host", host)]);
            let why = browser_safe(&p).unwrap_err();
            assert!(why.contains("DNS-rebinding"), "{host}: {why}");
        }
        // HTTP/2 carries the host in :authority, which hyper puts in the URI.
        let p = parts("GET", "http://evil.example/__ims-vcr/stats", &[]);
        assert!(browser_safe(&p).is_err());
        for host in ["127.0.0.1:9696", "localhost", "LOCALHOST:1", "[::1]:9696", "10.0.0.5", "a.localhost"] {
            let p = parts("GET", "/__ims-vcr/stats", &[("host", host)]);
            assert_eq!(browser_safe(&p), Ok(()), "{host}");
        }
        // HTTP/1.0 without Host: not a browser.
        assert_eq!(browser_safe(&parts("GET", "/__ims-vcr/stats", &[])), Ok(()));
    }

    #[test]
    fn state_changing_control_requests_from_a_foreign_origin_or_a_form_content_type_are_refused() {
        let host = ("host", "127.0.0.1:9696");
        for origin in ["https://evil.example", "null", "http://127.0.0.1.evil.example"] {
            let p = parts("POST", "/__ims-vcr/mode?mode=passthrough", &[host, ("origin", origin)]);
            assert!(browser_safe(&p).unwrap_err().contains("Origin"), "{origin}");
        }
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "Text/Plain; charset=utf-8",
        ] {
            let p = parts("POST", "/__ims-vcr/reset", &[host, ("content-type", content_type)]);
            assert!(browser_safe(&p).unwrap_err().contains("content type"), "{content_type}");
        }
        for ok in [
            parts("POST", "/__ims-vcr/reset", &[host]),
            parts("POST", "/__ims-vcr/mode", &[host, ("content-type", "application/json")]),
            parts("POST", "/__ims-vcr/reset", &[host, ("origin", "http://localhost:3000")]),
            // A GET cannot change state: a foreign Origin there is only a read of local data,
            // which the Host check already guards.
            parts("GET", "/__ims-vcr/stats", &[host, ("origin", "https://evil.example")]),
        ] {
            assert_eq!(browser_safe(&ok), Ok(()));
        }
    }

    #[test]
    fn a_request_the_proxy_would_sign_is_refused_when_a_web_page_could_have_sent_it() {
        let upstreams = || ["ims.example.com:443", "iam.example.com"].into_iter();
        for (refused, headers) in [
            ("Origin", vec![("host", "127.0.0.1:9696"), ("origin", "https://evil.example")]),
            ("Origin", vec![("host", "127.0.0.1:9696"), ("origin", "null")]),
            ("Sec-Fetch-Site", vec![("host", "127.0.0.1:9696"), ("sec-fetch-site", "cross-site")]),
            ("DNS-rebinding", vec![("host", "evil.example:9696")]),
            ("DNS-rebinding", vec![("host", "127.0.0.1.nip.io:9696")]),
        ] {
            for method in ["GET", "DELETE", "POST"] {
                let p = parts(method, "/v2/images/x", &headers);
                let why = signing_safe(&p, true, upstreams()).unwrap_err();
                assert!(why.contains(refused) && why.contains("127.0.0.1:PORT"), "{why}");
            }
        }
        for headers in [
            vec![("host", "127.0.0.1:9696")],
            vec![("host", "localhost:9696"), ("origin", "http://localhost:3000")],
            vec![("host", "[::1]:9696"), ("sec-fetch-site", "same-origin")],
            // A page of this machine on another port, and the loopback aliases of /etc/hosts.
            vec![("host", "localhost:9696"), ("origin", "http://localhost:3000"), ("sec-fetch-site", "same-site")],
            vec![("host", "localhost.localdomain:9696")],
            vec![("host", "ip6-localhost:9696")],
            vec![("host", "")],
            // The real endpoint's name mapped to the proxy (`/etc/hosts`).
            vec![("host", "IMS.example.com")],
            vec![("host", "iam.example.com:9696")],
            // HTTP/1.0 without Host: not a browser.
            vec![],
        ] {
            let p = parts("DELETE", "/v2/images/x", &headers);
            assert_eq!(signing_safe(&p, true, upstreams()), Ok(()), "{headers:?}");
        }
        // A page on a network address, a second Host or Origin after a good one, and a Host
        // with user information in front of a loopback address.
        for headers in [
            vec![("host", "127.0.0.1:9696"), ("origin", "http://203.0.113.5")],
            vec![("host", "127.0.0.1:9696"), ("origin", "http://localhost@evil.example")],
            vec![("host", "127.0.0.1:9696"), ("host", "evil.example")],
            vec![("host", "evil.example@127.0.0.1")],
            vec![("host", "127.0.0.1"), ("origin", "http://localhost"), ("origin", "https://e.x")],
            vec![("host", "127.0.0.1"), ("sec-fetch-site", "none"), ("sec-fetch-site", "cross-site")],
        ] {
            let p = parts("POST", "/v2/images", &headers);
            assert!(signing_safe(&p, true, upstreams()).is_err(), "{headers:?}");
        }
        let loopback_page = parts("POST", "/v2/images", &[("origin", "http://[::1]:3000")]);
        assert_eq!(signing_safe(&loopback_page, true, upstreams()), Ok(()));
        // Listening beyond loopback (`--allow-remote`): other machines name the proxy as they
        // like; a page's Origin is still refused.
        let named = parts("GET", "/v2/images/x", &[("host", "ims-vcr:9696")]);
        assert_eq!(signing_safe(&named, false, upstreams()), Ok(()));
        let page = parts("GET", "/v2/images/x", &[("host", "ims-vcr"), ("origin", "https://e.x")]);
        assert!(signing_safe(&page, false, upstreams()).is_err());
    }
}
