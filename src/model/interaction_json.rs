//! An [`Interaction`] written as compact JSON by hand, byte for byte what `serde_json` writes
//! for it (the tests compare the two over every kind of field and every byte a string may
//! hold), for [`Encoded::of`](crate::model::interaction::Encoded::of): every recording is
//! serialised once, and `serde_json` escapes a string through its formatter a call per
//! escape, so an IMS answer (JSON, a `\"` every few bytes, stored as text) made that loop the
//! largest single function of the recording path's own work (2.5 % of `record`'s CPU under
//! load). Here a string is written eight bytes at a time, a word with no byte to escape in one
//! copy.
//!
//! Values this file does not write itself (a JSON body, a redaction stamp) are written by
//! `serde_json` into the same buffer. Every struct is taken apart without `..`, so a field
//! added to one fails to compile here until it is written.

use crate::model::interaction::{Body, Interaction, RecordedRequest, RecordedResponse};

/// Appends `interaction` to `out` as `serde_json::to_writer` would.
pub(crate) fn write(out: &mut Vec<u8>, interaction: &Interaction) {
    let Interaction {
        request,
        response,
        redaction,
    } = interaction;
    out.extend_from_slice(b"{\"request\":");
    write_request(out, request);
    out.extend_from_slice(b",\"response\":");
    write_response(out, response);
    if let Some(stamp) = redaction {
        out.extend_from_slice(b",\"redaction\":");
        serde_json::to_writer(&mut *out, stamp).expect("a redaction stamp serialises");
    }
    out.push(b'}');
}

fn write_request(out: &mut Vec<u8>, request: &RecordedRequest) {
    let RecordedRequest {
        method,
        path,
        query,
        headers,
        body,
        session,
    } = request;
    out.extend_from_slice(b"{\"method\":");
    string(out, method);
    out.extend_from_slice(b",\"path\":");
    string(out, path);
    if let Some(query) = query {
        out.extend_from_slice(b",\"query\":");
        string(out, query);
    }
    out.extend_from_slice(b",\"headers\":");
    pairs(out, headers);
    if let Some(body) = body {
        out.extend_from_slice(b",\"body\":");
        write_body(out, body);
    }
    if let Some(session) = session {
        out.extend_from_slice(b",\"session\":");
        string(out, session);
    }
    out.push(b'}');
}

fn write_response(out: &mut Vec<u8>, response: &RecordedResponse) {
    let RecordedResponse {
        status,
        headers,
        body,
        recorded_at,
        latency_ms,
        upstream,
        other_upstreams,
    } = response;
    out.extend_from_slice(b"{\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(*status).as_bytes());
    out.extend_from_slice(b",\"headers\":");
    pairs(out, headers);
    if let Some(body) = body {
        out.extend_from_slice(b",\"body\":");
        write_body(out, body);
    }
    out.extend_from_slice(b",\"recorded_at\":");
    string(out, recorded_at);
    out.extend_from_slice(b",\"latency_ms\":");
    out.extend_from_slice(itoa::Buffer::new().format(*latency_ms).as_bytes());
    if !upstream.is_empty() {
        out.extend_from_slice(b",\"upstream\":");
        string(out, upstream);
    }
    if !other_upstreams.is_empty() {
        out.extend_from_slice(b",\"other_upstreams\":[");
        for (i, origin) in other_upstreams.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, origin);
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// Headers as `serde_json` writes a `Vec<(String, String)>`: `[["name","value"],…]`.
fn pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.push(b'[');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        string(out, name);
        out.push(b',');
        string(out, value);
        out.push(b']');
    }
    out.push(b']');
}

/// A body, externally tagged as its derived `Serialize` writes it.
fn write_body(out: &mut Vec<u8>, body: &Body) {
    match body {
        Body::Json(value) => {
            out.extend_from_slice(b"{\"json\":");
            serde_json::to_writer(&mut *out, value).expect("a JSON value serialises");
        }
        Body::JsonPython(value) => {
            out.extend_from_slice(b"{\"json_python\":");
            serde_json::to_writer(&mut *out, value).expect("a JSON value serialises");
        }
        Body::Text(text) => {
            out.extend_from_slice(b"{\"text\":");
            string(out, text);
        }
        Body::Base64(text) => {
            out.extend_from_slice(b"{\"base64\":");
            string(out, text);
        }
    }
    out.push(b'}');
}

