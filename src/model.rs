//! The transformer forward pass of run.c (fp32) and runq.c (int8 Q8_0), for a batch of
//! tokens (one when decoding, up to [`PREFILL_BATCH`] of a prompt), on the whole model or
//! on one shard of it (`shard.rs`).
//!
//! Read it top to bottom as run.c's `forward()`: [`Transformer::pass`] looks up the embedding,
//! runs every layer's [`attention`] then [`ffn`] (each a few matmuls on the rows of the batch),
//! and applies the classifier. The math is all here; `kernels` only holds the inner loops.
//!
//! **The meetings.** A shard computes only its rows of each matrix (`shard.rs`), so where the
//! next matrix needs a whole vector of which each shard computed a part, the shards meet and
//! swap parts: one line each, named `share_*` (the [`Plan`]'s methods, the only code here that
//! touches `link.rs`): after the embedding lookup, after attention, after `wo`, after the
//! SwiGLU and after `w2`; and the leader alone receives the logits. That is why the pass is an
//! `async fn`: in the browser a meeting waits for other workers without blocking a thread.
//! Alone (one shard), every meeting returns at once and does nothing.

use std::ops::Range;

use crate::checkpoint::{Checkpoint, Matrix};
use crate::config::{Config, Format, Weight};
use crate::error::{Error, Result};
use crate::inspect::{Ablation, LayerTrace, Trace};
use crate::kernels::{self, math};
use crate::link::{Command, Link, Look, Parts, To};
use crate::shard::Shard;

/// Prompt tokens per batch: enough to read each weight once for a typical prompt, few enough
/// that the batch buffers stay small (about 2 MB for the 110M shape).
pub const PREFILL_BATCH: usize = 64;

/// The most u32s an encoded [`Command`] has: its header and a prefill batch of tokens (the
/// size of the command slot the browser's workers share).
pub const COMMAND_WORDS: usize = Command::HEADER_WORDS + PREFILL_BATCH;

/// The model (or one shard of it): weights, KV cache and activations.
pub struct Transformer {
    checkpoint: Checkpoint,
    plan: Plan,
    /// Positions the KV cache holds: at most `seq_len`.
    context: usize,
    state: RunState,
    link: Link,
    /// Positions run through the model so far (rows of every pass): what a test of "no pass
    /// over the prefix" counts.
    positions_run: u64,
    /// What is switched off (every shard of a split model holds the same).
    ablation: Ablation,
}

/// What each shard computes, by shard index: columns of the vectors the shards meet on.
struct Plan {
    me: Shard,
    /// Query-head columns of the attention output (`dim` wide).
    heads: Vec<Range<usize>>,
    /// Rows of `wo` and `w2` (`dim` wide).
    dim: Vec<Range<usize>>,
    /// Hidden units (`hidden_dim` wide).
    hidden: Vec<Range<usize>>,
    /// Key/value-head columns of k and v (`kv_dim` wide): only a trace gathers them.
    kv: Vec<Range<usize>>,
    /// Vocabulary rows: embedding rows and logits.
    vocab: Vec<Range<usize>>,
}

impl Plan {
    fn new(c: &Config, me: Shard) -> Plan {
        let all = |w: Weight| me.all().map(|s| s.rows(c, w)).collect();
        Plan {
            me,
            heads: all(Weight::Wq),
            dim: all(Weight::Wo),
            hidden: all(Weight::W1),
            kv: all(Weight::Wk),
            vocab: all(Weight::Classifier),
        }
    }
}

/// The meetings (see the module's doc): every shard gets the parts the others computed.
impl Plan {
    /// The embedding rows of `tokens` (rows of `dim`): each shard looked up the rows it holds.
    async fn share_embeddings(
        &self,
        link: &mut Link,
        x: &mut [f32],
        c: &Config,
        tokens: &[u32],
    ) -> Result<()> {
        if self.me.count == 1 {
            return Ok(());
        }
        let owners: Vec<usize> =
            tokens.iter().map(|&t| Shard::owner_of_token(c, self.me.count, t as usize)).collect();
        link.gather(x, Parts::Rows { width: c.dim, owners: &owners }, To::Everyone).await
    }

    /// The attention output of every head (`n` rows of `dim`): `wo` reads all heads.
    async fn share_heads(&self, link: &mut Link, xb: &mut [f32], n: usize) -> Result<()> {
        let width = xb.len() / n;
        link.gather(xb, Parts::Columns { rows: n, width, ranges: &self.heads }, To::Everyone).await
    }

