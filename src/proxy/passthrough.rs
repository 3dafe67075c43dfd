//! Passthrough: one upstream exchange per request and the live answer relayed, nothing stored.
//! The client gets what the forwarding path of record mode serves for an answer it does not
//! store (see `record.rs`), without building the interaction that path would store: no request
//! or answer body parsed, no recording time, no stable request id, no leak-gate needles.

use super::*;
use super::failure::Failure;

impl Proxy {
    /// Forwards one request in passthrough mode and relays the answer (`forwarded`), or the
    /// `502` naming the failure (`upstream-error`).
    pub(super) async fn pass_through(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let Some(route) = recorder.routes.route(parts.uri.path()) else {
            // The no-route answer, exactly as every forwarding mode gives it.
            let failure = Failure::no_route(&recorder.routes, parts, &body);
            return (failure.to_response(), Outcome::UpstreamError);
        };
        let upstream = route.upstream();
        if let Some(refused) = Failure::refusing(self, &recorder.routes, upstream, parts, &body) {
            return (refused.to_response(), refused.outcome);
        }
        // A clone (a count, not a copy) kept for the `502`'s message, which masks what it holds.
        let live = match upstream.relay(parts, body.clone(), false).await {
            Ok(live) => {
                self.metrics.upstream(live.latency);
                live
            }
            Err(e) => {
                let failure = Failure::upstream(&e, parts, &body);
                return (failure.to_response(), Outcome::UpstreamError);
            }
        };
        // A token it hands out (`X-Subject-Token`) is masked wherever a later request's log line
        // shows it, as in record mode.
        recorder.issued.remember(&live.headers);
        recorder.catalog_warnings.check(parts.uri.path(), live.status.as_u16(), &live.body, recorder.routes.origins());
        // The origins the answer may mention, in the order record mode lists them: the route's
        // own, then the other routes' (pointed at the proxy when the client follows them).
        let own = upstream.origin();
        let others = recorder.routes.origins().iter().map(String::as_str);
        let origins = std::iter::once(own).chain(others.filter(|o| *o != own));
        match Prepared::relayed(&parts.method, live.status, live.headers, live.body, origins) {
            Ok(prepared) => {
                let origin = self.origin_for(&prepared, parts);
                let response = prepared.into_response(Outcome::Forwarded, origin.as_deref());
                (response, Outcome::Forwarded)
            }
            Err(e) => (
                Failure::invalid_answer(&e).to_response(),
                Outcome::UpstreamError,
            ),
        }
    }
}
