//! The replay side of the per-request flow: looking a request up on its tape (as sent, then as
//! it would have been stored when recordings are redacted), serving a hit, and answering a
//! miss with the nearest recordings.

use super::*;

/// How many request lines a miss names as the nearest recordings.
const NEAREST_SHOWN: usize = 3;
/// The most query and body bytes a request may have for a miss to be looked up again as
/// redacted recordings would hold it: each try keys a variant of the whole request, and a storm
/// of misses with queries of 57 KB took the runtime's threads from the hits (50-460 ms each).
const VARIED_AT_MOST: usize = 16 * 1024;

/// The request as a store recorded before ims-vcr keyed every `multipart/*` boundary as one
/// kept its key: its body as sent (the boundary the client drew); `None` for a request that is
/// not multipart. Its `Content-Type` loses the boundary, which the key then does not read. (A
/// credential part was masked in that older key, and is not here: such an upload needs
/// recording again.)
fn legacy_multipart(parts: &Parts, body: &[u8]) -> Option<RecordedRequest> {
    let content_type = parts.headers.get(hyper::header::CONTENT_TYPE)?.to_str().ok()?;
    crate::model::multipart::boundary(Some(content_type))?;
    let media = content_type.split(';').next().unwrap_or_default().trim().to_owned();
    let mut request = recorded_request(parts, body);
    for (name, value) in &mut request.headers {
        if name.eq_ignore_ascii_case("content-type") {
            value.clone_from(&media);
        }
    }
    Some(request)
}

/// Whether a request is past [`VARIED_AT_MOST`].
fn too_large_to_vary(parts: &Parts, body: &[u8]) -> bool {
    body.len() + parts.uri.query().map_or(0, str::len) > VARIED_AT_MOST
}

/// How much of a missed request's text (and of each nearest line) the run keeps for its
/// summary and `/__ims-vcr/misses`, and how many of its differences.
const KEPT_TEXT: usize = 8 * 1024;
const KEPT_DIFFERENCES: usize = 50;

/// `text` cut to [`KEPT_TEXT`] bytes (at a character's start), saying how much was left out.
fn clipped(text: &str) -> String {
    if text.len() <= KEPT_TEXT {
        return text.to_owned();
    }
    let mut end = KEPT_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &text[..end], text.len() - end)
}

/// How many of the other sessions that recorded a missed request its message names, and how
/// many its JSON lists (`recorded_in_sessions`, with their count beside it): a request every
/// test makes is recorded in every session, thousands in a large suite.
const SESSIONS_NAMED: usize = 3;
const SESSIONS_LISTED: usize = 20;

/// How many of the nearest recordings a miss looks at: those of the nearest line are diffed
/// against the request, for the one that differs least.
const NEAREST_DIFFED: usize = 8;

impl Proxy {
    /// The tape lookup: the request as sent, then (for redacted recordings) as it would have
    /// been stored, so clients sending real values match recordings holding pseudonyms.
    /// `extending` in `auto` mode (see [`Tapes::play_extending`]).
    pub(super) fn lookup(&self, parts: &Parts, body: &[u8], key: &RequestKey, extending: bool) -> Play {
        match self.play_key(key, extending) {
            Play::Miss => {
                let try_as = |request: &RecordedRequest| self.play_as(parts, key, request, extending);
                // A real access key id in the path: recordings hold its pseudonym.
                let keyed = self.access_key_pseudonymised(parts, body);
                if let Some(request) = &keyed {
                    let played = try_as(request);
                    if !matches!(played, Play::Miss) {
                        return played;
                    }
                }
                // A multipart upload a store recorded before its boundary was keyed as one.
                if let Some(request) = legacy_multipart(parts, body) {
                    let played = try_as(&request);
                    if !matches!(played, Play::Miss) {
                        return played;
                    }
                }
                let Some(redactor) = self.tapes.redactor() else {
                    return Play::Miss;
                };
                let request = keyed.unwrap_or_else(|| recorded_request(parts, body));
                let (redacted, values) = redactor.redact_request(&request);
                let played = try_as(&redacted);
                if !matches!(played, Play::Miss) {
                    redactor.confirm(values);
                    return played;
                }
                if too_large_to_vary(parts, body) {
                    return Play::Miss;
                }
                // Then, for a redacted value in a place the policy does not name (a project id
                // in the path without the header that would name it, an image member's
                // `member`), id-like values tried as their pseudonyms: built only now, so a hit
                // pays for none.
                for (request, replaced) in redactor.id_variants(&redacted) {
                    let played = try_as(&request);
                    if !matches!(played, Play::Miss) {
                        // Real values, then: later requests holding them elsewhere match as
                        // the export wrote them.
                        let replaced = replaced.into_iter().map(|v| (v, "request value".to_owned()));
                        redactor.confirm(values.into_iter().chain(replaced));
                        return played;
                    }
                }
                Play::Miss
            }
            other => other,
        }
    }

