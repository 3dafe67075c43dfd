//! The forwarding side of the per-request flow: one upstream exchange per request (auto mode:
//! one for concurrent identical misses), the record path through the gate into the store, and
//! the end-of-session flush that brings the replay pack up to date.

use super::*;
use hyper::header::HeaderMap;
use crate::secrets::gate::Refusal;
use crate::secrets::shown::Shown;
use super::failure::Failure;

/// Forwarding state: where answers come from and where they go.
pub(crate) struct Recorder {
    /// The upstreams by path prefix (`--upstream` is the route `/`).
    pub(crate) routes: Routes,
    /// `None` when started in passthrough mode (no store is opened, nothing can be recorded).
    pub(crate) store: Option<Arc<Store>>,
    /// Redaction applied before storing (`--redact`), if any.
    pub(crate) redactor: Option<Redactor>,
    /// Secrets the leak gate always looks for: the proxy's own AK/SK and security token.
    pub(crate) secrets: Vec<Needle>,
    /// Request lines whose recorded 401/403 was already warned about (once per line, not per
    /// request). Held only to insert.
    pub(crate) warned_refusals: Mutex<std::collections::HashSet<String>>,
    /// The key the access key ids that answers hand out are pseudonymised with.
    pub(crate) pseudonyms: crate::secrets::pseudonym::PseudonymKey,
    /// The tokens answers handed out so far: the leak gate looks for them in later exchanges.
    pub(crate) issued: crate::secrets::issued::Issued,
    /// The named sessions' attempts that replaced what their sessions held (`sweep.rs`).
    pub(crate) swept: super::sweep::Swept,
    /// Catalog origins already warned about (`catalog.rs`).
    pub(crate) catalog_warnings: super::catalog::CatalogWarnings,
}

impl Recorder {
    /// What the leak gate looks for in every exchange besides its own credentials: the proxy's
    /// own keys ([`Recorder::secrets`]) and the tokens earlier answers handed out
    /// ([`Recorder::issued`]).
    pub(crate) fn known_secrets(&self) -> Vec<Needle> {
        let mut known = self.secrets.clone();
        known.extend(self.issued.needles());
        known
    }

    /// [`Recorder::known_secrets`] with the remembered tokens whole: what a log line showing a
    /// refused exchange masks (only on that path: a scanner of whole KB-long tokens is dear).
    pub(crate) fn secrets_to_mask(&self) -> Vec<Needle> {
        let mut known = self.secrets.clone();
        known.extend(self.issued.whole());
        known
    }

    /// Warns, once per request line, that a refusal (401/403) was recorded: replay will serve it
    /// as if it were the API's answer, and it is almost always the credential that is wrong.
    fn warn_if_refused(&self, key: &RequestKey, status: StatusCode) {
        if !matches!(status.as_u16(), 401 | 403) {
            return;
        }
        let line = &*crate::model::access_keys::masked(key.request_line());
        let first = self
            .warned_refusals
            .lock()
            .expect("no code panics while holding the warned-refusals lock")
            .insert(line.to_owned());
        if first {
            tracing::warn!(
                request = line,
                status = status.as_u16(),
                "recorded a {} answer: the credential, not the API, is probably wrong (no token, an \
                 expired one, or AK/SK missing from the proxy's environment or wrong there); replay will serve \
                 this refusal until the request is recorded again",
                status.as_u16()
            );
        }
    }
}

/// What the proxy answers one forwarded exchange with: only ever to the client that made it.
pub(super) type Forwarded = Result<Delivered, Failure>;

/// A live answer, and where it was stored (the gate or the store may refuse it).
#[derive(Debug)]
pub(crate) struct Delivered {
    pub(super) prepared: Prepared,
    /// The answer's position among its request's stored answers, and the digest of the request
    /// as stored (redaction may change it), when it was stored.
    pub(super) stored: Option<(u32, [u8; 32])>,
    /// The exchange's credential values when the leak gate refused it (a secret its answer
    /// handed out is in the request's path): the request's log line masks them too.
    pub(super) refused: Option<Arc<Shown>>,
}

impl Delivered {
    /// `recorded` when the answer was stored, else `forwarded` (served live, not stored).
    pub(super) fn outcome(&self) -> Outcome {
        if self.stored.is_some() {
            Outcome::Recorded
        } else {
            Outcome::Forwarded
        }
    }
}

