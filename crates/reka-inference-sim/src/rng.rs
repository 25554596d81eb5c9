//! Deterministic pseudo-randomness: every random choice of the simulator is a
//! hash of the seed and a counter, so a run is reproducible under `--seed`.

/// The SplitMix64 finaliser: a fast, well-mixed 64-bit hash step.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one.
pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED_u64, |acc, &p| mix(acc ^ mix(p)))
}

/// FNV-1a of a string, to feed text into [`hash`].
pub(crate) fn str_hash(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
}

/// Maps a hash to a uniform number in `[0, 1)`.
pub(crate) fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}
