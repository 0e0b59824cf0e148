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

/// Every intermediate vector of one position's forward pass, in run.c's order
/// (`Generator::trace`; the CLI's `--trace`). Vectors are whole (gathered from every shard).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    /// The position and the token fed there.
    pub pos: usize,
    pub token: u32,
    /// The token that came next, and whether it was the prompt's (fed, not sampled), as in
    /// an [`Inspection`].
    pub id: u32,
    pub prompt: bool,
    /// The token's embedding row (`dim`): the residual stream before the first layer.
    pub embedding: Vec<f32>,
    pub layers: Vec<LayerTrace>,
    /// The residual stream after the last layer, RMS-normed (`dim`): the classifier's input.
    pub final_norm: Vec<f32>,
    /// The classifier's output (`vocab_size`), before any temperature.
    pub logits: Vec<f32>,
}

/// One layer of a [`Trace`]: `x` the residual stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerTrace {
    /// `rmsnorm(x)` with the attention's weights (`dim`).
    pub attn_norm: Vec<f32>,
    /// The query (`dim`) and this position's key and value (`kv_dim`), q and k after RoPE.
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    /// `(n_heads, pos + 1)`: each head's softmax over the positions it attends to.
    pub attention: Vec<f32>,
    /// The heads' weighted sums of values, before `wo` (`dim`).
    pub heads_out: Vec<f32>,
    /// `wo`'s output (`dim`), and `x` after adding it.
    pub attn_out: Vec<f32>,
    pub residual_attn: Vec<f32>,
    /// `rmsnorm(x)` with the feed-forward's weights (`dim`).
    pub ffn_norm: Vec<f32>,
    /// `silu(w1·x) * (w3·x)` (`hidden_dim`).
    pub gate: Vec<f32>,
    /// `w2`'s output (`dim`), and `x` after adding it.
    pub ffn_out: Vec<f32>,
    pub residual_ffn: Vec<f32>,
}

impl LayerTrace {
    /// Every vector by its name, in run.c's order: the one list of names that the CLI's
    /// `--trace` and the wasm engine's `trace()` write (and the JS API passes on).
    pub fn vectors(&self) -> [(&'static str, &[f32]); 12] {
        [
            ("attn_norm", &self.attn_norm),
            ("q", &self.q),
            ("k", &self.k),
            ("v", &self.v),
            ("attention", &self.attention),
            ("heads_out", &self.heads_out),
            ("attn_out", &self.attn_out),
            ("residual_attn", &self.residual_attn),
            ("ffn_norm", &self.ffn_norm),
            ("gate", &self.gate),
            ("ffn_out", &self.ffn_out),
            ("residual_ffn", &self.residual_ffn),
        ]
    }
}

/// What a learner switches off in the model (`--ablate`, the Explain view's experiments):
/// attention heads (their part of `heads_out` is zero), a layer's whole attention block
/// (`attn_out` is zero) or feed-forward block (`ffn_out` is zero), at every position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ablation {
    heads: Vec<(usize, usize)>,
    attention: Vec<usize>,
    ffn: Vec<usize>,
}

/// One switch of an [`Ablation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ablate {
    Head { layer: usize, head: usize },
    Attention { layer: usize },
    Ffn { layer: usize },
}

impl Ablate {
    /// `L:H` (head H of layer L), `L:attn` or `L:ffn`, layers and heads from 0.
    pub fn parse(spec: &str) -> Result<Ablate> {
        let bad = || {
            Error::Options(format!(
                "ablate '{spec}': give LAYER:HEAD, LAYER:attn or LAYER:ffn (from 0)"
            ))
        };
        let (layer, what) = spec.trim().split_once(':').ok_or_else(bad)?;
        let layer = layer.parse().map_err(|_| bad())?;
        Ok(match what {
            "attn" => Ablate::Attention { layer },
            "ffn" => Ablate::Ffn { layer },
            head => Ablate::Head { layer, head: head.parse().map_err(|_| bad())? },
        })
    }
}

impl Ablation {
    /// Nothing switched off: the model as it is.
    pub const NONE: Ablation =
        Ablation { heads: Vec::new(), attention: Vec::new(), ffn: Vec::new() };