/// What the clients waiting on another client's exchange (auto mode, concurrent identical
/// misses) learn from it: where its answer was stored, never the answer itself.
///
/// Requests that share a key are identical only up to what the key leaves out: credentials
/// (the token, a password in a sign-in body, a cookie) and volatile headers. The live answer
/// is the answer to one client's credentials: it may carry a `Set-Cookie`, the real token of a
/// sign-in in `X-Subject-Token`, or that client's token echoed in the body. So a waiter is
/// served what a replay would serve it, the stored and sanitised form (no `Set-Cookie`, the
/// placeholder token, redacted under `--redact`); and when nothing was stored there is no
/// such form, so each waiter makes its own exchange, as it would have without coalescing;
/// except when the upstream could not be reached or did not answer in time, which each waiter
/// would only find again, waiting as long. The types keep the live answer out of the waiters'
/// reach: only this crosses to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coalesced {
    /// Stored as this answer (0-based) of the request stored under this digest: each waiter
    /// replays that answer, and keeps its own place after it with a copy of it.
    Stored(u32, [u8; 32]),
    /// Not stored: the leak gate or the store refused it, the upstream failed, or the answer
    /// could not be served again. Each waiter makes its own exchange: a `502` from one
    /// client's exchange is that client's, and the upstream may answer the next one.
    NotStored,
    /// The upstream could not be reached or did not answer within `--upstream-timeout`
    /// (`connect`, `timeout`, the kind held): each waiter is given a `502` of that kind, rather
    /// than wait as long again for an upstream that was just found down or hung. Only the kind
    /// crosses: the leader's message names its own URL, whose ignored query values
    /// (`--ignore-query`) may not be the waiter's.
    Unreachable(&'static str),
}

impl Coalesced {
    fn of(forwarded: &Forwarded) -> Coalesced {
        match forwarded {
            Ok(Delivered {
                stored: Some((seq, stored)),
                ..
            }) => Coalesced::Stored(*seq, *stored),
            Err(failure) => match failure.details["kind"].as_str() {
                Some("connect") => Coalesced::Unreachable("connect"),
                Some("timeout") => Coalesced::Unreachable("timeout"),
                _ => Coalesced::NotStored,
            },
            Ok(_) => Coalesced::NotStored,
        }
    }
}

/// An answer's headers as stored: credential headers left out; for a token the client passes
/// back (`X-Subject-Token`), a marker in its place so replay serves a placeholder token
/// (see [`crate::model::headers::PLACEHOLDER_MARKER`]).
fn stored_headers(live: &HeaderMap) -> Vec<(String, String)> {
    let mut headers = to_pairs(live, |n| !is_credential(n));
    headers.extend(crate::model::headers::placeholder_markers(
        live.keys().map(|name| name.as_str()),
    ));
    headers
}

impl Proxy {
    /// `auto` after its lookup: a gap is forwarded without storing, a hit served, and a miss
    /// (or a tape played to its end) forwarded and recorded, once for concurrent askers.
    pub(super) async fn auto_played(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
        played: &Play,
    ) -> (Response<Full<Bytes>>, Outcome) {
        match played.prepared() {
            Some(prepared) if prepared.is_gap() => {
                Box::pin(self.forward_unstored(recorder, parts, body, key)).await
            }
            Some(prepared) => (self.hit(parts, &body, played, prepared).await, Outcome::Hit),
            // Boxed: forwarding futures are large, and every request's future would
            // otherwise be sized, and copied, for them.
            None => {
                let sent = body.clone();
                // Only a safe request is shared: two identical `POST`s create two images live
                // (and `DELETE`s answer `204` then `404`), so each is its own exchange, as in
                // `record`; and a sign-in shared would hand the waiters the placeholder token,
                // which the upstream refuses when their next request misses.
                let (response, outcome) = if parts.method.is_safe() {
                    Box::pin(self.single_flight(recorder, parts, body, key)).await
                } else {
                    let forwarded = Box::pin(self.forward(recorder, parts, body, key, Mode::Auto)).await;
                    self.served(parts, forwarded)
                };
                if matches!(outcome, Outcome::Error | Outcome::UpstreamError) {
                    // A miss the proxy would not forward (it carries the placeholder token a
                    // replayed sign-in handed out; a page's request the proxy would sign), or
                    // whose forward failed (the upstream down, timed out, no route): neither a
                    // recording nor the upstream answered it, so it counts as the miss it is
                    // (the exit summary, `--fail-on-miss`, the session's verdict) as well as
                    // what it is, and its 502 says why.
                    let shown = crate::secrets::shown::Shown::of(parts, &sent);
                    let (canonical, line) = (shown.text(key.canonical()), shown.text(key.request_line()));
                    self.count_miss(parts, key, (&canonical, &line), (&[], &[], None, false));
                }
                (response, outcome)
            }
        }
    }