/// What `serde_json` writes for each byte: 0 (as it is), a letter for a short escape (`\n`), or
/// `u` for `\u00XX`. Its table: the 32 control bytes, `"` and `\`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// `text` as a JSON string, quoted and escaped as `serde_json` escapes it.
fn string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (words, tail) = bytes.as_chunks::<8>();
    for &word in words {
        let mut flagged = escaped(u64::from_le_bytes(word));
        if flagged == 0 {
            out.extend_from_slice(&word);
            continue;
        }
        // Each byte to escape, lowest first; the bytes before it written as the rest of the
        // word (one store of eight, cut back: a copy of a length known only here is a call).
        let whole = u64::from_le_bytes(word);
        let mut from = 0;
        let rest = |out: &mut Vec<u8>, from: usize, to: usize| {
            let kept = out.len() + to - from;
            out.extend_from_slice(&whole.checked_shr(8 * from as u32).unwrap_or(0).to_le_bytes());
            out.truncate(kept);
        };
        while flagged != 0 {
            let at = (flagged.trailing_zeros() / 8) as usize;
            rest(out, from, at);
            escape(out, word[at]);
            from = at + 1;
            flagged &= flagged - 1;
        }
        rest(out, from, 8);
    }
    for &byte in tail {
        match ESCAPE[usize::from(byte)] {
            0 => out.push(byte),
            _ => escape(out, byte),
        }
    }
    out.push(b'"');
}

/// `byte` (one [`ESCAPE`] escapes) written escaped.
#[inline]
fn escape(out: &mut Vec<u8>, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    match ESCAPE[usize::from(byte)] {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            DIGITS[usize::from(byte >> 4)],
            DIGITS[usize::from(byte & 0x0f)],
        ]),
        short => out.extend_from_slice(&[b'\\', short]),
    }
}

