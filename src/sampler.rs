//! Sampling the next token from the logits, exactly as run.c: argmax at temperature 0,
//! else softmax(logits / temperature) sampled over the whole distribution or top-p,
//! with the xorshift64* generator.

use crate::kernels;

/// run.c's xorshift64* random number generator. The state is the seed itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rng {
    pub state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u32(&mut self) -> u32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        (self.state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }

    /// A float in [0, 1) with 24 random bits.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 16_777_216.0
    }
}

/// The sampling settings and scratch for top-p.
pub struct Sampler {
    temperature: f32,
    topp: f32,
    rng: Rng,
    /// (probability, token) pairs, reused between calls (top-p only).
    candidates: Vec<(f32, u32)>,
}

impl Sampler {
    /// `temperature` must be >= 0 and `topp` finite; the generator checks and clamps them.
    pub fn new(temperature: f32, topp: f32, seed: u64) -> Sampler {
        Sampler { temperature, topp, rng: Rng::new(seed), candidates: Vec::new() }
    }

    /// Picks the next token. Overwrites `logits` with probabilities when sampling.
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        for l in logits.iter_mut() {
            *l /= self.temperature;
        }
        kernels::softmax(logits);
        let coin = self.rng.next_f32();
        if self.topp <= 0.0 || self.topp >= 1.0 {
            sample_mult(logits, coin)
        } else {
            sample_topp(logits, self.topp, coin, &mut self.candidates)
        }
    }
}

/// The index of the first maximum.
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// The first index whose cumulative probability exceeds `coin` (else the last).
fn sample_mult(probs: &[f32], coin: f32) -> u32 {
    let mut cdf = 0.0f32;
    for (i, &p) in probs.iter().enumerate() {
        cdf += p;
        if coin < cdf {
            return i as u32;
        }
    }
    (probs.len() - 1) as u32
}

/// Top-p (nucleus) sampling: the smallest set of most likely tokens whose probabilities
/// sum past `topp`, sampled with `coin` scaled to that sum.
fn sample_topp(probs: &[f32], topp: f32, coin: f32, candidates: &mut Vec<(f32, u32)>) -> u32 {
    // Tokens below this cannot be in the nucleus: a cheap filter before sorting.
    let cutoff = (1.0f32 - topp) / (probs.len() - 1) as f32;
    candidates.clear();
    candidates.extend(
        probs.iter().enumerate().filter(|(_, &p)| p >= cutoff).map(|(i, &p)| (p, i as u32)),
    );
    if candidates.is_empty() {
        // Nothing reaches the cutoff (a tiny top-p on a flat distribution, or NaN logits):
        // run.c reads before its array here. Sample the whole distribution instead.
        return sample_mult(probs, coin);
    }
    // Stable, by probability descending.
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));

    let mut cumulative = 0.0f32;
    let mut last = candidates.len().saturating_sub(1);
    for (i, &(p, _)) in candidates.iter().enumerate() {
        cumulative += p;
        if cumulative > topp {
            last = i;
            break;
        }
    }
    let r = coin * cumulative;
    let mut cdf = 0.0f32;
    for &(p, token) in &candidates[..=last] {
        cdf += p;
        if r < cdf {
            return token;
        }
    }
    candidates.get(last).map_or(0, |c| c.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
    }

    #[test]
    fn topp_keeps_the_nucleus() {
        let probs = [0.05, 0.6, 0.3, 0.05];
        let mut c = Vec::new();
        // coin 0 picks the most likely token; coin near 1 stays within the 0.9 nucleus.
        assert_eq!(sample_topp(&probs, 0.8, 0.0, &mut c), 1);
        assert_eq!(sample_topp(&probs, 0.8, 0.999, &mut c), 2);
    }
}
