//! Tensor parallelism by output rows: which part of the model one worker holds.
//!
//! Shard `index` of `count` holds, of every matrix, the rows that produce its part of the
//! output: its attention heads (whole key/value heads with the query heads that read them, so
//! its slice of the KV cache is all it ever reads), its rows of `wo` and `w2` (a slice of
//! `dim`), its hidden units (rows of `w1` and `w3`), and its rows of the token-embedding
//! table and classifier (a slice of the vocabulary). RMSNorm weights are in every shard.
//!
//! Every output value is computed by exactly one shard, with the same kernel and summation
//! order as the whole model, so the token ids are the same for any number of shards. The
//! shards meet where a matrix needs a whole vector (see `model.rs`).

use std::ops::Range;

use crate::config::{Config, Weight};

/// One part of a model split over `count` workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most shards a model may be split into (more would leave most of them idle).
pub const MAX_SHARDS: usize = 64;

impl Shard {
    /// The whole model in one piece.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`; `count` in `1..=MAX_SHARDS`.
    pub fn new(index: usize, count: usize) -> Option<Shard> {
        ((1..=MAX_SHARDS).contains(&count) && index < count).then_some(Shard { index, count })
    }

    /// Every shard of this split, in order.
    pub fn all(self) -> impl Iterator<Item = Shard> {
        (0..self.count).map(move |index| Shard { index, count: self.count })
    }

    /// The first shard does what only one should: it samples, and it receives the logits.
    pub fn is_leader(self) -> bool {
        self.index == 0
    }

    /// This shard's part of `0..total`: contiguous, as even as can be, in shard order.
    pub fn split(self, total: usize) -> Range<usize> {
        total * self.index / self.count..total * (self.index + 1) / self.count
    }

    /// The key/value heads it holds (and so the query heads `kv_heads * kv_mul`).
    pub fn kv_heads(self, c: &Config) -> Range<usize> {
        self.split(c.n_kv_heads)
    }

    /// The query heads it holds.
    pub fn heads(self, c: &Config) -> Range<usize> {
        let kv = self.kv_heads(c);
        kv.start * c.kv_mul()..kv.end * c.kv_mul()
    }

    /// The rows of `w` it holds, out of `w`'s full height.
    pub fn rows(self, c: &Config, w: Weight) -> Range<usize> {
        let hs = c.head_size();
        match w {
            Weight::Wq => scale(self.heads(c), hs),
            Weight::Wk | Weight::Wv => scale(self.kv_heads(c), hs),
            Weight::Wo | Weight::W2 => self.split(c.dim),
            Weight::W1 | Weight::W3 => self.split(c.hidden_dim),
            Weight::TokenEmbedding | Weight::Classifier => self.split(c.vocab_size),
        }
    }

    /// The shard holding row `row` of the embedding table (the one that supplies it).
    pub fn owner_of_token(c: &Config, count: usize, token: usize) -> usize {
        // The inverse of `split`: the last shard whose part starts at or before `token`.
        (0..count).rev().find(|&k| c.vocab_size * k / count <= token).unwrap_or(0)
    }
}

fn scale(r: Range<usize>, by: usize) -> Range<usize> {
    r.start * by..r.end * by
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Config = Config {
        dim: 64,
        hidden_dim: 172,
        n_layers: 2,
        n_heads: 8,
        n_kv_heads: 4,
        vocab_size: 512,
        seq_len: 16,
        shared_classifier: true,
    };

    #[test]
    fn the_parts_of_every_matrix_tile_its_rows_in_order() {
        for count in 1..=6 {
            for w in [Weight::Wq, Weight::Wk, Weight::Wo, Weight::W1, Weight::Classifier] {
                let mut at = 0;
                for shard in (Shard { index: 0, count }).all() {
                    let r = shard.rows(&C, w);
                    assert_eq!(r.start, at, "{w:?} over {count}");
                    at = r.end;
                }
                assert_eq!(at, Shard::WHOLE.rows(&C, w).end, "{w:?} over {count}");
            }
        }
    }

    #[test]
    fn a_token_is_owned_by_the_shard_holding_its_row() {
        for count in 1..=7 {
            for token in 0..C.vocab_size {
                let owner = Shard::owner_of_token(&C, count, token);
                let rows = Shard::new(owner, count).unwrap().rows(&C, Weight::TokenEmbedding);
                assert!(rows.contains(&token), "token {token} over {count}: {owner} {rows:?}");
            }
        }
    }
}
