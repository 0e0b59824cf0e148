//! Loading a checkpoint, or one shard of it, from the file's bytes as they stream in.
//!
//! [`Loader::new`] reads the header from the file's first bytes, checks the file's size, and
//! plans where this shard keeps each of its tensors: in blocks of at most [`BLOCK_BYTES`]
//! (wasm32 cannot allocate more than 2 GB at once, and a shard may hold more than that),
//! each tensor 4-byte aligned so that it can be viewed as f32s in place. The bytes of the
//! file are then written as they arrive ([`Loader::write`], in any chunking), each byte once,
//! straight to its place; the rows of other shards and v0's unused RoPE table are skipped.

use std::ops::Range;

use super::layout::{Entry, Layout, Tensor, LAYER_WEIGHTS};
use super::{Checkpoint, View, WeightBuffer};
use crate::config::{Config, Weight};
use crate::error::{Error, Result};
use crate::shard::Shard;

/// The most bytes of one block of weights: below wasm32's 2 GB allocation limit, and large
/// enough that every tensor of Llama 2 7B fits one.
pub const BLOCK_BYTES: usize = 1 << 30;

/// A stretch of the file that goes to one place of one block.
#[derive(Debug, Clone)]
struct Piece {
    file: Range<u64>,
    block: usize,
    at: usize,
}

/// A checkpoint (or one shard of it) being filled from its file.
pub struct Loader {
    name: String,
    layout: Layout,
    shard: Shard,
    views: Vec<Option<View>>,
    /// In file order, not overlapping.
    pieces: Vec<Piece>,
    blocks: Vec<WeightBuffer>,
    /// Bytes this shard needs, and how many have been written.
    needed: u64,
    written: u64,
}

impl Loader {
    /// Reads the header from `prefix` (the file's first 256 bytes, or all of a shorter file),
    /// checks that the file's `size` is what it describes, and reserves this shard's memory.
    /// `name` (the file's) is used in errors.
    pub fn new(prefix: &[u8], size: u64, name: &str, shard: Shard) -> Result<Loader> {
        let layout = Layout::read(prefix, size, name)?;
        let c = layout.header.config;
        let too_big = || {
            Error::OutOfMemory(format!(
                "checkpoint '{name}': one tensor of it is too large for this platform"
            ))
        };
        let mut pieces = Vec::new();
        let mut views = vec![None; slots(&c)];
        let mut block_sizes = vec![0usize];
        for entry in &layout.entries {
            let Some(rows) = rows_held(entry, &c, shard) else { continue };
            let mut places = Vec::new();
            for range in entry.row_bytes(rows.clone()) {
                let len = usize::try_from(range.end - range.start).map_err(|_| too_big())?;
                let last = block_sizes.len() - 1;
                let start = block_sizes[last].next_multiple_of(4);
                let (block, at) = if start + len <= BLOCK_BYTES || block_sizes[last] == 0 {
                    (last, start)
                } else {
                    block_sizes.push(0);
                    (last + 1, 0)
                };
                block_sizes[block] = at + len;
                places.push((block, at, len));
                if len > 0 {
                    let file = entry.offset + range.start..entry.offset + range.end;
                    pieces.push(Piece { file, block, at });
                }
            }
            // row_bytes gives one range for f32, two for Q8_0 (values, then scales).
            let view = match (entry.group_size, places.as_slice()) {
                (Some(group_size), &[(block, at, len), (s_block, s_at, s_len)]) => {
                    View::Q8 { block, at, len, s_block, s_at, s_len: s_len / 4, group_size }
                }
                (_, &[(block, at, len), ..]) => View::F32 { block, at, len: len / 4 },
                (_, []) => continue,
            };
            if let Some(i) = slot(&c, entry.tensor) {
                views[i] = Some(view);
            }
        }
        if c.shared_classifier {
            views[CLASSIFIER] = views[EMBEDDING];
        }
        let needed = pieces.iter().map(|p| p.file.end - p.file.start).sum();
        let blocks =
            block_sizes.into_iter().map(WeightBuffer::new).collect::<Result<Vec<_>>>().map_err(
                |err| match err {
                    Error::OutOfMemory(problem) => {
                        Error::OutOfMemory(format!("checkpoint '{name}': {problem}"))
                    }
                    other => other,
                },
            )?;
        Ok(Loader {
            name: name.to_string(),
            layout,
            shard,
            views,
            pieces,
            blocks,
            needed,
            written: 0,
        })
    }

