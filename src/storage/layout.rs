//! The sled layout of a store: one tree entry per answer, keyed by request digest and sequence
//! number, valued by the interaction's JSON; the write counter in the `meta` tree. Every
//! reader of an entry decodes it with [`decode_interaction`].

use serde::Deserialize;

use crate::model::interaction::{Body, Interaction, json_depth};

/// Key in `meta` of the write counter: big-endian u64, bumped with every write.
pub const GENERATION_KEY: &str = "generation";
/// Key in `meta` of how many bytes of the log's file are whole groups on the disk: big-endian
/// u64, put there with the write counter ([`GENERATION_KEY`]) after the log is synced. A log
/// file shorter than that lost recordings.
pub const LOG_END_KEY: &str = "log_end";

/// One stored answer: its sled key (request digest ++ sequence), the digest, and the JSON of one
/// [`Interaction`].
pub struct Entry {
    /// The sled key: digest, then the answer's sequence number (big-endian).
    pub key: sled::IVec,
    /// The request key's digest under the store's match rules.
    pub digest: [u8; 32],
    /// The interaction's JSON, as stored.
    pub value: sled::IVec,
}

/// The sled key of answer `seq` of the request with `digest`: big-endian, so a request's
/// answers are adjacent and in order.
pub fn entry_key(digest: &[u8; 32], seq: u32) -> [u8; 36] {
    let mut key = [0u8; 36];
    key[..32].copy_from_slice(digest);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}


/// How deep a stored entry may nest and still be read without serde_json's recursion limit:
/// enough for any body an earlier ims-vcr embedded as JSON (it read bodies with the limit of 128,
/// and an entry adds three levels), shallow enough for a runtime worker's stack.
const SALVAGE_DEPTH: usize = 160;

/// Decodes a stored entry (or the part of one that `T` names). An entry nested past serde_json's
/// default limit of 128 (an answer an earlier ims-vcr recorded as JSON that deep) is read again
/// without the limit, up to [`SALVAGE_DEPTH`] levels, so one such answer never makes the whole
/// store unreadable. The flag says whether that was needed.
fn decode_salvaging<'a, T: Deserialize<'a>>(value: &'a [u8]) -> Result<(T, bool), String> {
    match serde_json::from_slice(value) {
        Ok(decoded) => Ok((decoded, false)),
        Err(e) if e.to_string().contains("recursion limit") && json_depth(value) <= SALVAGE_DEPTH => {
            let mut de = serde_json::Deserializer::from_slice(value);
            de.disable_recursion_limit();
            let decoded = T::deserialize(&mut de).map_err(|e| e.to_string())?;
            de.end().map_err(|e| e.to_string())?;
            Ok((decoded, true))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// [`decode_salvaging`] of the part of an entry that `T` names (which may borrow from `value`).
pub(crate) fn decode<'a, T: Deserialize<'a>>(value: &'a [u8]) -> Result<T, String> {
    decode_salvaging(value).map(|(decoded, _)| decoded)
}

/// [`decode`] of a whole interaction. An answer the record path stored verbatim (see
/// [`Body::verbatim`]) comes back in the encoding [`Body::from_bytes`] chooses, readable JSON
/// when it round-trips, as every reader (export, show, drift, verify) expects. In an entry that
/// needed salvaging, a body embedded as JSON deeper than `MAX_JSON_DEPTH` becomes the text it
/// stands for, as such a body is stored today, so a cassette or a pack made from it can be
/// read back.
pub(crate) fn decode_interaction(value: &[u8]) -> Result<Interaction, String> {
    let (mut interaction, salvaged): (Interaction, bool) = decode_salvaging(value)?;
    interaction.response.body = interaction.response.body.map(Body::readable);
    if salvaged {
        for body in [
            &mut interaction.request.body,
            &mut interaction.response.body,
        ] {
            if let Some(stored) = body.as_ref().filter(|b| b.json().is_some()) {
                *body = Body::from_bytes(&stored.to_bytes()?);
            }
        }
    }
    Ok(interaction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures;

    #[test]
    fn an_answer_stored_verbatim_is_read_back_as_readable_json_in_its_style() {
        for (bytes, readable) in [
            (&br#"{"id":"x","size":1}"#[..], "json"),
            (br#"{"id": "x", "size": 1}"#, "json_python"),
            (br#"{ "id":"x"}"#, "text"),
            (b"<html>no</html>", "text"),
        ] {
            let mut interaction = fixtures::status_answer(&fixtures::get("/v2/images/x"), "active");
            interaction.response.body = Body::verbatim(bytes);
            let value = serde_json::to_vec(&interaction).unwrap();
            let decoded = decode_interaction(&value).unwrap();
            let body = decoded.response.body.unwrap();
            let stored = serde_json::to_value(&body).unwrap();
            assert!(stored.get(readable).is_some(), "{stored}");
            assert_eq!(body.to_bytes().unwrap(), bytes);
        }
    }
}