    /// Auto-mode miss of a safe request (`GET`, `HEAD`, `OPTIONS`, `TRACE`): the first of N
    /// concurrent identical misses forwards and records, and is
    /// the only one served the live answer; the others wait for it and are served what a
    /// replay of the stored answer gives them, or, when it was not stored, make their own
    /// exchange (see [`Coalesced`] for why).
    pub(super) async fn single_flight(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let cell = {
            let mut inflight = self
                .inflight
                .lock()
                .expect("no code panics while holding the inflight lock");
            inflight.entry(*key.digest()).or_default().clone()
        };
        // Set only by the client whose exchange this is (the leader): the live answer stays
        // here, and the cell holds only where it was stored.
        let mut own: Option<Forwarded> = None;
        let coalesced = *cell
            .get_or_init(|| {
                let own = &mut own;
                let body = body.clone();
                async move {
                    let forwarded = self.forward(recorder, parts, body, key, Mode::Auto).await;
                    let coalesced = Coalesced::of(&forwarded);
                    *own = Some(forwarded);
                    coalesced
                }
            })
            .await;
        if let Some(forwarded) = own {
            self.inflight
                .lock()
                .expect("no code panics while holding the inflight lock")
                .remove(key.digest());
            return self.served(parts, forwarded);
        }
        if let Coalesced::Unreachable(kind) = coalesced {
            let failure = Failure::shared_unreachable(kind, key.request_line());
            return (failure.to_response(), failure.outcome);
        }
        if let Coalesced::Stored(seq, stored) = coalesced {
            let played = self.tapes.answer(key, seq as usize);
            if let Some(prepared) = played.prepared() {
                // Its place first, at once: before the `--latency` delay of the hit, so that the
                // leader's client, answered already, cannot record its next request ahead of it.
                self.keep_place(recorder, parts, key, &stored, seq).await;
                return (self.hit(parts, &body, &played, prepared).await, Outcome::Hit);
            }
            if let Play::Unreadable(why) = &played {
                let line = crate::model::access_keys::masked(key.request_line());
                tracing::warn!(request = %line, "{why}; forwarding instead");
            }
        }
        let forwarded = self.forward(recorder, parts, body, key, Mode::Auto).await;
        self.served(parts, forwarded)
    }

