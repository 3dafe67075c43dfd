//! What a log line, a message or a report may show of a live request: its text with every
//! credential value the request carries masked, wherever the value turns up.
//!
//! A request line is shown with its credential parameters masked (`?token=REDACTED`, `;sk=…`),
//! but a client may put the same value somewhere no rule names: the token of its
//! `X-Auth-Token` in a path segment (`/v2/images/<token>`), a `Cookie` value in `?marker=`, a
//! password from its JSON body in `?name=`. Such a request is never stored (the leak gate finds
//! the value); [`Shown`] keeps it out of everything else that shows the request: the log, a
//! miss's `599` and the misses the control API and the exit summary list, a session's verdict, a
//! `502`'s message.
//!
//! Each value is masked as it was sent and in the forms a request line may hold it in:
//! percent-encoded (upper- or lower-case hex), form-encoded, and read back from whatever
//! percent-encoding the client used (the text is then shown decoded, its control characters
//! encoded again). A value of [`MIN_SHOWN`] bytes or more is also masked in every encoding the
//! leak gate finds it in (base64 and base64url at any alignment, hex in either case,
//! percent-encoded twice, JSON and HTML escapes, UTF-16): the gate refuses to store a request
//! carrying its token so (`?v=<base64 of the token>`), and what is shown of that request must
//! not print what the gate kept out of the store. Such a value is masked in any ASCII case
//! too (a token's copy in a lower-cased path); the leak gate, which decides what is stored, matches
//! the value as sent and in its encodings, as a copy in another case is no longer the
//! credential (a hex one excepted, which the gate matches in either case). Shorter values are
//! masked only as a whole word and as written, so a short password does not garble every path
//! that happens to contain its letters, and values shorter than [`MIN_MASKED`] not at all.

use std::borrow::Cow;

use hyper::http::request::Parts;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::Value;

use crate::model::credentials::PLACEHOLDER;
use crate::secrets::leak::{LeakScanner, Needle};

/// Values this long or longer are masked wherever they occur; shorter ones only as a whole
/// word. The leak gate's own threshold for searching inside longer text.
const MIN_SHOWN: usize = crate::secrets::leak::MIN_NEEDLE_LEN;
/// Values shorter than this are not masked at all (an empty or one-letter "secret").
const MIN_MASKED: usize = 3;

/// The credential values of one live request, to mask in what is shown of it.
#[derive(Default)]
pub(crate) struct Shown {
    /// Each value in every form it is looked for, longest first (a value inside a longer one
    /// is masked with it).
    forms: Vec<String>,
    /// The values of [`MIN_SHOWN`] bytes or more in the leak gate's encodings; `None` when
    /// there are none.
    encoded: Option<LeakScanner>,
}

// Hand-written so that logging a `Shown` cannot itself leak the values it holds.
impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shown({} forms)", self.forms.len())
    }
}

impl Shown {
    /// The credential values `parts` and `body` carry: the credential headers' (and the secret
    /// parts inside them: an AK/SK signature's access key, a Basic password, each cookie), the
    /// credential query and path parameters', the access key id a path names, the credential
    /// fields of the body, and the user information of an absolute-form target.
    pub(crate) fn of(parts: &Parts, body: &[u8]) -> Shown {
        let mut values: Vec<String> = crate::secrets::exposure::credential_needles(&parts.headers)
            .into_iter()
            .map(|needle| needle.value)
            .collect();
        if let Some((_, found)) = crate::model::params::mask_path(parts.uri.path()) {
            values.extend(found.into_iter().map(|f| f.value));
        }
        // An access key id the path names (`…/credentials/OS-EC2/{access}`), as stored: its
        // pseudonym (see `model::access_keys`).
        let path = parts.uri.path();
        if let Some(at) = crate::model::access_keys::in_path(path) {
            values.push(path[at].to_owned());
        }
        if let Some((_, found)) = parts.uri.query().and_then(crate::model::params::mask_query) {
            values.extend(found.into_iter().map(|f| f.value));
        }
        if !body.is_empty() {
            let found = crate::model::credentials::body_credentials(&parts.headers, body);
            values.extend(found.into_iter().map(|f| f.value));
        }
        if let Some(authority) = parts.uri.authority()
            && let Some((userinfo, _)) = authority.as_str().rsplit_once('@')
        {
            values.push(userinfo.to_owned());
            if let Some((_, password)) = userinfo.split_once(':') {
                values.push(password.to_owned());
            }
        }
        Shown::of_values(values)
    }

