//! Looking inside the model (what llama2.c exists to show): for each forward pass, the most
//! probable next tokens and where the sampled one stands among them, the attention weights
//! the pass used, and on demand the logit lens (what the classifier would say after each
//! layer). `Generator::inspect` turns it on; the numbers are the forward pass's own.

use crate::error::{Error, Result};
use crate::kernels;

/// What each forward pass of a generation captures (`Generator::inspect`). Made by
/// [`InspectOptions::new`], the one check of its numbers (the CLI and the wasm engine use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InspectOptions {
    /// How many of the most probable next tokens to keep (at least 1).
    top_k: usize,
    /// Whether to keep the attention weights of every layer and head.
    attention: bool,
}

impl InspectOptions {
    /// How many of the most probable next tokens a pass keeps unless asked otherwise: the CLI's
    /// `--top-k`, the JS `tokens()`'s `topK` and the page's Inspect view (`defaults()`).
    pub const DEFAULT_TOP_K: usize = 10;

    /// Keep the `top_k` most probable next tokens (at least 1: the JS API's `topK`, the CLI's
    /// `--top-k`) and, with `attention`, the attention weights.
    pub fn new(top_k: usize, attention: bool) -> Result<Self> {
        if top_k == 0 {
            return Err(Error::Options("topK must be at least 1 token".into()));
        }
        Ok(Self { top_k, attention })
    }

    pub fn top_k(&self) -> usize {
        self.top_k
    }

    pub fn attention(&self) -> bool {
        self.attention
    }
}

/// The logit lens's `k` (tokens per layer), checked: at least 1.
pub fn lens_k(k: usize) -> Result<usize> {
    if k == 0 {
        return Err(Error::Options("lens: k must be at least 1 token".into()));
    }
    Ok(k)
}

/// How many tokens per layer the logit lens shows unless asked otherwise (`defaults()`).
pub const DEFAULT_LENS_K: usize = 5;

/// One forward pass seen from inside. Its fields keep these names all the way to the page:
/// the wasm engine's `inspection()`, the JS API's tokens (`llama2.js` `tokens()`, which adds
/// `text`) and the CLI's `--inspect` lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The position of the pass, and the token fed there.
    pub pos: usize,
    pub token: u32,
    /// The token that came next (the one this pass yields): sampled, or the prompt's.
    pub id: u32,
    /// Whether `id` was the prompt's (fed, not sampled).
    pub prompt: bool,
    /// The `top_k` most probable next tokens under the model's own distribution (softmax of
    /// the logits at temperature 1), most probable first, ties by lower id.
    pub top: Vec<(u32, f32)>,
    /// `id`'s probability in that distribution, and its rank there (0 = the most probable).
    pub prob: f32,
    pub rank: usize,
    /// `(layer, n_heads, pos + 1)`: each head's softmax over positions `0..=pos` (empty unless
    /// asked for).
    pub attention: Vec<f32>,
}

/// The softmax of `logits` at temperature 1 (run.c's softmax, on a copy).
pub fn probabilities(logits: &[f32]) -> Vec<f32> {
    let mut p = logits.to_vec();
    kernels::softmax(&mut p);
    p
}

/// The `k` most probable ids of `probs`, most probable first, ties by lower id.
pub fn top(probs: &[f32], k: usize) -> Vec<(u32, f32)> {
    let k = k.min(probs.len());
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (id, &p) in probs.iter().enumerate() {
        let beats = |worst: f32| p.partial_cmp(&worst) == Some(std::cmp::Ordering::Greater);
        if best.len() == k && best.last().is_some_and(|&(_, worst)| !beats(worst)) {
            continue;
        }
        // After every kept entry that ranks before it (higher, or equal with a lower id).
        let at = best.partition_point(|&(_, q)| q >= p);
        best.insert(at, (id as u32, p));
        best.truncate(k);
    }
    best
}

/// Where `id` ranks in `probs` (0 = first), by the same order as [`top`].
pub fn rank(probs: &[f32], id: u32) -> usize {
    let p = probs[id as usize];
    probs.iter().enumerate().filter(|&(i, &q)| q > p || (q == p && (i as u32) < id)).count()
}

/// The logit lens's top `k` per layer, from `(layer, vocab)` logits.
pub fn lens_top(lens: &[f32], vocab: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    lens.chunks_exact(vocab).map(|logits| top(&probabilities(logits), k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_is_the_most_probable_first_ties_by_lower_id() {
        let probs = [0.1, 0.3, 0.05, 0.3, 0.25];
        assert_eq!(top(&probs, 3), vec![(1, 0.3), (3, 0.3), (4, 0.25)]);
        assert_eq!(top(&probs, 10).len(), 5);
        assert_eq!(rank(&probs, 3), 1);
        assert_eq!(rank(&probs, 2), 4);
        assert_eq!(rank(&probs, 1), 0);
    }
}
