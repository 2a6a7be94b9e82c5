//! Hostile variants of real samples, for every parser's no-panic test: each prefix, each
//! single-bit flip, and a fixed pseudo-random series of multi-byte corruptions that favour bytes
//! which break structure (NUL, 0xff, a DNS pointer's 0xc0, CR, LF, `:`, space, `$`). The series
//! is the same on every run, so a failure reproduces.

/// Corrupted copies made of each sample (besides the prefixes and single-bit flips).
const CORRUPTIONS: usize = 3000;

/// Calls `parse` on every variant of every sample.
pub fn each_variant(samples: &[Vec<u8>], mut parse: impl FnMut(&[u8])) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for sample in samples {
        for cut in 0..=sample.len() {
            parse(&sample[..cut]);
        }
        if sample.is_empty() {
            continue;
        }
        for bit in 0..sample.len() * 8 {
            let mut v = sample.clone();
            v[bit / 8] ^= 1 << (bit % 8);
            parse(&v);
        }
        for _ in 0..CORRUPTIONS {
            let mut v = sample.clone();
            for _ in 0..1 + next() % 6 {
                let r = next();
                let at = usize::try_from(r % v.len() as u64).unwrap_or(0);
                v[at] = match r >> 60 {
                    0 => 0x00,
                    1 => 0xff,
                    2 => 0xc0,
                    3 => b'\r',
                    4 => b'\n',
                    5 => b':',
                    6 => b' ',
                    7 => b'$',
                    8..=11 => v[at] ^ (1 << ((r >> 56) & 7)),
                    _ => r.to_le_bytes()[3],
                };
            }
            parse(&v);
        }
    }
}
