//! The transformer forward pass of run.c (fp32) and runq.c (int8 Q8_0), one token at a time.

use crate::checkpoint::{Checkpoint, Config, Matrix, Weight};
use crate::error::{Error, Result};
use crate::kernels::{self, math};

/// Activation buffers and the KV cache, sized once from the config.
struct RunState {
    x: Vec<f32>,           // (dim,) the residual stream
    xb: Vec<f32>,          // (dim,) scratch inside the residual branch
    xb2: Vec<f32>,         // (dim,)
    hb: Vec<f32>,          // (hidden_dim,) FFN scratch
    hb2: Vec<f32>,         // (hidden_dim,)
    q: Vec<f32>,           // (dim,) query
    att: Vec<f32>,         // (n_heads, seq_len) attention scores
    logits: Vec<f32>,      // (vocab_size,)
    key_cache: Vec<f32>,   // (layer, seq_len, kv_dim)
    value_cache: Vec<f32>, // (layer, seq_len, kv_dim)
    xq: Vec<i16>,          // (max(dim, hidden_dim),) int8-quantized activation, int8 path
    xs: Vec<f32>,          // (max(dim, hidden_dim) / group_size,) its scales
}

/// A zeroed vector, or an error instead of an abort when memory runs out.
fn zeros<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("cannot allocate {what} ({n} values)")))?;
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
        4 * f32s + 2 * self.xq.len()
    }
}