    /// The request with the access key id its path names (`…/credentials/OS-EC2/{access}`)
    /// replaced by its pseudonym, as record stores it (see [`crate::model::access_keys`]);
    /// `None` when the path names none.
    fn access_key_pseudonymised(&self, parts: &Parts, body: &[u8]) -> Option<RecordedRequest> {
        crate::model::access_keys::in_path(parts.uri.path())?;
        let mut request = recorded_request(parts, body);
        let key = &self.settings.access_keys;
        let (path, _) = crate::model::access_keys::pseudonymised_in_path(&request.path, |v| key.pseudonym(v))?;
        request.path = path;
        Some(request)
    }

    /// [`Proxy::lookup`] of `request` (a variant of the live request whose key is `key`), when
    /// its key is another. A hit under it is that recording's use: its session counts it asked
    /// for (else `--fail-on-unused` lists it as never asked).
    fn play_as(&self, parts: &Parts, key: &RequestKey, request: &RecordedRequest, extending: bool) -> Play {
        match RequestKey::of_recorded(&self.rules, request) {
            Ok(k) if k != *key => {
                let played = self.play_key(&k, extending);
                if !matches!(played, Play::Miss)
                    && let Ok(Some(session)) = session_of(parts)
                {
                    self.sessions.asked(session, sessions::attempt_of(parts), k.digest());
                }
                played
            }
            _ => Play::Miss,
        }
    }

    /// The tape's answer for `key`: played, or (`extending`, in `auto` mode) played as
    /// [`Tapes::play_extending`] does.
    fn play_key(&self, key: &RequestKey, extending: bool) -> Play {
        match extending {
            true => self.tapes.play_extending(key),
            false => self.tapes.play(key),
        }
    }

    /// The last lookup of a replay miss with redacted recordings: the request with each value
    /// whose pseudonym one of its nearest recordings holds in the same place replaced by it
    /// (see [`Redactor::aligned`]), for values it carries where no policy name selects them
    /// and this run has not learned (`GET /v3/domains/{id}`, a sign-in scoped to a project named
    /// as a redacted user is). A hit teaches the run only what the policy's names held. The
    /// request is redacted again here, as [`Proxy::lookup`] did: a miss's cost, not a hit's.
    fn aligned_with_nearest(&self, parts: &Parts, body: &[u8], key: &RequestKey, nearest: &[Arc<crate::replay::tape::Tape>]) -> Play {
        let Some(redactor) = self.tapes.redactor() else {
            return Play::Miss;
        };
        if too_large_to_vary(parts, body) {
            return Play::Miss;
        }
        let raw = recorded_request(parts, body);
        let (redacted, values) = redactor.redact_request(&raw);
        // Aligned as redacted (the values the policy names pseudonymised), and as sent (a client
        // sending a pseudonym it was handed beside a real value: a domain id from a replayed
        // answer, a user's real name).
        for recorded in nearest.iter().filter_map(|tape| tape.recorded_request()) {
            for request in [&redacted, &raw] {
                let Some((variant, _)) = redactor.aligned(request, recorded) else {
                    continue;
                };
                let played = self.play_as(parts, key, &variant, false);
                if !matches!(played, Play::Miss) {
                    // Only what the policy named is remembered: a value found by its place here
                    // (`dom-east`) would be replaced inside longer ones later (`dom-east2`).
                    redactor.confirm(values);
                    return played;
                }
            }
        }
        Play::Miss
    }

