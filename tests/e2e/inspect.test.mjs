// Looking inside through the JavaScript API: `tokens()` gives, per forward pass, the same
// numbers as the native `llama2 --inspect` file (top tokens and their probabilities, the
// sampled token's probability and rank, every attention weight) to 1e-6, for run.c's golden
// greedy and sampled cases of aidreams260K: in Node (one worker, and split over 2), and in
// headless Chromium. `branch()` and `lens()` run too.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createEngine } from '../../www/engine/llama2.js';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, OUT, startServer } from './harness.mjs';

const golden = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8'));
const CASES = [
  golden.find((c) => c.checkpoint === 'aidreams260K.bin' && c.temperature === 0 && c.prompt),
  golden.find((c) => c.checkpoint === 'aidreams260K.bin' && c.temperature > 0),
];

/** The native --inspect lines of a golden case. */
function nativeInspect(c) {
  mkdirSync(join(OUT, 'inspect'), { recursive: true });
  const file = join(OUT, 'inspect', `native-${c.temperature}-${c.seed}.jsonl`);
  const args = [join(MODELS, c.checkpoint), '-z', join(MODELS, c.tokenizer), '-t', String(c.temperature), '-p', String(c.topp),
    '-s', String(c.seed), '-n', String(c.steps), '--ids', '--inspect', file];
  if (c.prompt) args.push('-i', c.prompt);
  execFileSync(join(ROOT, 'target/release/llama2'), args);
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

/** Every number of the API's tokens against the native lines, to 1e-6. */
function compare(label, tokens, lines, ids) {
  assert.equal(tokens.length, lines.length, `${label}: one token per forward pass`);
  let worst = 0;
  const near = (a, b, what) => {
    worst = Math.max(worst, Math.abs(a - b));
    assert.ok(Math.abs(a - b) <= 1e-6, `${label} ${what}: ${a} vs native ${b}`);
  };
  // One name per field, from the Rust record to the CLI's lines and the JS tokens.
  assert.deepEqual(Object.keys(tokens[0]).filter((k) => k !== 'text').sort(), Object.keys(lines[0]).sort(), `${label}: the fields`);
  tokens.forEach((t, i) => {
    const n = lines[i];
    assert.deepEqual([t.pos, t.token, t.id, t.rank], [n.pos, n.token, n.id, n.rank], `${label} pass ${i}`);
    near(t.prob, n.prob, `pass ${i} prob`);
    assert.deepEqual(t.top.map(([id]) => id), n.top.map(([id]) => id), `${label} pass ${i} top ids`);
    t.top.forEach(([, p], k) => near(p, n.top[k][1], `pass ${i} top ${k}`));
    const { layers, heads, positions, weights } = t.attention;
    assert.equal(positions, n.pos + 1);
    for (let l = 0; l < layers; l++) {
      for (let h = 0; h < heads; h++) {
        n.attention[l][h].forEach((w, p) => near(weights[(l * heads + h) * positions + p], w, `pass ${i} attention ${l}/${h}/${p}`));
      }
    }
  });
  assert.deepEqual([tokens[0].token, ...tokens.map((t) => t.id)], ids, `${label}: the ids are the golden ids`);
  console.log(`${label}: ${tokens.length} passes, largest difference ${worst.toExponential(2)}`);
}

const options = (c) => ({ temperature: c.temperature, topp: c.topp, seed: BigInt(c.seed), steps: c.steps, topK: 10, attention: true });

test('Node: tokens() carries the native --inspect numbers, with one worker and over 2', async () => {
  const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));
  for (const workers of [1, 2]) {
    const llama = await createEngine({ variant: 'simd', wasm, workers, transport: 'shared' });
    for (const c of CASES) {
      await llama.loadCheckpoint(await openAsBlob(join(MODELS, c.checkpoint)), { name: c.checkpoint });
      await llama.loadTokenizer(readFileSync(join(MODELS, c.tokenizer)));
      const tokens = [];
      for await (const t of llama.tokens(c.prompt ?? '', options(c))) tokens.push(t);
      compare(`node, ${workers} worker(s), t=${c.temperature}`, tokens, nativeInspect(c), c.ids);
      // The logit lens of the last position: a top list per layer, probabilities falling.
      const lens = await llama.lens(tokens.at(-1).pos, 5);
      assert.equal(lens.length, llama.config.n_layers);
      for (const layer of lens) assert.ok(layer.length === 5 && layer[0][1] >= layer[4][1]);
    }
    // A branch: another token at position 10, then the story goes on from there.
    const c = CASES[0];
    const first = [];
    for await (const t of llama.tokens(c.prompt, options(c))) first.push(t);
    const other = first[9].top[1][0]; // the second most probable token after position 9
    const branched = [];
    for await (const t of llama.branch(10, other)) branched.push(t);
    // First the fed token's text, as the story decodes it (the chip's text), then the passes.
    const fed = branched.shift();
    assert.deepEqual(fed, { text: llama.vocab[other].replace(/^<0x0A>$/, '\n') });
    assert.equal(branched[0].pos, 10);
    assert.equal(branched[0].token, other);
    assert.deepEqual(llama.tokenIds.slice(0, 10), c.ids.slice(0, 10), 'the prefix is kept');
    assert.equal(llama.tokenIds[10], other);
    llama.free();
  }
});

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('Chromium: tokens() carries the native --inspect numbers', async () => {
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(`${server.url}embed.html`);
  for (const c of CASES) {
    const tokens = await page.evaluate(async ({ c, o }) => {
      const { createEngine } = await import('/engine/llama2.js');
      const llama = (window.llama ??= await createEngine());
      await llama.loadCheckpoint(`/models/${c.checkpoint}`);
      await llama.loadTokenizer(`/models/${c.tokenizer}`);
      const out = [];
      for await (const t of llama.tokens(c.prompt ?? '', { ...o, seed: String(c.seed) })) {
        out.push({ ...t, attention: { ...t.attention, weights: Array.from(t.attention.weights) } });
      }
      return out;
    }, { c, o: { ...options(c), seed: undefined } });
    compare(`chromium, t=${c.temperature}`, tokens, nativeInspect(c), c.ids);
  }
  await page.close();
});
