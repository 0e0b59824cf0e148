//! Writing checkpoints in llama2.c's three layouts, byte for byte as its `export.py` does:
//! v0 (`legacy_export`), v1 (`version1_export`) and v2 (`version2_export`, int8 Q8_0).
//!
//! The writer asks a [`Source`] for each tensor in file order and streams the bytes to any
//! `std::io::Write`, so a 440 MB checkpoint is never held in memory: only one int8 matrix
//! (a quarter of its f32 size) is buffered, because v2 writes a matrix's values before its
//! scales. Two sources exist: an fp32 [`Checkpoint`] (the `quantize` tool) and the
//! [`Formula`] of docs/llama2c.md (`gen-checkpoint`, tests and benchmarks of any shape).
//!
//! Every format asks for the weight matrices in the same order (embedding, `wq`, `wk`, `wv`,
//! `wo`, `w1`, `w2`, `w3` with all layers of each, then the classifier when unshared); only
//! where the RMSNorm weights go differs. That is what lets [`Formula`] draw its values from
//! one random stream whatever the format.

use std::io::Write;

use crate::checkpoint::header::{self, group_size_fits};
use crate::checkpoint::layout::matrix_shape;
use crate::checkpoint::{Checkpoint, Header, Layout, Matrix, Tensor};
use crate::config::{Config, Format};
use crate::error::{Error, Result};
use crate::sampler::Rng;

/// The group size export.py starts from when none is asked for.
pub const DEFAULT_GROUP_SIZE: usize = 64;

/// Where a checkpoint's weights come from.
pub trait Source {
    /// Passes every value of `tensor` (row-major f32) to `emit`, in one or more chunks.
    fn tensor(&mut self, tensor: Tensor, emit: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()>;
}

/// Builds a [`Config`] from the 7 header ints (vocab_size positive) with the loader's checks,
/// so a tool never writes a file the engine would refuse. `name` is used in errors.
pub fn config(shape: [i32; 7], shared_classifier: bool, name: &str) -> Result<Config> {
    header::check_config(&shape, shared_classifier, name)
}

/// The Q8_0 group size for `config`: `requested` (or 64), halved until it fits
/// ([`group_size_fits`]: it divides both `dim` and `hidden_dim`). export.py checks only
/// `dim`; the result is export.py's whenever its choice already divides `hidden_dim`.
pub fn group_size(config: &Config, requested: Option<usize>) -> Result<usize> {
    let mut gs = requested.unwrap_or(DEFAULT_GROUP_SIZE);
    if gs == 0 || gs > i32::MAX as usize {
        return Err(Error::Options(format!("group size {gs} must be in 1..={}", i32::MAX)));
    }
    while !group_size_fits(config, gs) {
        gs /= 2;
    }
    Ok(gs)
}

/// Writes a whole checkpoint of `config` in `format`, pulling the weights from `source` in
/// the file order of [`Layout`]. `name` (the output file) is used in errors. A v0 file gets a
/// zero RoPE table (unused by every reader); a v2 group size must fit ([`group_size_fits`]).
pub fn write_checkpoint(
    out: &mut dyn Write,
    config: &Config,
    format: Format,
    source: &mut dyn Source,
    name: &str,
) -> Result<()> {
    if let Format::V2 { group_size } = format {
        if !group_size_fits(config, group_size) {
            return Err(Error::Options(format!(
                "group size {group_size} does not divide both dim = {} and hidden_dim = {}",
                config.dim, config.hidden_dim
            )));
        }
    }
    let header = Header { config: *config, format };
    let mut w = Writer { out, name, bytes: Vec::new() };
    w.write(&header.to_bytes())?;
    let mut q8 = None;
    for entry in Layout::new(header).entries {
        let len = entry.values() as usize;
        match (entry.tensor, entry.group_size) {
            (Tensor::RopeTable, _) => w.zeros(4 * len)?,
            (tensor, None) => w.f32_tensor(source, tensor, len)?,
            (tensor, Some(gs)) => {
                let q8 = q8.get_or_insert_with(|| Q8::new(gs));
                w.q8_tensor(source, tensor, len, q8)?
            }
        }
    }
    w.out.flush().map_err(|e| Error::io(name, &e))
}

/// The output stream, with a reusable byte buffer for little-endian conversion.
struct Writer<'a> {
    out: &'a mut dyn Write,
    name: &'a str,
    bytes: Vec<u8>,
}