    /// Stores, after the others, a copy of answer `seq` of the request stored under `stored`,
    /// which a waiter of a coalesced burst was served (see [`Proxy::single_flight`]): the
    /// burst's clients each take a place among the request's answers, as without coalescing,
    /// so a replay serves each the answer it was served (ten polls at once that saw `queued`
    /// replay as ten `queued`, not one and nine of the next answer). The copy is the stored,
    /// sanitised form, read back from the store: nothing of the leader's live answer. Stored as
    /// soon as the waiter is woken, it lands before the leader's client can have another answer
    /// recorded (that takes an upstream exchange), short of a scheduler starving the waiter that
    /// long. A copy is a hit the summary counts as such, not a recording.
    async fn keep_place(&self, recorder: &Recorder, parts: &Parts, key: &RequestKey, stored: &[u8; 32], seq: u32) {
        let Some(store) = &recorder.store else {
            return;
        };
        let line = &*crate::model::access_keys::masked(key.request_line());
        let copy = store.answers_of(stored).ok().and_then(|answers| answers.into_iter().nth(seq as usize));
        let Some(interaction) = copy else {
            tracing::warn!(request = line, "the answer a coalesced request was served is gone from the store: its place is not kept");
            return;
        };
        // The stored request keys as it was stored; should it not (other rules), its copy would
        // go under another request.
        let stored_key = match RequestKey::of_recorded(&self.rules, &interaction.request) {
            Ok(stored_key) if stored_key.digest() == stored => stored_key,
            _ => return,
        };
        let encoded = crate::model::interaction::Encoded::of(&interaction);
        let attempt = crate::proxy::sessions::attempt_of(parts);
        match store.record_in_attempt(&stored_key, encoded, false, attempt.map_or(0, |a| a.0)).await {
            Ok(Some(n)) => {
                let late = || self.attempt_over(key, attempt);
                self.tapes.record_stored(key, &stored_key, store, n, late);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(request = line, error = %e, "the place of a coalesced request NOT recorded");
                self.stats.not_stored.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Forwards and serves live, storing nothing: `auto` at a gap (an answer the leak gate
    /// refused when it was recorded, `gaps.rs`: the gap keeps its place, and the answers after
    /// it theirs), and a request sent with `x-ims-vcr-skip` in `record` or `auto`.
    pub(super) async fn forward_unstored(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, Outcome) {
        let forwarded = self.forward(recorder, parts, body, key, Mode::Passthrough).await;
        self.served(parts, forwarded)
    }

    /// The answer to the client whose exchange `forwarded` is: the live answer (`recorded` or
    /// `forwarded`), or the `502`.
    pub(super) fn served(
        &self,
        parts: &Parts,
        forwarded: Forwarded,
    ) -> (Response<Full<Bytes>>, Outcome) {
        match forwarded {
            Ok(delivered) => {
                let outcome = delivered.outcome();
                // Served once: its header map and body move into the response, not cloned.
                let origin = self.origin_for(&delivered.prepared, parts);
                let mut response = delivered.prepared.into_response(outcome, origin.as_deref());
                if let Some(refused) = delivered.refused {
                    response.extensions_mut().insert(refused);
                }
                (response, outcome)
            }
            Err(failure) => {
                let outcome = failure.outcome;
                (failure.to_response(), outcome)
            }
        }
    }

    /// Forwards one request; in record and auto modes stores the answer and adds it to the
    /// tapes. Returns what to serve, or the 502 to send.
    pub(super) async fn forward(
        &self,
        recorder: &Recorder,
        parts: &Parts,
        body: Bytes,
        key: &RequestKey,
        mode: Mode,
    ) -> Forwarded {
        let Some(route) = recorder.routes.route(parts.uri.path()) else {
            return Err(Failure::no_route(&recorder.routes, parts, &body));
        };
        let upstream = route.upstream();
        if let Some(refused) = Failure::refusing(self, &recorder.routes, upstream, parts, &body) {
            return Err(refused);
        }
        let live = match upstream.relay(parts, body.clone(), true).await {
            Ok(live) => {
                self.metrics.upstream(live.latency);
                live
            }
            Err(e) => return Err(Failure::upstream(&e, parts, &body)),
        };
        let store = match &recorder.store {
            Some(store) if mode.stores() => Some(store),
            // Nothing to store (`forward_unstored`), or a proxy started without a store (in
            // passthrough, then switched): only the answer to serve is built.
            _ => None,
        };
        // What is stored is taken from the live answer before its header map moves into what is
        // served: credential headers left out, the body in its readable encoding.
        recorder.catalog_warnings.check(parts.uri.path(), live.status.as_u16(), &live.body, recorder.routes.origins());
        let stored_parts = store.map(|_| {
            let mut needles = credential_needles(&live.sent_credentials);
            needles.extend(credential_needles(&live.headers));
            recorder.issued.remember(&live.headers);
            // Verbatim unless a redaction policy must read it as JSON: the store gives it back
            // as readable JSON when it is read (`Body::verbatim`), so no JSON parse here.
            let body = match recorder.redactor {
                Some(_) => Body::from_bytes(&live.body),
                None => Body::verbatim(&live.body),
            };
            (stored_headers(&live.headers), body, needles)
        });
        // What is served: exactly what replay will serve for the stored answer, as passthrough
        // relays it (`Prepared::relayed` prepares it as `Prepared::with_body` prepares a stored
        // one), but unredacted and with the live credential headers (a token's
        // `X-Subject-Token`: the client recording now gets the live values). The origins it
        // may mention: the route's own, then the other routes' (a service catalog naming the
        // image service), in the order the stored `other_upstreams` lists them.
        let own = upstream.origin();
        let others = recorder.routes.origins().iter().map(String::as_str);
        let origins = std::iter::once(own).chain(others.filter(|o| *o != own));
        let prepared = Prepared::relayed(&parts.method, live.status, live.headers, live.body, origins)
            .map_err(|e| Failure::invalid_answer(&e))?;
        let (Some(_), Some((headers, stored_body, live_needles))) = (store, stored_parts) else {
            return Ok(Delivered { prepared, stored: None, refused: None });
        };
        // What is stored: stable date and request id (the client recording now gets the live
        // date and request id; a support ticket needs the real one), so re-recording changes
        // no cassette; the other routes' origins the answer mentions, found once, above.
        let other_upstreams = prepared
            .mentioned_origins()
            .iter()
            .filter(|origin| *origin != own)
            .cloned()
            .collect();
        let interaction = Interaction {
            request: recorded_request(parts, &body),
            response: RecordedResponse {
                status: live.status.as_u16(),
                headers: stable_response_headers(
                    headers,
                    // The digest's first 8 bytes, 16 digits: only those are written.
                    &format!("ims-vcr-{}", crate::model::key::hex(&key.digest()[..8])),
                ),
                body: stored_body,
                recorded_at: now_rfc3339(),
                latency_ms: u64::try_from(live.latency.as_millis()).unwrap_or(u64::MAX),
                upstream: own.to_owned(),
                other_upstreams,
            },
            redaction: None,
        };
        // The request's credentials; `live_needles` adds those of the exchange (as sent
        // upstream, and what the answer handed out in its headers: a token's `X-Subject-Token`,
        // a cookie).
        let mut needles = credential_needles(&parts.headers);
        needles.extend(recorder.known_secrets());
        needles.extend(live_needles);
        let mut refused = None;
        let stored = match self.persist(recorder, key, &interaction, mode, needles, parts).await {
            Ok(stored) => {
                self.stats.recorded.fetch_add(1, Ordering::Relaxed);
                recorder.warn_if_refused(key, live.status);
                Some(stored)
            }
            Err(Some((refusal, shown))) => {
                self.persist_gap(recorder, parts, key, &interaction, &refusal, mode)
                    .await;
                refused = Some(shown);
                None
            }
            Err(None) => None,
        };
        Ok(Delivered { prepared, stored, refused })
    }

    /// Redacts (when configured), runs the leak gate (looking for `needles`: the request's
    /// credentials, the proxy's own, and those of the exchange), and stores (in the attempt of
    /// its session it came in, from `parts`: [`Store::record_in_attempt`]); the stored answer
    /// joins the request's tape. Returns the answer's position among that request's stored
    /// answers; else why the gate refused it, with the exchange's credential values (for the
    /// request's log line), or `None` when the store failed. A failure here
    /// never changes the client's answer: it is logged as an error naming what was refused and
    /// why.
    pub(super) async fn persist(
        &self,
        recorder: &Recorder,
        key: &RequestKey,
        interaction: &Interaction,
        mode: Mode,
        needles: Vec<Needle>,
        parts: &Parts,
    ) -> Result<(u32, [u8; 32]), Option<(Refusal, Arc<Shown>)>> {
        // For the log: the path's credential parameters (`;token=`) masked, as every request
        // line a log or a message shows has them.
        let line = || {
            format!(
                "{} {}",
                interaction.request.method,
                crate::model::params::shown_path(&interaction.request.path)
            )
        };
        let attempt = crate::proxy::sessions::attempt_of(parts);
        let Some(store) = &recorder.store else {
            return Err(None);
        };
        let gate =
            Gate::new(recorder.redactor.as_ref(), &self.rules).pseudonymising(&recorder.pseudonyms);
        let passed = match gate.pass(interaction, needles) {
            Ok(passed) => {
                recorder.issued.remember_handed_out(&passed.handed_out);
                passed
            }
            Err(refusal) => {
                // What its answer handed out went to the client all the same.
                let masked = crate::secrets::exposure::mask_credentials(interaction, Some(&recorder.pseudonyms));
                if let Some(masked) = &masked {
                    recorder.issued.remember_handed_out(&masked.handed_out);
                }
                // A request that cannot be keyed or read stores no gap either (see `gaps.rs`).
                let instead = match refusal {
                    Refusal::Key(_) | Refusal::Unreadable(_) => "nothing is stored for this request",
                    _ => "replay serves a 599 IMS_VCR.NOT_RECORDED in its place, unless the request itself holds the secret: then nothing is stored for it",
                };
                // A refused request may hold one of its credentials where no rule masks it
                // (a token in a path segment): masked here too.
                let shown = Shown::of_exchange(&parts.headers, masked, &recorder.secrets_to_mask());
                let line = shown.text(&line()).into_owned();
                tracing::error!(request = line, refused = %refusal, "answer served but NOT recorded ({instead})");
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(Some((refusal, Arc::new(shown))));
            }
        };
        if passed.redacted {
            self.metrics.redaction();
        }
        // The bytes the leak scan serialised, when it had to: not serialised a second time.
        let encoded = (passed.encoded).unwrap_or_else(|| crate::model::interaction::Encoded::of(&passed.interaction));
        let number = attempt.map_or(0, |a| a.0);
        match self.store_answer(recorder, store, &passed.key, encoded, mode, number).await {
            Ok(Some(seq)) => {
                // Looked up by the request as sent; read back from where the store keeps it
                // (another key when redaction changed the request).
                let late = || self.attempt_over(key, attempt);
                self.tapes.record_stored(key, &passed.key, store, seq, late);
                Ok((seq, *passed.key.digest()))
            }
            Ok(None) => {
                tracing::info!(
                    request = line(),
                    "answer served but not recorded: its session was stopped while it was in \
                     flight, and the session's next attempt has recorded since (this request, \
                     or, in record mode, a first answer that replaced what the session held)"
                );
                Err(None)
            }
            Err(e) => {
                tracing::error!(request = line(), error = %e, "answer served but NOT recorded");
                self.stats.not_stored.fetch_add(1, Ordering::Relaxed);
                Err(None)
            }
        }
    }

    /// Flushes the store at the end of a session, then brings its replay pack up to date, so
    /// the replays that follow start without reading the store. A pack that cannot be written
    /// only costs the next replay a slower start, so that failure is logged, not returned.
    pub(crate) async fn flush(&self) -> crate::Result<()> {
        let Some(store) = self.recorder.as_ref().and_then(|r| r.store.clone()) else {
            return Ok(());
        };
        let flushed = store.flush().await;
        // A store whose folder went away while recording (`rm -rf` of it) wrote every answer
        // into files nothing can reach again: each is counted as not stored, so the summary
        // says so and the session fails.
        if let Some(gone) = store.folder_gone() {
            let lost = self.stats.recorded.swap(0, Ordering::Relaxed);
            self.stats.not_stored.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(
                store = %store.path().display(),
                "{gone}: the {} this session recorded are not on disk",
                crate::model::count(lost, "answer", "answers")
            );
            return Ok(());
        }
        flushed?;
        let packed = tokio::task::spawn_blocking(move || {
            store.replay_pack()?;
            let outgrown = crate::storage::folder::outgrown(store.path());
            Ok::<_, crate::Error>(outgrown.map(|sizes| (store.path().to_owned(), sizes)))
        })
        .await;
        let (failed, outgrown) = match packed {
            Ok(Ok(outgrown)) => (None, outgrown),
            Ok(Err(e)) => (Some(e.to_string()), None),
            Err(task) => (Some(task.to_string()), None),
        };
        if let Some(error) = failed {
            tracing::warn!(%error, "cannot update the replay pack");
        }
        // Recording the same requests again, session after session, grows the store by what
        // it replaced: said once it is many times what the store holds, with the way back.
        if let Some((path, (sled, pack))) = outgrown {
            let mib = |bytes: u64| bytes.div_ceil(1024 * 1024);
            let shown = crate::storage::folder::shell_word(&path);
            tracing::warn!(
                store = %path.display(),
                "the store takes {} MiB on disk for {} MiB of recordings: it keeps the answers \
                 recorded again since it was made. To give it back: ims-vcr export \
                 --store {shown} --out CASSETTES, then ims-vcr import --store NEW_STORE CASSETTES \
                 (or delete the store and record again)",
                mib(sled),
                mib(pack),
            );
        }
        Ok(())
    }
}