    pub(super) async fn replay(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
    ) -> (Response<Full<Bytes>>, Outcome) {
        // Read before the lookup: the index may be taken over while it runs, and a miss seen
        // before that must still be looked up again.
        let indexing = self.tapes.is_indexing();
        let mut played = self.lookup(parts, body, key, false);
        if matches!(played, Play::Miss) && indexing {
            // The store's index is still being built: a miss is told once it is (its nearest
            // recordings, and the lookup as a redacted recording would have stored it).
            // Boxed here and wherever a request may wait for the index: a rare wait, kept out
            // of the size of every request's future.
            Box::pin(self.tapes.until_indexed()).await;
            played = self.lookup(parts, body, key, false);
        }
        if let Some(prepared) = played.prepared().filter(|prepared| !prepared.is_gap()) {
            self.delay(prepared).await;
        }
        match self.played(parts, body, key, &played) {
            Some(answer) => answer,
            // Boxed, as forwarding is: a miss's future is most of `replay`'s, and every
            // request's future (the general path's is boxed whole) would be sized for it.
            None => Box::pin(self.missed(parts, body, key, &played)).await,
        }
    }

    /// What a lookup's result answers without waiting: a recorded answer (its `--latency`
    /// delay, if any, already waited), the error of a gap or of an unreadable store. `None` for
    /// a miss (no recording, or `--sequence strict` served them all): [`Proxy::missed`].
    pub(super) fn played(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
        played: &Play,
    ) -> Option<(Response<Full<Bytes>>, Outcome)> {
        if let Play::Unreadable(why) = played {
            let line = crate::model::access_keys::masked(key.request_line());
            tracing::error!(request = %line, "{why}");
            let response = unreadable_response(why, json!({"request": line}));
            return Some((response, Outcome::Error));
        }
        let prepared = played.prepared()?;
        Some(match prepared.is_gap() {
            true => (self.gap(parts, key, prepared), Outcome::Miss),
            false => (self.hit_at_once(parts, body, played, prepared), Outcome::Hit),
        })
    }

    /// Answers a replay miss: its nearest recordings are read from the whole index
    /// (`--sequence strict` exhausts a tape played from the store before the index is built).
    pub(super) async fn missed(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
        played: &Play,
    ) -> (Response<Full<Bytes>>, Outcome) {
        self.tapes.until_indexed().await;
        let exhausted = matches!(played, Play::Exhausted(_));
        let neighbours = self.tapes.neighbours(key, NEAREST_DIFFED, !exhausted).await;
        if !exhausted {
            let aligned = self.aligned_with_nearest(parts, body, key, &neighbours.nearest);
            if let Some(prepared) = aligned.prepared().filter(|prepared| !prepared.is_gap()) {
                self.delay(prepared).await;
            }
            if let Some(answer) = self.played(parts, body, key, &aligned) {
                return answer;
            }
        }
        (self.miss(parts, body, key, exhausted, neighbours).await, Outcome::Miss)
    }

    /// Waits the configured latency (`--latency`) before a recorded answer (a gap, a miss and
    /// an error are answered at once).
    async fn delay(&self, prepared: &Prepared) {
        let delay = self.settings.realism.delay(prepared.latency());
        if !delay.is_zero() {
            // Boxed: a `Sleep` in every request's future would be copied with it.
            Box::pin(tokio::time::sleep(delay)).await;
        }
    }

    /// Serves a recorded answer, after the configured latency, with volatile values replaced.
    pub(super) async fn hit(
        &self,
        parts: &Parts,
        body: &[u8],
        played: &Play,
        prepared: &Prepared,
    ) -> Response<Full<Bytes>> {
        self.delay(prepared).await;
        self.hit_at_once(parts, body, played, prepared)
    }

