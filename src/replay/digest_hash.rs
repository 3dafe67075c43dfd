//! The hasher of the tape index: request digests are SHA-256 values already, so hashing one
//! needs only its first 8 bytes, through seeded foldhash.

/// Builds [`DigestHasher`]s, seeded per process as foldhash's are.
#[derive(Clone, Debug, Default)]
pub(crate) struct DigestHash(foldhash::fast::RandomState);

impl std::hash::BuildHasher for DigestHash {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(self.0.build_hasher())
    }
}

/// Hashes a digest by its first 8 bytes, as one `u64` through seeded foldhash: a slice's
/// length and all 32 bytes cost three rounds for no better spread. The seed (a random one per
/// process) keeps a client from choosing requests whose digests crowd one bucket.
pub(crate) struct DigestHasher(foldhash::fast::FoldHasher<'static>);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        match bytes.first_chunk::<8>() {
            Some(first) => self.0.write_u64(u64::from_le_bytes(*first)),
            None => self.0.write(bytes),
        }
    }

    /// A slice's length prefix: always 32 here, so it adds nothing.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}
