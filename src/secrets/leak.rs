//! Finds secret values in bytes, whether written raw or in a common encoding (percent once or
//! twice, form, JSON string escapes, HTML character references, base64, hex, UTF-16), so that
//! an exported cassette can be checked for leaks.

use std::fmt;

use base64::Engine as _;
use base64::engine::GeneralPurpose;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

use crate::secrets::escapes::{html_reference, json_escape, match_escaped, match_percent};

/// Needles shorter than this many bytes are ignored: short values such as "admin" or a
/// region code occur by chance in any body and would bury real leaks in false positives.
pub const MIN_NEEDLE_LEN: usize = 6;

/// One secret to look for: what it is (e.g. "header X-Auth-Token", "field owner") and its
/// real value.
#[derive(Clone)]
pub struct Needle {
    /// What the secret is, for messages (never the value itself).
    pub label: String,
    /// The secret.
    pub value: String,
}

// Hand-written so that logging a needle cannot itself leak the secret it describes.
impl fmt::Debug for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needle")
            .field("label", &self.label)
            .field(
                "value",
                &format_args!("<{} bytes hidden>", self.value.len()),
            )
            .finish()
    }
}

/// A secret found: the needle's label, the encoding it was written in, and the byte offset in
/// the haystack where the encoded form starts (for base64, where the characters that encode
/// the secret alone start, which inside a larger blob may be a character or two later).
///
/// Encodings: `"raw"`, `"percent-encoded"`, `"percent-encoded twice"` (or three times),
/// `"form-encoded"` (a space written as `+`), `"json-escaped"`, `"html-escaped"` (character
/// references), `"base64"`, `"base64url"`, `"hex"`, `"utf-16"` (either byte order, for a secret
/// of Latin-1 characters), `"utf-16le"`, `"utf-16be"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leak {
    /// The needle's label.
    pub label: String,
    /// The encoding it was found in.
    pub encoding: &'static str,
    /// Byte offset in the haystack.
    pub offset: usize,
}

