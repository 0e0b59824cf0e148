//! Checkpoints: one aligned byte buffer holding a llama2.c v0, v1 or v2 (int8 Q8_0) file.
//!
//! Parsing reads and checks the header, computes where every tensor lies, and checks that
//! the buffer holds exactly that many bytes. Nothing is copied: the model reads its weights
//! through views ([`Checkpoint::f32s`], [`Checkpoint::matrix`]) into the buffer.

use std::fmt;

use crate::error::{Error, Result};

/// `"ak42"` read as a little-endian u32: the magic of the v1 and v2 formats.
pub const MAGIC: u32 = 0x616b_3432;
/// The header of v1 and v2 files is padded to this size.
pub const V1_HEADER_BYTES: usize = 256;
/// v0 has no magic: its header is just the 7 config i32s.
pub const V0_HEADER_BYTES: usize = 28;

/// Bounds that keep a corrupt header from asking for absurd memory before the size check.
/// Real Llama 2 models are far below them (Llama 2 70B: dim 8192, 80 layers, 4096 context).
const MAX_DIM: usize = 1 << 16;
const MAX_LAYERS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 20;
const MAX_SEQ_LEN: usize = 1 << 17; // 131072, Llama 3.1's context

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
    /// Maximum sequence length: the size of the KV cache.
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
    pub fn n_params(&self) -> usize {
        let per_layer = 2 * self.dim
            + 2 * self.dim * self.dim
            + 2 * self.kv_dim() * self.dim
            + 3 * self.dim * self.hidden_dim;
        let cls = if self.shared_classifier { 0 } else { self.vocab_size * self.dim };
        self.vocab_size * self.dim + self.n_layers * per_layer + self.dim + cls
    }

    /// Bytes of the f32 KV cache (keys and values, all layers, full context).
    pub fn kv_cache_bytes(&self) -> usize {
        2 * self.n_layers * self.seq_len * self.kv_dim() * 4
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

/// A zeroed, 4-byte aligned byte buffer: the whole checkpoint file, loaded once.
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
            Error::OutOfMemory(format!("cannot reserve {len} bytes for the checkpoint"))
        })?;
        words.resize(len.div_ceil(4), 0);
        Ok(WeightBuffer { words, len })
    }

    /// Copies `bytes` into a new buffer (tests and native tools).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut buffer = WeightBuffer::new(bytes.len())?;
        buffer.as_bytes_mut().copy_from_slice(bytes);
        Ok(buffer)
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

/// Where an f32 tensor lies in the buffer: byte offset (4-aligned) and number of floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct F32Ref {
    offset: usize,
    len: usize,
}

/// Where a weight matrix (all layers of it) lies: `layers` matrices of `rows x cols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixRef {
    pub rows: usize,
    pub cols: usize,
    /// Byte offset of layer 0.
    offset: usize,
    /// Bytes from one layer's matrix to the next.
    stride: usize,
    /// `Some(group_size)` for Q8_0: each layer is `rows*cols` i8 then `rows*cols/gs` f32 scales.
    group_size: Option<usize>,
}

/// One layer's matrix, viewed in the buffer. Row-major: `out[i] = sum_j w[i*cols + j] x[j]`.
#[derive(Clone, Copy)]
pub enum Matrix<'a> {
    F32(&'a [f32]),
    Q8 { q: &'a [i8], s: &'a [f32], group_size: usize },
}

/// Positions of every tensor of the model in the buffer.
#[derive(Debug, Clone, Copy)]
struct Layout {
    rms_att: F32Ref,            // (layer, dim)
    rms_ffn: F32Ref,            // (layer, dim)
    rms_final: F32Ref,          // (dim,)
    token_embedding: MatrixRef, // (vocab_size, dim)
    wq: MatrixRef,              // (layer, dim, dim)
    wk: MatrixRef,              // (layer, kv_dim, dim)
    wv: MatrixRef,              // (layer, kv_dim, dim)
    wo: MatrixRef,              // (layer, dim, dim)
    w1: MatrixRef,              // (layer, hidden_dim, dim)
    w2: MatrixRef,              // (layer, dim, hidden_dim)
    w3: MatrixRef,              // (layer, hidden_dim, dim)
    wcls: MatrixRef,            // (vocab_size, dim)
}