    /// `wo`'s or `w2`'s whole output (`n` rows of `dim`): every shard keeps the whole residual.
    async fn share_dim(&self, link: &mut Link, out: &mut [f32], n: usize) -> Result<()> {
        let width = out.len() / n;
        link.gather(out, Parts::Columns { rows: n, width, ranges: &self.dim }, To::Everyone).await
    }

    /// Every hidden unit (`n` rows of `hidden_dim`): `w2` reads them all.
    async fn share_hidden(&self, link: &mut Link, hb: &mut [f32], n: usize) -> Result<()> {
        let width = hb.len() / n;
        link.gather(hb, Parts::Columns { rows: n, width, ranges: &self.hidden }, To::Everyone).await
    }

    /// The captured attention weights, `(layer, n_heads, positions)`, to the leader only (the
    /// reader shows them): each shard has its own heads'.
    async fn attention_to_leader(
        &self,
        link: &mut Link,
        att: &mut [f32],
        c: &Config,
        positions: usize,
    ) -> Result<()> {
        let heads: Vec<Range<usize>> = (self.heads.iter())
            .map(|h| h.start / c.head_size() * positions..h.end / c.head_size() * positions)
            .collect();
        let parts =
            Parts::Columns { rows: c.n_layers, width: c.n_heads * positions, ranges: &heads };
        link.gather(att, parts, To::Leader).await
    }

    /// A trace's queries (`(layer, dim)`, by heads) and keys and values (`(layer, kv_dim)`,
    /// by key/value heads), to the leader only: each shard computed its own heads'.
    async fn trace_to_leader(&self, link: &mut Link, t: &mut TraceBuf, c: &Config) -> Result<()> {
        let rows = c.n_layers;
        let heads = Parts::Columns { rows, width: c.dim, ranges: &self.heads };
        link.gather(&mut t.q, heads, To::Leader).await?;
        for kv in [&mut t.k, &mut t.v] {
            let parts = Parts::Columns { rows, width: c.kv_dim(), ranges: &self.kv };
            link.gather(kv, parts, To::Leader).await?;
        }
        Ok(())
    }

    /// `rows` rows of logits over the vocabulary, to the leader only (it samples them; the
    /// logit lens is one row per layer).
    async fn logits_to_leader(
        &self,
        link: &mut Link,
        logits: &mut [f32],
        rows: usize,
    ) -> Result<()> {
        let width = logits.len() / rows;
        link.gather(logits, Parts::Columns { rows, width, ranges: &self.vocab }, To::Leader).await
    }
}

/// The KV cache (this shard's key/value heads) and the activations.
///
/// Each layer's cache is reserved for `context` positions at load, but holds (and so writes)
/// only the positions run so far: a reservation is not written, so a long context costs only
/// what is used of it, as run.c's calloc does natively. (A zeroed buffer is written whole in
/// wasm, whose allocator clears every zeroed block: 2 GB at load for a 10 MB checkpoint whose
/// header says seq_len 131072.)
struct RunState {
    key_cache: Vec<Vec<f32>>, // (layer)(positions run, kv_local) kv_local = this shard's kv heads * head_size
    value_cache: Vec<Vec<f32>>, // (layer)(positions run, kv_local)
    att: Vec<f32>,            // (context,) one head's attention weights
    logits: Vec<f32>,         // (vocab_size,) the last token's; whole on the leader after a pass
    batch: Batch,
    seen: Seen,
}

/// What a pass captured of its last token (`Look`); empty until asked for, then kept.
#[derive(Default)]
struct Seen {
    attention: Vec<f32>, // (layer, n_heads, pos + 1) the softmax weights (the leader: all heads)
    residual: Vec<f32>,  // (layer, dim) the residual stream after each layer
    lens: Vec<f32>,      // (layer, vocab_size) the classifier on each normed residual
    trace: TraceBuf,
}

/// A trace's vectors as the pass writes them: per layer, rows of one width (`inspect::Trace`
/// names them). q, k and v hold only this shard's heads until `trace_to_leader`.
#[derive(Default)]
struct TraceBuf {
    embedding: Vec<f32>,     // (dim,)
    attn_norm: Vec<f32>,     // (layer, dim)
    q: Vec<f32>,             // (layer, dim) after RoPE
    k: Vec<f32>,             // (layer, kv_dim) after RoPE
    v: Vec<f32>,             // (layer, kv_dim)
    heads_out: Vec<f32>,     // (layer, dim)
    attn_out: Vec<f32>,      // (layer, dim)
    residual_attn: Vec<f32>, // (layer, dim)
    ffn_norm: Vec<f32>,      // (layer, dim)
    gate: Vec<f32>,          // (layer, hidden_dim)
    ffn_out: Vec<f32>,       // (layer, dim)
    residual_ffn: Vec<f32>,  // (layer, dim)
    final_norm: Vec<f32>,    // (dim,)
}

