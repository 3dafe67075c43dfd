//! What `export` compares to leave a cassette as it was: re-recording the same answers changes
//! no file, so a diff shows only what the API changed.

/// True when cassettes `old` and `new` (both as [`render`](crate::formats::cassette::render) lays them out) differ at most in when
/// their answers were recorded (`recorded_at`), how long the upstream took (`latency_ms`) and
/// which ims-vcr wrote them (`tool`), and in the values a service makes afresh for every answer
/// ([`same_but_fresh_values`]: a `request_id`, the `…_at` times of a JSON body): the same
/// request and the same answers otherwise, byte for byte, so the old file is kept as it is. Anything else (a status, a header, a byte of an answer's body,
/// a key's order in an answer, the upstream's origin, the redaction stamp) makes the new file
/// replace it. A JSON request body whose keys came in another order is the same request (the
/// request key reads JSON by its content), as clients that build the body from a dictionary
/// send it (openstacksdk's `POST /v2/images`): the old file is kept then too.
///
/// Compared line by line: those three fields are lines of their own at the indentation
/// [`render`](crate::formats::cassette::render) gives the top level (`tool`) and an answer's fields (the others); a body's fields
/// are nested deeper, so a body holding a `recorded_at` of its own is compared like any byte. A
/// file laid out otherwise (edited by hand) compares unequal and is rewritten.
pub(crate) fn same_answers(old: &[u8], new: &[u8]) -> bool {
    old == new || lines(old).eq(lines(new)) || same_but_request_key_order(old, new)
        || same_but_fresh_values(old, new) || same_but_boundary(old, new)
}

/// [`same_answers`] of `old` and `new` with the boundary of a `multipart/*` request body (a new
/// random one per request from most clients) made the one the request key reads
/// ([`boundary_keyed`]); false when neither has one.
fn same_but_boundary(old: &[u8], new: &[u8]) -> bool {
    let (Ok(mut old), Ok(mut new)) = (
        serde_json::from_slice::<serde_json::Value>(old),
        serde_json::from_slice::<serde_json::Value>(new),
    ) else {
        return false;
    };
    // Both looked at: `|`, not `||`.
    if !(boundary_keyed(&mut old) | boundary_keyed(&mut new)) {
        return false;
    }
    let render = |value: &serde_json::Value| serde_json::to_vec_pretty(value).unwrap_or_default();
    let (old, new) = (render(&old), render(&new));
    old == new || lines(&old).eq(lines(&new)) || same_but_request_key_order(&old, &new)
        || same_but_fresh_values(&old, &new)
}

/// Whether `old` and `new` differ only as [`same_answers`] allows and in the values a service
/// makes afresh for every answer, as `drift` reads them:
/// - in a JSON answer body (compact, Python-style or pretty-printed), at any depth: a request or
///   trace id (`request_id`, `requestId`, `trace_id`, `correlation_id`), a Keystone token's
///   `audit_ids`, and the time of every `…_at` (or `…At`) field (a Keystone token's `issued_at`
///   and `expires_at`, which replay shifts by the recording's age anyway; an image's
///   `updated_at`), as long as it is still a time written the same way (digits aside); and the
///   order of a token's roles, methods, catalog and endpoints ([`UNORDERED_IN_TOKEN`]);
/// - the answer headers [`FRESH_HEADERS`] names (trace ids, gateways' latencies);
/// - the values of the request's headers ([`blank_request_header_values`]).
///
/// Their names, their order and every other value must be the same, and a value must keep its
/// type. The old file then replays as well as the new one would, and is kept.
fn same_but_fresh_values(old: &[u8], new: &[u8]) -> bool {
    let (Ok(mut old), Ok(mut new)) = (
        serde_json::from_slice::<serde_json::Value>(old),
        serde_json::from_slice::<serde_json::Value>(new),
    ) else {
        return false;
    };
    let mut changed = false;
    for doc in [&mut old, &mut new] {
        changed |= blank_request_header_values(doc.get_mut("request"));
        let answers = doc.get_mut("answers").and_then(serde_json::Value::as_array_mut);
        for answer in answers.into_iter().flatten() {
            changed |= blank_fresh_headers(answer.get_mut("headers"));
            let Some(body) = answer.get_mut("body").and_then(serde_json::Value::as_object_mut) else {
                continue;
            };
            for kind in ["json", "json_python"] {
                if let Some(json) = body.get_mut(kind) {
                    changed |= blank_fresh_values(json) | sort_token_lists(json);
                }
            }
            // Pretty-printed JSON is stored as its text: read, and compared as what it holds.
            if let Some(serde_json::Value::String(text)) = body.get_mut("text")
                && let Ok(mut json) = serde_json::from_str::<serde_json::Value>(text)
                && blank_fresh_values(&mut json) | sort_token_lists(&mut json)
            {
                *text = json.to_string();
                changed = true;
            }
        }
    }
    if !changed {
        return false;
    }
    let render = |value: &serde_json::Value| serde_json::to_vec_pretty(value).unwrap_or_default();
    let (old, new) = (render(&old), render(&new));
    lines(&old).eq(lines(&new))
}