    /// The credential values of a recorded exchange: the credential headers its request was
    /// sent with (`headers`), what masking found in the exchange itself (`masked`, from
    /// [`crate::secrets::exposure::mask_credentials`]: credential query, path and body fields,
    /// the secrets its answer hands out, and the access key ids of its `credential` objects),
    /// and `also` (the proxy's own keys).
    pub(crate) fn of_exchange(
        headers: &hyper::HeaderMap,
        masked: Option<crate::secrets::exposure::Masked>,
        also: &[crate::secrets::leak::Needle],
    ) -> Shown {
        let mut values: Vec<String> = crate::secrets::exposure::credential_needles(headers)
            .into_iter()
            .map(|needle| needle.value)
            .chain(also.iter().map(|needle| needle.value.clone()))
            .collect();
        if let Some(masked) = masked {
            values.extend(masked.needles.into_iter().map(|needle| needle.value));
        }
        Shown::of_values(values)
    }

    /// [`Shown`] of these values (and their encoded forms).
    pub(crate) fn of_values(values: impl IntoIterator<Item = String>) -> Shown {
        let mut forms = Vec::new();
        let mut needles = Vec::new();
        for value in values {
            let value = value.trim();
            if value.len() < MIN_MASKED {
                continue;
            }
            if value.len() >= MIN_SHOWN {
                needles.push(Needle {
                    label: "credential".to_owned(),
                    value: value.to_owned(),
                });
            }
            forms.push(value.to_owned());
            let encoded = utf8_percent_encode(value, NON_ALPHANUMERIC).to_string();
            forms.push(lowercase_hex(&encoded));
            forms.push(encoded.replace("%20", "+"));
            forms.push(encoded);
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        let encoded = (!needles.is_empty()).then(|| LeakScanner::new(needles));
        Shown { forms, encoded }
    }

    /// `text` with every value masked as [`PLACEHOLDER`]; borrowed when none occurs in it.
    pub(crate) fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.forms.is_empty() {
            return Cow::Borrowed(text);
        }
        let masked = self.mask(text);
        // A value the client percent-encoded in its own way: read back, and shown decoded.
        if masked.contains('%') {
            let decoded = percent_decode_str(&masked).decode_utf8_lossy();
            if let Cow::Owned(unmasked) = self.mask(&decoded) {
                return Cow::Owned(controls_encoded(&unmasked));
            }
        }
        masked
    }

    /// Every string value in `value` as [`Shown::text`] shows it.
    pub(crate) fn json(&self, value: &mut Value) {
        if self.forms.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(masked) = self.text(s) {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.json(item)),
            // Values only: the names are the report's own (`part`, `recorded`, `got`).
            Value::Object(map) => map.values_mut().for_each(|item| self.json(item)),
            _ => {}
        }
    }

    fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut out = Cow::Borrowed(text);
        for form in &self.forms {
            if let Some(masked) = mask_form(&out, form) {
                out = Cow::Owned(masked);
            }
        }
        if let Some(scanner) = &self.encoded
            && scanner.find(out.as_bytes()).is_some()
        {
            let masked = scanner.masked(out.as_bytes(), PLACEHOLDER.as_bytes());
            // A UTF-16 or Latin-1 match may end inside a character of the text around it.
            out = Cow::Owned(String::from_utf8_lossy(&masked).into_owned());
        }
        if let Some(scanner) = &self.encoded
            && let Some(masked) = mask_compressed(scanner, &out)
        {
            out = Cow::Owned(masked);
        }
        out
    }
}

