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
        || same_but_fresh_values(old, new)
}

/// Whether `old` and `new` differ only as [`same_answers`] allows and in the values of JSON
/// answer fields a service makes afresh for every answer, as `drift` reads them: `request_id`
/// (a Huawei error body's), and every `…_at` time (a Keystone token's `issued_at` and
/// `expires_at`, which replay shifts by the recording's age anyway; an image's `updated_at`).
/// Their names, their order and every other byte must be the same; a value that was a string
/// must still be one. The old file then replays as well as the new one would, and is kept.
fn same_but_fresh_values(old: &[u8], new: &[u8]) -> bool {
    let (Ok(mut old), Ok(mut new)) = (
        serde_json::from_slice::<serde_json::Value>(old),
        serde_json::from_slice::<serde_json::Value>(new),
    ) else {
        return false;
    };
    let mut changed = false;
    for doc in [&mut old, &mut new] {
        let answers = doc.get_mut("answers").and_then(serde_json::Value::as_array_mut);
        for answer in answers.into_iter().flatten() {
            if let Some(json) = answer.get_mut("body").and_then(|b| b.get_mut("json")) {
                changed |= blank_fresh_values(json);
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

/// Replaces the value of every field [`same_but_fresh_values`] leaves out (a string or a number)
/// by its type's name, at any depth; whether there was one.
fn blank_fresh_values(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    let mut blanked = false;
    match value {
        Value::Object(map) => {
            for (name, item) in map.iter_mut() {
                let fresh = name == "request_id" || name.ends_with("_at");
                match item {
                    Value::String(_) if fresh => *item = Value::String("string".into()),
                    Value::Number(_) if fresh => *item = Value::String("number".into()),
                    other => {
                        blanked |= blank_fresh_values(other);
                        continue;
                    }
                }
                blanked = true;
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