/// How one pattern is matched against the haystack.
enum Matcher {
    /// Exact bytes: the raw value and its base64 forms, with the encoding's name.
    Exact(Vec<u8>, &'static str),
    /// Lowercase hex digits (and dashes), matched in either case, with the encoding's name:
    /// the value's hex, or an id's other form (a UUID with or without its dashes).
    Hex(Vec<u8>, &'static str),
    /// The value seen through percent-decoding (either hex case, `+` for space): covers every
    /// choice of reserved set an encoder makes, which a fixed list of encodings would not.
    Percent,
    /// The value seen through JSON string unescaping: covers serde_json's escapes, `\/`,
    /// and `\uXXXX` for any character (Python's ensure_ascii, Go's `\u003c`, surrogate pairs).
    Json,
    /// The value seen through HTML character references: decimal and hex numeric ones
    /// (`&#43;`, `&#x2f;`, as Go's html/template writes them) and `&amp;` `&quot;` `&apos;`
    /// `&lt;` `&gt;`.
    Html,
}

struct Pattern {
    needle: usize,
    matcher: Matcher,
}

/// Needles prepared in all their encodings, built once and searched many times.
pub struct LeakScanner {
    labels: Vec<String>,
    values: Vec<Vec<u8>>,
    patterns: Vec<Pattern>,
    /// For each byte, the patterns that can start with it; lets one pass over the haystack
    /// skip most positions without touching any pattern.
    by_first_byte: Vec<Vec<usize>>,
    /// Needles shorter than [`MIN_NEEDLE_LEN`], searched as whole words (see
    /// [`LeakScanner::with_short_words`]): label and value.
    short: Vec<(String, Vec<u8>)>,
    /// With many needles, their automata (see [`Many`]), built on first use.
    many: std::sync::OnceLock<Many>,
    /// The values added, to add each once (in a set: a list searched per needle made adding
    /// thousands of them quadratic).
    seen: std::collections::HashSet<Vec<u8>>,
}

/// Past this many needles, a scan runs automata over the haystack (and over its decoded
/// forms) instead of trying, at each byte, every pattern that starts with it: a request
/// holding thousands of passwords (each a needle) had made its leak check take minutes, with
/// the proxy's other requests waiting.
const MANY_NEEDLES: usize = 32;

/// The needles of a [`LeakScanner`] as Aho-Corasick automata: every pattern matched byte for
/// byte (raw, base64, UTF-16, Latin-1), the hex ones in either case, and the raw values, to
/// search in the haystack read through percent-decoding, JSON unescaping and HTML character
/// references. Each finds every occurrence in one pass, however many needles there are.
struct Many {
    exact: Option<(aho_corasick::AhoCorasick, Vec<(usize, &'static str)>)>,
    hex: Option<(aho_corasick::AhoCorasick, Vec<(usize, &'static str)>)>,
    values: aho_corasick::AhoCorasick,
}

/// Why a needle cannot be searched for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsearchable {
    /// The needle's label.
    pub label: String,
    /// Why.
    pub reason: &'static str,
}

impl LeakScanner {
    /// Prepares the needles. Needles shorter than [`MIN_NEEDLE_LEN`] bytes are ignored, and a
    /// value given twice is searched once, under the first label.
    pub fn new(needles: impl IntoIterator<Item = Needle>) -> Self {
        let mut scanner = Self {
            labels: Vec::new(),
            values: Vec::new(),
            patterns: Vec::new(),
            by_first_byte: vec![Vec::new(); 256],
            short: Vec::new(),
            many: std::sync::OnceLock::new(),
            seen: std::collections::HashSet::new(),
        };
        for needle in needles {
            scanner.add(needle);
        }
        scanner
    }

    /// Like [`LeakScanner::new`], but no needle is left out: one shorter than
    /// [`MIN_NEEDLE_LEN`] bytes is searched as a whole word (not inside a longer run of letters
    /// and digits, where a short value such as `az1` occurs by chance), raw or percent-decoded.
    /// For `verify --deny`, where every value given must be checked. Fails, naming each, for
    /// needles that cannot be: empty ones, and short ones without a letter or digit (as words,
    /// `-` or `::` would match any punctuation).
    pub fn with_short_words(
        needles: impl IntoIterator<Item = Needle>,
    ) -> Result<Self, Vec<Unsearchable>> {
        let mut scanner = Self::new([]);
        let mut refused = Vec::new();
        for needle in needles {
            let value = needle.value.as_bytes();
            if needle.value.trim().is_empty() {
                refused.push(Unsearchable {
                    label: needle.label,
                    reason: "it is empty or blank",
                });
            } else if value.len() >= MIN_NEEDLE_LEN {
                scanner.add(needle);
            } else if !value.iter().copied().any(is_word_byte) {
                refused.push(Unsearchable {
                    label: needle.label,
                    reason: "it is shorter than 6 bytes and has no letter or digit to match as a word",
                });
            } else if !scanner.short.iter().any(|(_, v)| v.as_slice() == value) {
                scanner.short.push((needle.label, needle.value.into_bytes()));
            }
        }
        if refused.is_empty() {
            Ok(scanner)
        } else {
            Err(refused)
        }
    }

    /// Prepares one needle of [`MIN_NEEDLE_LEN`] bytes or more (shorter ones are ignored, and
    /// a value already added is searched once, under its first label).
    fn add(&mut self, needle: Needle) {
        let value = needle.value.into_bytes();
        if value.len() < MIN_NEEDLE_LEN || !self.seen.insert(value.clone()) {
            return;
        }
        let index = self.labels.len();
        for matcher in matchers_for(&value) {
            self.add_pattern(index, &value, matcher);
        }
        self.labels.push(needle.label);
        self.values.push(value);
    }

    fn add_pattern(&mut self, needle: usize, value: &[u8], matcher: Matcher) {
        let id = self.patterns.len();
        let first = value[0];
        let starts: Vec<u8> = match &matcher {
            Matcher::Exact(bytes, _) => vec![bytes[0]],
            Matcher::Hex(digits, _) => vec![digits[0], digits[0].to_ascii_uppercase()],
            Matcher::Percent if first == b' ' => vec![first, b'%', b'+'],
            Matcher::Percent => vec![first, b'%'],
            Matcher::Json => vec![first, b'\\'],
            Matcher::Html => vec![first, b'&'],
        };
        for start in starts {
            let slot = &mut self.by_first_byte[usize::from(start)];
            // Start bytes can coincide (a digit has one case, a value may begin with '%' or a
            // backslash); listing a pattern twice under one byte would only check it twice.
            if slot.last() != Some(&id) {
                slot.push(id);
            }
        }
        self.patterns.push(Pattern { needle, matcher });
    }

    /// True when no needle was long enough to search for.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.short.is_empty()
    }

    /// The leak that starts earliest in `haystack`, if any.
    pub fn find(&self, haystack: &[u8]) -> Option<Leak> {
        self.scan(haystack, true).into_iter().next()
    }

    /// Every leak, ordered by offset. Repeats of one pattern do not overlap: a value
    /// such as "aaaaaa" inside "aaaaaaa" is reported once. Short needles (see
    /// [`LeakScanner::with_short_words`]) are reported once per encoding they are found in.
    pub fn find_all(&self, haystack: &[u8]) -> Vec<Leak> {
        let mut leaks = self.scan(haystack, false);
        if !self.short.is_empty() {
            leaks.extend(self.find_words(haystack));
            leaks.sort_by_key(|l| l.offset);
        }
        leaks
    }

    /// Short needles found as whole words, raw or (when the haystack has escapes) in its
    /// percent-decoded form (`+` read as a space). Offsets of the decoded form are offsets in
    /// the decoded text.
    fn find_words(&self, haystack: &[u8]) -> Vec<Leak> {
        let decoded: Option<Vec<u8>> = haystack.iter().any(|b| matches!(b, b'%' | b'+')).then(|| {
            let plus: Vec<u8> = haystack
                .iter()
                .map(|&b| if b == b'+' { b' ' } else { b })
                .collect();
            percent_encoding::percent_decode(&plus).collect()
        });
        let mut leaks = Vec::new();
        for (label, value) in &self.short {
            let raw = find_word(haystack, value);
            if let Some(offset) = raw {
                leaks.push(Leak {
                    label: label.clone(),
                    encoding: "raw, whole word",
                    offset,
                });
            }
            if let Some(decoded) = &decoded
                && let Some(offset) = find_word(decoded, value)
                && raw.is_none()
            {
                leaks.push(Leak {
                    label: label.clone(),
                    encoding: "percent-encoded, whole word",
                    offset,
                });
            }
        }
        leaks
    }

    /// `haystack` with every needle, in every encoding it is found in, replaced by
    /// `placeholder`: for reports printed where a log may keep them (`drift`).
    pub fn masked(&self, haystack: &[u8], placeholder: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(haystack.len());
        let mut at = 0;
        while at < haystack.len() {
            let found = self.by_first_byte[usize::from(haystack[at])]
                .iter()
                .filter_map(|&id| {
                    let pattern = &self.patterns[id];
                    let value = &self.values[pattern.needle];
                    pattern.matcher.match_at(value, haystack, at).map(|(end, _)| end)
                })
                .max();
            let (written, next) = match found {
                Some(end) => (placeholder, end),
                None => (&haystack[at..=at], at + 1),
            };
            out.extend_from_slice(written);
            at = next;
        }
        out
    }

    fn scan(&self, haystack: &[u8], first_only: bool) -> Vec<Leak> {
        if self.values.len() > MANY_NEEDLES {
            let mut leaks = self.scan_many(haystack);
            if first_only {
                leaks.truncate(1);
            }
            return leaks;
        }
        let mut leaks = Vec::new();
        let mut resume_at = vec![0usize; self.patterns.len()];
        for (offset, &byte) in haystack.iter().enumerate() {
            for &id in &self.by_first_byte[usize::from(byte)] {
                if offset < resume_at[id] {
                    continue;
                }
                let pattern = &self.patterns[id];
                let value = &self.values[pattern.needle];
                let Some((end, encoding)) = pattern.matcher.match_at(value, haystack, offset)
                else {
                    continue;
                };
                leaks.push(Leak {
                    label: self.labels[pattern.needle].clone(),
                    encoding,
                    offset,
                });
                if first_only {
                    return leaks;
                }
                resume_at[id] = end;
            }
        }
        leaks
    }
}

impl LeakScanner {
    fn many(&self) -> &Many {
        self.many.get_or_init(|| {
            let automaton = |patterns: Vec<(&[u8], usize, &'static str)>, any_case: bool| {
                if patterns.is_empty() {
                    return None;
                }
                let built = aho_corasick::AhoCorasick::builder()
                    .ascii_case_insensitive(any_case)
                    .build(patterns.iter().map(|(bytes, _, _)| bytes))
                    .expect("patterns of bytes build an automaton");
                Some((built, patterns.iter().map(|&(_, needle, name)| (needle, name)).collect()))
            };
            let (mut exact, mut hex) = (Vec::new(), Vec::new());
            for pattern in &self.patterns {
                match &pattern.matcher {
                    Matcher::Exact(bytes, name) => exact.push((bytes.as_slice(), pattern.needle, *name)),
                    Matcher::Hex(digits, name) => hex.push((digits.as_slice(), pattern.needle, *name)),
                    _ => {}
                }
            }
            Many {
                exact: automaton(exact, false),
                hex: automaton(hex, true),
                values: aho_corasick::AhoCorasick::new(&self.values).expect("values build an automaton"),
            }
        })
    }

    /// [`LeakScanner::scan`] with many needles (see [`Many`]): every leak, ordered by offset (a
    /// leak found through decoding is placed at its offset in the decoded text).
    fn scan_many(&self, haystack: &[u8]) -> Vec<Leak> {
        let many = self.many();
        let mut leaks = Vec::new();
        let mut found = |needle: usize, encoding: &'static str, offset: usize| {
            leaks.push(Leak {
                label: self.labels[needle].clone(),
                encoding,
                offset,
            });
        };
        for (automaton, names) in [&many.exact, &many.hex].into_iter().flatten() {
            for m in automaton.find_overlapping_iter(haystack) {
                let (needle, name) = names[m.pattern().as_usize()];
                found(needle, name, m.start());
            }
        }
        let mut decoded_leaks = |text: &[u8], encoding: &'static str| {
            for m in many.values.find_overlapping_iter(text) {
                found(m.pattern().as_usize(), encoding, m.start());
            }
        };
        // Percent-decoded (a `+` read as a space too), up to three times: `%252B`.
        if haystack.iter().any(|b| matches!(b, b'%' | b'+')) {
            let mut text: Vec<u8> = haystack.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
            for _ in 0..3 {
                let next: Vec<u8> = percent_encoding::percent_decode(&text).collect();
                if next == text {
                    break;
                }
                decoded_leaks(&next, "percent-encoded");
                text = next;
            }
        }
        for (introducer, escape, encoding) in [
            (b'\\', json_escape as crate::secrets::escapes::Escape, "json-escaped"),
            (b'&', html_reference, "html-escaped"),
        ] {
            if memchr::memchr(introducer, haystack).is_some() {
                decoded_leaks(&unescaped(haystack, escape), encoding);
            }
        }
        leaks.sort_by_key(|leak| leak.offset);
        leaks
    }
}

/// `haystack` with every escape `escape` reads (at any position) replaced by the character it
/// stands for.
fn unescaped(haystack: &[u8], escape: crate::secrets::escapes::Escape) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut utf8 = [0u8; 4];
    let mut at = 0;
    while at < haystack.len() {
        match escape(haystack, at) {
            Some((c, used)) if used > 0 => {
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                at += used;
            }
            _ => {
                out.push(haystack[at]);
                at += 1;
            }
        }
    }
    out
}

/// Letters, digits and the bytes of non-ASCII characters (letters of other scripts): what a
/// word is made of.
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Where `value` first occurs in `haystack` as a whole word: not preceded or followed by a word
/// byte, at the ends of `value` that are word bytes themselves (`-x` may follow a letter).
fn find_word(haystack: &[u8], value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > haystack.len() {
        return None;
    }
    let (first, last) = (value[0], value[value.len() - 1]);
    (0..=haystack.len() - value.len()).find(|&start| {
        let end = start + value.len();
        haystack[start..end] == *value
            && !(is_word_byte(first) && start > 0 && is_word_byte(haystack[start - 1]))
            && !(is_word_byte(last) && end < haystack.len() && is_word_byte(haystack[end]))
    })
}

/// All the ways to look for one value, with forms identical to an earlier one dropped.
fn matchers_for(value: &[u8]) -> Vec<Matcher> {
    let mut exact: Vec<(Vec<u8>, &'static str)> = vec![(value.to_vec(), "raw")];
    for (engine, name) in [
        (&STANDARD_NO_PAD, "base64"),
        (&URL_SAFE_NO_PAD, "base64url"),
    ] {
        for core in base64_cores(value, engine) {
            if !exact.iter().any(|(bytes, _)| *bytes == core) {
                exact.push((core, name));
            }
        }
    }
    let mut matchers: Vec<Matcher> = exact
        .into_iter()
        .map(|(bytes, name)| Matcher::Exact(bytes, name))
        .collect();
    // UTF-16 (a Windows or Java peer's bytes), both byte orders. Patterns are tried where their
    // first byte occurs, and big-endian UTF-16 of an ASCII secret starts with a NUL: tried at
    // every NUL of a binary body (a disk image is mostly zeros), it made scanning one 50 times
    // slower. So its leading NUL is left out; for a secret of ASCII or Latin-1 characters
    // (`a\0b\0c` then) that one pattern is the little-endian one less its last NUL, and covers
    // both byte orders.
    if let Ok(text) = std::str::from_utf8(value) {
        let units: Vec<u16> = text.encode_utf16().collect();
        let le: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        let mut be: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
        if be.first() == Some(&0) {
            be.remove(0);
        }
        if le.starts_with(&be) {
            matchers.push(Matcher::Exact(be, "utf-16"));
        } else {
            matchers.push(Matcher::Exact(le, "utf-16le"));
            matchers.push(Matcher::Exact(be, "utf-16be"));
        }
    }
    // Latin-1 (a body in `charset=ISO-8859-1`): a secret with characters past ASCII, all
    // within Latin-1 (`pässwort`), has bytes of its own there.
    if let Ok(text) = std::str::from_utf8(value)
        && !text.is_ascii()
        && let Ok(latin1) = text.chars().map(|c| u8::try_from(u32::from(c))).collect::<Result<Vec<u8>, _>>()
    {
        matchers.push(Matcher::Exact(latin1, "latin-1"));
    }
    // The same id as a UUID, or without its dashes, either case.
    if let Some(other) = std::str::from_utf8(value).ok().and_then(crate::secrets::pseudonym::other_uuid_form) {
        matchers.push(Matcher::Hex(other.to_ascii_lowercase().into_bytes(), "as a UUID, or without its dashes"));
    }
    matchers.push(Matcher::Percent);
    matchers.push(Matcher::Json);
    matchers.push(Matcher::Html);
    matchers.push(Matcher::Hex(lower_hex(value), "hex"));
    matchers
}

/// The base64 characters that encode only `value`'s bits, for each of the three alignments
/// the value can have inside a longer encoded blob.
///
/// With `k` bytes before the value, the first `ceil(8k/6)` characters mix in those bytes and
/// the characters after `floor(8(k+n)/6)` mix in whatever follows (or padding), so only the
/// characters between are fixed by the value alone.
fn base64_cores(value: &[u8], engine: &GeneralPurpose) -> Vec<Vec<u8>> {
    let mut cores = Vec::with_capacity(3);
    let mut buf = Vec::with_capacity(value.len() + 2);
    for lead in 0..3usize {
        buf.clear();
        buf.resize(lead, 0);
        buf.extend_from_slice(value);
        let encoded = engine.encode(&buf).into_bytes();
        let start = (8 * lead).div_ceil(6);
        let end = 8 * buf.len() / 6;
        if end >= start + MIN_NEEDLE_LEN {
            cores.push(encoded[start..end].to_vec());
        }
    }
    cores
}

fn lower_hex(value: &[u8]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    value
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]])
        .collect()
}

