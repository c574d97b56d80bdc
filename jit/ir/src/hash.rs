//! The hash the name tables are keyed by: a library's templates by name,
//! and the loader's exports and instances.
//!
//! Written here rather than taken from a crate because it sits on the warm
//! resolve path, whose budget (BRIEF §8: ≤ 15 ns) a byte-at-a-time FNV-1a or
//! SipHash over a typical mangled name would mostly spend, and on the
//! first miss of a module with many templates, which indexes them all:
//! this is FNV-1a's xor-multiply step applied to whole 8-byte words,
//! followed by a final mix so that every input bit reaches the low bits
//! tables index with. It is not collision-resistant against chosen names;
//! the tables it serves hold names of the modules a program chose to load.

use std::hash::{BuildHasherDefault, Hasher};

const BASIS: u64 = 0xCBF2_9CE4_8422_2325;
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;
const FINAL: u64 = 0xD6E8_FEB8_6659_FD93;

fn word(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_le_bytes(word)
}

fn half(bytes: &[u8], at: usize) -> u64 {
    let mut half = [0u8; 4];
    half.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(half))
}

/// The last 1 to 7 bytes as one word without a variable-length copy: two
/// overlapping 4-byte reads, or the first, middle and last byte (the
/// length, mixed in at the start, tells the cases apart).
fn tail(rest: &[u8]) -> u64 {
    let n = rest.len();
    if n >= 4 {
        half(rest, 0) | (half(rest, n - 4) << 32)
    } else {
        u64::from(rest[0]) | (u64::from(rest[n / 2]) << 8) | (u64::from(rest[n - 1]) << 16)
    }
}

/// The hash of `bytes`.
#[inline]
pub fn name_hash(bytes: &[u8]) -> u64 {
    let mut h = BASIS ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        h = (h ^ word(chunk)).wrapping_mul(MULTIPLIER);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        h = (h ^ tail(rest)).wrapping_mul(MULTIPLIER);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(FINAL);
    h ^ (h >> 29)
}

/// [`name_hash`] as a [`Hasher`], for the concurrent instance map (keys are
/// strings, which hash as their bytes and one terminator byte).
#[derive(Debug, Default, Clone, Copy)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(5) ^ name_hash(bytes);
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.0 ^= u64::from(byte);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`NameHasher`]s.
pub type BuildNameHasher = BuildHasherDefault<NameHasher>;

/// Hashes integer keys — addresses (distinct, and aligned, so their low
/// bits are often zero) and indices: one multiplication, with the high half
/// folded down, since hash tables pick the bucket with the low bits and a
/// product alone leaves them as zero as the key's.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntHasher(u64);

impl IntHasher {
    #[inline]
    fn mix(&mut self, n: u64) {
        let h = n.wrapping_mul(MULTIPLIER);
        self.0 = h ^ (h >> 32);
    }
}

impl Hasher for IntHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(MULTIPLIER);
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Builds [`IntHasher`]s.
pub type BuildIntHasher = BuildHasherDefault<IntHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn lengths_and_padding_do_not_collide() {
        let inputs: [&[u8]; 10] = [
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"abc",
            b"abcd",
            b"abcde",
            b"abcdefg",
            b"abcdefgh\0",
        ];
        let hashes: HashSet<u64> = inputs.iter().map(|i| name_hash(i)).collect();
        assert_eq!(hashes.len(), inputs.len());
    }

    #[test]
    fn names_differing_in_one_byte_spread_over_low_bits() {
        // 10,000 names that differ only inside one word: their low 14 bits
        // must take many values, or the tables would probe long chains.
        let buckets: HashSet<u64> = (0..10_000)
            .map(|i| name_hash(format!("kernel{i}_i32").as_bytes()) & 0x3FFF)
            .collect();
        assert!(buckets.len() > 5_000, "{} buckets", buckets.len());
    }

    #[test]
    fn equal_bytes_hash_equal() {
        assert_eq!(name_hash(b"sum$f32"), name_hash(b"sum$f32"));
        assert_ne!(name_hash(b"sum$f32"), name_hash(b"sum$f64"));
    }
}
