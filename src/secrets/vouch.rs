//! Pseudonym checks: how `verify --require-redaction` and a later redaction tell a pseudonym a
//! redaction wrote from a value put in its place afterwards (a raw owner pasted into a stamped
//! cassette). A pseudonym looks like any other value, so the stamp lists a check of each value
//! it vouches for: 8 hex digits of an unkeyed SHA-256 of the value. The check names nothing
//! that is not already in the file, and anyone can recompute it without the redaction key. A
//! value put there later has a one in 2³² chance of matching a listed check.

use sha2::{Digest, Sha256};

use crate::model::interaction::Interaction;
use crate::model::redaction::{RedactionPolicy, RedactionStamp};
use crate::secrets::policy_values::{Values, policy_values};

const DOMAIN: &[u8] = b"ims-vcr pseudonym check v1\0";

/// The check of one value: `hex(SHA-256("ims-vcr pseudonym check v1\0" || value)[..4])`.
pub fn check(value: &str) -> String {
    let digest = Sha256::new()
        .chain_update(DOMAIN)
        .chain_update(value.as_bytes())
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The checks of every value `policy` names in `interaction`, sorted and without repeats: what
/// a stamp with that policy on `interaction` vouches for.
pub fn checks_of(policy: &RedactionPolicy, interaction: &Interaction) -> Vec<String> {
    let mut checks: Vec<String> = policy_values(policy, interaction)
        .into_keys()
        .map(|v| check(&v))
        .collect();
    checks.sort();
    checks.dedup();
    checks
}

/// The values `stamp`'s policy names in `interaction` that its checks do not vouch for, with
/// what each was found as (`field owner`, `header x-project-id`, ...). `None` when the stamp
/// predates checks, so nothing can be told.
pub fn unvouched(stamp: &RedactionStamp, interaction: &Interaction) -> Option<Values> {
    let checks = stamp.pseudonym_checks.as_ref()?;
    Some(
        policy_values(&stamp.policy, interaction)
            .into_iter()
            .filter(|(value, _)| {
                let check = check(value);
                // A hand-edited list may be out of order or in upper case: still a list.
                !checks.iter().any(|c| c.eq_ignore_ascii_case(&check))
            })
            .collect(),
    )
}

/// `stamps` as one: the same redaction (policy and key) vouching for every value any of them
/// vouches for (without checks if any of them has none); `None` when they are not all the same
/// redaction (or there are none).
pub fn merge<'a>(mut stamps: impl Iterator<Item = &'a RedactionStamp>) -> Option<RedactionStamp> {
    let mut merged = stamps.next()?.clone();
    for stamp in stamps {
        if !stamp.same_redaction(&merged) {
            return None;
        }
        merged.pseudonym_checks = match (merged.pseudonym_checks, &stamp.pseudonym_checks) {
            (Some(mut all), Some(more)) => {
                all.extend(more.iter().cloned());
                Some(all)
            }
            _ => None,
        };
    }
    if let Some(checks) = &mut merged.pseudonym_checks {
        checks.sort();
        checks.dedup();
    }
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_is_pinned() {
        // Cassettes checked by one version are checked by the next: the derivation is fixed.
        assert_eq!(check("").len(), 8);
        assert_eq!(check("abc"), check("abc"));
        assert_ne!(check("abc"), check("abd"));
        let expected = {
            let d = Sha256::digest(b"ims-vcr pseudonym check v1\0owner-1");
            format!("{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
        };
        assert_eq!(check("owner-1"), expected);
    }
}