impl Writer<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|e| Error::io(self.name, &e))
    }

    fn zeros(&mut self, n_bytes: usize) -> Result<()> {
        let block = [0u8; 4096];
        let mut left = n_bytes;
        while left > 0 {
            let n = left.min(block.len());
            self.write(&block[..n])?;
            left -= n;
        }
        Ok(())
    }

    /// Streams `tensor` as little-endian f32, checking that the source gave `len` values.
    fn f32_tensor(&mut self, source: &mut dyn Source, tensor: Tensor, len: usize) -> Result<()> {
        let mut got = 0;
        source.tensor(tensor, &mut |values| {
            got += values.len();
            for chunk in values.chunks(16 * 1024) {
                self.bytes.clear();
                self.bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
                self.out.write_all(&self.bytes).map_err(|e| Error::io(self.name, &e))?;
            }
            Ok(())
        })?;
        check_len(tensor, len, got, self.name)
    }

    /// Quantizes `tensor` group by group as it streams in, then writes its int8 values and
    /// its scales.
    fn q8_tensor(
        &mut self,
        source: &mut dyn Source,
        tensor: Tensor,
        len: usize,
        q8: &mut Q8,
    ) -> Result<()> {
        q8.clear(len);
        source.tensor(tensor, &mut |values| {
            q8.push(values);
            Ok(())
        })?;
        check_len(tensor, len, q8.values(), self.name)?;
        let bytes: &[u8] = bytemuck::cast_slice(&q8.q);
        self.out.write_all(bytes).map_err(|e| Error::io(self.name, &e))?;
        self.bytes.clear();
        self.bytes.extend(q8.s.iter().flat_map(|v| v.to_le_bytes()));
        self.out.write_all(&self.bytes).map_err(|e| Error::io(self.name, &e))
    }
}

fn check_len(tensor: Tensor, expected: usize, got: usize, name: &str) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(Error::State(format!("writing '{name}': {tensor:?} has {got} values, expected {expected}")))
}

/// export.py's `quantize_q80`, fed in chunks: per group of `group_size` values,
/// `scale = max|w| / 127` and `q = round_half_to_even(w / scale)`, all in f32.
struct Q8 {
    group_size: usize,
    /// Values of the group being filled.
    group: Vec<f32>,
    q: Vec<i8>,
    s: Vec<f32>,
}

impl Q8 {
    fn new(group_size: usize) -> Q8 {
        Q8 { group_size, group: Vec::with_capacity(group_size), q: Vec::new(), s: Vec::new() }
    }

    fn clear(&mut self, len: usize) {
        self.group.clear();
        self.q.clear();
        self.s.clear();
        self.q.reserve(len);
        self.s.reserve(len / self.group_size);
    }

    /// Values pushed so far.
    fn values(&self) -> usize {
        self.q.len() + self.group.len()
    }

    fn push(&mut self, mut values: &[f32]) {
        while !values.is_empty() {
            if self.group.is_empty() && values.len() >= self.group_size {
                let (group, rest) = values.split_at(self.group_size);
                self.quantize(group);
                values = rest;
            } else {
                let n = (self.group_size - self.group.len()).min(values.len());
                self.group.extend_from_slice(&values[..n]);
                values = &values[n..];
                if self.group.len() == self.group_size {
                    let group = std::mem::take(&mut self.group);
                    self.quantize(&group);
                    self.group = group;
                    self.group.clear();
                }
            }
        }
    }

