//! The header of a checkpoint file: where each field is, how it is read and checked, and how
//! it is written. The reader, the writer (`export.rs`) and the fuzzer's mutations all use
//! these offsets.

use crate::config::{Config, Format};
use crate::error::{Error, Result};

/// `"ak42"` read as a little-endian u32: the magic of the v1 and v2 formats.
pub const MAGIC: u32 = 0x616b_3432;
/// v0 has no magic: its header is just the 7 config i32s.
pub const V0_HEADER_BYTES: usize = 28;
/// The header of v1 and v2 files is padded to this size.
pub const V1_HEADER_BYTES: usize = 256;

/// Byte offsets of the v1/v2 header fields (v0 has only the config, at 0).
pub const AT_MAGIC: usize = 0;
pub const AT_VERSION: usize = 4;
/// The 7 i32s `dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len`.
pub const AT_CONFIG: usize = 8;
/// One byte: 1 when the classifier is the embedding table.
pub const AT_SHARED: usize = 36;
/// v2 only: the i32 group size, unaligned.
pub const AT_GROUP_SIZE: usize = 37;

/// The names of the 7 config fields, in file order.
pub const CONFIG_FIELDS: [&str; 7] =
    ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];

/// Bounds that keep a corrupt header from asking for absurd memory before the size check.
/// Real Llama 2 models are far below them (Llama 2 70B: dim 8192, 80 layers, 4096 context).
const MAX_DIM: usize = 1 << 16;
const MAX_LAYERS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 20;
const MAX_SEQ_LEN: usize = 1 << 17; // 131072, Llama 3.1's context
const LIMITS: [usize; 7] =
    [MAX_DIM, MAX_DIM * 8, MAX_LAYERS, MAX_DIM, MAX_DIM, MAX_VOCAB, MAX_SEQ_LEN];

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub config: Config,
    pub format: Format,
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Header {
    /// Reads and checks the header at the start of `bytes` (the file's first bytes: at least
    /// [`V1_HEADER_BYTES`] of them, or the whole file when it is shorter).
    pub fn read(bytes: &[u8], name: &str) -> Result<Header> {
        if bytes.len() < V0_HEADER_BYTES {
            return Err(Error::checkpoint(
                name,
                format!("truncated: {} bytes is smaller than any checkpoint header", bytes.len()),
            ));
        }
        let ints = |at: usize| -> [i32; 7] { std::array::from_fn(|i| read_i32(bytes, at + 4 * i)) };
        if read_i32(bytes, AT_MAGIC) as u32 != MAGIC {
            // v0: a negative vocab_size means an unshared classifier.
            let mut fields = ints(0);
            let shared = fields[5] > 0;
            fields[5] = fields[5].checked_abs().unwrap_or(-1);
            let config = check_config(&fields, shared, name)?;
            return Ok(Header { config, format: Format::V0 });
        }
        if bytes.len() < V1_HEADER_BYTES {
            return Err(Error::checkpoint(
                name,
                format!(
                    "truncated: the 'ak42' header is {V1_HEADER_BYTES} bytes but the file has {}",
                    bytes.len()
                ),
            ));
        }
        let version = read_i32(bytes, AT_VERSION);
        let shared = match bytes[AT_SHARED] {
            0 => false,
            1 => true,
            other => {
                return Err(Error::checkpoint(
                    name,
                    format!("the shared-classifier flag is {other}, expected 0 or 1"),
                ))
            }
        };
        let config = check_config(&ints(AT_CONFIG), shared, name)?;
        let format = match version {
            1 => Format::V1,
            2 => {
                let gs = read_i32(bytes, AT_GROUP_SIZE);
                Format::V2 { group_size: check_group_size(gs, &config, name)? }
            }
            v => {
                return Err(Error::checkpoint(
                    name,
                    format!("unsupported version {v} after the 'ak42' magic (supported: 1 and 2)"),
                ))
            }
        };
        Ok(Header { config, format })
    }

    /// Bytes the header takes in the file.
    pub fn size(&self) -> usize {
        match self.format {
            Format::V0 => V0_HEADER_BYTES,
            Format::V1 | Format::V2 { .. } => V1_HEADER_BYTES,
        }
    }

    /// The header as the file holds it. v0: the 7 ints, vocab_size negative for an unshared
    /// classifier. v1/v2: magic, version, the 7 ints, the shared byte, (v2) the group size,
    /// zeros up to 256 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let c = &self.config;
        let mut vocab = c.vocab_size as i32;
        let mut h = vec![0u8; self.size()];
        let mut put = |at: usize, v: i32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let at = match self.format {
            Format::V0 => {
                if !c.shared_classifier {
                    vocab = -vocab;
                }
                0
            }
            Format::V1 | Format::V2 { .. } => {
                put(AT_MAGIC, MAGIC as i32);
                put(AT_VERSION, if self.format == Format::V1 { 1 } else { 2 });
                if let Format::V2 { group_size } = self.format {
                    put(AT_GROUP_SIZE, group_size as i32);
                }
                AT_CONFIG
            }
        };
        let fields = [c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, 0, c.seq_len];
        for (i, v) in fields.into_iter().enumerate() {
            put(at + 4 * i, if i == 5 { vocab } else { v as i32 });
        }
        if self.format != Format::V0 {
            h[AT_SHARED] = c.shared_classifier as u8;
        }
        h
    }
}