/// Blanks the value of every header of a rendered request (`[name, value]` pairs, names and
/// order kept); whether there was one. Two cassettes at one file name hold the same request key
/// (the name ends with its digest), so their request headers differ only where matching does
/// not look: a client's trace or correlation id, a date, a header of its own making afresh.
/// A header the client added or dropped still changes the file, and so does a value holding
/// what ims-vcr masks today (an older one may have stored it as it was).
fn blank_request_header_values(request: Option<&mut serde_json::Value>) -> bool {
    let headers = request.and_then(|r| r.get_mut("headers")).and_then(serde_json::Value::as_array_mut);
    let mut blanked = false;
    for pair in headers.into_iter().flatten().filter_map(serde_json::Value::as_array_mut) {
        if let Some(value) = pair.get_mut(1)
            && value.as_str().is_none_or(|v| crate::model::params::mask_header_value(v).is_none())
        {
            *value = serde_json::Value::String(String::new());
            blanked = true;
        }
    }
    blanked
}

/// Answer headers whose values a service makes afresh for every answer: trace and correlation
/// ids, and the latencies an API gateway reports (request ids are made stable when recorded).
const FRESH_HEADERS: [&str; 15] = [
    "request-id",
    "x-trace-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "traceparent",
    "tracestate",
    "x-correlation-id",
    "x-amzn-requestid",
    "x-amzn-trace-id",
    "x-amz-request-id",
    "x-ms-request-id",
    "x-apig-latency",
    "x-apig-upstream-latency",
    "server-timing",
    "x-envoy-upstream-service-time",
];

/// Blanks the values of [`FRESH_HEADERS`] in a rendered answer's `headers` (`[name, value]`
/// pairs); whether there was one.
fn blank_fresh_headers(headers: Option<&mut serde_json::Value>) -> bool {
    let Some(headers) = headers.and_then(serde_json::Value::as_array_mut) else {
        return false;
    };
    let mut blanked = false;
    for pair in headers.iter_mut().filter_map(serde_json::Value::as_array_mut) {
        let fresh = pair.first().and_then(serde_json::Value::as_str).is_some_and(|name| {
            FRESH_HEADERS.iter().any(|f| f.eq_ignore_ascii_case(name))
        });
        if fresh && let Some(value) = pair.get_mut(1) {
            *value = serde_json::Value::String("fresh".into());
            blanked = true;
        }
    }
    blanked
}

/// Field names (in [`crate::model::credentials::compact`] form) whose values are ids made
/// afresh for every answer.
const FRESH_IDS: [&str; 5] = ["requestid", "traceid", "correlationid", "auditids", "xrequestid"];