/// The high bit of each of the 8 bytes of `word` that [`ESCAPE`] escapes (below `0x20`, `"` or
/// `\`), and no other bit. Each byte is tested on its own: its low 7 bits plus a constant stay
/// within the byte, so no carry reaches the next.
fn escaped(word: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // The high bit of each byte that is zero.
    let zero = |v: u64| !(((v & LOW) + LOW) | v) & HIGH;
    // Below 0x20: its low 7 bits plus 0x60 stay below 0x80, and its high bit is clear.
    let control = !(((word & LOW) + ONES * 0x60) | word) & HIGH;
    control | zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::redaction::{RedactionPolicy, RedactionStamp};

    fn written(interaction: &Interaction) -> String {
        let mut out = Vec::new();
        write(&mut out, interaction);
        String::from_utf8(out).unwrap()
    }

    fn assert_as_serde_writes(interaction: &Interaction) {
        assert_eq!(written(interaction), serde_json::to_string(interaction).unwrap());
    }

    fn interaction(request_body: Option<Body>, response_body: Option<Body>) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "POST".into(),
                path: "/v2/images/x".into(),
                query: None,
                headers: vec![("accept".into(), "*/*".into())],
                body: request_body,
                session: None,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: response_body,
                recorded_at: "2026-12-07T20:11:06Z".into(),
                latency_ms: 12,
                upstream: "https://ims.example".into(),
                other_upstreams: Vec::new(),
            },
            redaction: None,
        }
    }

    #[test]
    fn every_byte_a_string_may_hold_is_written_as_serde_json_writes_it() {
        // Each character alone, and at every offset of an 8-byte word (the search's unit),
        // between runs of plain text of every length up to two words.
        let mut special: Vec<char> = (0u8..0x80).map(char::from).collect();
        special.extend(['é', '€', '😀', '\u{7f}', '\u{80}', '\u{2028}']);
        for c in special {
            for before in 0..17 {
                let text = format!("{}{c}{}", "a".repeat(before), "b".repeat(16 - before));
                let mut probe = interaction(None, Some(Body::Text(text.clone())));
                probe.request.path = text;
                assert_as_serde_writes(&probe);
            }
        }
        // Several to escape in one word, side by side and apart, at every offset.
        for run in ["\"\"", "\\\"\n", "\u{1}\u{1f}\t\"", "a\"b\\c\rd\u{0}e"] {
            for before in 0..9 {
                let text = format!("{}{run}{}", "x".repeat(before), "é".repeat(5));
                assert_as_serde_writes(&interaction(None, Some(Body::Text(text))));
            }
        }
        let mut all = String::new();
        // Every one- and two-byte character, and characters of three and four bytes with every
        // lead byte UTF-8 allows (every byte a `str` may hold).
        let wider = (0x800u32..0x11_0000).step_by(0x3f);
        for c in (0u32..0x800).chain(wider).filter_map(char::from_u32) {
            all.push(c);
        }
        assert!((0xe0..=0xf4).all(|lead| all.as_bytes().contains(&lead)));
        assert_as_serde_writes(&interaction(None, Some(Body::Text(all))));
        assert_as_serde_writes(&interaction(None, Some(Body::Text(String::new()))));
    }

    #[test]
    fn an_image_answer_is_written_as_serde_json_writes_it() {
        let image = r#"{"schema":"/v2/schemas/image","min_disk":100,"name":"CentOS 7.3 64bit \"vivado\"","tags":[],"file":"/v2/images/x/file","virtual_size":null,"note":"line\nbreak\ttab\\slash"}"#;
        assert_as_serde_writes(&interaction(None, Some(Body::Text(image.into()))));
    }

    #[test]
    fn every_field_present_or_absent_is_written_as_serde_json_writes_it() {
        let json: serde_json::Value = serde_json::json!({"image": {"name": "x\"y", "tags": ["a", 1, null, true, 2.5]}});
        let bodies = [
            None,
            Some(Body::Json(json.clone())),
            Some(Body::JsonPython(json)),
            Some(Body::Text("plain \"text\"\r\n".into())),
            Some(Body::Base64("AAEC/w==".into())),
        ];
        for request_body in &bodies {
            for response_body in &bodies {
                let mut full = interaction(request_body.clone(), response_body.clone());
                assert_as_serde_writes(&full);
                full.request.query = Some("limit=2&name=a%22b\u{1}".into());
                full.request.session = Some("suite \"one\"".into());
                full.request.headers.push(("x-empty".into(), String::new()));
                full.response.headers.clear();
                full.response.status = 599;
                full.response.latency_ms = u64::MAX;
                full.response.upstream = String::new();
                full.response.other_upstreams = vec!["https://iam.example".into(), "https://a\"b".into()];
                full.redaction = Some(RedactionStamp {
                    policy: RedactionPolicy::default(),
                    key_fingerprint: "hmac-sha256:0123456789abcdef".into(),
                    pseudonym_checks: Some(vec!["0011aabb".into()]),
                });
                assert_as_serde_writes(&full);
                full.request.headers.clear();
                full.response.upstream = "https://ims.example".into();
                full.response.other_upstreams = vec!["https://one.example".into()];
                full.redaction = None;
                assert_as_serde_writes(&full);
            }
        }
    }

    #[test]
    fn the_word_test_flags_exactly_the_bytes_to_escape() {
        let expected = |word: [u8; 8]| {
            (0..8)
                .filter(|&i| ESCAPE[usize::from(word[i])] != 0)
                .fold(0u64, |flags, i| flags | 0x80 << (8 * i))
        };
        for byte in 0u8..=255 {
            for at in 0..8 {
                // Among plain ASCII, among bytes with their high bit set (UTF-8's continuation
                // bytes) and beside bytes next to those escaped; alone, and with bytes of each
                // kind to escape on both sides of it.
                for fill in [b'a', 0xa9, 0x80, 0xff, 0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f] {
                    for around in [None, Some(0x00), Some(0x1f), Some(b'"'), Some(b'\\')] {
                        let mut word = [fill; 8];
                        if let Some(other) = around {
                            word[(at + 3) % 8] = other;
                            word[(at + 5) % 8] = other;
                        }
                        word[at] = byte;
                        assert_eq!(escaped(u64::from_le_bytes(word)), expected(word), "{word:x?}");
                    }
                }
            }
        }
    }
}
