//! Consistent, format-preserving pseudonyms for identifiers in exported cassettes.
//! The same value under the same key always maps to the same pseudonym, so relations such as
//! "these two images share an owner" survive redaction, and the pseudonym keeps the value's shape.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Public default key used when `IMS_VCR_REDACT_KEY` is unset.
///
/// This key is published with the source code. Pseudonyms made with it hide values from a
/// casual reader, but anyone can recompute them, so a value from a small space (a short
/// account code, a sequential number) can be recovered by trying every candidate. Teams that
/// need real protection, or want pseudonyms that match only among themselves, set their own key.
pub const DEFAULT_KEY: &str = "ims-vcr-public-default-redaction-key-v1";

/// Environment variable that holds the redaction key.
pub const KEY_ENV: &str = "IMS_VCR_REDACT_KEY";

const FINGERPRINT_DOMAIN: &[u8] = b"ims-vcr key fingerprint v1";
// Distinct prefixes keep pseudonym derivation independent of the fingerprint and of each other.
const SEED_DOMAIN: &[u8] = b"ims-vcr pseudonym v1 seed\0";
const EXPAND_DOMAIN: &[u8] = b"ims-vcr pseudonym v1 expand\0";

type HmacSha256 = Hmac<Sha256>;

/// A redaction key, ready to derive pseudonyms.
#[derive(Clone)]
pub struct PseudonymKey {
    // Keyed once: cloning the keyed state skips re-hashing the HMAC pads on every call.
    mac: HmacSha256,
    fingerprint: String,
}

impl PseudonymKey {
    /// A key from raw bytes; any length is accepted.
    pub fn new(key: &[u8]) -> Self {
        let mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        Self {
            mac,
            fingerprint: fingerprint_of(key),
        }
    }

    /// The key from `IMS_VCR_REDACT_KEY`, read through `get` (usually
    /// `|n| std::env::var(n).ok()`), or [`DEFAULT_KEY`] when it is unset or empty.
    ///
    /// The flag is true when the public default key is in use, including when the variable
    /// spells it out, so callers can warn that the pseudonyms are not secret.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> (Self, bool) {
        match get(KEY_ENV) {
            Some(key) if !key.is_empty() => (Self::new(key.as_bytes()), key == DEFAULT_KEY),
            _ => (Self::new(DEFAULT_KEY.as_bytes()), true),
        }
    }

    /// `"hmac-sha256:"` followed by 16 hex digits that identify the key.
    ///
    /// It is a truncated hash, so it is safe to write into cassettes: it tells readers whether
    /// two cassettes were redacted with the same key without revealing the key.
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The pseudonym of `value`: deterministic for this key, with the value's format kept.
    ///
    /// - 32 hex digits stay 32 hex digits, letter case kept per position.
    /// - A UUID stays a UUID with the same dashes and case; if it had a valid version nibble
    ///   and RFC 4122 variant, the pseudonym is a well-formed version 4 UUID.
    /// - Anything else keeps its length and character classes: ASCII digits, lowercase and
    ///   uppercase letters are replaced within their class; every other character is kept.
    ///
    /// A value with at least one ASCII letter or digit never maps to itself; a value without
    /// any (empty, pure punctuation) is returned unchanged, as there is nothing to hide.
    ///
    /// Derivation, pinned by a test because cassettes redacted at different times must agree:
    /// `seed = HMAC-SHA256(key, "ims-vcr pseudonym v1 seed\0" || attempt (u32 BE) || value)`
    /// gives the first 32 bytes; further blocks are `HMAC-SHA256(key, "ims-vcr pseudonym v1
    /// expand\0" || seed || index (u32 BE))` for index 1, 2, ... Each replaced character takes
    /// one byte, rejection-sampled for uniformity; `attempt` starts at 0 and is incremented
    /// only when the result would equal the input.
    pub fn pseudonym(&self, value: &str) -> String {
        if !value.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return value.to_owned();
        }
        let shape = Shape::of(value);
        let mut out = String::with_capacity(value.len());
        let mut attempt: u32 = 0;
        loop {
            out.clear();
            let mut stream = Stream::new(&self.mac, value, attempt);
            shape.fill(value, &mut stream, &mut out);
            // A pseudonym equal to its input would leak the value; derive again, which stays
            // deterministic because the attempt number is part of the derivation.
            if out != value {
                return out;
            }
            attempt = attempt.wrapping_add(1);
        }
    }
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

