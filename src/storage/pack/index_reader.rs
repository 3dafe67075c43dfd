//! Reading a pack's index as a stream: the index of a 150,000-request store is about 20 MB, and
//! reading it whole into memory before parsing it put those 20 MB on top of the requests parsed
//! from it at the peak of a replay's start-up (docs/performance-history.md, Twenty-first pass). It
//! is read through a small buffer instead, hashed on the way, and the checksum compared at the end
//! ([`IndexReader::finish`]): nothing read from an index whose checksum fails is used.

use std::fs::File;
use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

/// A bounds-checked cursor over the `len` bytes of index at byte `at` of a pack file, hashing
/// what it reads.
pub(super) struct IndexReader<'a> {
    inner: BufReader<At<'a>>,
    sha: Sha256,
    left: u64,
}

/// `Read` over a file from a byte on, with positional reads (the file's own position is not
/// used: the pack is read with `pread` elsewhere).
struct At<'a> {
    file: &'a File,
    at: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl<'a> IndexReader<'a> {
    pub(super) fn new(file: &'a File, at: u64, len: u64) -> IndexReader<'a> {
        IndexReader {
            inner: BufReader::with_capacity(256 * 1024, At { file, at }),
            sha: Sha256::new(),
            left: len,
        }
    }

    /// Bytes of the index not read yet.
    pub(super) fn left(&self) -> u64 {
        self.left
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if (buf.len() as u64) > self.left {
            return Err("index ends early".into());
        }
        self.inner.read_exact(buf).map_err(|e| e.to_string())?;
        self.sha.update(&*buf);
        self.left -= buf.len() as u64;
        Ok(())
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut bytes = [0u8; N];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }

    pub(super) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(super) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Bytes after their length (u32), owned: a length past the index's end is an error before
    /// anything is allocated.
    pub(super) fn bytes(&mut self) -> Result<Vec<u8>, String> {
        let n = u64::from(self.u32()?);
        if n > self.left {
            return Err("index ends early".into());
        }
        let mut bytes = vec![0u8; n as usize];
        self.fill(&mut bytes)?;
        Ok(bytes)
    }

    /// Reads what is left of the index (after an error, so the checksum can say whether the
    /// index was damaged) and whether its SHA-256 is `expected`.
    pub(super) fn finish(mut self, expected: &[u8]) -> Result<bool, String> {
        let mut chunk = vec![0u8; 64 * 1024];
        while self.left > 0 {
            let n = self.left.min(chunk.len() as u64) as usize;
            self.fill(&mut chunk[..n])?;
        }
        Ok(self.sha.finalize().as_slice() == expected)
    }
}