/// Checks the 7 header ints (vocab already made positive) and builds the Config.
pub fn check_config(f: &[i32; 7], shared_classifier: bool, name: &str) -> Result<Config> {
    for ((&value, field), limit) in f.iter().zip(CONFIG_FIELDS).zip(LIMITS) {
        if value <= 0 || value as usize > limit {
            return Err(Error::checkpoint(
                name,
                format!(
                    "{field} = {value} in the header is out of range (1..={limit}): \
                     not a llama2.c checkpoint, or a corrupt one"
                ),
            ));
        }
    }
    let [dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len] =
        f.map(|v| v as usize);
    if !dim.is_multiple_of(n_heads) {
        return Err(Error::checkpoint(
            name,
            format!("n_heads = {n_heads} does not divide dim = {dim}"),
        ));
    }
    if n_kv_heads > n_heads || !n_heads.is_multiple_of(n_kv_heads) {
        return Err(Error::checkpoint(
            name,
            format!("n_kv_heads = {n_kv_heads} does not divide n_heads = {n_heads}"),
        ));
    }
    if !(dim / n_heads).is_multiple_of(2) {
        return Err(Error::checkpoint(
            name,
            format!("head size {} (dim / n_heads) is odd: RoPE rotates pairs", dim / n_heads),
        ));
    }
    Ok(Config {
        dim,
        hidden_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        vocab_size,
        seq_len,
        shared_classifier,
    })
}

/// The one rule for Q8_0 group sizes: runq.c walks every row in whole groups, so the group
/// size must divide both widths a matrix can have, `dim` and `hidden_dim` (export.py checks
/// only `dim`; see docs/llama2c.md).
pub fn group_size_fits(c: &Config, group_size: usize) -> bool {
    group_size > 0 && c.dim.is_multiple_of(group_size) && c.hidden_dim.is_multiple_of(group_size)
}

fn check_group_size(gs: i32, c: &Config, name: &str) -> Result<usize> {
    if gs <= 0 {
        return Err(Error::checkpoint(
            name,
            format!("group_size = {gs} in the v2 header must be positive"),
        ));
    }
    if !group_size_fits(c, gs as usize) {
        return Err(Error::checkpoint(
            name,
            format!(
                "group_size = {gs} does not divide both dim = {} and hidden_dim = {}; runq.c would \
                 silently ignore the last columns. Re-quantize the fp32 checkpoint with \
                 `quantize in.bin out.bin` (it picks a group size dividing both)",
                c.dim, c.hidden_dim
            ),
        ));
    }
    Ok(gs as usize)
}
