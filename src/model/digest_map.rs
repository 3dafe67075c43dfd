//! Maps keyed by request digests (SHA-256 values): the replay index of tapes, what a recording
//! session knows of each request it recorded, and what each named session asked for.
//!
//! **Grown in small steps.** A map that doubles rehashes every entry it holds under its owner's
//! lock: recording new requests at 34,000 a second, the store's map and the tape index each
//! doubled at 57,000 and again at 115,000 entries, and every request in flight waited 7 and
//! then 13 ms for both (record's p99.9 at 10 ms and its slowest request at 17 ms in every 5 s
//! run). A [`DigestMap`] is [`SHARDS`] hash tables, one chosen by a byte of the digest, so no
//! insert rehashes more than a 256th of the entries (some 450 at 115,000: tens of
//! microseconds). Looking a digest up costs what it did: one byte picks the table.
//!
//! **Hashed by 8 bytes.** A digest is a SHA-256 value already, so its first 8 bytes hashed
//! through seeded foldhash spread as well as SipHash over all 32, for a tenth of the cost on
//! every replayed request ([`DigestHash`]). The table is chosen by the last byte, which the
//! hash never reads.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// How many tables a [`DigestMap`] is made of.
pub(crate) const SHARDS: usize = 256;

/// A map from request digests to `V` that grows a table of [`SHARDS`] at a time (see the
/// module's doc). Iteration order is unspecified, as a `HashMap`'s.
#[derive(Clone, Debug)]
pub(crate) struct DigestMap<V> {
    /// Empty until the first insert (a map per named session, most of them small or empty,
    /// costs nothing until then), then [`SHARDS`] tables.
    shards: Vec<Shard<V>>,
    len: usize,
}

/// One of a [`DigestMap`]'s tables.
type Shard<V> = HashMap<[u8; 32], V, DigestHash>;

impl<V> Default for DigestMap<V> {
    fn default() -> Self {
        DigestMap {
            shards: Vec::new(),
            len: 0,
        }
    }
}

/// The table of `digest`: chosen by its last byte (the hash reads the first 8).
fn shard(digest: &[u8; 32]) -> usize {
    usize::from(digest[31]) % SHARDS
}