/// `out = w · x`: fp32 directly; Q8_0 after quantizing `x` into the scratch `xq`/`xs`.
fn matmul(out: &mut [f32], x: &[f32], w: Matrix<'_>, xq: &mut [i16], xs: &mut [f32]) {
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

/// Batched [`matmul`]: `x` holds rows of width `n`, `out` the matching rows of `w`'s height.
fn matmul_batch(
    out: &mut [f32],
    x: &[f32],
    n: usize,
    w: Matrix<'_>,
    xq: &mut [i16],
    xs: &mut [f32],
) {
    match w {
        Matrix::F32(w) => kernels::matmul_batch(out, x, w, n),
        Matrix::Q8 { q, s, group_size } => {
            let (xq, xs) = (&mut xq[..x.len()], &mut xs[..x.len() / group_size]);
            for ((xq, xs), x) in xq
                .chunks_exact_mut(n)
                .zip(xs.chunks_exact_mut(n / group_size))
                .zip(x.chunks_exact(n))
            {
                kernels::quantize(xq, xs, x, group_size);
            }
            kernels::matmul_q8_batch(out, xq, xs, q, s, group_size, n);
        }
    }
}

/// Activations of a prefill batch, `tokens` rows each; empty until the first prefill.
#[derive(Default)]
struct Batch {
    tokens: usize,
    x: Vec<f32>,   // (tokens, dim)
    xb: Vec<f32>,  // (tokens, dim)
    xb2: Vec<f32>, // (tokens, dim)
    q: Vec<f32>,   // (tokens, dim)
    hb: Vec<f32>,  // (tokens, hidden_dim)
    hb2: Vec<f32>, // (tokens, hidden_dim)
    xq: Vec<i16>,  // (tokens, max(dim, hidden_dim)) int8 path only
    xs: Vec<f32>,  // its scales
}

impl Batch {
    fn bytes(&self) -> usize {
        4 * (self.x.len()
            + self.xb.len()
            + self.xb2.len()
            + self.q.len()
            + self.hb.len()
            + self.hb2.len()
            + self.xs.len())
            + 2 * self.xq.len()
    }
}

/// The model: its weights (views into the checkpoint buffer) and its run state.
pub struct Transformer {
    checkpoint: Checkpoint,
    state: RunState,
    batch: Batch,
}

impl Transformer {
    /// Allocates the run state (KV cache for the full `seq_len`) for `checkpoint`.
    pub fn new(checkpoint: Checkpoint) -> Result<Transformer> {
        let quantized = matches!(checkpoint.format(), crate::Format::V2 { .. });
        // Name the model that did not fit (its KV cache grows with seq_len, not the file).
        let state = RunState::new(checkpoint.config(), quantized).map_err(|err| match err {
            Error::OutOfMemory(problem) => {
                Error::OutOfMemory(format!("checkpoint '{}': {problem}", checkpoint.name()))
            }
            other => other,
        })?;
        Ok(Transformer { checkpoint, state, batch: Batch::default() })
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

    /// Bytes held: the checkpoint buffer plus the run state (and prefill buffers once used).
    pub fn memory_bytes(&self) -> usize {
        self.checkpoint.file_size() + self.state.bytes() + self.batch.bytes()
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
            matmul(
                &mut s.key_cache[kv_at.clone()],
                &s.xb,
                w.matrix(Weight::Wk, l),
                &mut s.xq,
                &mut s.xs,
            );
            matmul(
                &mut s.value_cache[kv_at.clone()],
                &s.xb,
                w.matrix(Weight::Wv, l),
                &mut s.xq,
                &mut s.xs,
            );

            rope(&mut s.q, &mut s.key_cache[kv_at], pos, head_size);

            let layer = loff..loff + c.seq_len * kv_dim;
            attention(
                &mut s.xb,
                &s.q,
                &s.key_cache[layer.clone()],
                &s.value_cache[layer],
                &mut s.att,
                pos,
                &c,
            );
            matmul(&mut s.xb2, &s.xb, w.matrix(Weight::Wo, l), &mut s.xq, &mut s.xs);
            add(&mut s.x, &s.xb2);

            // FFN: w2(silu(w1(x)) * w3(x)).
            kernels::rmsnorm(&mut s.xb, &s.x, w.rms_ffn(l));
            matmul(&mut s.hb, &s.xb, w.matrix(Weight::W1, l), &mut s.xq, &mut s.xs);
            matmul(&mut s.hb2, &s.xb, w.matrix(Weight::W3, l), &mut s.xq, &mut s.xs);
            swiglu(&mut s.hb, &s.hb2);
            matmul(&mut s.xb, &s.hb, w.matrix(Weight::W2, l), &mut s.xq, &mut s.xs);
            add(&mut s.x, &s.xb);
        }

        kernels::rmsnorm(&mut s.xb, &s.x, w.rms_final());
        matmul(&mut s.logits, &s.xb, w.matrix(Weight::Classifier, 0), &mut s.xq, &mut s.xs);
        &mut s.logits
    }

    /// Runs `tokens` at positions `pos..pos + tokens.len()` as that many [`forward`] calls
    /// would, but in batches: each weight matrix is read once per batch (matrix-matrix), and
    /// no logits are computed (the caller forwards the last prompt token for those). The KV
    /// cache ends up bitwise identical: batched matmuls run the very same sums per row.
    /// The caller keeps every token `< vocab_size` and `pos + tokens.len() <= seq_len`.
    ///
    /// [`forward`]: Transformer::forward
    pub fn prefill(&mut self, tokens: &[u32], pos: usize) {
        for (i, chunk) in tokens.chunks(PREFILL_BATCH).enumerate() {
            let at = pos + i * PREFILL_BATCH;
            if chunk.len() < 2 || self.batch_buffers(chunk.len()).is_err() {
                // One token, or no memory for the batch buffers: token by token.
                for (t, &token) in chunk.iter().enumerate() {
                    self.forward(token, at + t);
                }
                continue;
            }
            self.prefill_batch(chunk, at);
        }
    }

    /// Grows the batch buffers to `n` tokens (first prefill only: they stay allocated).
    fn batch_buffers(&mut self, n: usize) -> Result<()> {
        let c = *self.checkpoint.config();
        let quantized = !self.state.xq.is_empty();
        let b = &mut self.batch;
        if b.tokens >= n {
            return Ok(());
        }
        let wide = c.dim.max(c.hidden_dim);
        *b = Batch {
            tokens: n,
            x: zeros(n * c.dim, "prefill activations")?,
            xb: zeros(n * c.dim, "prefill activations")?,
            xb2: zeros(n * c.dim, "prefill activations")?,
            q: zeros(n * c.dim, "prefill activations")?,
            hb: zeros(n * c.hidden_dim, "prefill activations")?,
            hb2: zeros(n * c.hidden_dim, "prefill activations")?,
            xq: zeros(if quantized { n * wide } else { 0 }, "prefill activations")?,
            xs: zeros(if quantized { n * wide } else { 0 }, "prefill activations")?,
        };
        Ok(())
    }

    /// One batch of [`prefill`](Transformer::prefill): the buffers hold `tokens.len()` rows.
    fn prefill_batch(&mut self, tokens: &[u32], pos: usize) {
        let w = &self.checkpoint;
        let c = *w.config();
        let (s, b) = (&mut self.state, &mut self.batch);
        let (dim, hidden, kv_dim, head_size) = (c.dim, c.hidden_dim, c.kv_dim(), c.head_size());
        let n = tokens.len();
        let (x, xb, xb2, q) =
            (&mut b.x[..n * dim], &mut b.xb[..n * dim], &mut b.xb2[..n * dim], &mut b.q[..n * dim]);
        let (hb, hb2) = (&mut b.hb[..n * hidden], &mut b.hb2[..n * hidden]);
        let (xq, xs) = (&mut b.xq, &mut b.xs);

        for (x, &token) in x.chunks_exact_mut(dim).zip(tokens) {
            w.embedding(token as usize, x);
        }
        for l in 0..c.n_layers {
            for (xb, x) in xb.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                kernels::rmsnorm(xb, x, w.rms_att(l));
            }
            let loff = l * c.seq_len * kv_dim;
            let kv_at = loff + pos * kv_dim..loff + (pos + n) * kv_dim;
            matmul_batch(q, xb, dim, w.matrix(Weight::Wq, l), xq, xs);
            matmul_batch(&mut s.key_cache[kv_at.clone()], xb, dim, w.matrix(Weight::Wk, l), xq, xs);
            matmul_batch(
                &mut s.value_cache[kv_at.clone()],
                xb,
                dim,
                w.matrix(Weight::Wv, l),
                xq,
                xs,
            );
            let keys = s.key_cache[kv_at].chunks_exact_mut(kv_dim);
            for (t, (q, k)) in q.chunks_exact_mut(dim).zip(keys).enumerate() {
                rope(q, k, pos + t, head_size);
            }

            let layer = loff..loff + c.seq_len * kv_dim;
            let (keys, values) = (&s.key_cache[layer.clone()], &s.value_cache[layer]);
            for (t, (xb, q)) in xb.chunks_exact_mut(dim).zip(q.chunks_exact(dim)).enumerate() {
                attention(xb, q, keys, values, &mut s.att, pos + t, &c);
            }
            matmul_batch(xb2, xb, dim, w.matrix(Weight::Wo, l), xq, xs);
            add(x, xb2);

            for (xb, x) in xb.chunks_exact_mut(dim).zip(x.chunks_exact(dim)) {
                kernels::rmsnorm(xb, x, w.rms_ffn(l));
            }
            matmul_batch(hb, xb, dim, w.matrix(Weight::W1, l), xq, xs);
            matmul_batch(hb2, xb, dim, w.matrix(Weight::W3, l), xq, xs);
            swiglu(hb, hb2);
            matmul_batch(xb, hb, hidden, w.matrix(Weight::W2, l), xq, xs);
            add(x, xb);
        }
    }
}

