//! The transformer forward pass of run.c (fp32) and runq.c (int8 Q8_0), one token at a time.

use crate::checkpoint::{Checkpoint, Config, Matrix, Weight};
use crate::error::{Error, Result};
use crate::kernels;

/// Activation buffers and the KV cache, sized once from the config.
struct RunState {
    x: Vec<f32>,      // (dim,) the residual stream
    xb: Vec<f32>,     // (dim,) scratch inside the residual branch
    xb2: Vec<f32>,    // (dim,)
    hb: Vec<f32>,     // (hidden_dim,) FFN scratch
    hb2: Vec<f32>,    // (hidden_dim,)
    q: Vec<f32>,      // (dim,) query
    att: Vec<f32>,    // (n_heads, seq_len) attention scores
    logits: Vec<f32>, // (vocab_size,)
    key_cache: Vec<f32>,   // (layer, seq_len, kv_dim)
    value_cache: Vec<f32>, // (layer, seq_len, kv_dim)
    xq: Vec<i8>,      // (max(dim, hidden_dim),) quantized activation, int8 path only
    xs: Vec<f32>,     // (max(dim, hidden_dim) / group_size,) its scales
}

/// A zeroed vector, or an error instead of an abort when memory runs out.
fn zeros<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::OutOfMemory(format!("cannot allocate {what} ({n} values)"))
    })?;
    v.resize(n, T::default());
    Ok(v)
}

impl RunState {
    fn new(c: &Config, quantized: bool) -> Result<RunState> {
        let kv = c
            .n_layers
            .checked_mul(c.seq_len)
            .and_then(|n| n.checked_mul(c.kv_dim()))
            .ok_or_else(|| Error::OutOfMemory("the KV cache size overflows".into()))?;
        let wide = c.dim.max(c.hidden_dim);
        Ok(RunState {
            x: zeros(c.dim, "activations")?,
            xb: zeros(c.dim, "activations")?,
            xb2: zeros(c.dim, "activations")?,
            hb: zeros(c.hidden_dim, "activations")?,
            hb2: zeros(c.hidden_dim, "activations")?,
            q: zeros(c.dim, "activations")?,
            att: zeros(c.n_heads * c.seq_len, "attention scores")?,
            logits: zeros(c.vocab_size, "logits")?,
            key_cache: zeros(kv, "the key cache")?,
            value_cache: zeros(kv, "the value cache")?,
            xq: zeros(if quantized { wide } else { 0 }, "quantized activations")?,
            xs: zeros(if quantized { wide } else { 0 }, "quantization scales")?,
        })
    }

    fn bytes(&self) -> usize {
        let f32s = self.x.len()
            + self.xb.len()
            + self.xb2.len()
            + self.hb.len()
            + self.hb2.len()
            + self.q.len()
            + self.att.len()
            + self.logits.len()
            + self.key_cache.len()
            + self.value_cache.len()
            + self.xs.len();
        4 * f32s + self.xq.len()
    }
}

/// `out = w · x`: fp32 directly; Q8_0 after quantizing `x` into the scratch `xq`/`xs`.
fn matmul(out: &mut [f32], x: &[f32], w: Matrix<'_>, xq: &mut [i8], xs: &mut [f32]) {
    match w {
        Matrix::F32(w) => kernels::matmul(out, x, w),
        Matrix::Q8 { q, s, group_size } => {
            let n = x.len();
            let (xq, xs) = (&mut xq[..n], &mut xs[..n / group_size]);
            kernels::quantize(xq, xs, x, group_size);
            kernels::matmul_q8(out, xq, xs, q, s, group_size);
        }
    }
}

/// The model: its weights (views into the checkpoint buffer) and its run state.
pub struct Transformer {
    checkpoint: Checkpoint,
    state: RunState,
}