fn fingerprint_of(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(FINGERPRINT_DOMAIN)
        .chain_update(key)
        .finalize();
    let mut out = String::from("hmac-sha256:");
    for byte in &digest[..8] {
        out.push(hex_digit(byte >> 4, false));
        out.push(hex_digit(byte & 0x0f, false));
    }
    out
}

fn hex_digit(nibble: u8, upper: bool) -> char {
    let digit = match nibble {
        0..=9 => b'0' + nibble,
        _ if upper => b'A' + nibble - 10,
        _ => b'a' + nibble - 10,
    };
    char::from(digit)
}

/// Pseudorandom bytes for one value: the first block is HMAC(key, domain, attempt, value) and
/// later blocks chain from it, so a long value is hashed once rather than once per block.
struct Stream<'k> {
    mac: &'k HmacSha256,
    seed: [u8; 32],
    block: [u8; 32],
    used: usize,
    next_index: u32,
}

impl<'k> Stream<'k> {
    fn new(mac: &'k HmacSha256, value: &str, attempt: u32) -> Self {
        let mut first = mac.clone();
        first.update(SEED_DOMAIN);
        first.update(&attempt.to_be_bytes());
        first.update(value.as_bytes());
        let seed: [u8; 32] = first.finalize().into_bytes().into();
        Self {
            mac,
            seed,
            block: seed,
            used: 0,
            next_index: 1,
        }
    }

    fn byte(&mut self) -> u8 {
        if self.used == self.block.len() {
            let mut next = self.mac.clone();
            next.update(EXPAND_DOMAIN);
            next.update(&self.seed);
            next.update(&self.next_index.to_be_bytes());
            self.block = next.finalize().into_bytes().into();
            self.next_index = self.next_index.wrapping_add(1);
            self.used = 0;
        }
        let byte = self.block[self.used];
        self.used += 1;
        byte
    }

    /// A uniform number below `n`; rejection sampling avoids the bias of a plain modulo.
    fn below(&mut self, n: u8) -> u8 {
        let n = u16::from(n);
        let limit = 256 - 256 % n;
        loop {
            let byte = u16::from(self.byte());
            if byte < limit {
                return u8::try_from(byte % n).expect("a remainder below n fits in a u8");
            }
        }
    }
}

/// The format a value is recognised as, which decides what its pseudonym looks like.
enum Shape {
    /// Only hex digits and dashes matter; `uuid_v4` forces the version and variant positions.
    Hex { upper: bool, uuid_v4: bool },
    /// Replace each ASCII letter or digit within its class.
    Classes,
}

const UUID_DASHES: [usize; 4] = [8, 13, 18, 23];
const UUID_VERSION_AT: usize = 14;
const UUID_VARIANT_AT: usize = 19;