impl TraceBuf {
    fn resize(&mut self, c: &Config) {
        let (l, dim) = (c.n_layers, c.dim);
        for (v, n) in [
            (&mut self.embedding, dim),
            (&mut self.attn_norm, l * dim),
            (&mut self.q, l * dim),
            (&mut self.k, l * c.kv_dim()),
            (&mut self.v, l * c.kv_dim()),
            (&mut self.heads_out, l * dim),
            (&mut self.attn_out, l * dim),
            (&mut self.residual_attn, l * dim),
            (&mut self.ffn_norm, l * dim),
            (&mut self.gate, l * c.hidden_dim),
            (&mut self.ffn_out, l * dim),
            (&mut self.residual_ffn, l * dim),
            (&mut self.final_norm, dim),
        ] {
            v.clear();
            v.resize(n, 0.0);
        }
    }
}

/// Keeps `row` as layer `l`'s row of a trace's `(layer, row.len())` vector.
fn keep(into: &mut [f32], l: usize, row: &[f32]) {
    into[l * row.len()..(l + 1) * row.len()].copy_from_slice(row);
}

/// The activations of the rows (tokens) of one pass; grown on first use, then kept.
#[derive(Default)]
struct Batch {
    rows: usize,
    x: Vec<f32>,   // (rows, dim) the residual stream
    xb: Vec<f32>,  // (rows, dim) the input of a branch, then the attention output
    xb2: Vec<f32>, // (rows, dim) a branch's output
    q: Vec<f32>,   // (rows, dim) queries (this shard's heads)
    hb: Vec<f32>,  // (rows, hidden_dim) FFN hidden units
    hb2: Vec<f32>, // (rows, hidden_dim)
    xq: Vec<i16>,  // (rows, max(dim, hidden_dim)) int8 path: a quantized input
    xs: Vec<f32>,  // (rows, max(dim, hidden_dim) / group_size) its scales
}

/// A zeroed vector, or an error instead of an abort when memory runs out.
fn zeros<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::OutOfMemory(format!("cannot allocate {what} ({n} values)")))?;
    v.resize(n, T::default());
    Ok(v)
}

/// Values of one layer's part of the KV cache of `positions` positions, on `shard`.
fn kv_values(c: &Config, shard: Shard, positions: usize) -> Option<usize> {
    let kv_local = shard.kv_heads(c).len() * c.head_size();
    c.n_layers.checked_mul(positions)?.checked_mul(kv_local)
}

/// One layer's cache for `values` values: reserved (not written), empty.
fn reserved(values: usize, what: &str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(values)
        .map_err(|_| Error::OutOfMemory(format!("cannot allocate {what} ({values} values)")))?;
    Ok(v)
}

impl Batch {
    fn new(c: &Config, rows: usize, quantized: bool) -> Result<Batch> {
        let wide = c.dim.max(c.hidden_dim);
        let what = "activations";
        Ok(Batch {
            rows,
            x: zeros(rows * c.dim, what)?,
            xb: zeros(rows * c.dim, what)?,
            xb2: zeros(rows * c.dim, what)?,
            q: zeros(rows * c.dim, what)?,
            hb: zeros(rows * c.hidden_dim, what)?,
            hb2: zeros(rows * c.hidden_dim, what)?,
            xq: zeros(if quantized { rows * wide } else { 0 }, what)?,
            xs: zeros(if quantized { rows * wide } else { 0 }, what)?,
        })
    }

    fn bytes(&self) -> usize {
        let f32s = [&self.x, &self.xb, &self.xb2, &self.q, &self.hb, &self.hb2, &self.xs];
        4 * f32s.iter().map(|v| v.len()).sum::<usize>() + 2 * self.xq.len()
    }
}

