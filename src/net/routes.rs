//! Several upstreams behind one listener: each request goes to the upstream of the longest path
//! prefix it falls under (`--route PREFIX=URL`; `--upstream URL` is the route `/`). Prefixes
//! match whole path segments: `/v3` takes `/v3` and `/v3/auth/tokens`, never `/v30`. The path
//! is forwarded as it came (the prefix is not stripped), after the route URL's own path.

use crate::error::{Error, Result};
use crate::net::upstream::{Upstream, UpstreamConfig};

/// One route: a path prefix and its upstream.
#[derive(Debug)]
pub struct Route {
    prefix: String,
    upstream: Upstream,
}

impl Route {
    /// The path prefix (`/`, `/v3`, `/v3.0`), without a trailing slash except for `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The upstream it forwards to.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }
}

/// The routes of a forwarding proxy, longest prefix first.
#[derive(Debug)]
pub struct Routes {
    routes: Vec<Route>,
    /// The distinct upstream origins, in route order: known at start-up, read per request.
    origins: Vec<String>,
}

impl Routes {
    /// Validates each prefix and URL and builds one pooled client per route. Fails on an empty
    /// list, a prefix not starting with `/`, or the same prefix twice.
    pub fn new(configs: &[(String, UpstreamConfig)]) -> Result<Routes> {
        if configs.is_empty() {
            return Err(Error::Config(
                "a forwarding mode needs an upstream: --upstream URL or --route PREFIX=URL".into(),
            ));
        }
        let mut routes: Vec<Route> = Vec::with_capacity(configs.len());
        for (prefix, config) in configs {
            let prefix = normalize_prefix(prefix)?;
            if routes.iter().any(|r| r.prefix == prefix) {
                return Err(Error::Config(format!(
                    "--route {prefix}: the prefix is given twice (--upstream is the route /)"
                )));
            }
            let upstream = Upstream::new(config).map_err(|e| match e {
                Error::Config(why) if prefix != "/" => {
                    Error::Config(format!("--route {prefix}: {why}"))
                }
                other => other,
            })?;
            routes.push(Route { prefix, upstream });
        }
        routes.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()).then(a.prefix.cmp(&b.prefix)));
        let mut origins: Vec<String> = Vec::new();
        for route in &routes {
            if !origins.iter().any(|o| o == route.upstream.origin()) {
                origins.push(route.upstream.origin().to_owned());
            }
        }
        Ok(Routes { routes, origins })
    }

    /// The route of `path`: the longest prefix it falls under, whole segments only.
    pub fn route(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| prefix_matches(&r.prefix, path))
    }

    /// Every route, longest prefix first.
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The distinct upstream origins (`scheme://authority`), in route order.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// `PREFIX=ORIGIN, ...` for messages (a request that matches no route, start-up logs).
    pub fn describe(&self) -> String {
        self.routes
            .iter()
            .map(|r| format!("{}={}", r.prefix, r.upstream.origin()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `/v3/` → `/v3`, `/` stays `/`; a prefix must start with `/` and hold no query.
pub fn normalize_prefix(prefix: &str) -> Result<String> {
    // Shown without user information: `--route https://user:pw@host/x=y` has no prefix.
    let bad = |why: &str| {
        let shown = crate::model::credentials::shown_url(prefix);
        Error::Config(format!("--route {shown:?}: {why}"))
    };
    if !prefix.starts_with('/') {
        return Err(bad("the prefix must be a path starting with /, e.g. /v3"));
    }
    if prefix.contains(['?', '#']) || prefix.chars().any(char::is_whitespace) {
        return Err(bad("the prefix must be a plain path, without query or spaces"));
    }
    let trimmed = prefix.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// True when `path` is `prefix` or lies under it, whole segments only.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Parses `PREFIX=VALUE` (`--route`, `--route-ca`); the prefix is normalised.
pub fn parse_assignment(flag: &str, text: &str) -> Result<(String, String)> {
    let (prefix, value) = text.split_once('=').ok_or_else(|| {
        // Shown without user information: the text may be a URL with a password in it.
        let shown = crate::model::credentials::shown_url(text);
        Error::Config(format!("{flag} {shown:?}: expected PREFIX=VALUE, e.g. /v3=https://iam.example.com"))
    })?;
    if value.is_empty() {
        return Err(Error::Config(format!("{flag} {text:?}: nothing after ="))); 
    }
    Ok((normalize_prefix(prefix)?, value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[(&str, &str)]) -> Routes {
        let configs: Vec<(String, UpstreamConfig)> = list
            .iter()
            .map(|(p, u)| ((*p).to_owned(), UpstreamConfig::new(*u)))
            .collect();
        Routes::new(&configs).unwrap()
    }

    #[test]
    fn the_longest_whole_segment_prefix_wins() {
        let r = routes(&[
            ("/", "https://ims.example"),
            ("/v3", "https://iam.example"),
            ("/v3.0/", "https://iam3.example"),
            ("/v3/abc/backups", "https://cbr.example"),
        ]);
        let origin = |path: &str| r.route(path).map(|r| r.upstream().origin().to_owned());
        assert_eq!(origin("/v3/auth/tokens").unwrap(), "https://iam.example");
        assert_eq!(origin("/v3").unwrap(), "https://iam.example");
        assert_eq!(origin("/v30/x").unwrap(), "https://ims.example");
        assert_eq!(origin("/v3.0/OS-CREDENTIAL/securitytokens").unwrap(), "https://iam3.example");
        assert_eq!(origin("/v3/abc/backups/1").unwrap(), "https://cbr.example");
        assert_eq!(origin("/v3/abc/backupsX").unwrap(), "https://iam.example");
        assert_eq!(origin("/v2/images").unwrap(), "https://ims.example");
        let only = routes(&[("/v3", "https://iam.example")]);
        assert!(only.route("/v2/images").is_none());
        assert!(only.describe().contains("/v3=https://iam.example"));
    }

    #[test]
    fn bad_prefixes_and_duplicates_are_refused_naming_the_flag() {
        for bad in ["v3", "/v3?x=1", ""] {
            assert!(normalize_prefix(bad).unwrap_err().to_string().contains("--route"));
        }
        let twice = [
            ("/v3".to_owned(), UpstreamConfig::new("https://a.example")),
            ("/v3/".to_owned(), UpstreamConfig::new("https://b.example")),
        ];
        assert!(Routes::new(&twice).unwrap_err().to_string().contains("twice"));
        assert!(parse_assignment("--route", "/v3").is_err());
        assert_eq!(
            parse_assignment("--route", "/v3/=https://iam.example/x=y").unwrap(),
            ("/v3".to_owned(), "https://iam.example/x=y".to_owned())
        );
    }
}
