//! Deterministic pseudo-randomness: every choice the simulator makes (companies, documents,
//! faults, answers) is a pure function of the seed and of what is being decided, so two runs
//! with the same seed and the same requests see exactly the same behaviour.

/// The splitmix64 finaliser: a fast, well-mixed 64-bit hash step.
pub fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator seeded from a seed and a path of values.
#[derive(Debug, Clone)]
pub struct DetRng {
    state: u64,
}

impl DetRng {
    /// A generator for the decision identified by `parts` under `seed`.
    pub fn new(seed: u64, parts: &[u64]) -> Self {
        let mut state = mix(seed);
        for p in parts {
            state = mix(state ^ mix(*p));
        }
        DetRng { state }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A value in `lo..=hi` (`lo` when the range is empty).
    pub fn range_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let width = (hi - lo) as u64 + 1;
        lo + self.below(width) as i64
    }

    /// A uniform value in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_give_same_values_and_different_inputs_differ() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = DetRng::new(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = DetRng::new(7, &[1, 2]);
                move |_| r.next_u64()
            })
            .collect();
        let c = DetRng::new(7, &[1, 3]).next_u64();
        assert_eq!(a, b);
        assert_ne!(a[0], c);
    }

    #[test]
    fn unit_values_are_in_range_and_roughly_uniform() {
        let mut r = DetRng::new(1, &[]);
        let n = 10_000;
        let hits = (0..n).filter(|_| r.chance(0.25)).count();
        assert!((2_200..2_800).contains(&hits), "hits {hits}");
        for _ in 0..1000 {
            let v = r.range_inclusive(-3, 3);
            assert!((-3..=3).contains(&v));
        }
    }
}
