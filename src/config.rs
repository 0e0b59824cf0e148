//! The model's shape: its hyperparameters ([`Config`], llama2.c's), the file format its
//! weights are in ([`Format`]) and the names of its weight matrices ([`Weight`]).
//!
//! A module of its own, below both [`crate::checkpoint`] (which reads files of this shape) and
//! [`crate::shard`] (which splits its rows): each needs these facts, neither needs the other's.

use std::fmt;

/// The model's hyperparameters, as in llama2.c's `Config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Transformer width.
    pub dim: usize,
    /// FFN hidden width.
    pub hidden_dim: usize,
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (fewer than `n_heads` with grouped-query attention).
    pub n_kv_heads: usize,
    pub vocab_size: usize,
    /// Maximum sequence length (the model's context).
    pub seq_len: usize,
    /// Whether the classifier reuses the token embedding table.
    pub shared_classifier: bool,
}

impl Config {
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }

    pub fn kv_dim(&self) -> usize {
        self.dim * self.n_kv_heads / self.n_heads
    }

    /// How many query heads share one key/value head.
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// Number of parameters (weights), counting a shared classifier once.
    pub fn n_params(&self) -> u64 {
        let (dim, hidden, kv_dim) = (self.dim as u64, self.hidden_dim as u64, self.kv_dim() as u64);
        let per_layer = 2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden;
        let embedding = self.vocab_size as u64 * dim;
        let cls = if self.shared_classifier { 0 } else { embedding };
        embedding + self.n_layers as u64 * per_layer + dim + cls
    }

    /// Bytes of the f32 KV cache (keys and values, all layers) for `positions` positions.
    pub fn kv_cache_bytes(&self, positions: usize) -> u64 {
        2 * self.n_layers as u64 * positions as u64 * self.kv_dim() as u64 * 4
    }
}

/// Which of llama2.c's checkpoint formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy headerless fp32 (`run.c`).
    V0,
    /// fp32 with the 256-byte "ak42" header.
    V1,
    /// int8 Q8_0 with per-group f32 scales (`runq.c`).
    V2 { group_size: usize },
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::V0 => write!(f, "v0"),
            Format::V1 => write!(f, "v1"),
            Format::V2 { group_size } => write!(f, "v2 (int8, group size {group_size})"),
        }
    }
}

/// The weight matrices, to ask a checkpoint for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Wq,
    Wk,
    Wv,
    Wo,
    W1,
    W2,
    W3,
    Classifier,
    TokenEmbedding,
}