    fn quantize(&mut self, group: &[f32]) {
        let wmax = group.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = wmax / 127.0;
        // An all-zero group has scale 0: 0/0 is NaN, which `as i8` (like torch's cast on
        // x86) turns into 0.
        self.q.extend(group.iter().map(|&w| (w / scale).round_ties_even() as i8));
        self.s.push(scale);
    }
}

/// An fp32 checkpoint (v0 or v1) as a source, e.g. to quantize it. Values are read through
/// the checkpoint's views: nothing is copied.
pub struct CheckpointSource<'a> {
    checkpoint: &'a Checkpoint,
}

impl<'a> CheckpointSource<'a> {
    /// Fails for a v2 checkpoint: its weights are already int8.
    pub fn new(checkpoint: &'a Checkpoint) -> Result<Self> {
        if let Format::V2 { .. } = checkpoint.format() {
            return Err(Error::checkpoint(
                checkpoint.name(),
                "is already int8 (v2): give the fp32 v0 or v1 checkpoint it was made from",
            ));
        }
        Ok(CheckpointSource { checkpoint })
    }
}

impl Source for CheckpointSource<'_> {
    fn tensor(&mut self, tensor: Tensor, emit: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let c = self.checkpoint;
        match tensor {
            Tensor::RmsAtt(l) => emit(c.rms_att(l)),
            Tensor::RmsFfn(l) => emit(c.rms_ffn(l)),
            Tensor::RmsFinal => emit(c.rms_final()),
            Tensor::Matrix(m, l) => match c.matrix(m, l) {
                Matrix::F32(values) => emit(values),
                Matrix::Q8 { .. } => Err(Error::checkpoint(c.name(), "is int8, not fp32")),
            },
            Tensor::RopeTable => Ok(()),
        }
    }
}

/// The weights of docs/llama2c.md's test checkpoints: one xorshift64* stream seeded with `seed`,
/// each value `(u * 2 - 1) * 0.05` for `u = (u32 >> 8) / 2^24` in matrix order; every RMSNorm
/// weight is 1. Matrices must be asked for in file order, which every format shares.
pub struct Formula {
    rng: Rng,
    chunk: Vec<f32>,
    dim: usize,
    sizes: Config,
}

impl Formula {
    pub fn new(config: &Config, seed: u64) -> Formula {
        Formula {
            rng: Rng::new(seed),
            chunk: Vec::with_capacity(16 * 1024),
            dim: config.dim,
            sizes: *config,
        }
    }
}

impl Source for Formula {
    fn tensor(&mut self, tensor: Tensor, emit: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let mut left = match tensor {
            Tensor::RmsAtt(_) | Tensor::RmsFfn(_) | Tensor::RmsFinal => {
                self.chunk.clear();
                self.chunk.resize(self.dim, 1.0);
                return emit(&self.chunk);
            }
            Tensor::Matrix(m, _) => {
                let (rows, cols) = matrix_shape(&self.sizes, m);
                rows * cols
            }
            Tensor::RopeTable => return Ok(()),
        };
        while left > 0 {
            let n = left.min(self.chunk.capacity().max(1));
            self.chunk.clear();
            let rng = &mut self.rng;
            self.chunk.extend((0..n).map(|_| (rng.next_f32() * 2.0 - 1.0) * 0.05));
            emit(&self.chunk)?;
            left -= n;
        }
        Ok(())
    }
}

/// A checkpoint of `shape` (the 7 header ints; a shared classifier) in `format` with the
/// formula weights of `seed`, parsed in memory: for tests.
pub fn formula_checkpoint(shape: [i32; 7], format: Format, seed: u64) -> Result<Checkpoint> {
    let config = config(shape, true, "formula")?;
    let mut bytes = Vec::new();
    write_checkpoint(&mut bytes, &config, format, &mut Formula::new(&config, seed), "formula")?;
    Checkpoint::from_bytes(&bytes, "formula")
}
