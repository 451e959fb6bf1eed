//! Annual report sizes as measured on real filings, for simulations where a document's size
//! matters (request packing: whether two years fit one request). Twenty real 10-Ks measured
//! 25k-150k tokens of text, median about 90k; a draw interpolates between them, so some pairs of
//! years fit a packed request whole and some do not.

use crate::rng::DetRng;

/// Tokens of text of 20 real 10-K filings, in order.
pub const MEASURED_10K_TOKENS: [u64; 20] = [
    24_700, 31_000, 43_000, 47_000, 50_000, 51_000, 54_000, 73_000, 84_000, 88_000, 91_000, 92_000,
    100_000, 104_000, 113_000, 116_000, 117_000, 129_000, 133_000, 152_000,
];

/// HTML bytes of a synthetic annual report per token of its text (measured on the simulator's
/// own documents through fintel's text pipeline: about 0.214 tokens a byte).
const BYTES_PER_TOKEN_X100: u64 = 468;

/// Tokens of text drawn from the measured distribution: a uniform position between the
/// smallest and the largest measurement, interpolated between its two neighbours.
pub fn measured_text_tokens(rng: &mut DetRng) -> u64 {
    let last = (MEASURED_10K_TOKENS.len() - 1) as f64;
    let position = rng.unit() * last;
    let i = (position.floor() as usize).min(MEASURED_10K_TOKENS.len() - 2);
    let frac = position - i as f64;
    let (lo, hi) = (
        MEASURED_10K_TOKENS[i] as f64,
        MEASURED_10K_TOKENS[i + 1] as f64,
    );
    (lo + (hi - lo) * frac).round() as u64
}

/// The target HTML size of a synthetic annual report whose text is about `tokens` tokens.
pub fn bytes_for_text_tokens(tokens: u64) -> usize {
    (tokens * BYTES_PER_TOKEN_X100 / 100 + 2_000) as usize
}

/// A document size drawn from the measured distribution.
pub fn measured_document_bytes(rng: &mut DetRng) -> usize {
    bytes_for_text_tokens(measured_text_tokens(rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_span_the_measured_range_with_the_measured_median() {
        let mut rng = DetRng::new(7, &[1]);
        let mut draws: Vec<u64> = (0..2_000).map(|_| measured_text_tokens(&mut rng)).collect();
        draws.sort_unstable();
        assert!(draws[0] >= 24_700 && draws[draws.len() - 1] <= 152_000);
        let median = draws[draws.len() / 2];
        assert!((80_000..=100_000).contains(&median), "median {median}");
        // Some years cannot pair whole in a 250k-token request (about 111k each after prompt,
        // schema and margin), some can.
        let big = draws.iter().filter(|&&t| t > 111_000).count();
        assert!(
            big > 200 && big < 1_000,
            "{big} of 2000 above a pair's share"
        );
    }
}
