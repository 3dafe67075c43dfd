//! Passthrough: one upstream exchange per request and the live answer relayed, nothing stored.
//! The client gets what the forwarding path of record mode serves for an answer it does not
//! store (see `record.rs`), without building the interaction that path would store: no request
//! or answer body parsed, no recording time, no stable request id, no leak-gate needles.

use super::*;
use crate::net::upstream::UpstreamError;
use super::record::Failure;

impl Proxy {
    /// Forwards one request in passthrough mode and relays the answer (`forwarded`), or the
    /// `502` naming the failure (`upstream-error`).
    pub(super) async fn pass_through(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        session: Option<&str>,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let Some(route) = recorder.routes.route(parts.uri.path()) else {
            // The no-route answer, exactly as every forwarding mode gives it.
            let key = self.key(parts, &body, session);
            // Boxed: its future is large and never polled on the common path.
            return match Box::pin(self.forward(recorder, parts, body, &key, Mode::Passthrough)).await {
                Ok(delivered) => {
                    let outcome = delivered.outcome();
                    (self.serve(&delivered.prepared, parts, outcome), outcome)
                }
                Err(failure) => (failure.to_response(), Outcome::UpstreamError),
            };
        };
        let upstream = route.upstream();
        let live = match upstream.relay(parts, body).await {
            Ok(live) => {
                self.metrics.upstream(live.latency);
                live
            }
            Err(e) => {
                tracing::warn!(kind = e.kind(), error = %e, "upstream failed; nothing recorded");
                return (Failure::upstream(&e).to_response(), Outcome::UpstreamError);
            }
        };
        // The origins the answer may mention, in the order record mode lists them: the route's
        // own, then the other routes' (pointed at the proxy when the client follows them).
        let own = upstream.origin();
        let others = recorder.routes.origins();
        let origins = std::iter::once(own).chain(others.into_iter().filter(|o| *o != own));
        match Prepared::relayed(live.status, live.headers, live.body, origins) {
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

impl Failure {
    /// The `502` for an upstream that gave no usable answer.
    pub(super) fn upstream(e: &UpstreamError) -> Failure {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            code: "IMS_VCR.UPSTREAM",
            message: e.to_string(),
            details: json!({ "kind": e.kind() }),
        }
    }

    /// The `502` for a live answer that cannot be served again as it came.
    pub(super) fn invalid_answer(why: &str) -> Failure {
        Failure {
            status: StatusCode::BAD_GATEWAY,
            code: "IMS_VCR.UPSTREAM",
            message: format!("upstream answer cannot be replayed: {why}"),
            details: json!({ "kind": "invalid-answer" }),
        }
    }
}