impl Transformer {
    /// The model of `checkpoint` (a whole one, or the shard `link` connects) with a KV cache
    /// of `context` positions (`1..=seq_len`).
    pub fn new(checkpoint: Checkpoint, context: usize, link: Link) -> Result<Transformer> {
        let c = *checkpoint.config();
        let shard = checkpoint.shard();
        if link.shard() != shard {
            return Err(Error::State(format!(
                "checkpoint '{}' holds shard {shard:?}, but its link is for {:?}",
                checkpoint.name(),
                link.shard()
            )));
        }
        if !(1..=c.seq_len).contains(&context) {
            return Err(Error::Options(format!(
                "context {context} must be in 1..={} (the model's seq_len)",
                c.seq_len
            )));
        }
        // Name the model that did not fit (its KV cache grows with the context, not the file).
        let named = |err: Error| match err {
            Error::OutOfMemory(problem) => {
                Error::OutOfMemory(format!("checkpoint '{}': {problem}", checkpoint.name()))
            }
            other => other,
        };
        let kv = kv_values(&c, shard, context)
            .ok_or_else(|| Error::OutOfMemory("the KV cache size overflows".into()))
            .map_err(named)?;
        let layer = kv / c.n_layers;
        let caches =
            |what: &str| (0..c.n_layers).map(|_| reserved(layer, what)).collect::<Result<Vec<_>>>();
        let quantized = matches!(checkpoint.format(), Format::V2 { .. });
        let state = RunState {
            key_cache: caches("the key cache").map_err(named)?,
            value_cache: caches("the value cache").map_err(named)?,
            att: zeros(context, "attention weights").map_err(named)?,
            logits: zeros(c.vocab_size, "logits").map_err(named)?,
            batch: Batch::new(&c, 1, quantized).map_err(named)?,
            seen: Seen::default(),
        };
        Ok(Transformer {
            plan: Plan::new(&c, shard),
            checkpoint,
            context,
            state,
            link,
            positions_run: 0,
            ablation: Ablation::NONE,
        })
    }

    /// Switches off what `ablation` says from the next pass on (every shard of a split model
    /// must be given the same: the native tools give it to each at load).
    pub fn set_ablation(&mut self, ablation: Ablation) {
        self.ablation = ablation;
    }

    pub fn ablation(&self) -> &Ablation {
        &self.ablation
    }