    pub fn config(&self) -> &Config {
        &self.layout.header.config
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The stretches of the file this shard needs, merged, in file order.
    pub fn file_ranges(&self) -> Vec<Range<u64>> {
        let mut ranges: Vec<Range<u64>> = Vec::new();
        for p in &self.pieces {
            match ranges.last_mut() {
                Some(last) if last.end == p.file.start => last.end = p.file.end,
                _ => ranges.push(p.file.clone()),
            }
        }
        ranges
    }

    /// Bytes reserved for the weights.
    pub fn memory_bytes(&self) -> usize {
        self.blocks.iter().map(WeightBuffer::len).sum()
    }

    /// Writes `bytes`, found at byte `at` of the file, to wherever this shard keeps them
    /// (bytes it does not hold are skipped). Each byte of the file is to be written once.
    pub fn write(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        let first = self.pieces.partition_point(|p| p.file.end <= at);
        for p in &self.pieces[first..] {
            if p.file.start >= end {
                break;
            }
            let (from, to) = (p.file.start.max(at), p.file.end.min(end));
            let src = &bytes[(from - at) as usize..(to - at) as usize];
            let dst = p.at + (from - p.file.start) as usize;
            self.blocks[p.block].as_bytes_mut()[dst..dst + src.len()].copy_from_slice(src);
            self.written += src.len() as u64;
        }
    }

    /// Fills every place this shard keeps bytes in with `read(file_offset, place)`, in file
    /// order: for a file it can read from anywhere (the native tools), with no copy between.
    pub fn read_all(&mut self, mut read: impl FnMut(u64, &mut [u8]) -> Result<()>) -> Result<()> {
        for p in &self.pieces {
            let len = (p.file.end - p.file.start) as usize;
            read(p.file.start, &mut self.blocks[p.block].as_bytes_mut()[p.at..p.at + len])?;
            self.written += len as u64;
        }
        Ok(())
    }

    /// The loaded checkpoint, once every byte it needs was written.
    pub fn finish(self) -> Result<Checkpoint> {
        if self.written != self.needed {
            return Err(Error::checkpoint(
                &self.name,
                format!(
                    "incomplete: {} of the {} bytes this {} needs were loaded",
                    self.written,
                    self.needed,
                    if self.shard.count == 1 {
                        "model".to_string()
                    } else {
                        format!("shard {} of {}", self.shard.index + 1, self.shard.count)
                    },
                ),
            ));
        }
        let views = self.views.into_iter().collect::<Option<Vec<View>>>().ok_or_else(|| {
            Error::checkpoint(&self.name, "a tensor is missing from the layout".to_string())
        })?;
        Ok(Checkpoint {
            name: self.name,
            header: self.layout.header,
            file_size: self.layout.file_size,
            shard: self.shard,
            views,
            blocks: self.blocks,
        })
    }
}

/// The rows of `entry` this shard holds: all of a vector (every shard has the RMSNorm
/// weights), its rows of a matrix, nothing of the RoPE table.
fn rows_held(entry: &Entry, c: &Config, shard: Shard) -> Option<Range<usize>> {
    match entry.tensor {
        Tensor::RmsAtt(_) | Tensor::RmsFfn(_) | Tensor::RmsFinal => Some(0..entry.rows),
        Tensor::Matrix(w, _) => Some(shard.rows(c, w)),
        Tensor::RopeTable => None,
    }
}

/// The number of tensors a checkpoint of `c` has views for (see [`slot`]).
pub(super) fn slots(c: &Config) -> usize {
    3 + c.n_layers * (2 + LAYER_WEIGHTS.len())
}

const EMBEDDING: usize = 0;
const CLASSIFIER: usize = 1;
const RMS_FINAL: usize = 2;

/// Where a tensor's view is kept: the embedding, the classifier, the final RMSNorm vector,
/// then per layer the two RMSNorm vectors and the 7 matrices. (None: the RoPE table.)
pub(super) fn slot(c: &Config, tensor: Tensor) -> Option<usize> {
    let per_layer = |l: usize, k: usize| 3 + l * (2 + LAYER_WEIGHTS.len()) + k;
    Some(match tensor {
        Tensor::Matrix(Weight::TokenEmbedding, _) => EMBEDDING,
        Tensor::Matrix(Weight::Classifier, _) => CLASSIFIER,
        Tensor::RmsFinal => RMS_FINAL,
        Tensor::RmsAtt(l) => per_layer(l, 0),
        Tensor::RmsFfn(l) => per_layer(l, 1),
        Tensor::Matrix(w, l) => per_layer(l, 2 + LAYER_WEIGHTS.iter().position(|&x| x == w)?),
        Tensor::RopeTable => return None,
    })
    .filter(|&i| i < slots(c))
}