/// Names of the weight matrices, to ask the checkpoint for one.
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

/// A parsed checkpoint: config, format and the buffer its weights are viewed in.
pub struct Checkpoint {
    name: String,
    config: Config,
    format: Format,
    layout: Layout,
    buffer: WeightBuffer,
}

impl Checkpoint {
    /// Parses and checks a checkpoint held in `buffer`; `name` (the file name) is used in errors.
    pub fn from_buffer(buffer: WeightBuffer, name: &str) -> Result<Checkpoint> {
        let (config, format, header_bytes) = read_header(buffer.as_bytes(), name)?;
        let (layout, end) = plan_layout(&config, format, header_bytes, name)?;
        let size = buffer.len();
        if end > size {
            return Err(Error::checkpoint(
                name,
                format!(
                    "truncated: the {format} header ({}) needs {end} bytes but the file has {size}",
                    shape(&config)
                ),
            ));
        }
        if end < size {
            return Err(Error::checkpoint(
                name,
                format!(
                    "{} bytes more than the {format} header ({}) describes ({end} bytes): \
                     the header or the file is corrupt",
                    size - end,
                    shape(&config)
                ),
            ));
        }
        Ok(Checkpoint { name: name.to_string(), config, format, layout, buffer })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn file_size(&self) -> usize {
        self.buffer.len()
    }

    /// Gives the buffer back, e.g. to reuse its memory.
    pub fn into_buffer(self) -> WeightBuffer {
        self.buffer
    }

    /// The RMSNorm weights before attention, layer `l`.
    pub fn rms_att(&self, l: usize) -> &[f32] {
        let dim = self.config.dim;
        &self.f32s(self.layout.rms_att)[l * dim..(l + 1) * dim]
    }

    /// The RMSNorm weights before the FFN, layer `l`.
    pub fn rms_ffn(&self, l: usize) -> &[f32] {
        let dim = self.config.dim;
        &self.f32s(self.layout.rms_ffn)[l * dim..(l + 1) * dim]
    }

    /// The final RMSNorm weights.
    pub fn rms_final(&self) -> &[f32] {
        self.f32s(self.layout.rms_final)
    }

    /// Layer `l`'s matrix `w` (the layer is ignored for the embedding and classifier).
    pub fn matrix(&self, w: Weight, l: usize) -> Matrix<'_> {
        let m = match w {
            Weight::Wq => self.layout.wq,
            Weight::Wk => self.layout.wk,
            Weight::Wv => self.layout.wv,
            Weight::Wo => self.layout.wo,
            Weight::W1 => self.layout.w1,
            Weight::W2 => self.layout.w2,
            Weight::W3 => self.layout.w3,
            Weight::Classifier => self.layout.wcls,
            Weight::TokenEmbedding => self.layout.token_embedding,
        };
        let layer = if matches!(w, Weight::Classifier | Weight::TokenEmbedding) { 0 } else { l };
        self.view(m, layer)
    }

    /// Copies the embedding of `token` into `out` (dequantizing a Q8_0 row as runq.c does).
    pub fn embedding(&self, token: usize, out: &mut [f32]) {
        let dim = self.config.dim;
        match self.matrix(Weight::TokenEmbedding, 0) {
            Matrix::F32(w) => out.copy_from_slice(&w[token * dim..(token + 1) * dim]),
            Matrix::Q8 { q, s, group_size } => {
                for (i, o) in out.iter_mut().enumerate() {
                    let j = token * dim + i;
                    *o = q[j] as f32 * s[j / group_size];
                }
            }
        }
    }