    /// The largest context up to `want` whose KV cache can be allocated now, on `shard`
    /// (0 when not even one position fits). Used to size the cache to the memory there is.
    pub fn fitting_context(c: &Config, shard: Shard, want: usize) -> usize {
        let fits = |positions: usize| {
            kv_values(c, shard, positions).is_some_and(|n| {
                let (mut k, mut v) = (Vec::<f32>::new(), Vec::<f32>::new());
                k.try_reserve_exact(n).is_ok() && v.try_reserve_exact(n).is_ok()
            })
        };
        if fits(want) {
            return want;
        }
        let (mut lo, mut hi) = (0, want); // fits(lo) (0 trivially), !fits(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
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

    /// Positions the KV cache holds.
    pub fn context(&self) -> usize {
        self.context
    }

    pub fn shard(&self) -> Shard {
        self.plan.me
    }

    /// Bytes held: this shard's weights plus its run state.
    pub fn memory_bytes(&self) -> usize {
        let s = &self.state;
        self.checkpoint.memory_bytes()
            + 4 * s.key_cache.iter().chain(&s.value_cache).map(Vec::capacity).sum::<usize>()
            + 4 * (s.att.len() + s.logits.len())
            + s.batch.bytes()
    }

    /// Runs `tokens` at positions `pos..pos + tokens.len()` and, with `logits`, returns the
    /// logits of the last one for the next token (on the leader; mutable: the sampler turns
    /// them into probabilities in place). On a leader of several shards, it first tells the
    /// others to run the same pass. The caller keeps every token `< vocab_size`,
    /// `tokens.len() <= PREFILL_BATCH` and `pos + tokens.len() <= context`.
    pub async fn forward(
        &mut self,
        tokens: &[u32],
        pos: usize,
        logits: bool,
    ) -> Result<&mut [f32]> {
        self.forward_look(tokens, pos, logits, Look::NOTHING).await
    }

    /// [`Transformer::forward`], capturing what `look` asks of the last token: then
    /// [`Transformer::attention_seen`] and [`Transformer::lens_seen`] hold it (on the leader).
    pub async fn forward_look(
        &mut self,
        tokens: &[u32],
        pos: usize,
        logits: bool,
        look: Look,
    ) -> Result<&mut [f32]> {
        if self.plan.me.count > 1 {
            let command = Command { tokens: tokens.to_vec(), pos, logits, look };
            self.link.command(&command).await?;
        }
        self.pass(tokens, pos, logits, look).await?;
        Ok(&mut self.state.logits)
    }

    /// The attention weights of the last pass that captured them: `(layer, n_heads, pos + 1)`,
    /// every head's softmax over positions `0..=pos`, as the pass used them.
    pub fn attention_seen(&self) -> &[f32] {
        &self.state.seen.attention
    }

    /// The logit lens of the last pass that captured it: `(layer, vocab_size)` logits of the
    /// classifier applied to the final-normed residual stream after each layer.
    pub fn lens_seen(&self) -> &[f32] {
        &self.state.seen.lens
    }

    /// The trace of the last pass that captured one (`Look::trace`, with `attention` and the
    /// logits), on the leader: position `pos` fed `token`.
    pub fn trace_seen(&self, pos: usize, token: u32) -> Trace {
        let c = self.config();
        let (t, att) = (&self.state.seen.trace, &self.state.seen.attention);
        let (dim, kv_dim, hidden) = (c.dim, c.kv_dim(), c.hidden_dim);
        let row = |v: &[f32], l: usize, w: usize| v[l * w..(l + 1) * w].to_vec();
        let heads = c.n_heads * (pos + 1);
        let layers = (0..c.n_layers)
            .map(|l| LayerTrace {
                attn_norm: row(&t.attn_norm, l, dim),
                q: row(&t.q, l, dim),
                k: row(&t.k, l, kv_dim),
                v: row(&t.v, l, kv_dim),
                attention: att.get(l * heads..(l + 1) * heads).unwrap_or_default().to_vec(),
                heads_out: row(&t.heads_out, l, dim),
                attn_out: row(&t.attn_out, l, dim),
                residual_attn: row(&t.residual_attn, l, dim),
                ffn_norm: row(&t.ffn_norm, l, dim),
                gate: row(&t.gate, l, hidden),
                ffn_out: row(&t.ffn_out, l, dim),
                residual_ffn: row(&t.residual_ffn, l, dim),
            })
            .collect();
        Trace {
            pos,
            token,
            id: 0, // the generator knows: `Generator::trace`
            prompt: false,
            embedding: t.embedding.clone(),
            layers,
            final_norm: t.final_norm.clone(),
            logits: self.state.logits.clone(),
        }
    }

    /// On a shard other than the leader: runs the pass the leader asked for.
    pub async fn serve(&mut self, command: &Command) -> Result<()> {
        if command.tokens.is_empty()
            || command.tokens.len() > PREFILL_BATCH
            || command.pos + command.tokens.len() > self.context
            || command.tokens.iter().any(|&t| t as usize >= self.config().vocab_size)
        {
            return Err(Error::Shards(format!("a malformed command: {command:?}")));
        }
        self.pass(&command.tokens, command.pos, command.logits, command.look).await
    }

    /// Runs a prompt's `tokens` from position `pos` in batches, without logits: the KV cache
    /// ends up as `forward` token by token would leave it (batched matmuls run the very same
    /// sums per row). Falls back to single tokens when the batch buffers do not fit.
    pub async fn prefill(&mut self, tokens: &[u32], pos: usize) -> Result<()> {
        let batch = if self.grow_batch(PREFILL_BATCH.min(tokens.len())).is_ok() {
            PREFILL_BATCH
        } else {
            1
        };
        for (i, chunk) in tokens.chunks(batch).enumerate() {
            self.forward(chunk, pos + i * batch, false).await?;
        }
        Ok(())
    }

    fn grow_batch(&mut self, rows: usize) -> Result<()> {
        if self.state.batch.rows < rows {
            let quantized = !self.state.batch.xq.is_empty();
            self.state.batch = Batch::new(self.checkpoint.config(), rows, quantized)?;
        }
        Ok(())
    }

    /// Positions run through the model so far (each row of each pass).
    pub fn positions_run(&self) -> u64 {
        self.positions_run
    }

    /// One pass of this shard over `tokens`.
    async fn pass(
        &mut self,
        tokens: &[u32],
        pos: usize,
        want_logits: bool,
        look: Look,
    ) -> Result<()> {
        self.grow_batch(tokens.len())?;
        self.positions_run += tokens.len() as u64;
        let Transformer { checkpoint, plan, state: s, link, ablation, .. } = self;
        let (w, plan) = (&*checkpoint, &*plan);
        let c = *w.config();
        let (n, dim) = (tokens.len(), c.dim);
        let p = Pass { w, plan, n, pos, look, ablation };
        let last = pos + n; // positions the last token attends to
        if look.attention {
            s.seen.attention.clear();
            s.seen.attention.resize(c.n_layers * c.n_heads * last, 0.0);
        }
        if look.lens {
            s.seen.residual.resize(c.n_layers * dim, 0.0);
        }
        if look.trace {
            s.seen.trace.resize(&c);
        }

        // The embedding rows, each from the shard that holds it.
        let x = &mut s.batch.x[..n * dim];
        for (x, &token) in x.chunks_exact_mut(dim).zip(tokens) {
            if w.has_embedding(token as usize) {
                w.embedding(token as usize, x);
            }
        }
        plan.share_embeddings(link, x, &c, tokens).await?;
        if look.trace {
            s.seen.trace.embedding.copy_from_slice(&x[(n - 1) * dim..]);
        }

        for l in 0..c.n_layers {
            attention(&p, s, link, l).await?;
            ffn(&p, s, link, l).await?;
            if look.lens {
                let row = (n - 1) * dim..n * dim;
                s.seen.residual[l * dim..(l + 1) * dim].copy_from_slice(&s.batch.x[row]);
            }
        }

        if want_logits {
            // The classifier on the last token's final-normed residual stream.
            let b = &mut s.batch;
            let last = (n - 1) * dim;
            kernels::rmsnorm(&mut b.xb[..dim], &b.x[last..last + dim], w.rms_final());
            if look.trace {
                s.seen.trace.final_norm.copy_from_slice(&b.xb[..dim]);
            }
            let input = Input::new(&b.xb[..dim], dim, w, &mut b.xq, &mut b.xs);
            let v = &plan.vocab[plan.me.index];
            matmul(&mut s.logits, c.vocab_size, v.clone(), &input, w.matrix(Weight::Classifier, 0));
            plan.logits_to_leader(link, &mut s.logits, 1).await?;
        }
        if look.attention {
            plan.attention_to_leader(link, &mut s.seen.attention, &c, last).await?;
        }
        if look.trace {
            plan.trace_to_leader(link, &mut s.seen.trace, &c).await?;
        }
        if look.lens {
            lens(&p, s, link).await?;
        }
        Ok(())
    }
}

/// The logit lens of the last token: this shard's rows of the classifier applied to the
/// final-normed residual stream after each layer, gathered on the leader.
async fn lens(p: &Pass<'_>, s: &mut RunState, link: &mut Link) -> Result<()> {
    let (w, plan) = (p.w, p.plan);
    let c = *w.config();
    let (dim, vocab) = (c.dim, c.vocab_size);
    s.seen.lens.resize(c.n_layers * vocab, 0.0);
    let b = &mut s.batch;
    let v = plan.vocab[plan.me.index].clone();
    for (residual, out) in
        s.seen.residual.chunks_exact(dim).zip(s.seen.lens.chunks_exact_mut(vocab))
    {
        kernels::rmsnorm(&mut b.xb[..dim], residual, w.rms_final());
        let input = Input::new(&b.xb[..dim], dim, w, &mut b.xq, &mut b.xs);
        matmul(out, vocab, v.clone(), &input, w.matrix(Weight::Classifier, 0));
    }
    plan.logits_to_leader(link, &mut s.seen.lens, c.n_layers).await
}

/// What every block of one pass shares.
struct Pass<'a> {
    w: &'a Checkpoint,
    plan: &'a Plan,
    /// Rows (tokens) in the batch, at positions `pos..pos + n`.
    n: usize,
    pos: usize,
    /// What to capture of the last row.
    look: Look,
    /// What is switched off.
    ablation: &'a Ablation,
}