/// Replaces the value of every field [`same_but_fresh_values`] leaves out by what is left of
/// it to compare (its type; for a time, how it is written), at any depth; whether there was one.
fn blank_fresh_values(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    let mut blanked = false;
    match value {
        Value::Object(map) => {
            for (name, item) in map.iter_mut() {
                let id = FRESH_IDS.contains(&crate::model::credentials::compact(name).as_str());
                let time = name.ends_with("_at")
                    || name.strip_suffix("At").is_some_and(|s| s.ends_with(|c: char| c.is_ascii_lowercase()));
                let left = match item {
                    Value::String(text) if id => Some("string".to_owned()),
                    Value::String(text) if time && is_time(text) => {
                        Some(text.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect())
                    }
                    Value::Number(_) if id => Some("number".to_owned()),
                    // A time as a number is seconds (or milliseconds) since 1970: 1e8 or more.
                    Value::Number(n) if time && n.as_f64().is_some_and(|n| n.abs() >= 1e8) => {
                        Some("number".to_owned())
                    }
                    Value::Array(items) if id && items.iter().all(Value::is_string) => {
                        Some(format!("{} strings", items.len()))
                    }
                    _ => None,
                };
                match left {
                    Some(left) => {
                        *item = Value::String(left);
                        blanked = true;
                    }
                    None => blanked |= blank_fresh_values(item),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                blanked |= blank_fresh_values(item);
            }
        }
        _ => {}
    }
    blanked
}

/// The lists of a token (an object under `token`: Keystone v3's, Huawei IAM's) whose order is
/// the identity service's whim, not part of what it answers: Keystone builds a token's `roles`
/// from a set, so each of its worker processes lists them in its own order (Python seeds its
/// string hashes per process), and its `methods`, `catalog` and each catalog entry's
/// `endpoints` come in no order it promises. A client looks a role up by name, and a service
/// in the catalog by type, interface and region, never by position.
const UNORDERED_IN_TOKEN: [&str; 3] = ["roles", "methods", "catalog"];

/// Sorts, at any depth, the lists [`UNORDERED_IN_TOKEN`] names of every object under a `token`
/// key (and each catalog entry's `endpoints`), items by their JSON text; whether there was one.
/// Only for comparing: the file kept holds the answer as it was served.
pub(crate) fn sort_token_lists(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    let mut sorted = false;
    match value {
        Value::Object(map) => {
            for (name, item) in map.iter_mut() {
                if name == "token"
                    && let Value::Object(token) = item
                {
                    for list in UNORDERED_IN_TOKEN {
                        let Some(Value::Array(items)) = token.get_mut(list) else {
                            continue;
                        };
                        sort_list(items, list == "catalog");
                        sorted = true;
                    }
                }
                sorted |= sort_token_lists(item);
            }
        }
        Value::Array(items) => {
            for item in items {
                sorted |= sort_token_lists(item);
            }
        }
        _ => {}
    }
    sorted
}

/// `live` with each token list [`UNORDERED_IN_TOKEN`] names in `recorded`'s order where the
/// two hold the same items in another order (catalog entries' `endpoints` in any order too), at
/// the same place in both: for `drift`, which then reports no change for them, and reports a
/// list that did change (an item added, removed or changed) item by item as it came, not
/// against a sorted order that would pair unrelated items.
pub(crate) fn align_token_lists(recorded: &serde_json::Value, live: &mut serde_json::Value) {
    use serde_json::Value;
    match (recorded, live) {
        (Value::Object(recorded), Value::Object(live)) => {
            for (name, live_item) in live.iter_mut() {
                let Some(recorded_item) = recorded.get(name) else {
                    continue;
                };
                if name == "token"
                    && let (Value::Object(recorded_token), Value::Object(live_token)) = (recorded_item, &mut *live_item)
                {
                    for list in UNORDERED_IN_TOKEN {
                        if let (Some(Value::Array(was)), Some(Value::Array(now))) =
                            (recorded_token.get(list), live_token.get_mut(list))
                            && was != now
                            && same_items(was, now, list == "catalog")
                        {
                            now.clone_from(was);
                        }
                    }
                }
                align_token_lists(recorded_item, live_item);
            }
        }
        (Value::Array(recorded), Value::Array(live)) => {
            for (recorded_item, live_item) in recorded.iter().zip(live.iter_mut()) {
                align_token_lists(recorded_item, live_item);
            }
        }
        _ => {}
    }
}

/// Whether two token lists hold the same items in any order (a catalog's entries with their
/// `endpoints` in any order).
fn same_items(was: &[serde_json::Value], now: &[serde_json::Value], catalog: bool) -> bool {
    let sorted = |items: &[serde_json::Value]| {
        let mut items = items.to_vec();
        sort_list(&mut items, catalog);
        items
    };
    was.len() == now.len() && sorted(was) == sorted(now)
}

/// Sorts a token list by its items' JSON text; a catalog's entries have their `endpoints`
/// sorted first.
fn sort_list(items: &mut [serde_json::Value], catalog: bool) {
    if catalog {
        for entry in items.iter_mut() {
            if let Some(serde_json::Value::Array(endpoints)) = entry.get_mut("endpoints") {
                endpoints.sort_by_cached_key(serde_json::Value::to_string);
            }
        }
    }
    items.sort_by_cached_key(serde_json::Value::to_string);
}

/// Whether `text` is written as a time is (`2026-12-06T10:00:00Z`, `2026-12-06 10:00:00.123`):
/// six digits or more, and nothing but digits and `-:T Z.+/`.
fn is_time(text: &str) -> bool {
    text.bytes().filter(u8::is_ascii_digit).count() >= 6
        && text.bytes().all(|b| b.is_ascii_digit() || b"-:T Z.+/".contains(&b))
}

/// The lines of a cassette [`same_answers`] compares: all but `tool`, `recorded_at` and
/// `latency_ms`.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    const IGNORED: [&[u8]; 3] = [
        b"  \"tool\": ",
        b"      \"recorded_at\": ",
        b"      \"latency_ms\": ",
    ];
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !IGNORED.iter().any(|field| line.starts_with(field)))
}

