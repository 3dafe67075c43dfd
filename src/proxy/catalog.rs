//! A service catalog that sends the client past the proxy. A token answer (Keystone v3
//! `POST /v3/auth/tokens`, v2 `POST /v2.0/tokens`) lists each service's endpoints; the proxy
//! points the ones at its upstreams' origins back at itself, so the client's next calls come
//! through it. An endpoint whose origin names the same port as an upstream by another host
//! (`http://10.0.0.5:9292` in the catalog, `--upstream http://localhost:9292`; `127.0.0.1` and
//! `localhost`) is most likely that upstream spelt otherwise: the client would call it directly,
//! those calls would not be recorded, and replay would send them nowhere. Said once per origin,
//! as a warning naming the flag that would fix it.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

/// Origins already warned about (held only to insert).
#[derive(Debug, Default)]
pub(crate) struct CatalogWarnings(Mutex<HashSet<String>>);

impl CatalogWarnings {
    /// Warns about each endpoint origin of a token answer's catalog (`path` the request's,
    /// `body` the answer's) that `upstreams` (the routes' origins) most likely spell otherwise.
    pub(crate) fn check(&self, path: &str, status: u16, body: &[u8], upstreams: &[String]) {
        if !(200..300).contains(&status) || !(path.ends_with("/auth/tokens") || path.ends_with("/tokens")) {
            return;
        }
        if memchr::memmem::find(body, b"atalog").is_none() {
            return;
        }
        let Ok(json) = serde_json::from_slice::<Value>(body) else {
            return;
        };
        for url in endpoint_urls(&json) {
            let Some(origin) = origin_of(url) else {
                continue;
            };
            // An upstream's own origin, pointed at the proxy as it is served.
            if upstreams.iter().any(|u| origin_of(u).as_deref() == Some(origin.as_str())) {
                continue;
            }
            let Some(upstream) = upstreams.iter().find(|u| same_port_other_host(&origin, u)) else {
                continue;
            };
            let mut warned = self.0.lock().expect("no code panics while holding the catalog warnings");
            if warned.insert(origin.clone()) {
                tracing::warn!(
                    catalog = %origin,
                    upstream = %upstream,
                    "the service catalog this token answer hands out names {origin}, which the proxy \
                     does not forward to (its upstream on that port is {upstream}): a client following \
                     the catalog calls it directly, past the proxy, so those calls are not recorded; \
                     give the origin as the catalog writes it (--upstream {origin}, or --route PREFIX={origin})"
                );
            }
        }
    }
}

/// The endpoint URLs of a Keystone v3 (`token.catalog[].endpoints[].url`) or v2
/// (`access.serviceCatalog[].endpoints[].publicURL`, `internalURL`, `adminURL`) token answer.
fn endpoint_urls(json: &Value) -> Vec<&str> {
    let v3 = json["token"]["catalog"].as_array().into_iter().flatten();
    let v2 = json["access"]["serviceCatalog"].as_array().into_iter().flatten();
    let v3_urls = v3.flat_map(|service| service["endpoints"].as_array().into_iter().flatten()).filter_map(|e| e["url"].as_str());
    let v2_urls = v2
        .flat_map(|service| service["endpoints"].as_array().into_iter().flatten())
        .flat_map(|e| ["publicURL", "internalURL", "adminURL"].map(|k| e[k].as_str()))
        .flatten();
    v3_urls.chain(v2_urls).collect()
}

/// `scheme://authority` of an absolute URL, lower-cased, with the scheme's default port when
/// it names none.
fn origin_of(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let port = authority.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(format!("{scheme}://{}:{port}", authority.host().to_ascii_lowercase()))
}

/// Whether `origin` (from [`origin_of`]) has `upstream`'s scheme and port but another host,
/// and is likely the same server for it: the port is not the scheme's default, or both hosts
/// are addresses or `localhost` (a cloud's catalog names every service on 443, each by its own
/// name, and those are other services).
fn same_port_other_host(origin: &str, upstream: &str) -> bool {
    let Some(upstream) = origin_of(upstream) else {
        return false;
    };
    let parts = |o: &str| -> Option<(String, String, String)> {
        let (scheme, rest) = o.split_once("://")?;
        let (host, port) = rest.rsplit_once(':')?;
        Some((scheme.to_owned(), host.to_owned(), port.to_owned()))
    };
    let (Some((scheme_a, host_a, port_a)), Some((scheme_b, host_b, port_b))) = (parts(origin), parts(&upstream)) else {
        return false;
    };
    let default_port = matches!((scheme_a.as_str(), port_a.as_str()), ("http", "80") | ("https", "443"));
    let local = |host: &str| host == "localhost" || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok();
    scheme_a == scheme_b
        && port_a == port_b
        && host_a != host_b
        && (!default_port || (local(&host_a) && local(&host_b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalog_naming_an_upstreams_port_by_another_host_is_found() {
        let v3 = serde_json::json!({"token": {"catalog": [
            {"type": "image", "endpoints": [{"url": "http://127.0.0.1:9292"}, {"url": "http://LOCALHOST:9292/"}]},
            {"type": "compute", "endpoints": [{"url": "http://127.0.0.1:8774/v2.1"}]},
        ]}});
        let urls = endpoint_urls(&v3);
        assert_eq!(urls.len(), 3);
        let upstreams = ["http://localhost:9292".to_owned()];
        let flagged: Vec<String> = (urls.iter().filter_map(|u| origin_of(u)))
            .filter(|o| upstreams.iter().any(|u| same_port_other_host(o, u)))
            .collect();
        // The upstream as written is not flagged, another service's port is not either.
        assert_eq!(flagged, ["http://127.0.0.1:9292"]);
        // On a default port only addresses and `localhost` are taken for one server: a cloud's
        // other services on 443 are other services.
        let v2 = serde_json::json!({"access": {"serviceCatalog": [
            {"endpoints": [{"publicURL": "https://ecs.example/", "adminURL": "http://10.0.0.5/image"}]}]}});
        for (upstream, expected) in [
            ("https://ims.example", &[][..]),
            ("http://localhost/image", &["http://10.0.0.5:80"][..]),
        ] {
            let flagged: Vec<String> = (endpoint_urls(&v2).iter().filter_map(|u| origin_of(u)))
                .filter(|o| same_port_other_host(o, upstream))
                .collect();
            assert_eq!(flagged, expected, "{upstream}");
        }
    }
}