/// The attention block of layer `l`: `x += wo · attention(rmsnorm(x))`, for every row.
async fn attention(p: &Pass<'_>, s: &mut RunState, link: &mut Link, l: usize) -> Result<()> {
    let (w, plan, n, pos) = (p.w, p.plan, p.n, p.pos);
    let c = *w.config();
    let (dim, hs) = (c.dim, c.head_size());
    let me = plan.me;
    let (heads, kv_heads) = (me.heads(&c), me.kv_heads(&c));
    let kv_local = kv_heads.len() * hs;
    let b = &mut s.batch;

    // q, k, v of this shard's heads; k and v go straight into the cache.
    for (xb, x) in b.xb[..n * dim].chunks_exact_mut(dim).zip(b.x.chunks_exact(dim)) {
        kernels::rmsnorm(xb, x, w.rms_att(l));
    }
    let last = (n - 1) * dim..n * dim; // the row a trace keeps
    let trace = &mut s.seen.trace;
    if p.look.trace {
        keep(&mut trace.attn_norm, l, &b.xb[last.clone()]);
    }
    let input = Input::new(&b.xb[..n * dim], dim, w, &mut b.xq, &mut b.xs);
    let q_cols = plan.heads[me.index].clone();
    matmul(&mut b.q, dim, q_cols.clone(), &input, w.matrix(Weight::Wq, l));
    let (keys, values) = (&mut s.key_cache[l], &mut s.value_cache[l]);
    let rows = pos * kv_local..(pos + n) * kv_local;
    if keys.len() < rows.end {
        // Within the reservation (pos + n <= context): the new positions only are written.
        keys.resize(rows.end, 0.0);
        values.resize(rows.end, 0.0);
    }
    matmul(&mut keys[rows.clone()], kv_local, 0..kv_local, &input, w.matrix(Weight::Wk, l));
    matmul(&mut values[rows.clone()], kv_local, 0..kv_local, &input, w.matrix(Weight::Wv, l));
    let k_rows = keys[rows].chunks_exact_mut(kv_local.max(1));
    for (t, (q, k)) in b.q.chunks_exact_mut(dim).zip(k_rows).take(n).enumerate() {
        rope(&mut q[q_cols.clone()], &mut k[..kv_local], pos + t, hs);
    }
    if p.look.trace {
        // This shard's heads only (the leader gathers the rest at the end of the pass).
        let (kv_dim, kv_cols) = (c.kv_dim(), plan.kv[me.index].clone());
        let at = (pos + n - 1) * kv_local..(pos + n) * kv_local;
        keep(&mut trace.q, l, &b.q[last.clone()]);
        trace.k[l * kv_dim..][kv_cols.clone()].copy_from_slice(&keys[at.clone()]);
        trace.v[l * kv_dim..][kv_cols].copy_from_slice(&values[at]);
    }

    // Each query head over positions 0..=pos + t of its key/value head.
    let scale = (hs as f32).sqrt();
    for t in 0..n {
        let (q, xb) = (&b.q[t * dim..(t + 1) * dim], &mut b.xb[t * dim..(t + 1) * dim]);
        for h in heads.clone() {
            let att = &mut s.att[..pos + t + 1];
            let kv = (h / c.kv_mul() - kv_heads.start) * hs;
            kernels::dots(att, &q[h * hs..(h + 1) * hs], &keys[kv..], kv_local);
            for a in att.iter_mut() {
                *a /= scale;
            }
            kernels::softmax(att);
            if p.look.attention && t == n - 1 {
                let width = pos + n;
                let at = (l * c.n_heads + h) * width;
                s.seen.attention[at..at + width].copy_from_slice(att);
            }
            let out = &mut xb[h * hs..(h + 1) * hs];
            out.fill(0.0);
            if !p.ablation.head(l, h) {
                kernels::weighted_sum(out, att, &values[kv..], kv_local);
            }
        }
    }
    plan.share_heads(link, &mut b.xb[..n * dim], n).await?;

    let input = Input::new(&b.xb[..n * dim], dim, w, &mut b.xq, &mut b.xs);
    matmul(&mut b.xb2, dim, plan.dim[me.index].clone(), &input, w.matrix(Weight::Wo, l));
    plan.share_dim(link, &mut b.xb2[..n * dim], n).await?;
    if p.ablation.attention(l) {
        b.xb2[..n * dim].fill(0.0);
    }
    add(&mut b.x[..n * dim], &b.xb2[..n * dim]);
    if p.look.trace {
        keep(&mut trace.heads_out, l, &b.xb[last.clone()]);
        keep(&mut trace.attn_out, l, &b.xb2[last.clone()]);
        keep(&mut trace.residual_attn, l, &b.x[last]);
    }
    Ok(())
}