impl Shape {
    fn of(value: &str) -> Self {
        let bytes = value.as_bytes();
        let is_hex32 = bytes.len() == 32 && bytes.iter().all(u8::is_ascii_hexdigit);
        let is_uuid = bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| {
                if UUID_DASHES.contains(&i) {
                    *b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
        if !is_hex32 && !is_uuid {
            return Self::Classes;
        }
        // Digits have no case, so a digit position takes the case the value's letters use.
        let has_upper = bytes.iter().any(u8::is_ascii_uppercase);
        let has_lower = bytes.iter().any(u8::is_ascii_lowercase);
        let uuid_v4 = is_uuid
            && (b'1'..=b'8').contains(&bytes[UUID_VERSION_AT])
            && b"89abAB".contains(&bytes[UUID_VARIANT_AT]);
        Self::Hex {
            upper: has_upper && !has_lower,
            uuid_v4,
        }
    }

    fn fill(&self, value: &str, stream: &mut Stream<'_>, out: &mut String) {
        match *self {
            Self::Hex { upper, uuid_v4 } => fill_hex(value.as_bytes(), upper, uuid_v4, stream, out),
            Self::Classes => fill_classes(value, stream, out),
        }
    }
}

fn fill_hex(value: &[u8], upper: bool, uuid_v4: bool, stream: &mut Stream<'_>, out: &mut String) {
    for (i, &b) in value.iter().enumerate() {
        if b == b'-' {
            out.push('-');
            continue;
        }
        let upper_here = if b.is_ascii_alphabetic() {
            b.is_ascii_uppercase()
        } else {
            upper
        };
        let nibble = match i {
            UUID_VERSION_AT if uuid_v4 => 4,
            // The RFC 4122 variant is the bit pattern 10xx: one of 8, 9, a, b.
            UUID_VARIANT_AT if uuid_v4 => 8 + stream.below(4),
            _ => stream.below(16),
        };
        out.push(hex_digit(nibble, upper_here));
    }
}

fn fill_classes(value: &str, stream: &mut Stream<'_>, out: &mut String) {
    for c in value.chars() {
        let replaced = match c {
            '0'..='9' => b'0' + stream.below(10),
            'a'..='z' => b'a' + stream.below(26),
            'A'..='Z' => b'A' + stream.below(26),
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push(char::from(replaced));
    }
}

/// A 32-hex-digit id as a UUID (`8-4-4-4-12`), or a UUID's 32 digits without dashes; `None` for
/// any other value.
pub(crate) fn other_uuid_form(value: &str) -> Option<String> {
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    match value.len() {
        32 if hex(value) => Some(format!(
            "{}-{}-{}-{}-{}",
            &value[..8],
            &value[8..12],
            &value[12..16],
            &value[16..20],
            &value[20..]
        )),
        36 if value.split('-').map(str::len).eq([8, 4, 4, 4, 12]) && hex(&value.replace('-', "")) => {
            Some(value.replace('-', ""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key() -> PseudonymKey {
        PseudonymKey::new(b"test key")
    }

    fn is_lower_hex(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    fn is_upper_hex(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    }

    fn same_classes(a: &str, b: &str) -> bool {
        let class = |c: char| match c {
            '0'..='9' => Some('9'),
            'a'..='z' => Some('a'),
            'A'..='Z' => Some('A'),
            _ => None,
        };
        a.chars().count() == b.chars().count()
            && a.chars().zip(b.chars()).all(|(x, y)| match class(x) {
                Some(k) => class(y) == Some(k),
                None => x == y,
            })
    }

    fn uuid_parts(s: &str) -> Vec<usize> {
        s.split('-').map(str::len).collect()
    }

    #[test]
    fn formats_are_kept_for_every_kind_of_value() {
        type Check = fn(&str, &str) -> bool;
        let table: &[(&str, Check)] = &[
            ("0605767a3300d5762fb7c0186d9e1779", |_, p| {
                p.len() == 32 && is_lower_hex(p)
            }),
            ("3f2b1c9e-7d4a-4b8e-9c2d-1a2b3c4d5e6f", |_, p| {
                uuid_parts(p) == [8, 4, 4, 4, 12]
                    && is_lower_hex(&p.replace('-', ""))
                    && &p[14..15] == "4"
                    && "89ab".contains(&p[19..20])
            }),
            ("3F2B1C9E-7D4A-4B8E-9C2D-1A2B3C4D5E6F", |_, p| {
                uuid_parts(p) == [8, 4, 4, 4, 12]
                    && is_upper_hex(&p.replace('-', ""))
                    && &p[14..15] == "4"
                    && "89AB".contains(&p[19..20])
            }),
            ("acct_AB12-xy", |v, p| same_classes(v, p)),
            ("镜像-7", |v, p| {
                same_classes(v, p) && p.starts_with("镜像-")
            }),
            ("", |_, p| p.is_empty()),
            ("--", |_, p| p == "--"),
        ];
        let key = key();
        for (value, check) in table {
            let pseudonym = key.pseudonym(value);
            assert!(check(value, &pseudonym), "{value:?} -> {pseudonym:?}");
            assert_eq!(pseudonym.len(), value.len(), "{value:?} -> {pseudonym:?}");
        }
    }

    #[test]
    fn hex_letters_keep_their_case_per_position() {
        let value = "ABCDEF0123456789abcdef0123456789";
        let pseudonym = key().pseudonym(value);
        for (v, p) in value.bytes().zip(pseudonym.bytes()) {
            if v.is_ascii_uppercase() {
                assert!(!p.is_ascii_lowercase(), "{value} -> {pseudonym}");
            }
            if v.is_ascii_lowercase() {
                assert!(!p.is_ascii_uppercase(), "{value} -> {pseudonym}");
            }
        }
    }

    #[test]
    fn a_uuid_without_valid_version_bits_stays_a_uuid_shape() {
        let pseudonym = key().pseudonym("00000000-0000-0000-0000-000000000000");
        assert_eq!(uuid_parts(&pseudonym), [8, 4, 4, 4, 12]);
        assert_ne!(pseudonym, "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn pseudonyms_are_deterministic_across_key_instances() {
        let a = PseudonymKey::new(b"shared team key");
        let b = PseudonymKey::new(b"shared team key");
        for value in ["0605767a3300d5762fb7c0186d9e1779", "acct_AB12-xy", "镜像-7"] {
            assert_eq!(a.pseudonym(value), b.pseudonym(value));
            assert_eq!(a.pseudonym(value), a.clone().pseudonym(value));
        }
    }

    #[test]
    fn pseudonyms_depend_on_the_key() {
        let a = PseudonymKey::new(b"key one");
        let b = PseudonymKey::new(b"key two");
        let value = "0605767a3300d5762fb7c0186d9e1779";
        assert_ne!(a.pseudonym(value), b.pseudonym(value));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn a_pseudonym_never_equals_its_input() {
        let key = key();
        // One-character values have only 10 or 26 possible outputs, so a naive derivation
        // would return the input about one time in ten.
        for value in (0..10)
            .map(|d| d.to_string())
            .chain(["a", "Z", "x-", "-7-"].map(String::from))
        {
            assert_ne!(key.pseudonym(&value), value);
        }
        for n in 0..2_000 {
            let value = format!("v{n}");
            assert_ne!(key.pseudonym(&value), value);
        }
    }

    #[test]
    fn long_values_are_pseudonymised_in_full() {
        let value = "a".repeat(1_000);
        let pseudonym = key().pseudonym(&value);
        assert_eq!(pseudonym.len(), 1_000);
        assert!(pseudonym.bytes().all(|b| b.is_ascii_lowercase()));
        // Blocks past the first must vary, not repeat the first block.
        assert_ne!(pseudonym[..32], pseudonym[32..64]);
        let distinct: HashSet<u8> = pseudonym.bytes().collect();
        assert!(distinct.len() > 20, "{distinct:?}");
    }

    #[test]
    fn the_fingerprint_is_stable_and_does_not_contain_the_key() {
        let secret = "team-secret-key";
        let key = PseudonymKey::new(secret.as_bytes());
        let fingerprint = key.fingerprint();
        assert_eq!(
            fingerprint,
            PseudonymKey::new(secret.as_bytes()).fingerprint()
        );
        assert!(fingerprint.starts_with("hmac-sha256:"));
        let digits = &fingerprint["hmac-sha256:".len()..];
        assert_eq!(digits.len(), 16);
        assert!(is_lower_hex(digits));
        assert!(!fingerprint.contains(secret));
    }

    #[test]
    fn the_derivation_matches_pinned_values() {
        // Teams compare cassettes redacted months apart, so a change of derivation must fail
        // here rather than silently produce different pseudonyms. Values computed with Python's
        // hashlib/hmac from the documented construction.
        let key = PseudonymKey::new(DEFAULT_KEY.as_bytes());
        assert_eq!(key.fingerprint(), "hmac-sha256:f35a32c712ae8a4e");
        assert_eq!(
            key.pseudonym("0605767a3300d5762fb7c0186d9e1779"),
            "64eaacc38751265654b076a523e45135"
        );
    }

    #[test]
    fn debug_output_shows_the_fingerprint_but_not_the_key() {
        let key = PseudonymKey::new(b"do-not-print-me");
        let shown = format!("{key:?}");
        assert!(!shown.contains("do-not-print-me"), "{shown}");
        assert!(shown.contains(&key.fingerprint()), "{shown}");
    }

    #[test]
    fn the_key_comes_from_the_environment_or_falls_back_to_the_public_default() {
        let (key, is_default) = PseudonymKey::from_lookup(|_| None);
        assert!(is_default);
        assert_eq!(
            key.fingerprint(),
            PseudonymKey::new(DEFAULT_KEY.as_bytes()).fingerprint()
        );

        let (_, is_default) = PseudonymKey::from_lookup(|_| Some(String::new()));
        assert!(is_default, "an empty variable counts as unset");

        let (key, is_default) =
            PseudonymKey::from_lookup(|name| (name == KEY_ENV).then(|| "team key".to_owned()));
        assert!(!is_default);
        assert_eq!(
            key.fingerprint(),
            PseudonymKey::new(b"team key").fingerprint()
        );
    }

    /// xorshift64*: enough to make distinct test inputs without a rand dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn there_are_no_collisions_over_200_000_random_project_ids() {
        let key = key();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut inputs = HashSet::new();
        while inputs.len() < 200_000 {
            inputs.insert(format!("{:016x}{:016x}", rng.next(), rng.next()));
        }
        let outputs: HashSet<String> = inputs.iter().map(|v| key.pseudonym(v)).collect();
        assert_eq!(outputs.len(), inputs.len());
    }

    #[test]
    fn there_are_no_collisions_over_100_000_sequential_uuids() {
        let key = key();
        let outputs: HashSet<String> = (0..100_000u64)
            .map(|n| key.pseudonym(&format!("00000000-0000-4000-8000-{n:012x}")))
            .collect();
        assert_eq!(outputs.len(), 100_000);
    }
}
