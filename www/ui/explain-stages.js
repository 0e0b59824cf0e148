// explain-stages.js: the stages of one position's forward pass, in run.c's order, as the
// Explain view walks them: what each does in one sentence, its formula, where it is computed
// (src/model.rs, and run.c's function), and which vector of the engine's trace it shows
// (llama2.d.ts `Trace`; the CLI's --trace names). Pure data and small math, no DOM.

/**
 * A stage: `key` the trace's field (per layer when `layer`), `title`, `what` (one plain
 * sentence: what it does and why), `formula`, `code` (where it is computed), and `shape(c)` its
 * length from the model's config.
 * @typedef {{ key: string, layer: boolean, title: string, what: string, formula: string, code: string,
 *   shape(c: { dim: number, hidden_dim: number, n_heads: number, n_kv_heads: number, vocab_size: number }, pos: number): string }} Stage
 */

const kvDim = (c) => (c.dim / c.n_heads) * c.n_kv_heads;

/** @type {Stage[]} */
export const STAGES = [
  {
    key: 'embedding', layer: false, title: 'Token embedding',
    what: 'The token becomes a vector: its row of the embedding table, learned in training. This vector, the residual stream x, is what every layer reads and adds to.',
    formula: 'x = E[token]', code: 'src/model.rs Transformer::pass (run.c forward: the content_row copy)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'attn_norm', layer: true, title: 'RMSNorm before attention',
    what: 'The stream is scaled to a steady size (divided by its root mean square) and weighted per feature, so that attention sees the same scale in every layer.',
    formula: 'xb = x / √(mean(x²) + 1e-5) ⊙ w_att', code: 'src/model.rs attention → kernels::rmsnorm (run.c rmsnorm)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'q', layer: true, title: 'Query (after RoPE)',
    what: 'What this position looks for: a matrix turns xb into a query per head, then RoPE rotates each pair of numbers by an angle that grows with the position, so that attention can tell near from far.',
    formula: 'q = RoPE(W_q · xb, pos)', code: 'src/model.rs attention: matmul(Wq), rope (run.c matmul, the RoPE loop)',
    shape: (c) => `[${c.dim}] = ${c.n_heads} heads × ${c.dim / c.n_heads}`,
  },
  {
    key: 'k', layer: true, title: 'Key (after RoPE)',
    what: 'What this position offers to be found by: another matrix, rotated the same way. It is stored in the KV cache, so later positions compare their queries with it without computing it again.',
    formula: 'k = RoPE(W_k · xb, pos) → key_cache[pos]', code: 'src/model.rs attention: matmul(Wk), rope (run.c matmul into s->k)',
    shape: (c) => `[${kvDim(c)}] = ${c.n_kv_heads} kv heads × ${c.dim / c.n_heads}`,
  },
  {
    key: 'v', layer: true, title: 'Value',
    what: 'What this position passes on when it is attended to: a third matrix, stored in the KV cache too.',
    formula: 'v = W_v · xb → value_cache[pos]', code: 'src/model.rs attention: matmul(Wv) (run.c matmul into s->v)',
    shape: (c) => `[${kvDim(c)}]`,
  },
  {
    key: 'attention', layer: true, title: 'Attention weights',
    what: 'Each head scores every position so far by the dot product of this query with its key (divided by √head_size), and a softmax turns the scores into weights that sum to 1: where the head looks.',
    formula: 'a_h = softmax(q_h · k_h,t / √head_size), t = 0…pos', code: 'src/model.rs attention: kernels::dots, softmax (run.c the head loop, softmax)',
    shape: (c, pos) => `[${c.n_heads} heads × ${pos + 1} positions]`,
  },
  {
    key: 'heads_out', layer: true, title: 'Weighted values',
    what: 'Each head takes in the values of the positions it looks at, in proportion to its weights; the heads side by side make one vector again.',
    formula: 'o_h = Σ_t a_h,t · v_h,t', code: 'src/model.rs attention: kernels::weighted_sum (run.c the xb accumulation)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'attn_out', layer: true, title: 'Output projection (wo)',
    what: 'A matrix mixes what the heads found into one update for the residual stream.',
    formula: 'attn_out = W_o · o', code: 'src/model.rs attention: matmul(Wo) (run.c matmul(s->xb2, …wo))',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'residual_attn', layer: true, title: 'Residual: x + attention',
    what: 'The update is added to the stream rather than replacing it: each layer adds what it found, and the stream carries everything before it.',
    formula: 'x = x + attn_out', code: 'src/model.rs attention: add (run.c the residual loop)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'ffn_norm', layer: true, title: 'RMSNorm before the feed-forward',
    what: 'The stream is normalized again, with the feed-forward block\u2019s own weights.',
    formula: 'xb = x / √(mean(x²) + 1e-5) ⊙ w_ffn', code: 'src/model.rs ffn → kernels::rmsnorm (run.c rmsnorm)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'gate', layer: true, title: 'SwiGLU hidden units',
    what: 'Two matrices widen the vector; one passes through SiLU (a smooth switch) and gates the other, unit by unit: which features fire for this token here.',
    formula: 'h = silu(W_1 · xb) ⊙ (W_3 · xb), silu(z) = z / (1 + e^−z)', code: 'src/model.rs ffn: matmul(W1, W3), swiglu (run.c the SwiGLU loop)',
    shape: (c) => `[${c.hidden_dim}]`,
  },
  {
    key: 'ffn_out', layer: true, title: 'Down projection (w2)',
    what: 'A matrix brings the hidden units back to the stream\u2019s width: the feed-forward block\u2019s update.',
    formula: 'ffn_out = W_2 · h', code: 'src/model.rs ffn: matmul(W2) (run.c matmul(s->xb, …w2))',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'residual_ffn', layer: true, title: 'Residual: x + feed-forward',
    what: 'Added to the stream: the layer is done, and the next one starts from this x.',
    formula: 'x = x + ffn_out', code: 'src/model.rs ffn: add (run.c the residual loop)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'final_norm', layer: false, title: 'Final RMSNorm',
    what: 'After the last layer the stream is normalized once more, for the classifier.',
    formula: 'x = x / √(mean(x²) + 1e-5) ⊙ w_final', code: 'src/model.rs Transformer::pass → kernels::rmsnorm (run.c rmsnorm)',
    shape: (c) => `[${c.dim}]`,
  },
  {
    key: 'logits', layer: false, title: 'Classifier: a score per token',
    what: 'One more matrix gives every token of the vocabulary a score (a logit): the higher, the more the model expects it next.',
    formula: 'logits = W_cls · x', code: 'src/model.rs Transformer::pass: matmul(Classifier) (run.c matmul(s->logits, …wcls))',
    shape: (c) => `[${c.vocab_size}]`,
  },
  {
    key: 'sample', layer: false, title: 'Softmax, top-p, the sample',
    what: 'The scores divided by the temperature become probabilities (a softmax); top-p keeps the most probable tokens until they add up to p; one is drawn with the seeded random generator. Temperature 0 takes the most probable.',
    formula: 'p = softmax(logits / T); keep the top tokens while Σp ≤ top-p; draw', code: 'src/sampler.rs Sampler::sample (run.c sample, sample_topp)',
    shape: (c) => `[${c.vocab_size}]`,
  },
];