    fn view(&self, m: MatrixRef, layer: usize) -> Matrix<'_> {
        let bytes = self.buffer.as_bytes();
        let n = m.rows * m.cols;
        let start = m.offset + layer * m.stride;
        match m.group_size {
            None => Matrix::F32(bytemuck::cast_slice(&bytes[start..start + 4 * n])),
            Some(gs) => {
                let s_start = start + n;
                Matrix::Q8 {
                    q: bytemuck::cast_slice(&bytes[start..s_start]),
                    s: bytemuck::cast_slice(&bytes[s_start..s_start + 4 * (n / gs)]),
                    group_size: gs,
                }
            }
        }
    }

    fn f32s(&self, r: F32Ref) -> &[f32] {
        bytemuck::cast_slice(&self.buffer.as_bytes()[r.offset..r.offset + 4 * r.len])
    }
}

/// "dim=64 hidden_dim=172 ..." for messages.
fn shape(c: &Config) -> String {
    format!(
        "dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}",
        c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len
    )
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads the header: the config, the format and the header's size in bytes.
fn read_header(bytes: &[u8], name: &str) -> Result<(Config, Format, usize)> {
    if bytes.len() < V0_HEADER_BYTES {
        return Err(Error::checkpoint(
            name,
            format!("truncated: {} bytes is smaller than any checkpoint header", bytes.len()),
        ));
    }
    let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if magic != MAGIC {
        // v0: the 7 config ints, a negative vocab_size meaning an unshared classifier.
        let fields: Vec<i32> = (0..7).map(|i| read_i32(bytes, 4 * i)).collect();
        let shared = fields[5] > 0;
        let mut fields = fields;
        fields[5] = fields[5].checked_abs().unwrap_or(-1);
        let config = check_config(&fields, shared, name)?;
        return Ok((config, Format::V0, V0_HEADER_BYTES));
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
    let version = read_i32(bytes, 4);
    let fields: Vec<i32> = (0..7).map(|i| read_i32(bytes, 8 + 4 * i)).collect();
    let shared = match bytes[36] {
        0 => false,
        1 => true,
        other => {
            return Err(Error::checkpoint(
                name,
                format!("the shared-classifier flag is {other}, expected 0 or 1"),
            ))
        }
    };
    let config = check_config(&fields, shared, name)?;
    match version {
        1 => Ok((config, Format::V1, V1_HEADER_BYTES)),
        2 => {
            let gs = read_i32(bytes, 37);
            let group_size = check_group_size(gs, &config, name)?;
            Ok((config, Format::V2 { group_size }, V1_HEADER_BYTES))
        }
        v => Err(Error::checkpoint(
            name,
            format!("unsupported version {v} after the 'ak42' magic (supported: 1 and 2)"),
        )),
    }
}

/// Checks the 7 header ints (vocab already made positive) and builds the Config.
pub(crate) fn check_config(f: &[i32], shared_classifier: bool, name: &str) -> Result<Config> {
    let names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
    let limits = [MAX_DIM, MAX_DIM * 8, MAX_LAYERS, MAX_DIM, MAX_DIM, MAX_VOCAB, MAX_SEQ_LEN];
    for ((&value, field), limit) in f.iter().zip(names).zip(limits) {
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
        [f[0], f[1], f[2], f[3], f[4], f[5], f[6]].map(|v| v as usize);
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

/// runq.c walks every row in whole groups, so the group size must divide both widths.
fn check_group_size(gs: i32, c: &Config, name: &str) -> Result<usize> {
    if gs <= 0 {
        return Err(Error::checkpoint(
            name,
            format!("group_size = {gs} in the v2 header must be positive"),
        ));
    }
    let gs = gs as usize;
    if !c.dim.is_multiple_of(gs) || !c.hidden_dim.is_multiple_of(gs) {
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
    Ok(gs)
}

/// Lays the tensors out in file order; returns the layout and the file's expected size.
/// All arithmetic is checked: a corrupt header gives an error, never an overflow.
fn plan_layout(c: &Config, format: Format, header: usize, name: &str) -> Result<(Layout, usize)> {
    let too_big = || Error::checkpoint(name, format!("the header's sizes overflow ({})", shape(c)));
    let mut at = header;
    let l = c.n_layers;
    let group_size = match format {
        Format::V2 { group_size } => Some(group_size),
        _ => None,
    };

    // Reserves `len` f32s at the cursor.
    let f32s = |at: &mut usize, len: usize| -> Result<F32Ref> {
        let r = F32Ref { offset: *at, len };
        *at = len.checked_mul(4).and_then(|b| at.checked_add(b)).ok_or_else(too_big)?;
        Ok(r)
    };
    // Reserves `layers` matrices of rows x cols at the cursor, fp32 or Q8_0.
    let matrices = |at: &mut usize, layers: usize, rows: usize, cols: usize| -> Result<MatrixRef> {
        let n = rows.checked_mul(cols).ok_or_else(too_big)?;
        let stride = match group_size {
            None => n.checked_mul(4),
            // int8 values then one f32 scale per group; cols % gs == 0 so rows*cols % gs == 0.
            Some(gs) => (n / gs).checked_mul(4).and_then(|s| s.checked_add(n)),
        }
        .ok_or_else(too_big)?;
        if group_size.is_some() && !(*at % 4 + n % 4).is_multiple_of(4) {
            return Err(Error::checkpoint(
                name,
                format!(
                    "a {rows}x{cols} int8 tensor leaves its scales unaligned; unsupported shape"
                ),
            ));
        }
        let m = MatrixRef { rows, cols, offset: *at, stride, group_size };
        *at = stride.checked_mul(layers).and_then(|b| at.checked_add(b)).ok_or_else(too_big)?;
        Ok(m)
    };

    let (dim, hidden, kv_dim, vocab) = (c.dim, c.hidden_dim, c.kv_dim(), c.vocab_size);
    // The two orders differ only up to the classifier, which both put last when unshared.
    let (rms_att, rms_ffn, rms_final, token_embedding, [wq, wk, wv, wo, w1, w2, w3]) = match format
    {
        Format::V0 => {
            let token_embedding = matrices(&mut at, 1, vocab, dim)?;
            let rms_att = f32s(&mut at, l * dim)?;
            let wq = matrices(&mut at, l, dim, dim)?;
            let wk = matrices(&mut at, l, kv_dim, dim)?;
            let wv = matrices(&mut at, l, kv_dim, dim)?;
            let wo = matrices(&mut at, l, dim, dim)?;
            let rms_ffn = f32s(&mut at, l * dim)?;
            let w1 = matrices(&mut at, l, hidden, dim)?;
            let w2 = matrices(&mut at, l, dim, hidden)?;
            let w3 = matrices(&mut at, l, hidden, dim)?;
            let rms_final = f32s(&mut at, dim)?;
            // The old RoPE table (freq_cis_real and freq_cis_imag), unused.
            f32s(&mut at, c.seq_len.checked_mul(c.head_size()).ok_or_else(too_big)?)?;
            (rms_att, rms_ffn, rms_final, token_embedding, [wq, wk, wv, wo, w1, w2, w3])
        }
        Format::V1 | Format::V2 { .. } => {
            let rms_att = f32s(&mut at, l * dim)?;
            let rms_ffn = f32s(&mut at, l * dim)?;
            let rms_final = f32s(&mut at, dim)?;
            let token_embedding = matrices(&mut at, 1, vocab, dim)?;
            let wq = matrices(&mut at, l, dim, dim)?;
            let wk = matrices(&mut at, l, kv_dim, dim)?;
            let wv = matrices(&mut at, l, kv_dim, dim)?;
            let wo = matrices(&mut at, l, dim, dim)?;
            let w1 = matrices(&mut at, l, hidden, dim)?;
            let w2 = matrices(&mut at, l, dim, hidden)?;
            let w3 = matrices(&mut at, l, hidden, dim)?;
            (rms_att, rms_ffn, rms_final, token_embedding, [wq, wk, wv, wo, w1, w2, w3])
        }
    };
    let wcls =
        if c.shared_classifier { token_embedding } else { matrices(&mut at, 1, vocab, dim)? };
    let layout =
        Layout { rms_att, rms_ffn, rms_final, token_embedding, wq, wk, wv, wo, w1, w2, w3, wcls };
    Ok((layout, at))
}
