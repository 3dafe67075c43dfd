//! How a body's bytes may be encoded beyond what it says: compressed (gzip or zlib, in one
//! layer or several) or UTF-16 text. The leak gate reads through them, `verify` and HAR import
//! tell them, and a request's key reads a compressed body as what it stands for.

/// Whether `bytes` start with a zlib header.
pub(crate) fn is_zlib(bytes: &[u8]) -> bool {
    matches!(bytes, [0x78, second, ..] if (u16::from(bytes[0]) << 8 | u16::from(*second)) % 31 == 0)
}

/// The byte order of UTF-16 text, by its byte-order mark or by an ASCII first character (JSON's
/// `{`, a form's first letter, white space) next to a zero byte: `Some(true)` for little-endian, and where
/// its characters start.
pub(crate) fn utf16_order(bytes: &[u8]) -> Option<(bool, usize)> {
    match bytes {
        [0xff, 0xfe, ..] => Some((true, 2)),
        [0xfe, 0xff, ..] => Some((false, 2)),
        [first, 0, ..] if is_text_start(*first) => Some((true, 0)),
        [0, first, ..] if is_text_start(*first) => Some((false, 0)),
        _ => None,
    }
}

/// An ASCII character text may start with: printable, or white space (`\n{…}`).
fn is_text_start(byte: u8) -> bool {
    byte.is_ascii_graphic() || byte.is_ascii_whitespace()
}

/// UTF-16 text (see [`utf16_order`]) as UTF-8, or `None` when `bytes` are not UTF-16.
pub(crate) fn from_utf16(bytes: &[u8]) -> Option<Vec<u8>> {
    let (little, start) = utf16_order(bytes)?;
    let units = bytes[start..].chunks_exact(2).map(|pair| match little {
        true => u16::from_le_bytes([pair[0], pair[1]]),
        false => u16::from_be_bytes([pair[0], pair[1]]),
    });
    let text: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    Some(text.into_bytes())
}

/// Text in a single-byte character set (Latin-1, or Windows-1252 read as Latin-1: a `René` in a
/// sign-in, JSON or a form; an answer declared `charset=ISO-8859-1`) as UTF-8, or `None` when
/// `bytes` are UTF-8 already or are not text ([`is_text_like`]). Each byte is the character of
/// that code point, so every ASCII name and value reads as it is.
pub(crate) fn from_latin1_text(bytes: &[u8]) -> Option<Vec<u8>> {
    if !is_text_like(bytes) || std::str::from_utf8(bytes).is_ok() {
        return None;
    }
    Some(bytes.iter().map(|&b| char::from(b)).collect::<String>().into_bytes())
}

/// Whether `bytes` could be text in a single-byte character set: no control character but
/// white space (an image, a disk or an archive has some within its first bytes).
pub(crate) fn is_text_like(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b >= 0x20 && b != 0x7f || matches!(b, b'\t' | b'\n' | b'\r'))
}

/// The `Content-Encoding` codings whose bytes [`inflate`] reads (`identity` aside).
pub(crate) const READABLE_CODINGS: [&str; 3] = ["gzip", "x-gzip", "deflate"];