/**
 * The probabilities the sampler drew from: softmax(logits / temperature), and which tokens
 * top-p kept (run.c's sample_topp: most probable first, until the sum passes p). At
 * temperature 0 the most probable token alone. Display only: the engine sampled.
 * @returns {{ probs: Float64Array, kept: Set<number> }}
 */
export function sampling(logits, temperature, topp) {
  const n = logits.length;
  const probs = new Float64Array(n);
  if (!(temperature > 0)) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    probs[best] = 1;
    return { probs, kept: new Set([best]) };
  }
  let max = -Infinity;
  for (const l of logits) max = Math.max(max, l / temperature);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += probs[i] = Math.exp(logits[i] / temperature - max);
  for (let i = 0; i < n; i++) probs[i] /= sum;
  const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b);
  if (!(topp > 0 && topp < 1)) return { probs, kept: new Set(order) }; // no top-p: every token
  const kept = new Set();
  let total = 0;
  for (const id of order) {
    kept.add(id);
    total += probs[id];
    if (total > topp) break;
  }
  return { probs, kept };
}

/**
 * The chance of each token being drawn: within what top-p kept, its probability over theirs
 * (run.c's sample_topp draws among the kept tokens in proportion); at temperature 0, 1 for
 * the most probable. What the Explain view's temperature experiment compares.
 * @returns {Float64Array}
 */
export function drawChances(logits, temperature, topp) {
  const { probs, kept } = sampling(logits, temperature, topp);
  let total = 0;
  for (const id of kept) total += probs[id];
  const chances = new Float64Array(logits.length);
  for (const id of kept) chances[id] = probs[id] / total;
  return chances;
}