/// The FFN block of layer `l`: `x += w2 · (silu(w1 · h) * (w3 · h))` with `h = rmsnorm(x)`.
async fn ffn(p: &Pass<'_>, s: &mut RunState, link: &mut Link, l: usize) -> Result<()> {
    let (w, plan, n) = (p.w, p.plan, p.n);
    let c = *w.config();
    let (dim, hidden) = (c.dim, c.hidden_dim);
    let me = plan.me.index;
    let b = &mut s.batch;

    for (xb, x) in b.xb[..n * dim].chunks_exact_mut(dim).zip(b.x.chunks_exact(dim)) {
        kernels::rmsnorm(xb, x, w.rms_ffn(l));
    }
    let last = (n - 1) * dim..n * dim; // the row a trace keeps
    let trace = &mut s.seen.trace;
    if p.look.trace {
        keep(&mut trace.ffn_norm, l, &b.xb[last.clone()]);
    }
    let input = Input::new(&b.xb[..n * dim], dim, w, &mut b.xq, &mut b.xs);
    let units = plan.hidden[me].clone();
    matmul(&mut b.hb, hidden, units.clone(), &input, w.matrix(Weight::W1, l));
    matmul(&mut b.hb2, hidden, units.clone(), &input, w.matrix(Weight::W3, l));
    for t in 0..n {
        let row = t * hidden + units.start..t * hidden + units.end;
        swiglu(&mut b.hb[row.clone()], &b.hb2[row]);
    }
    plan.share_hidden(link, &mut b.hb[..n * hidden], n).await?;
    if p.look.trace {
        keep(&mut trace.gate, l, &b.hb[(n - 1) * hidden..n * hidden]);
    }

    let input = Input::new(&b.hb[..n * hidden], hidden, w, &mut b.xq, &mut b.xs);
    matmul(&mut b.xb, dim, plan.dim[me].clone(), &input, w.matrix(Weight::W2, l));
    plan.share_dim(link, &mut b.xb[..n * dim], n).await?;
    if p.ablation.ffn(l) {
        b.xb[..n * dim].fill(0.0);
    }
    add(&mut b.x[..n * dim], &b.xb[..n * dim]);
    if p.look.trace {
        keep(&mut trace.ffn_out, l, &b.xb[last.clone()]);
        keep(&mut trace.residual_ffn, l, &b.x[last]);
    }
    Ok(())
}