impl<V> DigestMap<V> {
    /// An empty map with room for about `capacity` digests (spread evenly over the tables).
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let mut map = DigestMap::default();
        // Below a few per table, room is made as entries come: 256 tables made ready for one
        // each would cost more than they save.
        if capacity >= 4 * SHARDS {
            map.make_tables(capacity.div_ceil(SHARDS));
        }
        map
    }

    /// Makes the tables, with room for `each` digests in each.
    fn make_tables(&mut self, each: usize) {
        // One seed for every table: the same digest hashes alike in all, which nothing relies
        // on, and seeding once costs less.
        let hash = DigestHash::default();
        self.shards = (0..SHARDS)
            .map(|_| HashMap::with_capacity_and_hasher(each, hash.clone()))
            .collect();
    }

    /// The table `digest` goes in, made first when there are none.
    fn table_of(&mut self, digest: &[u8; 32]) -> &mut Shard<V> {
        if self.shards.is_empty() {
            self.make_tables(0);
        }
        &mut self.shards[shard(digest)]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<&V> {
        self.shards.get(shard(digest))?.get(digest)
    }

    pub(crate) fn contains_key(&self, digest: &[u8; 32]) -> bool {
        self.shards.get(shard(digest)).is_some_and(|table| table.contains_key(digest))
    }

    /// Inserts `value` under `digest`, returning what it replaced.
    pub(crate) fn insert(&mut self, digest: [u8; 32], value: V) -> Option<V> {
        let old = self.table_of(&digest).insert(digest, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove(&mut self, digest: &[u8; 32]) -> Option<V> {
        let old = self.shards.get_mut(shard(digest))?.remove(digest);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The value under `digest`, `make`'s inserted there first when there is none.
    pub(crate) fn get_or_insert_with(&mut self, digest: [u8; 32], make: impl FnOnce() -> V) -> &mut V {
        if self.shards.is_empty() {
            self.make_tables(0);
        }
        // Not through `table_of`, which borrows the whole map: the count is changed beside it.
        match self.shards[shard(&digest)].entry(digest) {
            Entry::Occupied(found) => found.into_mut(),
            Entry::Vacant(vacant) => {
                self.len += 1;
                vacant.insert(make())
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8; 32], &V)> {
        self.shards.iter().flat_map(HashMap::iter)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(HashMap::values)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.shards.iter_mut().flat_map(HashMap::values_mut)
    }
}

impl<V> IntoIterator for DigestMap<V> {
    type Item = ([u8; 32], V);
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Shard<V>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.shards.into_iter().flatten()
    }
}

impl<V> Extend<([u8; 32], V)> for DigestMap<V> {
    fn extend<I: IntoIterator<Item = ([u8; 32], V)>>(&mut self, entries: I) {
        for (digest, value) in entries {
            self.insert(digest, value);
        }
    }
}

impl<V> FromIterator<([u8; 32], V)> for DigestMap<V> {
    fn from_iter<I: IntoIterator<Item = ([u8; 32], V)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut map = DigestMap::with_capacity(entries.size_hint().0);
        map.extend(entries);
        map
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u32) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(n.to_le_bytes()).into()
    }

    #[test]
    fn a_digest_map_holds_what_a_hash_map_holds_through_inserts_replacements_and_removals() {
        let mut map = DigestMap::default();
        let mut plain = HashMap::new();
        for n in 0..5_000u32 {
            assert_eq!(map.insert(digest(n % 3_000), n), plain.insert(digest(n % 3_000), n));
            if n % 7 == 0 {
                assert_eq!(map.remove(&digest(n / 2)), plain.remove(&digest(n / 2)));
            }
        }
        assert_eq!(map.len(), plain.len());
        assert!(!map.is_empty());
        for n in 0..3_000u32 {
            assert_eq!(map.get(&digest(n)), plain.get(&digest(n)));
            assert_eq!(map.contains_key(&digest(n)), plain.contains_key(&digest(n)));
        }
        *map.get_or_insert_with(digest(1), || 0) += 1_000_000;
        *plain.entry(digest(1)).or_insert(0) += 1_000_000;
        assert_eq!(*map.get_or_insert_with(digest(9_999), || 7), 7);
        plain.insert(digest(9_999), 7);
        for value in map.values_mut() {
            *value += 1;
        }
        let mut listed: Vec<_> = map.iter().map(|(d, v)| (*d, *v)).collect();
        let mut expected: Vec<_> = plain.iter().map(|(d, v)| (*d, *v + 1)).collect();
        listed.sort();
        expected.sort();
        assert_eq!(listed, expected);
        assert_eq!(map.values().count(), map.len());
        let rebuilt: DigestMap<u32> = map.clone().into_iter().collect();
        assert_eq!(rebuilt.len(), map.len());
        assert!(map.into_iter().all(|(d, v)| rebuilt.get(&d) == Some(&v)));
    }

    #[test]
    fn an_empty_map_makes_no_tables_until_its_first_insert() {
        let mut map: DigestMap<u32> = DigestMap::default();
        assert!(map.shards.is_empty());
        assert_eq!(map.get(&digest(1)), None);
        assert_eq!((map.remove(&digest(1)), map.len()), (None, 0));
        assert!(!map.contains_key(&digest(1)) && map.iter().next().is_none());
        assert!(DigestMap::<u32>::with_capacity(100).shards.is_empty());
        assert_eq!(*map.get_or_insert_with(digest(2), || 5), 5);
        assert_eq!(map.shards.len(), SHARDS);
        let mut other: DigestMap<u32> = DigestMap::default();
        other.insert(digest(3), 6);
        assert_eq!((other.len(), other.get(&digest(3))), (1, Some(&6)));
    }

    #[test]
    fn digests_spread_over_every_table_so_no_one_table_grows_with_the_whole_map() {
        let map: DigestMap<()> = (0..100_000u32).map(|n| (digest(n), ())).collect();
        let largest = map.shards.iter().map(HashMap::len).max().unwrap();
        let smallest = map.shards.iter().map(HashMap::len).min().unwrap();
        // 390 each on average.
        assert!(largest < 520 && smallest > 260, "{smallest}..{largest}");
    }
}