/// Prompt tokens per prefill batch: enough to read each weight once for a typical prompt,
/// few enough that the batch buffers stay small (about 2 MB for the 110M shape).
const PREFILL_BATCH: usize = 64;

/// Multi-head attention of one position `pos` over positions `0..=pos` of one layer's cache
/// (`(seq_len, kv_dim)` each); query head `h` reads kv head `h / kv_mul`. Writes `xb (dim,)`.
fn attention(
    xb: &mut [f32],
    q: &[f32],
    keys: &[f32],
    values: &[f32],
    att: &mut [f32],
    pos: usize,
    c: &Config,
) {
    let (kv_dim, head_size) = (c.kv_dim(), c.head_size());
    let scale = (head_size as f32).sqrt();
    for h in 0..c.n_heads {
        let q = &q[h * head_size..(h + 1) * head_size];
        let att = &mut att[h * c.seq_len..h * c.seq_len + pos + 1];
        let kv_head = (h / c.kv_mul()) * head_size;
        kernels::dots(att, q, &keys[kv_head..], kv_dim);
        for a in att.iter_mut() {
            *a /= scale;
        }
        kernels::softmax(att);
        let xb = &mut xb[h * head_size..(h + 1) * head_size];
        xb.fill(0.0);
        kernels::weighted_sum(xb, att, &values[kv_head..], kv_dim);
    }
}

