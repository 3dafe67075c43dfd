//! What `export` compares to leave a cassette as it was: re-recording the same answers changes
//! no file, so a diff shows only what the API changed.

/// True when cassettes `old` and `new` (both as [`render`](crate::formats::cassette::render) lays them out) differ at most in when
/// their answers were recorded (`recorded_at`), how long the upstream took (`latency_ms`) and
/// which ims-vcr wrote them (`tool`): the same request and the same answers, byte for byte, so
/// the old file is kept as it is. Anything else (a status, a header, a byte of an answer's body,
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
