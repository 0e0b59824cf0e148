//! The one table of where every tensor lies in a checkpoint file, in file order. The reader
//! (`load.rs`) places each tensor's bytes by it, the writer (`export.rs`) writes the tensors
//! in its order, and the formula weights of docs/llama2c.md are drawn in its order.
//!
//! All three formats store the weight matrices in the same order (the embedding, then `wq`,
//! `wk`, `wv`, `wo`, `w1`, `w2`, `w3`, each for every layer, then the classifier when it is
//! not shared); they differ in where the RMSNorm weights go (v0: between the matrices; v1 and
//! v2: first) and in v0's unused RoPE table. File offsets are u64: a file may pass 4 GB even
//! on wasm32.

use super::Header;
use crate::config::{Config, Format, Weight};
use crate::error::{Error, Result};

/// The matrices every layer has, in file order.
pub const LAYER_WEIGHTS: [Weight; 7] =
    [Weight::Wq, Weight::Wk, Weight::Wv, Weight::Wo, Weight::W1, Weight::W2, Weight::W3];

/// One tensor of a file (one layer of it for the per-layer tensors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tensor {
    /// `(dim,)` RMSNorm weights before attention, layer `l`.
    RmsAtt(usize),
    /// `(dim,)` RMSNorm weights before the FFN, layer `l`.
    RmsFfn(usize),
    /// `(dim,)` the final RMSNorm weights.
    RmsFinal,
    /// A weight matrix of layer `l` (0 for the embedding and the classifier).
    Matrix(Weight, usize),
    /// v0 only: an old RoPE table (`freq_cis_real`, `freq_cis_imag`), read by no one.
    RopeTable,
}

/// Where one tensor lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub tensor: Tensor,
    /// Byte offset in the file.
    pub offset: u64,
    /// `rows x cols` values (a vector is one row).
    pub rows: usize,
    pub cols: usize,
    /// Q8_0: the `rows * cols` int8 values, then one f32 scale per group of this size.
    pub group_size: Option<usize>,
}

impl Entry {
    pub fn values(&self) -> u64 {
        self.rows as u64 * self.cols as u64
    }

    /// Bytes in the file.
    pub fn bytes(&self) -> u64 {
        match self.group_size {
            None => 4 * self.values(),
            Some(gs) => self.values() + 4 * (self.values() / gs as u64),
        }
    }

    /// Byte ranges (relative to `offset`) of rows `rows` of this tensor: one range for f32,
    /// two for Q8_0 (the rows' int8 values, then their scales).
    #[allow(clippy::single_range_in_vec_init)] // a list of one range, not the range's values
    pub fn row_bytes(&self, rows: std::ops::Range<usize>) -> Vec<std::ops::Range<u64>> {
        let (r0, r1, cols) = (rows.start as u64, rows.end as u64, self.cols as u64);
        match self.group_size {
            None => vec![4 * r0 * cols..4 * r1 * cols],
            Some(gs) => {
                let groups = cols / gs as u64;
                let scales = self.values();
                vec![r0 * cols..r1 * cols, scales + 4 * r0 * groups..scales + 4 * r1 * groups]
            }
        }
    }
}

/// Every tensor of a checkpoint, in file order, and the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub header: Header,
    pub entries: Vec<Entry>,
    /// The size a file with this header must have.
    pub file_size: u64,
}

impl Layout {
    pub fn new(header: Header) -> Layout {
        let c = &header.config;
        let (l, dim, vocab) = (c.n_layers, c.dim, c.vocab_size);
        let group_size = match header.format {
            Format::V2 { group_size } => Some(group_size),
            Format::V0 | Format::V1 => None,
        };
        let mut entries = Vec::new();
        let mut at = header.size() as u64;
        let mut push = |tensor: Tensor, rows: usize, cols: usize, quantized: bool| {
            let e = Entry {
                tensor,
                offset: at,
                rows,
                cols,
                group_size: group_size.filter(|_| quantized),
            };
            at += e.bytes();
            entries.push(e);
        };
        let matrices = |push: &mut dyn FnMut(Tensor, usize, usize, bool), weights: &[Weight]| {
            for &w in weights {
                let (rows, cols) = matrix_shape(c, w);
                for layer in 0..l {
                    push(Tensor::Matrix(w, layer), rows, cols, true);
                }
            }
        };
        let embedding = Tensor::Matrix(Weight::TokenEmbedding, 0);
        match header.format {
            Format::V0 => {
                push(embedding, vocab, dim, true);
                (0..l).for_each(|i| push(Tensor::RmsAtt(i), 1, dim, false));
                matrices(&mut push, &LAYER_WEIGHTS[..4]);
                (0..l).for_each(|i| push(Tensor::RmsFfn(i), 1, dim, false));
                matrices(&mut push, &LAYER_WEIGHTS[4..]);
                push(Tensor::RmsFinal, 1, dim, false);
                push(Tensor::RopeTable, 1, c.seq_len * c.head_size(), false);
            }
            Format::V1 | Format::V2 { .. } => {
                (0..l).for_each(|i| push(Tensor::RmsAtt(i), 1, dim, false));
                (0..l).for_each(|i| push(Tensor::RmsFfn(i), 1, dim, false));
                push(Tensor::RmsFinal, 1, dim, false);
                push(embedding, vocab, dim, true);
                matrices(&mut push, &LAYER_WEIGHTS);
            }
        }
        if !c.shared_classifier {
            push(Tensor::Matrix(Weight::Classifier, 0), vocab, dim, true);
        }
        Layout { header, entries, file_size: at }
    }

    /// The layout of a file of `size` bytes whose first bytes are `prefix` (at least 256 of
    /// them, or the whole file): the header is read and checked, and the size must be exactly
    /// what the header describes.
    pub fn read(prefix: &[u8], size: u64, name: &str) -> Result<Layout> {
        let header = Header::read(prefix, name)?;
        let layout = Layout::new(header);
        let (end, format, shape) = (layout.file_size, header.format, describe(&header.config));
        if end > size {
            return Err(Error::checkpoint(
                name,
                format!("truncated: the {format} header ({shape}) needs {end} bytes but the file has {size}"),
            ));
        }
        if end < size {
            return Err(Error::checkpoint(
                name,
                format!(
                    "{} bytes more than the {format} header ({shape}) describes ({end} bytes): \
                     the header or the file is corrupt",
                    size - end
                ),
            ));
        }
        Ok(layout)
    }
}

/// `(rows, cols)` of one layer of matrix `w`.
pub fn matrix_shape(c: &Config, w: Weight) -> (usize, usize) {
    let (dim, hidden, kv_dim, vocab) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
    match w {
        Weight::Wq | Weight::Wo => (dim, dim),
        Weight::Wk | Weight::Wv => (kv_dim, dim),
        Weight::W1 | Weight::W3 => (hidden, dim),
        Weight::W2 => (dim, hidden),
        Weight::TokenEmbedding | Weight::Classifier => (vocab, dim),
    }
}

/// "dim=64 hidden_dim=172 ..." for messages.
pub fn describe(c: &Config) -> String {
    format!(
        "dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len
    )
}
