// The forward pass from inside, through the JavaScript API, in Node: `trace(pos)` gives every
// vector of one position's pass with the native `llama2 --trace` file's names and numbers (to
// 1e-5 of each vector's largest value: wasm SIMD and native kernels may sum in another order),
// the same over 1, 2 and 3 workers, each transport; `ablate` switches off a head, an attention
// block and a feed-forward block with the ids of the CLI's `--ablate`; and the worker protocol's
// `trace` request answers the same. Bad ablations are refused with the engine usable after. (tests/inspect.rs holds the native side to an f64 reference.)

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEngine } from '../../www/engine/llama2.js';
import { ROOT } from './browser.mjs';
import { MODELS, OUT } from './harness.mjs';

const MODEL = 'aidreams260K.bin';
const TOKENIZER = 'tok512-aidreams.bin';
const STORY = { prompt: 'Once upon a time', temperature: 1, topp: 0.9, seed: 42n, steps: 40 };
const POS = 21;
const ABLATE = ['1:2', '0:attn', '2:ffn'];
const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));

/** The native CLI's ids and `--trace` object of the story (with `ablate`). */
function native(ablate = []) {
  mkdirSync(join(OUT, 'trace'), { recursive: true });
  const file = join(OUT, 'trace', `native-${ablate.length}.json`);
  const args = [join(MODELS, MODEL), '-z', join(MODELS, TOKENIZER), '-t', String(STORY.temperature), '-p', String(STORY.topp),
    '-s', String(STORY.seed), '-n', String(STORY.steps), '-i', STORY.prompt, '--ids', '--trace', file, '--trace-pos', String(POS),
    ...ablate.flatMap((a) => ['--ablate', a])];
  const ids = execFileSync(join(ROOT, 'target/release/llama2'), args, { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  return { ids, trace: JSON.parse(readFileSync(file, 'utf8')) };
}

/** Every vector of the API's trace against the CLI's, to 1e-5 of its largest value. */
function compare(label, got, want) {
  assert.deepEqual([got.pos, got.token, got.id, got.prompt], [want.pos, want.token, want.id, want.prompt], label);
  let worst = 0;
  const near = (a, b, what) => {
    const values = Array.from(a);
    const expected = b.flat();
    assert.equal(values.length, expected.length, `${label} ${what}: length`);
    const scale = Math.max(1e-12, ...expected.map(Math.abs));
    const err = Math.max(...values.map((v, i) => Math.abs(v - expected[i]))) / scale;
    worst = Math.max(worst, err);
    assert.ok(err <= 1e-5, `${label} ${what}: ${err} from native`);
  };
  near(got.embedding, want.embedding, 'embedding');
  assert.equal(got.layers.length, want.layers.length);
  got.layers.forEach((layer, l) => {
    assert.deepEqual(Object.keys(layer).sort(), Object.keys(want.layers[l]).sort(), `${label}: one name per field`);
    for (const [name, values] of Object.entries(layer)) near(values, want.layers[l][name], `layer ${l} ${name}`);
  });
  near(got.final_norm, want.final_norm, 'final_norm');
  near(got.logits, want.logits, 'logits');
  return worst;
}

test('trace(pos) is the CLI\'s --trace over 1, 2 and 3 workers, each transport; ablate is --ablate', async () => {
  const plain = native();
  const ablated = native(ABLATE);
  assert.notDeepEqual(ablated.ids, plain.ids, 'the ablation changes the story');
  for (const [workers, transport] of [[1, 'shared'], [2, 'shared'], [3, 'shared'], [2, 'messages'], [3, 'messages']]) {
    const label = `${workers} worker(s), ${transport}`;
    const llama = await createEngine({ variant: 'simd', wasm, workers, transport });
    await llama.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL });
    await llama.loadTokenizer(readFileSync(join(MODELS, TOKENIZER)));
    for await (const _ of llama.generate(STORY.prompt, STORY)) { /* the story */ }
    assert.deepEqual(llama.tokenIds, plain.ids, `${label}: the ids`);
    const worst = compare(label, await llama.trace(POS), plain.trace);
    console.log(`${label}: trace at ${POS}, largest relative difference from native ${worst.toExponential(2)}`);
    for await (const _ of llama.generate(STORY.prompt, { ...STORY, ablate: ABLATE })) { /* the ablated story */ }
    assert.deepEqual(llama.tokenIds, ablated.ids, `${label}: ablate gives the ids of --ablate`);
    compare(`${label}, ablated`, await llama.trace(POS), ablated.trace);
    // The next generation without `ablate` is the model as it is.
    for await (const _ of llama.generate(STORY.prompt, STORY)) { /* the story again */ }
    assert.deepEqual(llama.tokenIds, plain.ids, `${label}: the ablation is not kept`);
    assert.throws(() => llama.generate('x', { ablate: ['9:0'] }), (e) => e.kind === 'options' && /layer 9 is past the model's 4 layers/.test(e.message));
    assert.throws(() => llama.generate('x', { ablate: '1:2' }), (e) => e.kind === 'type' && /ablate must be an array/.test(e.message));
    assert.throws(() => llama.generate('x', { ablate: ['1:x'] }), (e) => e.kind === 'options' && /give LAYER:HEAD, LAYER:attn or LAYER:ffn/.test(e.message));
    await assert.rejects(llama.trace(999), (e) => e.kind === 'options' && /position 999 has not run/.test(e.message));
    // And it still works after the refusals.
    for await (const _ of llama.generate(STORY.prompt, { ...STORY, ablate: ABLATE })) { /* again */ }
    assert.deepEqual(llama.tokenIds, ablated.ids, `${label}: usable after bad input`);
    llama.free();
  }
});