    /// Serves a recorded answer with volatile values replaced (its delay waited, if any).
    pub(super) fn hit_at_once(
        &self,
        parts: &Parts,
        body: &[u8],
        played: &Play,
        prepared: &Prepared,
    ) -> Response<Full<Bytes>> {
        // Token times (`expires_at`, `issued_at`, `--shift-time`) moved to now; only answers
        // holding such a field pay for it.
        let shifted_fields = |name: &str| {
            crate::replay::timeshift::DEFAULT_FIELDS.contains(&name)
                || self.rules.shift_time.iter().any(|f| f == name)
        };
        let shifted;
        let prepared = if prepared.shifts_time(&shifted_fields) {
            shifted = prepared.time_shifted(&shifted_fields, time::OffsetDateTime::now_utc());
            &shifted
        } else {
            prepared
        };
        if self.rules.volatile.is_empty() {
            return self.serve(prepared, parts, Outcome::Hit);
        }
        let substitutions = self.learn_volatile(parts, body, played);
        if substitutions.is_empty() {
            return self.serve(prepared, parts, Outcome::Hit);
        }
        let origin = self.origin_for(prepared, parts);
        prepared.to_response_substituted(Outcome::Hit, origin.as_deref(), &substitutions)
    }

    /// Pairs the volatile values of the recorded request with the live request's, remembers
    /// the new pairs for the request's session (a value learnt here is replaced in the answers
    /// of later requests too), and returns every pair the session knows.
    fn learn_volatile(&self, parts: &Parts, body: &[u8], played: &Play) -> Vec<(String, String)> {
        let session = session_of(parts).ok().flatten().map(str::to_owned);
        let learnt = match played {
            Play::Hit(tape, _) => tape.recorded_request().map(|recorded| {
                let text = |path: &str, query: Option<&str>, body: &[u8]| {
                    format!(
                        "{path}?{}\n{}",
                        query.unwrap_or(""),
                        String::from_utf8_lossy(body)
                    )
                };
                let recorded_body = crate::model::interaction::body_bytes(&recorded.body)
                    .unwrap_or_default();
                self.rules.volatile.substitutions(
                    &text(&recorded.path, recorded.query.as_deref(), &recorded_body),
                    &text(parts.uri.path(), parts.uri.query(), body),
                )
            }),
            _ => None,
        }
        .unwrap_or_default();
        let mut known = self
            .volatile_values
            .lock()
            .expect("no code panics while holding the volatile values lock");
        let pairs = known.entry(session).or_default();
        for (from, to) in learnt {
            match pairs.iter_mut().find(|(f, _)| *f == from) {
                Some(pair) => pair.1 = to,
                None => pairs.push((from, to)),
            }
        }
        pairs.clone()
    }

    /// Serves a gap (an answer the leak gate refused when it was recorded, `gaps.rs`) as what
    /// it is for a test: a miss, counted as one (`--fail-on-miss`, the summary, the session's
    /// verdict), with the stored `599 IMS_VCR.NOT_RECORDED` saying why.
    pub(super) fn gap(&self, parts: &Parts, key: &RequestKey, prepared: &Prepared) -> Response<Full<Bytes>> {
        // As sent: a credential the request carries, or an access key id its path names (a gap
        // found by the id's pseudonym), is masked.
        let shown = crate::secrets::shown::Shown::of(parts, b"");
        let (canonical, line) = (shown.text(key.canonical()), shown.text(key.request_line()));
        tracing::warn!(
            request = %line,
            session = key.session(),
            "replay miss: this answer of the request was refused when it was recorded (the leak \
             gate or redaction); serving its 599 IMS_VCR.NOT_RECORDED"
        );
        self.count_miss(parts, key, (&canonical, &line), (&[], &[], None, false));
        let mut response = self.serve(prepared, parts, Outcome::Miss);
        // 599 has no standard reason phrase: the one a miss has.
        let reason = hyper::ext::ReasonPhrase::from_static(MISS_REASON.as_bytes());
        response.extensions_mut().insert(reason);
        response
    }