/// The residual connection: `x += d`.
fn add(x: &mut [f32], d: &[f32]) {
    for (x, d) in x.iter_mut().zip(d) {
        *x += d;
    }
}

/// SwiGLU in place: `hb = silu(hb) * hb2`, as run.c.
fn swiglu(hb: &mut [f32], hb2: &[f32]) {
    for (h, &g) in hb.iter_mut().zip(hb2) {
        let v = *h;
        *h = v * (1.0 / (1.0 + math::exp(-v))) * g;
    }
}

/// RoPE as run.c: rotate each pair (i, i+1) of q (all of it) and k (its kv_dim) by
/// `pos * 10000^(-(i % head_size) / head_size)`. The angle depends on `i % head_size` only, so
/// each is computed once and turns that pair of every head (run.c recomputes it per head).
fn rope(q: &mut [f32], k: &mut [f32], pos: usize, head_size: usize) {
    for j in (0..head_size).step_by(2) {
        let freq = 1.0 / math::pow(10000.0, j as f32 / head_size as f32);
        let val = pos as f32 * freq;
        let (fci, fcr) = math::sin_cos(val);
        for head in q.chunks_exact_mut(head_size).chain(k.chunks_exact_mut(head_size)) {
            let (v0, v1) = (head[j], head[j + 1]);
            head[j] = v0 * fcr - v1 * fci;
            head[j + 1] = v0 * fci + v1 * fcr;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{self, Formula};
    use crate::{Format, WeightBuffer};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A formula checkpoint (SPEC.md) of a small grouped-query shape in `format`.
    fn model(format: Format) -> Transformer {
        let config = export::config([32, 48, 2, 4, 2, 40, 160], true, "test").expect("shape");
        let mut bytes = Vec::new();
        export::write_checkpoint(
            &mut bytes,
            &config,
            format,
            &mut Formula::new(&config, 5),
            "test",
        )
        .expect("write");
        let buffer = WeightBuffer::from_bytes(&bytes).expect("buffer");
        Transformer::new(Checkpoint::from_buffer(buffer, "test").expect("parse")).expect("model")
    }

    /// Prefill (several batches, a short last one) leaves the very same KV cache and the same
    /// next logits as one `forward` per token.
    #[test]
    fn prefill_equals_forward_per_token() {
        for format in [Format::V0, Format::V2 { group_size: 16 }] {
            let tokens: Vec<u32> =
                (0..PREFILL_BATCH as u32 + 9).map(|t| (t * 7 + 3) % 40).collect();
            let (mut batched, mut single) = (model(format), model(format));
            batched.prefill(&tokens[..tokens.len() - 1], 0);
            for (pos, &t) in tokens[..tokens.len() - 1].iter().enumerate() {
                single.forward(t, pos);
            }
            assert!(batched.state.key_cache == single.state.key_cache, "{format}: keys differ");
            assert!(
                batched.state.value_cache == single.state.value_cache,
                "{format}: values differ"
            );
            let last = tokens[tokens.len() - 1];
            let pos = tokens.len() - 1;
            assert_eq!(
                batched.forward(last, pos).to_vec(),
                single.forward(last, pos).to_vec(),
                "{format}"
            );
        }
    }
}