impl Transformer {
    /// Allocates the run state (KV cache for the full `seq_len`) for `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> Result<Transformer> {
        let quantized = matches!(checkpoint.format(), crate::Format::V2 { .. });
        let state = RunState::new(checkpoint.config(), quantized)?;
        Ok(Transformer { checkpoint, state })
    }

    pub fn config(&self) -> &Config {
        self.checkpoint.config()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn into_checkpoint(self) -> Checkpoint {
        self.checkpoint
    }

    /// Bytes held: the checkpoint buffer plus the run state.
    pub fn memory_bytes(&self) -> usize {
        self.checkpoint.file_size() + self.state.bytes()
    }

    /// Runs `token` at position `pos` and returns the logits for the next token (mutable:
    /// the sampler turns them into probabilities in place).
    /// The caller keeps `token < vocab_size` and `pos < seq_len`.
    pub fn forward(&mut self, token: u32, pos: usize) -> &mut [f32] {
        let w = &self.checkpoint;
        let c = *w.config();
        let s = &mut self.state;
        let (kv_dim, head_size) = (c.kv_dim(), c.head_size());

        w.embedding(token as usize, &mut s.x);

        for l in 0..c.n_layers {
            // Attention: q, k, v for this position; k and v go straight into the cache.
            kernels::rmsnorm(&mut s.xb, &s.x, w.rms_att(l));
            let loff = l * c.seq_len * kv_dim;
            let kv_at = loff + pos * kv_dim..loff + (pos + 1) * kv_dim;
            matmul(&mut s.q, &s.xb, w.matrix(Weight::Wq, l), &mut s.xq, &mut s.xs);
            matmul(&mut s.key_cache[kv_at.clone()], &s.xb, w.matrix(Weight::Wk, l), &mut s.xq, &mut s.xs);
            matmul(&mut s.value_cache[kv_at.clone()], &s.xb, w.matrix(Weight::Wv, l), &mut s.xq, &mut s.xs);

            rope(&mut s.q, &mut s.key_cache[kv_at], pos, head_size);

            // Multi-head attention over positions 0..=pos; query head h reads kv head h/kv_mul.
            for h in 0..c.n_heads {
                let q = &s.q[h * head_size..(h + 1) * head_size];
                let att = &mut s.att[h * c.seq_len..h * c.seq_len + pos + 1];
                let kv_head = (h / c.kv_mul()) * head_size;
                let scale = (head_size as f32).sqrt();
                for (t, a) in att.iter_mut().enumerate() {
                    let k = &s.key_cache[loff + t * kv_dim + kv_head..][..head_size];
                    *a = kernels::dot(q, k) / scale;
                }
                kernels::softmax(att);
                let xb = &mut s.xb[h * head_size..(h + 1) * head_size];
                xb.fill(0.0);
                for (t, &a) in att.iter().enumerate() {
                    let v = &s.value_cache[loff + t * kv_dim + kv_head..][..head_size];
                    kernels::axpy(xb, a, v);
                }
            }
            matmul(&mut s.xb2, &s.xb, w.matrix(Weight::Wo, l), &mut s.xq, &mut s.xs);
            for (x, d) in s.x.iter_mut().zip(&s.xb2) {
                *x += d;
            }

            // FFN: w2(silu(w1(x)) * w3(x)).
            kernels::rmsnorm(&mut s.xb, &s.x, w.rms_ffn(l));
            matmul(&mut s.hb, &s.xb, w.matrix(Weight::W1, l), &mut s.xq, &mut s.xs);
            matmul(&mut s.hb2, &s.xb, w.matrix(Weight::W3, l), &mut s.xq, &mut s.xs);
            for (h, &g) in s.hb.iter_mut().zip(&s.hb2) {
                let v = *h;
                *h = v * (1.0 / (1.0 + (-v).exp())) * g;
            }
            matmul(&mut s.xb, &s.hb, w.matrix(Weight::W2, l), &mut s.xq, &mut s.xs);
            for (x, d) in s.x.iter_mut().zip(&s.xb) {
                *x += d;
            }
        }

        kernels::rmsnorm(&mut s.xb, &s.x, w.rms_final());
        matmul(&mut s.logits, &s.xb, w.matrix(Weight::Classifier, 0), &mut s.xq, &mut s.xs);
        &mut s.logits
    }
}

/// RoPE as run.c: rotate each pair (i, i+1) of q (all of it) and k (its kv_dim) by
/// `pos * 10000^(-(i % head_size) / head_size)`.
fn rope(q: &mut [f32], k: &mut [f32], pos: usize, head_size: usize) {
    for i in (0..q.len()).step_by(2) {
        let head_dim = (i % head_size) as f32;
        let freq = 1.0 / 10000.0f32.powf(head_dim / head_size as f32);
        let val = pos as f32 * freq;
        let (fci, fcr) = val.sin_cos();
        let rotate = |v: &mut [f32]| {
            let (v0, v1) = (v[i], v[i + 1]);
            v[i] = v0 * fcr - v1 * fci;
            v[i + 1] = v0 * fci + v1 * fcr;
        };
        rotate(q);
        if i < k.len() {
            rotate(k);
        }
    }
}