/// Whether `old` and `new` differ only as [`same_answers`] allows, and in the order of the keys
/// of a JSON request body (serde_json's maps here compare by content, whatever their order).
fn same_but_request_key_order(old: &[u8], new: &[u8]) -> bool {
    let (Ok(mut old), Ok(mut new)) = (
        serde_json::from_slice::<serde_json::Value>(old),
        serde_json::from_slice::<serde_json::Value>(new),
    ) else {
        return false;
    };
    // Only objects, looked into without indexing (which panics on anything else: a hand-edited
    // old file may hold any JSON).
    let body = |doc: &mut serde_json::Value| {
        let request = doc.get_mut("request").filter(|r| r.is_object())?;
        request.get_mut("body").map(serde_json::Value::take)
    };
    let (Some(old_body), Some(new_body)) = (body(&mut old), body(&mut new)) else {
        return false;
    };
    if old_body.is_null() || old_body != new_body {
        return false;
    }
    // The rest as the lines above compare it: rendered again, without the request's body.
    let render = |value: &serde_json::Value| serde_json::to_vec_pretty(value).unwrap_or_default();
    let (old, new) = (render(&old), render(&new));
    lines(&old).eq(lines(&new))
}

/// A cassette's request with the boundary of its `multipart/*` body (a new random one per
/// request from most clients) replaced by the one the request key reads it as, in its
/// `Content-Type` header and in its body (text, or base64 decoded and encoded again): an upload
/// recorded again is the same request. True when the request had such a boundary.
fn boundary_keyed(doc: &mut serde_json::Value) -> bool {
    use crate::model::key::KEYED_BOUNDARY;
    let Some(request) = doc.get_mut("request").and_then(serde_json::Value::as_object_mut) else {
        return false;
    };
    let Some(headers) = request.get_mut("headers").and_then(serde_json::Value::as_array_mut) else {
        return false;
    };
    let mut boundary = None;
    for header in headers.iter_mut().filter_map(serde_json::Value::as_array_mut) {
        if let [serde_json::Value::String(name), serde_json::Value::String(value)] = header.as_mut_slice()
            && name.eq_ignore_ascii_case("content-type")
            && let Some(found) = crate::model::multipart::boundary(Some(value))
        {
            let found = found.to_owned();
            *value = value.replace(&found, KEYED_BOUNDARY);
            boundary = Some(found);
        }
    }
    let Some(boundary) = boundary else {
        return false;
    };
    let keyed = |bytes: &[u8]| crate::model::key::with_boundary_keyed(bytes, &boundary);
    let body = request.get_mut("body").and_then(serde_json::Value::as_object_mut);
    if let Some(body) = body {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        if let Some(serde_json::Value::String(text)) = body.get_mut("text") {
            *text = String::from_utf8_lossy(&keyed(text.as_bytes())).into_owned();
        } else if let Some(serde_json::Value::String(encoded)) = body.get_mut("base64")
            && let Ok(bytes) = engine.decode(encoded.as_bytes())
        {
            *encoded = engine.encode(keyed(&bytes));
        }
    }
    true
}
