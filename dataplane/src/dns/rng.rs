//! A tiny per-core PRNG for answer shuffling (xorshift64*): no allocation,
//! no locking, good enough to spread load (not for anything secret).

/// xorshift64* state. Never zero.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed` (a zero seed is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed },
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        debug_assert_ne!(x, 0, "xorshift state never reaches zero");
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound` > 0), by multiply-shift.
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "empty range");
        (((self.next_u64() >> 32) * bound as u64) >> 32) as usize
    }
}

/// Draws the `i`-th element of a lazy Fisher-Yates shuffle of `order`:
/// drawing `0..k` in turn gives the first `k` of a uniform shuffle.
pub fn draw(order: &mut [u32], i: usize, rng: &mut Rng) -> u32 {
    let j = i + rng.below(order.len() - i);
    order.swap(i, j);
    order[i]
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = Rng::new(42);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            let v = rng.below(5);
            assert!(v < 5);
            seen[v] += 1;
        }
        for count in seen {
            assert!((1_600..2_400).contains(&count), "roughly uniform: {seen:?}");
        }
    }

    #[test]
    fn zero_seed_is_usable() {
        let mut rng = Rng::new(0);
        assert_ne!(rng.next_u64(), rng.next_u64());
    }
}
