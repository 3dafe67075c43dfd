//! The leak check of a whole interaction about to be written: every needle (a credential the
//! exchange carried, a secret the proxy knows) in every encoding, in the interaction as
//! serialised, in each body as the bytes it stands for through its compression layers, and in
//! the compressed streams embedded in a body, a path, a query or a header value.

use std::cell::RefCell;
use std::rc::Rc;

use crate::model::encodings::{embedded_inflated, inflate};
use crate::model::interaction::{Encoded, Interaction};
use crate::secrets::leak::{Leak, LeakScanner, Needle};

/// The first secret still present in what is about to be written, if any (the record path
/// uses [`scan_for_leak`], which also hands on what it serialised).
#[cfg(any(test, feature = "internals"))]
pub fn find_leak(interaction: &Interaction, needles: Vec<Needle>) -> Option<Leak> {
    scan_for_leak(interaction, needles).0
}

/// [`find_leak`], also giving back the interaction as serialised for the scan (`None` when
/// there was nothing to look for, so nothing was serialised): the store writes those bytes
/// instead of serialising the interaction again.
pub(crate) fn scan_for_leak(
    interaction: &Interaction,
    needles: Vec<Needle>,
) -> (Option<Leak>, Option<Encoded>) {
    let scanner = scanner_for(needles);
    if scanner.is_empty() {
        return (None, None);
    }
    let encoded = Encoded::of(interaction);
    let leak = leak_in(&scanner, interaction, encoded.as_bytes());
    (leak, Some(encoded))
}

thread_local! {
    /// The last scanner built on this thread, and the needles it was built from.
    static LAST_SCANNER: RefCell<Option<(Vec<Needle>, Rc<LeakScanner>)>> = const { RefCell::new(None) };
}

/// A scanner for `needles`. A client sends the same token with every request, so the scanner
/// (each needle in each of its encodings) is built once per set of needles and thread, not once
/// per recording: the last one is reused when the needles are the same, labels and values.
fn scanner_for(needles: Vec<Needle>) -> Rc<LeakScanner> {
    LAST_SCANNER.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((built_from, scanner)) = last.as_ref()
            && built_from.len() == needles.len()
            && built_from
                .iter()
                .zip(&needles)
                .all(|(a, b)| a.label == b.label && a.value == b.value)
        {
            return Rc::clone(scanner);
        }
        let scanner = Rc::new(LeakScanner::new(needles.iter().cloned()));
        *last = Some((needles, Rc::clone(&scanner)));
        scanner
    })
}

/// The first needle of `scanner` in `interaction`, serialised as `bytes`, or in its bodies.
fn leak_in(scanner: &LeakScanner, interaction: &Interaction, bytes: &[u8]) -> Option<Leak> {
    if let Some(leak) = scanner.find(bytes) {
        return Some(leak);
    }
    // The serialised form escapes a text body once more (`\u003c` becomes `\\u003c`), and a
    // base64 body hides compressed bytes: scan each body as the bytes it stands for, and each
    // gzip/zlib layer inside them.
    for body in [&interaction.request.body, &interaction.response.body] {
        let Ok(mut bytes) = crate::model::interaction::body_bytes(body).map(|b| b.to_vec()) else {
            continue;
        };
        for _ in 0..4 {
            if let Some(leak) = scanner.find(&bytes) {
                return Some(leak);
            }
            match inflate(&bytes) {
                Some(inner) => bytes = inner,
                None => break,
            }
        }
        // A compressed stream inside the body: written as base64 or hex in a field (an upstream
        // echoing the token as `base64(gzip(…))`), or raw in a multipart part.
        if let Some(leak) = embedded_inflated(&bytes).iter().find_map(|inner| scanner.find(inner)) {
            return Some(leak);
        }
    }
    // The same outside the bodies: a compressed copy in the path, the query or a header value
    // (`?state=H4sI…`, an upstream echoing the token as `X-Trace-State: base64(gzip(…))` or in
    // a `Location`). One line each, so no run of base64 spans two of them; then, for text with
    // a `/` (a base64 character), each long piece between them a line too (`/v2/images/<hex>`
    // would otherwise read as one run that is neither base64 nor hex).
    let request = &interaction.request;
    let mut outside = Vec::new();
    for text in std::iter::once(request.path.as_str())
        .chain(request.query.as_deref())
        .chain(request.headers.iter().map(|(_, value)| value.as_str()))
        .chain(interaction.response.headers.iter().map(|(_, value)| value.as_str()))
    {
        outside.extend_from_slice(text.as_bytes());
        outside.push(b'\n');
        for piece in text.split('/').filter(|piece| piece.len() >= 28 && piece.len() < text.len()) {
            outside.extend_from_slice(piece.as_bytes());
            outside.push(b'\n');
        }
    }
    embedded_inflated(&outside).iter().find_map(|inner| scanner.find(inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::fixtures::answering;

    fn token(value: &str) -> Vec<Needle> {
        vec![Needle {
            label: "the X-Auth-Token header".into(),
            value: value.into(),
        }]
    }

    #[test]
    fn a_scanner_reused_for_the_same_needles_still_finds_each_new_needle_and_no_old_one() {
        let first = "tok-aaaaaaaaaaaaaaaa";
        let second = "tok-bbbbbbbbbbbbbbbb";
        let echo = |v: &str| answering(&format!(r#"{{"echo":"{v}"}}"#));
        // Twice with the same needles (the second scan reuses the scanner): found both times.
        for _ in 0..2 {
            let (leak, encoded) = scan_for_leak(&echo(first), token(first));
            assert!(leak.is_some_and(|l| l.label == "the X-Auth-Token header"));
            assert!(encoded.is_some());
        }
        // A new token: the new one is found, the old one is no longer looked for.
        assert!(scan_for_leak(&echo(second), token(second)).0.is_some());
        assert!(scan_for_leak(&echo(first), token(second)).0.is_none());
        // Same value under another label: reported under the label given now.
        let relabelled = vec![Needle {
            label: "the X-Subject-Token header".into(),
            value: second.into(),
        }];
        let leak = scan_for_leak(&echo(second), relabelled).0.unwrap();
        assert_eq!(leak.label, "the X-Subject-Token header");
        // No needles: nothing scanned, nothing serialised.
        assert!(matches!(scan_for_leak(&echo(first), vec![]), (None, None)));
    }
}