    /// `switches` checked against the model's shape (a layer or head it does not have is an
    /// error that names it).
    pub fn new(switches: &[Ablate], c: &crate::config::Config) -> Result<Ablation> {
        let mut a = Ablation::NONE;
        for &switch in switches {
            let layer = match switch {
                Ablate::Head { layer, .. }
                | Ablate::Attention { layer }
                | Ablate::Ffn { layer } => layer,
            };
            if layer >= c.n_layers {
                return Err(Error::Options(format!(
                    "ablate: layer {layer} is past the model's {} layers (from 0)",
                    c.n_layers
                )));
            }
            match switch {
                Ablate::Head { head, .. } if head >= c.n_heads => {
                    return Err(Error::Options(format!(
                        "ablate: head {head} is past the model's {} heads (from 0)",
                        c.n_heads
                    )))
                }
                Ablate::Head { layer, head } => a.heads.push((layer, head)),
                Ablate::Attention { layer } => a.attention.push(layer),
                Ablate::Ffn { layer } => a.ffn.push(layer),
            }
        }
        Ok(a)
    }

    pub fn is_none(&self) -> bool {
        *self == Ablation::NONE
    }

    /// Whether head `head` of layer `layer` is switched off.
    pub fn head(&self, layer: usize, head: usize) -> bool {
        self.heads.contains(&(layer, head))
    }

    /// Whether layer `layer`'s attention block is switched off.
    pub fn attention(&self, layer: usize) -> bool {
        self.attention.contains(&layer)
    }

    /// Whether layer `layer`'s feed-forward block is switched off.
    pub fn ffn(&self, layer: usize) -> bool {
        self.ffn.contains(&layer)
    }
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

/// The logit lens over a whole story, summed up per layer and position (the Explain view's
/// maps, `Generator::lens_map`): how unsure each layer's guess of the next token is, how far it
/// is from the model's final answer, and how likely it makes one pinned token. Each vector is
/// `(layer, position)`, row-major: layer `l`'s values for every position, then layer `l + 1`'s.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LensMap {
    pub layers: usize,
    pub positions: usize,
    /// The token whose probability `pinned` holds (none: `pinned` is empty).
    pub pin: Option<u32>,
    /// The entropy of the lens's distribution, in bits.
    pub entropy: Vec<f32>,
    /// KL(final ‖ layer) in bits: what the layer's distribution lacks of the final one (the
    /// last layer's is the model's own output: 0).
    pub kl: Vec<f32>,
    /// The probability the layer gives the pinned token.
    pub pinned: Vec<f32>,
}

/// One layer's row of a [`LensMap`] at one position: `(entropy, kl, pinned)` per layer, from
/// `(layer, vocab)` lens logits. From log-softmax (a probability that rounds to 0 still has a
/// logarithm), with sums in f64; `exp` and `ln` in f32, the ones the kernels already use (f64's
/// would add their code to the wasm module for no visible digit).
pub fn lens_stats(lens: &[f32], vocab: usize, pin: Option<u32>) -> Vec<(f32, f32, f32)> {
    let log_softmax = |logits: &[f32]| -> Vec<f32> {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let sum: f64 = logits.iter().map(|&x| (x - max).exp() as f64).sum();
        let log_sum = max + (sum as f32).ln();
        logits.iter().map(|&x| x - log_sum).collect()
    };
    let layers: Vec<Vec<f32>> = lens.chunks_exact(vocab).map(log_softmax).collect();
    let Some(last) = layers.last() else { return Vec::new() };
    layers
        .iter()
        .map(|log_p| {
            let entropy: f64 = log_p.iter().map(|&lp| (-lp.exp() * lp) as f64).sum();
            let kl: f64 =
                last.iter().zip(log_p).map(|(&lq, &lp)| (lq.exp() * (lq - lp)) as f64).sum();
            let pinned = pin.map_or(0.0, |id| log_p[id as usize].exp());
            let bits = std::f64::consts::LN_2;
            ((entropy / bits) as f32, (kl.max(0.0) / bits) as f32, pinned)
        })
        .collect()
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

    #[test]
    fn lens_stats_entropy_kl_and_the_pinned_probability_in_bits() {
        // Layer 0 uniform over 4 tokens (2 bits); layer 1 (the last) sure of token 2.
        let lens = [0.0, 0.0, 0.0, 0.0, -100.0, -100.0, 100.0, -100.0];
        let stats = lens_stats(&lens, 4, Some(2));
        assert!((stats[0].0 - 2.0).abs() < 1e-6 && stats[1].0.abs() < 1e-6);
        // KL(final ‖ uniform) = log2(1 / 0.25) = 2 bits; the last layer's own is 0.
        assert!((stats[0].1 - 2.0).abs() < 1e-6 && stats[1].1 == 0.0);
        assert!((stats[0].2 - 0.25).abs() < 1e-6 && (stats[1].2 - 1.0).abs() < 1e-6);
        assert_eq!(lens_stats(&lens, 4, None)[0].2, 0.0);
    }
}