    /// Counts a miss of `key` (and its session's), keeping its nearest recordings, how it
    /// differs from the first and where else it is recorded; returns how many times it was
    /// missed. `shown` is the key's
    /// canonical form and request line as they may be shown (the request's credentials masked,
    /// `secrets::shown`): what the misses list, the exit summary and the session's verdict name.
    pub(super) fn count_miss(
        &self,
        parts: &Parts,
        key: &RequestKey,
        (canonical, line): (&str, &str),
        (nearest, differences, recorded_in, exhausted): (&[String], &[Value], Option<&str>, bool),
    ) -> u64 {
        if let Some(session) = key.session() {
            let attempt = crate::proxy::sessions::attempt_of(parts);
            self.sessions.answered(session, attempt, Outcome::Miss, line);
        }
        let mut misses = self
            .stats
            .misses
            .lock()
            .expect("no code panics while holding the misses lock");
        // Every miss is counted, but only the first MAX_TRACKED_MISSES distinct requests
        // are kept: a client asking for random paths must not grow memory (or the exit
        // summary) without bound.
        if let Some(miss) = misses.get_mut(canonical) {
            miss.count += 1;
            miss.count
        } else if misses.len() < MAX_TRACKED_MISSES {
            misses.insert(
                canonical.to_owned(),
                // Kept for the run's end, so bounded: a request of megabytes (a query of
                // thousands of parameters) once kept most of 2 MB a miss.
                Miss {
                    request: clipped(canonical),
                    session: key.session().map(str::to_owned),
                    count: 1,
                    nearest: nearest.iter().map(|line| clipped(line)).collect(),
                    recorded_in: recorded_in.map(str::to_owned),
                    diff: differences.iter().take(KEPT_DIFFERENCES).cloned().collect(),
                    exhausted,
                },
            );
            1
        } else {
            self.stats.untracked_misses.fetch_add(1, Ordering::Relaxed);
            1
        }
    }

