//! Answering a replayed request (in `replay` mode, or an `auto` hit) in the call that receives
//! it, without building [`Proxy::handle`]'s future.
//!
//! `handle`'s future holds every path a request can take (a body read, a forward and record,
//! the control API, a session's checks) and is some 1,600 bytes; hyper moves a service's future
//! into its dispatcher, and each nested call moves its own, so a replayed request spent about
//! 1,300 instructions (a tenth of its user-space work) copying futures whose only work was a
//! table lookup. A request that nothing can make wait is answered here instead, by the same
//! functions `handle` would call, and hyper gets the finished answer.

use std::future::Future;
use std::pin::Pin;

use super::*;

/// What [`Proxy::answer_at_once`] did with a request.
pub(crate) enum AtOnce {
    /// Answered, as [`Proxy::handle`] would have answered it.
    Answered(Response<Full<Bytes>>),
    /// Looked up, and what follows waits: a replay miss (its report reads the nearest
    /// recordings on a blocking thread), or in `auto` a miss or gap to forward.
    Later(Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>),
    /// Not one this path answers: [`Proxy::handle`] does, from the start (nothing was done).
    Declined(Request<Incoming>),
}

impl Proxy {
    /// Answers `request` the way [`Proxy::handle`] would, when nothing can make it wait: replay
    /// mode (or an `auto` hit: its miss goes on as a forward; in passthrough the forward goes
    /// on without `handle`'s future), no request body, no session
    /// (`x-ims-vcr-session`, a session listener), no `x-ims-vcr-skip` asking to skip or
    /// refused, neither `--latency` nor `--fault`, a store whose index is built, a path outside
    /// the control API, and not `CONNECT`. Almost every request of a replayed test suite is
    /// one. Any other request is handed back untouched, before anything is looked up or
    /// counted. The server hands `handle` a request with more than one `Host` itself.
    pub(crate) fn answer_at_once(self: &Arc<Self>, request: Request<Incoming>) -> AtOnce {
        // `auto` extends its tapes: a lookup there may play one to its end and forward.
        let mode = self.mode();
        let (extending, passing) = match (mode, &self.recorder) {
            (Mode::Replay, _) | (Mode::Auto, None) => (false, None),
            (Mode::Auto, Some(_)) => (true, None),
            (Mode::Passthrough, Some(recorder)) => (false, Some(recorder.clone())),
            _ => return AtOnce::Declined(request),
        };
        // Where `handle` reads it: the hit's latency counts these checks too.
        let started = started_for(mode);
        let path = request.uri().path();
        if !path.starts_with('/')
            || path.starts_with(CONTROL_PREFIX)
            || request.method() == hyper::Method::CONNECT
            || !hyper::body::Body::is_end_stream(request.body())
            || !self.settings.realism.is_inert()
            || self.tapes.is_indexing()
        {
            return AtOnce::Declined(request);
        }
        let (parts, body) = request.into_parts();
        if !matches!(session_of(&parts), Ok(None)) || skip_of(&parts) != Ok(false) {
            return AtOnce::Declined(Request::from_parts(parts, body));
        }
        // Passthrough forwards (what `answer` does for such a request), without `handle`'s and
        // `answer`'s futures around the forward.
        if let Some(recorder) = passing {
            let proxy = self.clone();
            return AtOnce::Later(Box::pin(async move {
                let (response, outcome) = proxy.pass_through(&recorder, &parts, Bytes::new()).await;
                proxy.log(&parts, &[], started, response, outcome, None)
            }));
        }
        // From here on, what `handle` and `replay` do for such a request, in their order.
        let key = self.key(&parts, &[], None);
        let played = self.lookup(&parts, &[], &key, extending);
        let answered = match extending {
            false => self.played(&parts, &[], &key, &played),
            true => played
                .prepared()
                .filter(|prepared| !prepared.is_gap())
                .map(|prepared| (self.hit_at_once(&parts, &[], &played, prepared), Outcome::Hit)),
        };
        if let Some((response, outcome)) = answered {
            return AtOnce::Answered(self.log(&parts, &[], started, response, outcome, None));
        }
        let proxy = self.clone();
        AtOnce::Later(Box::pin(async move {
            let (response, outcome) = match &proxy.recorder {
                Some(recorder) if extending => {
                    proxy.auto_played(recorder, &parts, Bytes::new(), &key, &played).await
                }
                _ => proxy.missed(&parts, &[], &key, &played).await,
            };
            proxy.log(&parts, &[], started, response, outcome, None)
        }))
    }
}