/// `text` with each run of base64, hex or percent-encoded characters that holds one of
/// `scanner`'s values inside a compressed stream masked whole (`?state=H4sI…`, a token's
/// `base64(gzip(…))` the leak gate refuses to store); `None` when no run does. A run is read
/// with `/` in it (standard base64) and split at `/` (a path's segments).
fn mask_compressed(scanner: &LeakScanner, text: &str) -> Option<String> {
    use crate::model::encodings::{embedded_inflated, encoded_runs};
    let bytes = text.as_bytes();
    let holds_a_value = |run: &std::ops::Range<usize>| {
        embedded_inflated(&bytes[run.clone()]).iter().any(|inner| scanner.find(inner).is_some())
    };
    let mut hits: Vec<(usize, usize)> = [true, false]
        .into_iter()
        .flat_map(|slash| encoded_runs(bytes, slash).filter(holds_a_value))
        .map(|run| (run.start, run.end))
        .collect();
    if hits.is_empty() {
        return None;
    }
    hits.sort_unstable();
    // Runs are ASCII, so each range starts and ends on a character boundary.
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in hits {
        if end <= copied {
            continue;
        }
        out.push_str(&text[copied..start.max(copied)]);
        out.push_str(PLACEHOLDER);
        copied = end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// `text` with each occurrence of `form` replaced by [`PLACEHOLDER`] (a short form only where it
/// is a whole word, and as written; a longer one in any ASCII case, as a token's copy in a
/// lower-cased path is still its value), or `None` when there is none.
fn mask_form(text: &str, form: &str) -> Option<String> {
    let whole_word = form.len() < MIN_SHOWN;
    // `-` and `_` join words in paths (`os-admin-actions`): a short value inside one is data.
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    // ASCII case folding keeps every byte where it was, so an offset in the folded copy is one
    // in `text` too.
    let (folded_text, folded_form) = match whole_word {
        true => (Cow::Borrowed(text), Cow::Borrowed(form)),
        false => (Cow::Owned(text.to_ascii_lowercase()), Cow::Owned(form.to_ascii_lowercase())),
    };
    let mut out = String::new();
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = folded_text[text.len() - rest.len()..].find(&*folded_form) {
        let end = at + form.len();
        let bounded = !whole_word
            || (!is_word(rest[..at].chars().next_back()) && !is_word(rest[end..].chars().next()));
        out.push_str(&rest[..at]);
        if bounded {
            out.push_str(PLACEHOLDER);
            changed = true;
        } else {
            out.push_str(&rest[at..end]);
        }
        rest = &rest[end..];
    }
    changed.then(|| {
        out.push_str(rest);
        out
    })
}

/// `text` with its control characters percent-encoded again (a decoded `%0A` must not become a
/// line of its own in a log).
fn controls_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encoded text with its hex digits in lower case (`%2f`), as some clients write it.
fn lowercase_hex(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if c == '%' {
            hex_left = 2;
            out.push(c);
        } else if hex_left > 0 {
            hex_left -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(target: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = hyper::Request::builder().uri(target);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_header_token_is_masked_in_the_path_and_the_query_in_every_encoding() {
        let token = "Zq81tok+q/Xk=v9";
        let p = parts("/v2/images", &[("x-auth-token", token)]);
        let shown = Shown::of(&p, b"");
        let encoded = utf8_percent_encode(token, NON_ALPHANUMERIC).to_string();
        for text in [
            format!("GET /v2/images/{token}"),
            format!("GET /v2/images?name={encoded}"),
            format!("GET /v2/images?name={}", lowercase_hex(&encoded)),
            "GET /v2/images?name=Zq81tok%2Bq%2FXk%3dv9".to_owned(),
            // A copy in another case (a lower-cased path) is the value all the same.
            format!("GET /v2/images/{}", token.to_ascii_lowercase()),
            format!("GET /v2/images/{}/ÄÖ", token.to_ascii_uppercase()),
        ] {
            let masked = shown.text(&text);
            assert!(masked.contains(PLACEHOLDER), "{text} -> {masked}");
            assert!(!masked.to_ascii_lowercase().contains("zq81"), "{text} -> {masked}");
        }
        // What surrounds it is kept as written.
        let around = format!("GET /v2/Images/{}/ÄÖ?Limit=2", token.to_ascii_uppercase());
        assert_eq!(shown.text(&around), format!("GET /v2/Images/{PLACEHOLDER}/ÄÖ?Limit=2"));
        assert!(matches!(shown.text("GET /v2/images?limit=2"), Cow::Borrowed(_)));
    }

    /// A token the leak gate finds compressed (`base64url(gzip(…))` in the query, `hex(zlib(…))` in
    /// a path segment, standard base64 with its `/`) is masked whole in what is shown, as the
    /// gate keeps the request out of the store; an ordinary compressed blob is shown.
    #[test]
    fn a_header_token_is_masked_inside_a_compressed_blob() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        use std::io::Write as _;
        let compress = |bytes: &[u8], gzip: bool| match gzip {
            true => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
            false => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(bytes).unwrap();
                e.finish().unwrap()
            }
        };
        let token = "Shown-Gz-Token-0077Lk";
        let shown = Shown::of(&parts("/v2/images", &[("x-auth-token", token)]), b"");
        let gz = URL_SAFE_NO_PAD.encode(compress(token.as_bytes(), true));
        let hex: String = compress(token.as_bytes(), false).iter().map(|b| format!("{b:02x}")).collect();
        // Standard base64 holding a `/`: found with the slash kept in the run.
        let standard = (0..64)
            .map(|n| STANDARD.encode(compress(format!("{token}{n}").as_bytes(), true)))
            .find(|b| b.contains('/'))
            .unwrap();
        for text in [
            format!("GET /v2/images?state={gz}&limit=2"),
            format!("GET /v2/images/{hex}/members"),
            format!("GET /v2/images?state={standard}"),
        ] {
            let masked = shown.text(&text);
            assert!(masked.contains(PLACEHOLDER), "{text} -> {masked}");
            for blob in [&gz, &hex, &standard] {
                assert!(!masked.contains(blob.as_str()), "{text} -> {masked}");
            }
        }
        assert_eq!(
            shown.text(&format!("GET /v2/images?state={gz}&limit=2")),
            format!("GET /v2/images?state={PLACEHOLDER}&limit=2")
        );
        let plain = format!("GET /v2/images?state={}", URL_SAFE_NO_PAD.encode(compress(b"nothing secret", true)));
        assert_eq!(shown.text(&plain), plain);
    }

    #[test]
    fn a_header_token_is_masked_in_every_encoding_the_leak_gate_finds() {
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let token = "TOK-SECRET-ENC-0040?>~";
        let p = parts("/v2/images", &[("x-auth-token", token)]);
        let shown = Shown::of(&p, b"");
        let hex: String = token.bytes().map(|b| format!("{b:02x}")).collect();
        let twice = utf8_percent_encode(token, NON_ALPHANUMERIC).to_string().replace('%', "%25");
        let html: String = token.chars().map(|c| format!("&#{};", u32::from(c))).collect();
        let json: String = token.chars().map(|c| format!("\\u{:04x}", u32::from(c))).collect();
        let utf16: String = token.chars().flat_map(|c| [c, '\0']).collect();
        let encodings = [
            ("base64", STANDARD.encode(token)),
            ("base64 after one byte", STANDARD.encode(format!("x{token}"))),
            ("base64 after two bytes", STANDARD.encode(format!("xy{token}"))),
            ("base64url", URL_SAFE_NO_PAD.encode(token)),
            ("hex", hex.clone()),
            ("HEX", hex.to_ascii_uppercase()),
            ("percent-encoded twice", twice),
            ("html references", html),
            ("json escapes", json),
            ("utf-16", utf16),
        ];
        for (name, encoded) in encodings {
            let line = format!("GET /v2/images/x?v={encoded}&limit=2");
            let masked = shown.text(&line);
            assert!(masked.contains(PLACEHOLDER), "{name}: {line} -> {masked}");
            assert!(masked.ends_with("&limit=2"), "{name}: {masked}");
            // Base64 leaves at most two characters on each side, which mix in the bytes around
            // the value (and its padding).
            let value = &masked["GET /v2/images/x?v=".len()..masked.len() - "&limit=2".len()];
            let left = value.replacen(PLACEHOLDER, "", 1);
            assert!(left.trim_end_matches('=').len() <= 4, "{name}: {line} -> {masked}");
        }
        // Data that merely looks encoded is kept as it is.
        let kept = "GET /v2/images?marker=VE9LLVNF&name=544f4b2d";
        assert!(matches!(shown.text(kept), Cow::Borrowed(_)));
    }

    #[test]
    fn cookie_basic_password_query_credential_and_body_password_are_all_masked() {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode("bob:Pw0rdSecret");
        let p = parts(
            "/v2/images?token=QueryTok99&marker=x",
            &[
                ("cookie", "a=1; sid=CookieVal77"),
                ("authorization", &format!("Basic {basic}")),
                ("content-type", "application/json"),
            ],
        );
        let body = br#"{"auth":{"password":"BodyPass55"}}"#;
        let shown = Shown::of(&p, body);
        let line = "GET /v2/images/CookieVal77/Pw0rdSecret?a=QueryTok99&b=BodyPass55";
        let masked = shown.text(line);
        for secret in ["CookieVal77", "Pw0rdSecret", "QueryTok99", "BodyPass55"] {
            assert!(!masked.contains(secret), "{masked}");
        }
    }

    #[test]
    fn a_decoded_line_break_is_encoded_again() {
        let shown = Shown::of_values(["abcdefgh".to_owned()]);
        assert_eq!(shown.text("/x/%61bcdefgh%0Aforged"), "/x/REDACTED%0Aforged");
    }

    #[test]
    fn short_values_are_masked_only_as_whole_words() {
        let shown = Shown::of_values(["abc".to_owned()]);
        assert_eq!(shown.text("/x/abc/y"), "/x/REDACTED/y");
        assert_eq!(shown.text("/x/abcdef"), "/x/abcdef");
        assert_eq!(shown.text("/os-abc-actions"), "/os-abc-actions");
        let none = Shown::of_values(["ab".to_owned()]);
        assert_eq!(none.text("/ab"), "/ab");
    }

    #[test]
    fn json_string_values_are_masked_and_names_kept() {
        let shown = Shown::of_values(["Zq81secret".to_owned()]);
        let mut value = serde_json::json!({
            "request": "GET /v2/images/Zq81secret",
            "diff": [{"path": {"recorded": "/a", "sent": "/Zq81secret"}}],
            "Zq81secret": 1,
        });
        shown.json(&mut value);
        let text = value.to_string();
        assert_eq!(text.matches(PLACEHOLDER).count(), 2, "{text}");
        assert!(text.contains(r#""Zq81secret":1"#), "names are kept: {text}");
    }
}