    /// Answers a replay miss: `599` with the nearest recordings ([`NEAREST_SHOWN`] request
    /// lines) and how the request differs from the closest of them.
    pub(super) async fn miss(
        &self,
        parts: &Parts,
        body: &[u8],
        key: &RequestKey,
        exhausted: bool,
        neighbours: crate::replay::miss::Neighbours,
    ) -> Response<Full<Bytes>> {
        let crate::replay::miss::Neighbours { nearest, elsewhere } = neighbours;
        // The nearest request lines, each once: recordings of one line with other headers or
        // bodies (a conditional request's, a sign-in's) are told apart by the diff.
        let mut lines: Vec<String> = Vec::new();
        for tape in &nearest {
            if lines.len() < NEAREST_SHOWN && !lines.iter().any(|l| l == tape.line()) {
                lines.push(tape.line().to_owned());
            }
        }
        // The request as it may be shown: a credential it carries (a token in a path segment,
        // a cookie in a query value) masked wherever it is.
        let shown = crate::secrets::shown::Shown::of(parts, body);
        let (canonical, line) = (shown.text(key.canonical()), shown.text(key.request_line()));
        // The diff is against the recording of the nearest line that differs least (its own,
        // with nothing to tell, when `--sequence strict` played it to its end): in fewest parts,
        // then in fewest fields of a JSON body (one line recorded with several bodies).
        let request = recorded_request(parts, body);
        let weight = |d: &[Value]| (d.len(), d.iter().filter_map(|p| p["fields"].as_array()).map(Vec::len).sum::<usize>());
        let mut differences: Option<Vec<Value>> = None;
        for tape in nearest.iter().take_while(|t| Some(t.line()) == lines.first().map(String::as_str)) {
            let these = diff(&self.rules, &request, tape);
            if differences.as_ref().is_none_or(|least| weight(&these) < weight(least)) {
                differences = Some(these);
            }
        }
        // This session has the request line recorded, with other headers or another body:
        // the diff says what to fix, and no other session's name would.
        let line_here = nearest
            .first()
            .is_some_and(|t| t.line() == key.request_line() && t.session() == key.session());
        let mut differences = differences.unwrap_or_default();
        differences.iter_mut().for_each(|d| shown.json(d));
        match exhausted {
            true => tracing::warn!(request = %line, session = key.session(), "replay miss: every recorded answer of the request was served (--sequence strict)"),
            false => tracing::warn!(request = %line, session = key.session(), nearest = ?lines, other_sessions_recording_it = elsewhere.len(), "replay miss: no recording matches"),
        }
        // Where else the request is recorded (not for a strict tape's end): the 599 says it,
        // and so does the summary's miss line, which is what a CI log shows.
        let recorded_in = match (exhausted, elsewhere.len()) {
            (true, _) | (_, 0) => None,
            (false, n) => {
                let named: Vec<String> = elsewhere
                    .iter()
                    .take(SESSIONS_NAMED)
                    .map(|s| match s {
                        Some(name) => format!("{name:?}"),
                        None => "the default session (no x-ims-vcr-session)".to_owned(),
                    })
                    .collect();
                Some(match n {
                    1 => named[0].clone(),
                    n if n > SESSIONS_NAMED => {
                        format!("{n} other sessions ({} and {} more)", named.join(", "), n - SESSIONS_NAMED)
                    }
                    n => format!("{n} other sessions ({})", named.join(", ")),
                })
            }
        };
        let found = (lines.as_slice(), differences.as_slice(), recorded_in.as_deref(), exhausted);
        let entry = self.count_miss(parts, key, (&canonical, &line), found);
        let here = key.session().map_or("the default session".to_owned(), |s| format!("session {s:?}"));
        let msg = match (exhausted, &recorded_in) {
            (true, _) => format!(
                "ims-vcr served every recorded answer for {line} (--sequence strict); reset the cursors with POST {CONTROL_PREFIX}reset"
            ),
            (false, _) if line_here => format!(
                "ims-vcr has no recording for {line} in {here} with these headers and this body: the recording of it differs as the diff says; record the request again, or fix it"
            ),
            (false, None) => format!(
                "ims-vcr has no recording for {line} (replay never contacts the upstream); record it, or fix the request"
            ),
            (false, Some(one)) if elsewhere.len() == 1 => format!(
                "ims-vcr has no recording for {line} in {here}; it is recorded in {one}: send that session, or record the request in this one"
            ),
            // A request every test makes (a schema, a version document): a new test asks it
            // unrecorded, which no other session's name would fix.
            (false, Some(many)) => format!(
                "ims-vcr has no recording for {line} in {here}; {many} recorded it: record it in this session (a new test), or send the session it was recorded in"
            ),
        };
        let other_sessions = elsewhere.len();
        let mut elsewhere = elsewhere;
        elsewhere.truncate(SESSIONS_LISTED);
        let status = StatusCode::from_u16(MISS_STATUS).expect("599 is a valid status code");
        let details = json!({
            "request": canonical,
            "reason": if exhausted { "sequence-exhausted" } else { "not-recorded" },
            "nearest": lines,
            "diff": differences,
            "recorded_in_sessions": elsewhere,
            "recorded_in_sessions_count": other_sessions,
            "count": entry,
        });
        let mut response = error_response(status, "IMS_VCR.MISS", &msg, details);
        response
            .headers_mut()
            .insert(OUTCOME_HEADER, Outcome::Miss.header_value());
        response
    }

    /// Misses recorded so far, by canonical request.
    pub(crate) fn misses(&self) -> Vec<Miss> {
        self.stats
            .misses
            .lock()
            .expect("no code panics while holding the misses lock")
            .values()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missed_request_is_kept_cut_to_a_bound_at_a_character() {
        assert_eq!(clipped("GET /x"), "GET /x");
        let long = format!("GET /{}", "é".repeat(KEPT_TEXT));
        let kept = clipped(&long);
        assert!(kept.len() < KEPT_TEXT + 40, "{}", kept.len());
        assert!(kept.ends_with(&format!("… ({} bytes more)", long.len() - (KEPT_TEXT - 1))), "{}", &kept[kept.len() - 30..]);
    }
}