/// The codings `Content-Encoding` values list, in order (every header: two `gzip` lines are two
/// layers), lower-case, `identity` left out.
pub(crate) fn codings<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(|value| {
            (value.as_ref().split(','))
                .map(|coding| coding.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .filter(|coding| !coding.is_empty() && coding != "identity")
        .collect()
}

/// The first of `codings` (see [`codings`]) that ims-vcr cannot decode (`zstd`, `br`, ...).
pub(crate) fn unreadable(codings: &[String]) -> Option<&String> {
    codings
        .iter()
        .find(|coding| !READABLE_CODINGS.contains(&coding.as_str()))
}

/// What [`inflate`] decodes at most: the cap on an answer's body.
const CAP: u64 = 64 << 20;

/// The bytes inside a gzip or zlib stream (capped at 64 MiB), or `None` when `bytes` is not one.
pub(crate) fn inflate(bytes: &[u8]) -> Option<Vec<u8>> {
    inflate_capped(bytes, CAP)
}

/// [`inflate`], at most `cap` bytes out.
fn inflate_capped(bytes: &[u8], cap: u64) -> Option<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    let read = match bytes {
        [0x1f, 0x8b, ..] => flate2::read::MultiGzDecoder::new(bytes)
            .take(cap)
            .read_to_end(&mut out),
        _ if is_zlib(bytes) => flate2::read::ZlibDecoder::new(bytes).take(cap).read_to_end(&mut out),
        _ => return None,
    };
    // A stream cut short still yields what it decoded, and that is what must be scanned.
    (read.is_ok() || !out.is_empty()).then_some(out)
}

/// The bytes inside every gzip or zlib layer of `bytes` (at most four), or `None` when it is
/// not compressed.
pub(crate) fn inflate_layers(bytes: &[u8]) -> Option<Vec<u8>> {
    inflate_layers_capped(bytes, CAP)
}

/// [`inflate_layers`], each layer at most `cap` bytes out.
pub(crate) fn inflate_layers_capped(bytes: &[u8], cap: u64) -> Option<Vec<u8>> {
    let mut inner = inflate_capped(bytes, cap)?;
    for _ in 1..4 {
        match inflate_capped(&inner, cap) {
            Some(deeper) => inner = deeper,
            None => break,
        }
    }
    Some(inner)
}

/// How much [`embedded_inflated`] does for one body, all layers together: raw stream starts
/// tried (most fail at once: `78 01` is common in binary data), decoded runs looked into (only
/// those that hold a stream's start or more base64 or hex), and bytes inflated (what it keeps).
struct Budget {
    attempts: usize,
    looks: usize,
    bytes: u64,
}

/// How many layers of base64, hex and compression [`embedded_inflated`] looks through.
const MAX_EMBEDDED_DEPTH: usize = 4;

/// The starts of raw gzip and zlib streams.
const RAW_STARTS: [&[u8]; 5] = [b"\x1f\x8b\x08", b"\x78\x9c", b"\x78\xda", b"\x78\x01", b"\x78\x5e"];

/// What the gzip and zlib streams embedded in `bytes` hold, each read through every layer: raw
/// at any offset (a compressed part of a multipart body), or inside a run of base64, base64url
/// or hex (percent-encoded or not; base64 from its start or from a gzip stream's `H4sI` inside
/// it) at any offset in what the run decodes to, and so on inside those, [`MAX_EMBEDDED_DEPTH`]
/// layers deep (`"state": "H4sI…"`, an upstream echoing the token as `base64(gzip(…))`,
/// `hex(zlib(…))`, `base64(base64(gzip(…)))`, `payload=%7B%22c%22%3A%22H4sI…`). Bounded per body:
/// 16,384 stream starts tried, 1,024 decoded runs looked into, 64 MiB inflated in all. Empty
/// for most bodies.
pub(crate) fn embedded_inflated(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    let mut budget = Budget {
        attempts: 16_384,
        looks: 1_024,
        bytes: CAP,
    };
    look_inside(bytes, 0, &mut found, &mut budget);
    found
}

fn look_inside(bytes: &[u8], depth: usize, found: &mut Vec<Vec<u8>>, budget: &mut Budget) {
    if depth >= MAX_EMBEDDED_DEPTH {
        return;
    }
    // Raw streams, at any offset.
    for magic in RAW_STARTS {
        for at in memchr::memmem::find_iter(bytes, magic) {
            if budget.attempts == 0 || budget.bytes == 0 {
                return;
            }
            budget.attempts -= 1;
            if let Some(inner) = inflate_layers_capped(&bytes[at..], budget.bytes) {
                budget.bytes = budget.bytes.saturating_sub(inner.len() as u64);
                look_inside(&inner, depth + 1, found, budget);
                found.push(inner);
            }
        }
    }
    // Runs of base64 or hex, decoded and looked into when what they decode to could hold a
    // stream.
    for range in encoded_runs(bytes, true) {
        let run = &bytes[range];
        // Percent-encoded: what it stands for is looked into as text too (a JSON document in
        // a form's field, `Basic%20…`).
        let unescaped: Option<Vec<u8>> = run
            .contains(&b'%')
            .then(|| percent_encoding::percent_decode(run).collect());
        let run: &[u8] = unescaped.as_deref().unwrap_or(run);
        let mut readings = vec![decode_base64(run), decode_hex(run)];
        // A gzip stream's base64 inside a longer run, not on a 4-character boundary of it
        // (`gzip-H4sI…`).
        readings.extend(memchr::memmem::find_iter(run, b"H4sI").filter(|&i| i > 0).take(4).map(|i| decode_base64(&run[i..])));
        // A blob after a prefix of any length (`sess_eJw…`, `x-789c…`, `789c…_x`): base64 from
        // each of the next three characters too, so the blob's 4-character groups line up
        // whatever the prefix's length (what the prefix decodes to is looked past: a stream is
        // found at any offset of what a run decodes to); and hex from each run of hex digits in
        // it, and from a compressed stream's start inside one. A UUID, the commonest run of
        // this length, is none of these.
        if !is_uuid(run) {
            readings.extend((1..4).filter(|&i| run.len() >= i + MIN_RUN).map(|i| decode_base64(&run[i..])));
            for hex in run.split(|b| !b.is_ascii_hexdigit()).filter(|h| h.len() >= MIN_RUN) {
                if hex.len() < run.len() {
                    readings.push(decode_hex(hex));
                }
                readings.extend(hex_stream_starts(hex).take(4).map(|i| decode_hex(&hex[i..])));
            }
        }
        let text = unescaped.as_ref().filter(|u| u.iter().any(|&b| !is_run_byte(b, true)));
        for decoded in readings.into_iter().flatten().chain(text.cloned()) {
            if !may_hold_a_stream(&decoded) {
                continue;
            }
            if budget.looks == 0 {
                return;
            }
            budget.looks -= 1;
            look_inside(&decoded, depth + 1, found, budget);
        }
    }
}

/// How long a run of encoded text is at least to be looked into: a compressed stream of even a
/// few bytes is 28 base64 characters or more.
const MIN_RUN: usize = 28;

/// Whether `b` is a base64, base64url, hex or percent-encoding character (`/` only with
/// `slash`: in standard base64, but also what separates a path's segments).
fn is_run_byte(b: u8, slash: bool) -> bool {
    b.is_ascii_alphanumeric() || b"+-_%".contains(&b) || (slash && b == b'/')
}

/// The maximal runs of [`is_run_byte`] characters in `bytes` that are [`MIN_RUN`] long or
/// longer, as ranges: what may be a compressed stream written as text.
pub(crate) fn encoded_runs(bytes: &[u8], slash: bool) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let start = at + bytes[at..].iter().take_while(|&&b| !is_run_byte(b, slash)).count();
            let end = start + bytes[start..].iter().take_while(|&&b| is_run_byte(b, slash)).count();
            at = end;
            if end - start >= MIN_RUN {
                return Some(start..end);
            }
        }
        None
    })
}

