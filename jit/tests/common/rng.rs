//! A small deterministic generator (xorshift64*), so failures reproduce;
//! shared by file with the loader's tests.

/// The generator's state.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A number in `0..n` (`n` > 0).
pub fn below(rng: &mut Rng, n: u64) -> u64 {
    rng.next() % n
}