impl Matcher {
    /// Where a match starting at `start` ends, and the encoding it was written in.
    fn match_at(
        &self,
        value: &[u8],
        haystack: &[u8],
        start: usize,
    ) -> Option<(usize, &'static str)> {
        match self {
            Self::Exact(bytes, name) => haystack[start..]
                .starts_with(bytes)
                .then_some((start + bytes.len(), *name)),
            Self::Hex(digits, name) => {
                let end = start + digits.len();
                let window = haystack.get(start..end)?;
                window.eq_ignore_ascii_case(digits).then_some((end, *name))
            }
            // A `%25` is a `%` encoded once or the start of a byte encoded twice: both read.
            Self::Percent => match_percent(value, haystack, start, false)
                .or_else(|| match_percent(value, haystack, start, true)),
            Self::Json => match_escaped(value, haystack, start, json_escape).map(|end| (end, "json-escaped")),
            Self::Html => match_escaped(value, haystack, start, html_reference).map(|end| (end, "html-escaped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

    const TOKEN: &str = "MIIEhwYJKoZIhvcNAQcCoIIEeDCCBHQCAQExDTALBglghkgBZQMEAgEwggLq";

    // RFC 3986 unreserved characters stay literal; everything else is escaped.
    const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');

    fn needle(label: &str, value: &str) -> Needle {
        Needle {
            label: label.to_owned(),
            value: value.to_owned(),
        }
    }

    fn scanner(value: &str) -> LeakScanner {
        LeakScanner::new([needle("header X-Auth-Token", value)])
    }

    fn leak(encoding: &'static str, offset: usize) -> Option<Leak> {
        Some(Leak {
            label: "header X-Auth-Token".to_owned(),
            encoding,
            offset,
        })
    }

    #[test]
    fn a_raw_token_is_found_with_its_label_and_offset() {
        let body = format!(r#"{{"token":"{TOKEN}"}}"#);
        assert_eq!(scanner(TOKEN).find(body.as_bytes()), leak("raw", 10));
    }

    #[test]
    fn a_percent_encoded_token_in_a_url_query_is_found_in_either_hex_case() {
        let value = "tok/en+with=reserved&chars:é";
        let encoded = utf8_percent_encode(value, RFC3986).to_string();
        let url = format!("https://ims.example.com/v2/cloudimages?marker={encoded}&limit=10");
        let offset = url.find('=').expect("the query has a parameter") + 1;
        assert_eq!(
            scanner(value).find(url.as_bytes()),
            leak("percent-encoded", offset)
        );

        let lower = url.replace("%2F", "%2f").replace("%C3%A9", "%c3%a9");
        assert_ne!(lower, url);
        assert_eq!(
            scanner(value).find(lower.as_bytes()),
            leak("percent-encoded", offset)
        );
    }

    #[test]
    fn a_form_encoded_value_with_a_space_is_found() {
        let value = "secret value/42";
        let body = "grant=password&password=secret+value%2F42&scope=all";
        assert_eq!(
            scanner(value).find(body.as_bytes()),
            leak("form-encoded", 24)
        );
    }

    #[test]
    fn a_json_escaped_value_is_found_however_the_encoder_escaped_it() {
        let value = "pa\"ss/wörd\\😀x";
        let serde = serde_json::to_string(&serde_json::json!({ "password": value }))
            .expect("a JSON value always serialises");
        let ascii_only = r#"{"password":"pa\"ss\/w\u00F6rd\\\ud83d\ude00x"}"#;
        let scanner = scanner(value);
        for body in [serde.as_str(), ascii_only] {
            assert_eq!(
                scanner.find(body.as_bytes()),
                leak("json-escaped", 13),
                "{body}"
            );
        }
    }

    #[test]
    fn a_value_needing_no_json_escape_is_still_found_when_an_encoder_escaped_it() {
        // Go's encoding/json writes '<' as \u003c even though JSON does not require it.
        let value = "<script>token";
        let body = r#"{"x":"\u003cscript\u003etoken"}"#;
        assert_eq!(
            scanner(value).find(body.as_bytes()),
            leak("json-escaped", 6)
        );
    }

    #[test]
    fn a_base64_encoded_token_is_found_alone() {
        for value in [TOKEN, "secret1", "secret12", "secret123"] {
            let body = format!("Basic {}", STANDARD.encode(value));
            assert_eq!(
                scanner(value).find(body.as_bytes()),
                leak("base64", 6),
                "{value}"
            );
        }
    }

    #[test]
    fn a_token_inside_a_larger_base64_blob_is_found_at_every_alignment() {
        let value = "ak-7f3a9c2e41";
        let scanner = scanner(value);
        for before in 0..6 {
            for after in 0..4 {
                let mut plain = "x".repeat(before).into_bytes();
                plain.extend_from_slice(value.as_bytes());
                plain.extend(std::iter::repeat_n(b'y', after));
                let blob = STANDARD.encode(&plain);
                let found = scanner.find(blob.as_bytes());
                assert_eq!(
                    found.map(|l| l.encoding),
                    Some("base64"),
                    "{before} bytes before, {after} after: {blob}"
                );
            }
        }
    }

    #[test]
    fn a_base64url_encoded_token_is_found() {
        // '?' and '>' make the standard and URL-safe alphabets differ.
        let value = "tok??>>~~secret";
        let encoded = URL_SAFE.encode(value);
        assert!(encoded.contains(['-', '_']), "{encoded}");
        let body = format!("state={encoded}");
        assert_eq!(scanner(value).find(body.as_bytes()), leak("base64url", 6));
    }

    #[test]
    fn a_hex_encoded_token_is_found_in_either_case() {
        let value = "hunter2-secret";
        let hex = String::from_utf8(lower_hex(value.as_bytes())).expect("hex digits are ASCII");
        for body in [hex.clone(), hex.to_uppercase()] {
            assert_eq!(scanner(value).find(body.as_bytes()), leak("hex", 0));
        }
    }

    #[test]
    fn a_token_echoed_with_html_character_references_is_found() {
        let value = "MIIE+pQ/x\"a<b>&'c-tail";
        for escaped in [
            "MIIE&#43;pQ&#x2f;x&quot;a&lt;b&gt;&amp;&#39;c-tail",
            "MIIE&#x2B;pQ&#47;x&#34;a&#60;b&#62;&#38;&apos;c-tail",
            "MIIE&#43pQ&#X2F;x&QUOT;a&lt;b&gt;&amp;&#039;c-tail",
        ] {
            let page = format!("<p>token {escaped} is not valid</p>");
            assert_eq!(scanner(value).find(page.as_bytes()), leak("html-escaped", 9), "{escaped}");
        }
        // The raw form is the raw pattern's; a reference to another character is no match.
        let raw = format!("<p>{TOKEN}</p>");
        assert_eq!(scanner(TOKEN).find(raw.as_bytes()), leak("raw", 3));
        assert_eq!(scanner("tok+en-1234").find(b"tok&#44;en-1234"), None);
    }

    #[test]
    fn a_token_percent_encoded_twice_or_in_utf16_is_found() {
        let value = "tok/en+9876=";
        for (haystack, encoding) in [
            ("q=tok%252Fen%252B9876%253D", "percent-encoded twice"),
            ("q=tok%25252Fen%25252B9876%25253D", "percent-encoded twice"),
            ("q=tok%2Fen%252B9876=", "percent-encoded twice"),
        ] {
            assert_eq!(scanner(value).find(haystack.as_bytes()), leak(encoding, 2), "{haystack}");
        }
        // A value holding `%` itself, encoded twice.
        assert_eq!(scanner("100%-sure").find(b"x 100%2525-sure"), leak("percent-encoded twice", 2));
        let mut le = b"xx".to_vec();
        le.extend(value.encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(scanner(value).find(&le), leak("utf-16", 2));
        let mut be = b"xx".to_vec();
        be.extend(value.encode_utf16().flat_map(u16::to_be_bytes));
        // Found from its first non-NUL byte (the pattern leaves the leading NUL out).
        assert_eq!(scanner(value).find(&be), leak("utf-16", 3));
        // Beyond Latin-1 the byte orders differ: one pattern each.
        let wide = "t\u{f6}k\u{20ac}n-9876";
        for (bytes, encoding, at) in [
            (wide.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>(), "utf-16le", 0),
            (wide.encode_utf16().flat_map(u16::to_be_bytes).collect(), "utf-16be", 1),
        ] {
            assert_eq!(scanner(wide).find(&bytes), leak(encoding, at), "{encoding}");
        }
        // A body of zeros holds no pattern's first byte.
        assert_eq!(scanner(value).find(&[0u8; 4096]), None);
        // In Latin-1 a secret past ASCII has bytes of its own.
        assert_eq!(scanner("p\u{e4}sswort-1").find(b"{\"password\": \"p\xe4sswort-1\"}"), leak("latin-1", 14));
    }

    #[test]
    fn a_needle_debug_print_hides_the_secret() {
        let shown = format!("{:?}", needle("header X-Auth-Token", TOKEN));
        assert!(shown.contains("header X-Auth-Token"), "{shown}");
        assert!(!shown.contains(&TOKEN[..10]), "{shown}");
    }

    #[test]
    fn needles_shorter_than_six_bytes_are_ignored() {
        let scanner = LeakScanner::new([needle("field a", "admin"), needle("field b", "")]);
        assert!(scanner.is_empty());
        assert_eq!(scanner.find(b"admin admin"), None);
        assert!(!LeakScanner::new([needle("field c", "admin1")]).is_empty());
    }

    #[test]
    fn each_leak_reports_the_needle_it_came_from_and_its_encoding() {
        let scanner = LeakScanner::new([
            needle("field owner", "0605767a3300d5762fb7c0186d9e1779"),
            needle("field __account_code", "acct code 77"),
            needle("header X-Project-Id", "0605767a3300d5762fb7c0186d9e1779"),
        ]);
        let body = br#"{"owner":"0605767a3300d5762fb7c0186d9e1779","q":"acct+code+77"}"#;
        let found = scanner.find_all(body);
        let summary: Vec<(&str, &str, usize)> = found
            .iter()
            .map(|l| (l.label.as_str(), l.encoding, l.offset))
            .collect();
        assert_eq!(
            summary,
            [
                ("field owner", "raw", 10),
                ("field __account_code", "form-encoded", 49)
            ]
        );
        assert_eq!(scanner.find(body), found.first().cloned());
    }

    #[test]
    fn find_all_lists_every_location() {
        let body = format!("{TOKEN} and {TOKEN} and {}", STANDARD.encode(TOKEN));
        let found = scanner(TOKEN).find_all(body.as_bytes());
        let offsets: Vec<(usize, &str)> = found.iter().map(|l| (l.offset, l.encoding)).collect();
        let second = TOKEN.len() + 5;
        assert_eq!(
            offsets,
            [(0, "raw"), (second, "raw"), (2 * second, "base64")]
        );
    }

    #[test]
    fn a_body_without_the_secret_has_no_leak() {
        let body = serde_json::json!({
            "images": [{
                "id": "3f2b1c9e-7d4a-4b8e-9c2d-1a2b3c4d5e6f",
                "owner": "64eaacc38751265654b076a523e45135",
                "__account_code": "acct_XQ93-mk",
                "name": "ubuntu 22.04 / server",
                "file": "/v2/images/3f2b1c9e/file",
                "checksum": STANDARD.encode("some other bytes entirely"),
            }]
        })
        .to_string();
        let scanner = LeakScanner::new([
            needle("field owner", "0605767a3300d5762fb7c0186d9e1779"),
            needle("field __account_code", "acct_AB12-xy"),
            needle("header X-Auth-Token", TOKEN),
        ]);
        assert_eq!(scanner.find_all(body.as_bytes()), []);
    }

    #[test]
    fn a_megabyte_body_is_scanned_in_one_pass() {
        let needles =
            (0..12).map(|n| needle(&format!("needle {n}"), &format!("{n:02}{TOKEN}{n:02}")));
        let scanner = LeakScanner::new(needles);
        let mut body = r#"{"k":"MIIE\u0041 %41+%2 \\ ","#.repeat(40_000).into_bytes();
        let at = body.len();
        body.extend_from_slice(STANDARD.encode(format!("11{TOKEN}11")).as_bytes());
        let found = scanner.find_all(&body);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].label.as_str(), found[0].offset),
            ("needle 11", at)
        );
    }

    #[test]
    fn short_values_are_found_as_whole_words_when_every_value_must_be_checked() {
        let scanner = LeakScanner::with_short_words([
            needle("denied #1", "az1"),
            needle("denied #2", "-x9"),
            needle("denied #3", TOKEN),
        ])
        .unwrap();
        let found = |text: &str| -> Vec<(String, &'static str)> {
            scanner
                .find_all(text.as_bytes())
                .into_iter()
                .map(|l| (l.label, l.encoding))
                .collect()
        };
        assert_eq!(found("zone az1 here"), [("denied #1".into(), "raw, whole word")]);
        assert_eq!(found("az1"), [("denied #1".into(), "raw, whole word")]);
        assert_eq!(found("[\"az1\",2]"), [("denied #1".into(), "raw, whole word")]);
        assert_eq!(found("baz1 az12 maz1x"), []);
        assert_eq!(found("q=a%7A1&r=1"), [("denied #1".into(), "percent-encoded, whole word")]);
        assert_eq!(found("node-x9"), [("denied #2".into(), "raw, whole word")]);
        assert_eq!(found("node-x99"), []);
        assert_eq!(found(TOKEN), [("denied #3".into(), "raw")]);
        // Non-ASCII letters are letters: no word boundary between them and the value.
        assert_eq!(found("éaz1"), []);
    }

    #[test]
    fn a_value_that_cannot_be_checked_is_refused_by_name_not_skipped() {
        let refused = LeakScanner::with_short_words([
            needle("denied #1", "ok1"),
            needle("denied #2", ""),
            needle("denied #3", "  "),
            needle("denied #4", "::"),
        ])
        .err()
        .unwrap();
        let labels: Vec<&str> = refused.iter().map(|u| u.label.as_str()).collect();
        assert_eq!(labels, ["denied #2", "denied #3", "denied #4"]);
        // The gate's scanner still ignores short values: they are not worth refusing a write.
        assert!(LeakScanner::new([needle("field a", "ok1")]).is_empty());
    }
}

#[cfg(test)]
mod many_needles {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    const SECRET: &str = "Sécret/pass+word&<x>=42";

    fn needle(label: &str, value: &str) -> Needle {
        Needle {
            label: label.to_owned(),
            value: value.to_owned(),
        }
    }

    /// The secret in each encoding a leak may take, in a body.
    fn bodies() -> Vec<(&'static str, Vec<u8>)> {
        let pct = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let json_u: String = SECRET.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let html: String = SECRET.chars().map(|c| format!("&#{};", c as u32)).collect();
        let mut bodies = vec![
            ("raw", format!("{{\"a\":\"{SECRET}\"}}").into_bytes()),
            ("percent", format!("/x?q={}", pct(SECRET)).into_bytes()),
            ("percent twice", format!("/x?q={}", pct(&pct(SECRET))).into_bytes()),
            ("json", format!("{{\"a\":\"{json_u}\"}}").into_bytes()),
            ("html", format!("<p>{html}</p>").into_bytes()),
            ("hex", SECRET.bytes().map(|b| format!("{b:02X}")).collect::<String>().into_bytes()),
            ("utf-16", SECRET.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        ];
        for lead in 0..3 {
            let mut bytes = vec![b'x'; lead];
            bytes.extend_from_slice(SECRET.as_bytes());
            bodies.push(("base64", STANDARD.encode(&bytes).into_bytes()));
            bodies.push(("base64url", URL_SAFE.encode(&bytes).into_bytes()));
        }
        bodies
    }

    #[test]
    fn with_many_needles_every_encoding_is_found_as_with_one() {
        let one = LeakScanner::new([needle("field password", SECRET)]);
        let fillers = (0..100).map(|i| needle("other", &format!("filler-value-{i:04}")));
        let many = LeakScanner::new(fillers.chain([needle("field password", SECRET)]));
        assert!(many.values.len() > MANY_NEEDLES);
        for (name, body) in bodies() {
            assert!(one.find(&body).is_some(), "one needle, {name}");
            let found = many.find_all(&body);
            assert!(found.iter().any(|l| l.label == "field password"), "many needles, {name}: {found:?}");
            assert!(found.iter().all(|l| l.label == "field password"), "{name}: {found:?}");
        }
        let clean = b"{\"a\": \"nothing secret here, filler-value but no number\"}";
        assert_eq!(many.find(clean), None);
    }

    #[test]
    fn twenty_thousand_needles_over_a_large_body_are_searched_in_one_pass() {
        // Quadratic, this took minutes (20,000 needles, 1 MB): each byte tried every needle
        // starting with it. No time is asserted: the test would not end.
        let values: Vec<String> = (0..20_000).map(|i| format!("pw-{i:06}-{}", i * 7919 % 100_003)).collect();
        let body: String = values.iter().map(|v| format!("{{\"password\":\"x{v}\"}},")).collect();
        let scanner = LeakScanner::new(values.iter().map(|v| needle("field password", v)));
        let leaks = scanner.find_all(body.as_bytes());
        assert!(leaks.len() >= 20_000, "{}", leaks.len());
    }
}