/// Where a gzip or zlib stream's hex starts inside a run of hex digits (either case), past its
/// first character (at 0, the run is decoded whole): [`RAW_STARTS`] written as hex.
fn hex_stream_starts(hex: &[u8]) -> impl Iterator<Item = usize> {
    let lower = hex.to_ascii_lowercase();
    let mut starts: Vec<usize> = RAW_STARTS
        .iter()
        .flat_map(|magic| {
            let as_hex: Vec<u8> = magic.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect();
            memchr::memmem::find_iter(&lower, &as_hex).collect::<Vec<_>>()
        })
        .filter(|&i| i > 0)
        .collect();
    starts.sort_unstable();
    starts.into_iter()
}

/// Whether `run` has a UUID's shape (`8-4-4-4-12` hex digits).
fn is_uuid(run: &[u8]) -> bool {
    run.len() == 36
        && run.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Whether decoded bytes could hold a compressed stream: one starts in them, or they are
/// themselves base64 or hex text (another layer), or text with such a run in it.
fn may_hold_a_stream(bytes: &[u8]) -> bool {
    RAW_STARTS.iter().any(|magic| memchr::memmem::find(bytes, magic).is_some())
        || encoded_runs(bytes, true).next().is_some()
}

/// `run` as base64 or base64url, padded or not; `None` when it is neither.
fn decode_base64(run: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let text: Vec<u8> = run
        .iter()
        .filter(|&&b| b != b'=')
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    let whole = text.len() - usize::from(text.len() % 4 == 1);
    lenient.decode(&text[..whole]).ok()
}

/// `run` as hex digits (either case), an odd last digit left; `None` when it is not.
fn decode_hex(run: &[u8]) -> Option<Vec<u8>> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    run.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A request body as its key reads it when `Content-Encoding` says it is compressed (`gzip`,
/// `x-gzip`, `deflate`, in layers): the bytes it stands for, so two clients compressing the same
/// JSON differently (a gzip header's timestamp, a compression level) send the same request.
/// `None` when it is not compressed, does not decode, or decodes to 4 MiB or more.
pub(crate) fn decoded_request_body(body: &[u8], encodings: &[&str]) -> Option<Vec<u8>> {
    let compressed = codings(encodings)
        .iter()
        .any(|coding| READABLE_CODINGS.contains(&coding.as_str()));
    if !compressed {
        return None;
    }
    // Keyed on every request, replay too: bounded well below what the leak gate reads, so a
    // small compressed body that expands to megabytes (a bomb) costs little; past the bound the
    // body keys as sent.
    const KEY_CAP: u64 = 4 << 20;
    let inner = inflate_layers_capped(body, KEY_CAP)?;
    (inner.len() < KEY_CAP as usize).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compressed(gzip: bool, bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        match gzip {
            true => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            false => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn a_compressed_stream_inside_a_body_is_read_raw_in_base64_or_in_hex() {
        use base64::Engine as _;
        let secret = b"tok=inner-secret-1";
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02X}")).collect::<String>();
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for gzip in [true, false] {
            let stream = compressed(gzip, secret);
            let mut bodies: Vec<Vec<u8>> = engines
                .iter()
                .map(|e| format!(r#"{{"a":1,"state":"{}"}}"#, e.encode(&stream)).into_bytes())
                .collect();
            bodies.push(format!("blob={}&x=1", hex(&stream)).into_bytes());
            bodies.push([&b"--b\r\n\r\n"[..], &stream, b"\r\n--b--"].concat());
            for body in bodies {
                let found = embedded_inflated(&body);
                assert!(
                    found.iter().any(|inner| inner == secret),
                    "gzip {gzip}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        // Inside a percent-encoded JSON document (a form's `payload=%7B…`), after a prefix
        // off the 4-character grid, and after hundreds of ids that decode to nothing.
        let b64 = base64::engine::general_purpose::STANDARD.encode(compressed(true, secret));
        let doc = format!(r#"{{"c":"{b64}"}}"#);
        let form: String = form_urlencoded::byte_serialize(doc.as_bytes()).collect();
        for body in [
            format!("payload={form}&x=1"),
            format!("{{\"v\":\"gzip-{b64}\"}}"),
            format!("[{}\"{b64}\"]", "\"0a1b2c3d-4e5f-4071-8293-a4b5c6d7e8f9\",".repeat(2000)),
        ] {
            assert!(embedded_inflated(body.as_bytes()).iter().any(|inner| inner == secret), "{}", &body[..60]);
        }
        // After a prefix of any length, in base64 and in hex, and with a suffix after hex.
        let zlib = compressed(false, secret);
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&zlib);
        let lower = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        for text in [
            format!("sess_{}", lower(&zlib)),
            format!("x-{}", hex(&zlib)),
            format!("{}_x", lower(&zlib)),
            format!("abc{}", lower(&zlib)),
            format!("s_{url}"),
            format!("se_{url}"),
            format!("ses_{url}"),
        ] {
            let found = embedded_inflated(text.as_bytes());
            assert!(found.iter().any(|inner| inner == secret), "{text}");
        }
        // Layers inside layers, and nothing in ordinary text.
        let twice = base64::engine::general_purpose::STANDARD.encode(compressed(true, &compressed(false, secret)));
        assert_eq!(embedded_inflated(twice.as_bytes()), vec![secret.to_vec()]);
        assert!(embedded_inflated(br#"{"name":"H4sI is a word","eJx":"78da"}"#).is_empty());
    }

    #[test]
    fn text_in_latin1_is_read_as_the_characters_its_bytes_stand_for() {
        let latin1 = b" {\"name\": \"Ren\xe9\", \"password\": \"p\"}";
        let text = String::from_utf8(from_latin1_text(latin1).unwrap()).unwrap();
        assert_eq!(text, " {\"name\": \"Ren\u{e9}\", \"password\": \"p\"}");
        let form = from_latin1_text(b"username=Ren\xe9&password=pw").unwrap();
        assert_eq!(String::from_utf8(form).unwrap(), "username=Ren\u{e9}&password=pw");
        // UTF-8 text, and bytes that are no text (an image), are left to the other readings.
        assert_eq!(from_latin1_text("{\"name\": \"René\"}".as_bytes()), None);
        assert_eq!(from_latin1_text(b"\x89PNG\r\n\x1a\n{\xff"), None);
    }

    #[test]
    fn utf16_text_is_told_by_its_mark_or_its_first_character_white_space_too() {
        let le = |text: &str| -> Vec<u8> { text.encode_utf16().flat_map(u16::to_le_bytes).collect() };
        let be = |text: &str| -> Vec<u8> { text.encode_utf16().flat_map(u16::to_be_bytes).collect() };
        for bytes in [le("{\"a\":1}"), le("\n  {\"a\":1}"), be(" {\"a\":1}"), [vec![0xff, 0xfe], le("x=1")].concat()] {
            let text = String::from_utf8(from_utf16(&bytes).unwrap()).unwrap();
            assert!(text.trim().starts_with(['{', 'x']), "{text:?}");
        }
        assert_eq!(from_utf16(b"{\"a\":1}"), None);
        assert_eq!(from_utf16(&[0x1f, 0x8b, 0, 0]), None);
    }
}