/// The rows of a batch as a matmul reads them: fp32, or quantized once for every matmul that
/// reads them (int8 models, whose matrices are all Q8_0).
enum Input<'a> {
    F32 { x: &'a [f32], n: usize },
    Q8 { xq: &'a [i16], xs: &'a [f32], n: usize },
}

impl<'a> Input<'a> {
    /// `x`: rows of `n` values. Quantizes into the scratch `xq`/`xs` for an int8 model.
    fn new(
        x: &'a [f32],
        n: usize,
        w: &Checkpoint,
        xq: &'a mut [i16],
        xs: &'a mut [f32],
    ) -> Input<'a> {
        let Format::V2 { group_size } = w.format() else {
            return Input::F32 { x, n };
        };
        let (xq, xs) = (&mut xq[..x.len()], &mut xs[..x.len() / group_size]);
        for ((xq, xs), x) in
            xq.chunks_exact_mut(n).zip(xs.chunks_exact_mut(n / group_size)).zip(x.chunks_exact(n))
        {
            kernels::quantize(xq, xs, x, group_size);
        }
        Input::Q8 { xq, xs, n }
    }
}

/// `out[t][cols] = w · x[t]` for every row `t` of `input`: `out`'s rows are `width` apart, and
/// `w` holds the rows `cols` (this shard's) of the full matrix.
fn matmul(out: &mut [f32], width: usize, cols: Range<usize>, input: &Input<'_>, w: Matrix<'_>) {
    if cols.is_empty() {
        return;
    }
    let out = &mut out[cols.start..];
    match (input, w) {
        (&Input::F32 { x, n }, Matrix::F32(w)) => kernels::matmul_batch(out, width, x, w, n),
        (&Input::Q8 { xq, xs, n }, Matrix::Q8 { q, s, group_size }) => {
            kernels::matmul_q8_batch(out, width, xq, xs, q, s, group_size, n)
        }
        // A v2 file's matrices are all Q8_0 and a v0/v1 file's all f32.
        _ => {}
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

/// RoPE as run.c: rotate each pair (i, i+1) of q's heads and k's heads by
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

#[cfg(all(test, feature = "tools"))]
mod tests {
    use super::*;
    use crate::export::formula_checkpoint;
    use crate::link::block_on;
    use crate::Format;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A formula checkpoint (docs/llama2c.md) of a small grouped-query shape in `format`.
    fn model(format: Format) -> Transformer {
        let checkpoint = formula_checkpoint([32, 48, 2, 4, 2, 40, 160], format, 5).expect("shape");
        Transformer::new(checkpoint, 160, Link::alone()).expect("model")
    }

    /// Prefill (several batches, a short last one) leaves the very same KV cache and the same
    /// next logits as one `forward` per token.
    #[test]
    fn prefill_equals_forward_per_token() {
        for format in [Format::V0, Format::V2 { group_size: 16 }] {
            let tokens: Vec<u32> =
                (0..PREFILL_BATCH as u32 + 9).map(|t| (t * 7 + 3) % 40).collect();
            let (mut batched, mut single) = (model(format), model(format));
            let prompt = &tokens[..tokens.len() - 1];
            block_on(batched.prefill(prompt, 0)).unwrap();
            for (pos, &t) in prompt.iter().enumerate() {
                block_on(single.forward(&[t], pos, false)).unwrap();
            }
            assert!(batched.state.key_cache == single.state.key_cache, "{format}: keys differ");
            assert!(
                batched.state.value_cache == single.state.value_cache,
                "{format}: values differ"
            );
            let (last, pos) = (tokens[tokens.len() - 1], tokens.len() - 1);
            let a = block_on(batched.forward(&[last], pos, true)).unwrap().to_vec();
            let b = block_on(single.forward(&[last], pos, true)).unwrap().to_vec();
            assert_eq!(a, b, "{format}");
        }
    }
}
