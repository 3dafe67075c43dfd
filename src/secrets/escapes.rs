//! How the leak gate reads a secret written in an escaped form back, byte by byte in place:
//! percent-encoded (once or twice, `+` for a space), JSON string escapes (`\u0041`, surrogate
//! pairs) and HTML character references (`&#43;`, `&#x2f;`, `&amp;`).

/// Matches `value` against percent-decoded haystack bytes. Reports only matches that decoded
/// something, since a fully literal match is the raw pattern's to report.
pub(crate) fn match_percent(
    value: &[u8],
    haystack: &[u8],
    start: usize,
    deep_first: bool,
) -> Option<(usize, &'static str)> {
    let (mut at, mut decoded, mut plus, mut twice) = (start, false, false, false);
    for &want in value {
        let deep = || percent_byte_deep(haystack, at, want);
        // Decoding first matters for a value containing '%': "%25" must count as one '%'.
        if let Some(used) = deep().filter(|_| deep_first) {
            at += used;
            (decoded, twice) = (true, true);
        } else if percent_byte(haystack, at) == Some(want) {
            at += 3;
            decoded = true;
        } else if let Some(used) = deep() {
            at += used;
            (decoded, twice) = (true, true);
        } else if haystack.get(at) == Some(&want) {
            at += 1;
        } else if want == b' ' && haystack.get(at) == Some(&b'+') {
            at += 1;
            plus = true;
        } else {
            return None;
        }
    }
    match (decoded, plus) {
        (_, true) => Some((at, "form-encoded")),
        (true, false) if twice => Some((at, "percent-encoded twice")),
        (true, false) => Some((at, "percent-encoded")),
        (false, false) => None,
    }
}

/// How many bytes at `at` spell `want` percent-encoded two or three times (`%252B`,
/// `%25252B` for `+`, the `%` escaped again), if they do.
fn percent_byte_deep(haystack: &[u8], at: usize, want: u8) -> Option<usize> {
    if haystack.get(at) != Some(&b'%') {
        return None;
    }
    let mut next = at + 1;
    for _ in 0..2 {
        // Each `25` is one more encoding of the `%`; then the two hex digits of `want`.
        if haystack.get(next..next + 2)? != b"25" {
            return None;
        }
        next += 2;
        let [high, low] = *haystack.get(next..next + 2)? else {
            return None;
        };
        if hex_value(high).zip(hex_value(low)).map(|(h, l)| h << 4 | l) == Some(want) {
            return Some(next + 2 - at);
        }
    }
    None
}

fn percent_byte(haystack: &[u8], at: usize) -> Option<u8> {
    match haystack.get(at..at + 3)? {
        [b'%', high, low] => Some(hex_value(*high)? << 4 | hex_value(*low)?),
        _ => None,
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .map(|d| u8::try_from(d).expect("a hex digit is below 16"))
}

/// Reads the escape at a haystack position: the character it stands for, and its length.
pub(crate) type Escape = fn(&[u8], usize) -> Option<(char, usize)>;

/// Matches `value` against haystack bytes read through `escape` (the character an escape at a
/// position stands for, and its length: [`json_escape`], [`html_reference`]); a match that
/// needed no escape is left to the raw pattern, like [`match_percent`]'s.
pub(crate) fn match_escaped(
    value: &[u8],
    haystack: &[u8],
    start: usize,
    escape: Escape,
) -> Option<usize> {
    let (mut at, mut next, mut decoded) = (start, 0, false);
    let mut utf8 = [0u8; 4];
    while next < value.len() {
        if let Some((c, used)) = escape(haystack, at) {
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            if value[next..].starts_with(bytes) {
                at += used;
                next += bytes.len();
                decoded = true;
                continue;
            }
        }
        if haystack.get(at) != Some(&value[next]) {
            return None;
        }
        at += 1;
        next += 1;
    }
    decoded.then_some(at)
}

/// The character an HTML character reference at `at` stands for, and how many bytes it takes:
/// `&#43;`, `&#x2F;` (the `;` optional, as browsers read them) and the named references an
/// escaper writes (`&amp;`, `&quot;`, `&apos;`, `&lt;`, `&gt;`).
pub(crate) fn html_reference(haystack: &[u8], at: usize) -> Option<(char, usize)> {
    let rest = haystack.get(at..)?.strip_prefix(b"&")?;
    let Some(number) = rest.strip_prefix(b"#") else {
        return [("amp;", '&'), ("quot;", '"'), ("apos;", '\''), ("lt;", '<'), ("gt;", '>')]
            .into_iter()
            .find(|(name, _)| {
                rest.get(..name.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(name.as_bytes()))
            })
            .map(|(name, c)| (c, name.len() + 1));
    };
    let (radix, digits) = match number.first() {
        Some(b'x' | b'X') => (16, &number[1..]),
        _ => (10, number),
    };
    let count = digits.iter().take(8).take_while(|d| char::from(**d).is_digit(radix)).count();
    let text = std::str::from_utf8(&digits[..count]).ok()?;
    let code = u32::from_str_radix(text, radix).ok()?;
    let semicolon = usize::from(digits.get(count) == Some(&b';'));
    let used = 2 + usize::from(radix == 16) + count + semicolon;
    char::from_u32(code).map(|c| (c, used))
}

/// The character a JSON escape at `at` stands for, and how many bytes it takes.
pub(crate) fn json_escape(haystack: &[u8], at: usize) -> Option<(char, usize)> {
    let [b'\\', kind] = *haystack.get(at..at + 2)? else {
        return None;
    };
    let c = match kind {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return json_unicode_escape(haystack, at),
        _ => return None,
    };
    Some((c, 2))
}

fn json_unicode_escape(haystack: &[u8], at: usize) -> Option<(char, usize)> {
    let high = u16_escape(haystack, at)?;
    if !(0xd800..0xdc00).contains(&high) {
        return char::from_u32(u32::from(high)).map(|c| (c, 6));
    }
    // Characters outside the Basic Multilingual Plane are written as a surrogate pair.
    let low = u16_escape(haystack, at + 6)?;
    if !(0xdc00..0xe000).contains(&low) {
        return None;
    }
    let code = 0x10000 + ((u32::from(high) - 0xd800) << 10) + (u32::from(low) - 0xdc00);
    char::from_u32(code).map(|c| (c, 12))
}

fn u16_escape(haystack: &[u8], at: usize) -> Option<u16> {
    match haystack.get(at..at + 6)? {
        [b'\\', b'u', digits @ ..] => digits
            .iter()
            .try_fold(0u16, |acc, &d| Some(acc << 4 | u16::from(hex_value(d)?))),
        _ => None,
    }
}
