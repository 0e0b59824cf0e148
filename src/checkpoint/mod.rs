//! Checkpoints: llama2.c's v0, v1 and v2 (int8 Q8_0) files, or one shard of one.
//!
//! - [`header`]: the header's fields, read, checked and written.
//! - [`layout`]: the one table of where every tensor lies in a file, in file order.
//! - [`load`]: the file's bytes, as they stream in, written straight to where this shard
//!   keeps them.
//!
//! A [`Checkpoint`] then hands out views ([`Checkpoint::matrix`] and friends) into its
//! blocks: nothing is copied after loading.

pub mod header;
pub mod layout;
pub mod load;

pub use header::{group_size_fits, Header};
pub use layout::{Layout, Tensor};
pub use load::Loader;

use crate::config::{Config, Format, Weight};
use crate::error::{Error, Result};
use crate::shard::Shard;

/// A zeroed, 4-byte aligned byte buffer: one block of weights.
///
/// Backed by `u32`s so that f32 tensors at 4-aligned offsets can be viewed in place.
pub struct WeightBuffer {
    words: Vec<u32>,
    len: usize,
}

impl WeightBuffer {
    /// Reserves `len` zeroed bytes, or fails with `OutOfMemory` (never aborts).
    pub fn new(len: usize) -> Result<Self> {
        let mut words = Vec::new();
        words.try_reserve_exact(len.div_ceil(4)).map_err(|_| {
            Error::OutOfMemory(format!("cannot reserve {len} bytes for the weights"))
        })?;
        words.resize(len.div_ceil(4), 0);
        Ok(WeightBuffer { words, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }

    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where a tensor (this shard's rows of it) lies in the blocks; offsets in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// `len` f32s.
    F32 { block: usize, at: usize, len: usize },
    /// `len` int8 values, then `s_len` f32 scales, one per `group_size` values.
    Q8 {
        block: usize,
        at: usize,
        len: usize,
        s_block: usize,
        s_at: usize,
        s_len: usize,
        group_size: usize,
    },
}

/// One layer's matrix (this shard's rows of it), viewed in place. Row-major:
/// `out[i] = sum_j w[i*cols + j] x[j]`.
#[derive(Clone, Copy)]
pub enum Matrix<'a> {
    F32(&'a [f32]),
    Q8 { q: &'a [i8], s: &'a [f32], group_size: usize },
}

/// A loaded checkpoint (or one shard of it): its header and views into its blocks.
pub struct Checkpoint {
    name: String,
    header: Header,
    file_size: u64,
    shard: Shard,
    /// Indexed by `load::slot`.
    views: Vec<View>,
    blocks: Vec<WeightBuffer>,
}

impl Checkpoint {
    /// Parses a whole checkpoint file held in memory (tests, tools, the warm-up model).
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Checkpoint> {
        let header = &bytes[..bytes.len().min(header::V1_HEADER_BYTES)];
        let mut loader = Loader::new(header, bytes.len() as u64, name, Shard::WHOLE)?;
        loader.write(0, bytes);
        loader.finish()
    }

    pub fn config(&self) -> &Config {
        &self.header.config
    }

    pub fn format(&self) -> Format {
        self.header.format
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file's name, as errors show it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of the whole file (of which a shard holds a part).
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Bytes of weights held (this shard's).
    pub fn memory_bytes(&self) -> usize {
        self.blocks.iter().map(WeightBuffer::len).sum()
    }

    /// The RMSNorm weights before attention, layer `l`.
    pub fn rms_att(&self, l: usize) -> &[f32] {
        self.f32s(Tensor::RmsAtt(l))
    }

    /// The RMSNorm weights before the FFN, layer `l`.
    pub fn rms_ffn(&self, l: usize) -> &[f32] {
        self.f32s(Tensor::RmsFfn(l))
    }

    /// The final RMSNorm weights.
    pub fn rms_final(&self) -> &[f32] {
        self.f32s(Tensor::RmsFinal)
    }

    /// This shard's rows of layer `l`'s matrix `w` (`Shard::rows`; the layer is ignored for
    /// the embedding and the classifier).
    pub fn matrix(&self, w: Weight, l: usize) -> Matrix<'_> {
        let l = if matches!(w, Weight::Classifier | Weight::TokenEmbedding) { 0 } else { l };
        match self.view(Tensor::Matrix(w, l)) {
            View::F32 { block, at, len } => Matrix::F32(self.cast(block, at, 4 * len)),
            View::Q8 { block, at, len, s_block, s_at, s_len, group_size } => Matrix::Q8 {
                q: self.cast(block, at, len),
                s: self.cast(s_block, s_at, 4 * s_len),
                group_size,
            },
        }
    }

    /// Whether this shard holds `token`'s row of the embedding table.
    pub fn has_embedding(&self, token: usize) -> bool {
        self.shard.rows(self.config(), Weight::TokenEmbedding).contains(&token)
    }

    /// Copies the embedding of `token` into `out` (dequantizing a Q8_0 row as runq.c does).
    /// The shard must hold its row ([`Checkpoint::has_embedding`]).
    pub fn embedding(&self, token: usize, out: &mut [f32]) {
        let dim = self.config().dim;
        let row = token - self.shard.rows(self.config(), Weight::TokenEmbedding).start;
        match self.matrix(Weight::TokenEmbedding, 0) {
            Matrix::F32(w) => out.copy_from_slice(&w[row * dim..(row + 1) * dim]),
            Matrix::Q8 { q, s, group_size } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let j = row * dim + i;
                    *o = q[j] as f32 * s[j / group_size];
                }
            }
        }
    }

    fn view(&self, tensor: Tensor) -> View {
        let slot =
            load::slot(self.config(), tensor).expect("every tensor but the RoPE table has a view");
        self.views[slot]
    }

    fn f32s(&self, tensor: Tensor) -> &[f32] {
        match self.view(tensor) {
            View::F32 { block, at, len } => self.cast(block, at, 4 * len),
            View::Q8 { .. } => &[],
        }
    }

    fn cast<T: bytemuck::Pod>(&self, block: usize, at: usize, bytes: usize) -> &[T] {
        bytemuck::cast_slice(&self.blocks[block].as_bytes()[at..at + bytes])
    }
}
