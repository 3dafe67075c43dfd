//! The sled layout of a store: one tree entry per answer, keyed by request digest and sequence
//! number, valued by the interaction's JSON; the write counter in the `meta` tree.

/// Key in `meta` of the write counter: big-endian u64, bumped with every write.
pub const GENERATION_KEY: &str = "generation";

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

