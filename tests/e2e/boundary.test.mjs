// One fact, one place, across the Rust/JS boundary: where JavaScript must hold a copy of an
// engine fact before an engine exists (a worker count checked before the download, the codes
// the shared-memory link reads, an error built by the browser's own code), the copy is checked
// here against the engine's `limits()` and `defaults()`. Everything else JS asks the engine
// for at run time. (The inspection record's field names: inspect.test.mjs, against the CLI.)

import assert from 'node:assert/strict';
import { openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { KINDS, SHARDS_LOST, shardsLost } from '../../www/engine/errors.js';
import { createEngine, defaults, MAX_WORKERS } from '../../www/engine/llama2.js';
import { COMMAND, GATHER_ALL, GATHER_LEADER } from '../../www/engine/transport.js';
import { instantiate } from '../../www/engine/wasm.js';
import { ROOT } from './browser.mjs';
import { MODELS } from './harness.mjs';

const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));
const limits = async () => (await instantiate({ wasm, variant: 'simd' })).glue.limits();

test("the JS copies of the engine's limits and codes agree with the engine's limits()", async () => {
  const l = await limits();
  assert.equal(MAX_WORKERS, l.maxWorkers);
  assert.deepEqual({ gatherAll: GATHER_ALL, gatherLeader: GATHER_LEADER, command: COMMAND }, l.pending);
  assert.equal(l.commandWords, 2 + l.prefillBatch);
});

test("errors: every kind the engine gives is in errors.js's table, and a lost worker reads the same from both sides", async () => {
  const l = await limits();
  // `io` is the native tools' alone (files); the browser never meets it.
  for (const kind of l.errorKinds.filter((k) => k !== 'io')) assert.ok(KINDS.includes(kind), `errors.js lists '${kind}'`);
  assert.equal(SHARDS_LOST, l.shardsLost);
  const err = shardsLost('worker 2 of 2 stopped');
  assert.equal(err.kind, 'shards');
  assert.ok(err.message.startsWith(`${l.shardsLost}: `), err.message);
});

test("the inspection's defaults are the engine's: tokens() without topK and lens() without k use defaults()", async () => {
  const d = await defaults({ wasm, variant: 'simd' });
  assert.deepEqual([d.topK, d.lensK], [10, 5], 'the documented defaults');
  const llama = await createEngine({ wasm, variant: 'simd' });
  try {
    await llama.loadCheckpoint(await openAsBlob(join(MODELS, 'aidreams260K.bin')), { name: 'aidreams260K.bin' });
    await llama.loadTokenizer(readFileSync(join(MODELS, 'tok512-aidreams.bin')));
    const tokens = [];
    for await (const t of llama.tokens('Once upon a time', { temperature: 0, steps: 8 })) tokens.push(t);
    assert.ok(tokens.every((t) => t.top.length === d.topK), 'each pass lists topK tokens');
    const lens = await llama.lens(3);
    assert.ok(lens.every((layer) => layer.length === d.lensK), 'each layer lists lensK tokens');
    // One check, one kind: a topK of 0 and a bad position are the engine's to refuse.
    assert.throws(() => llama.tokens('x', { topK: 0 }), (err) => err.kind === 'options' && /topK must be at least 1/.test(err.message));
    assert.throws(() => llama.tokens('x', { topK: 'ten' }), (err) => err.kind === 'type' && /tokens: topK must be a whole number/.test(err.message));
  } finally {
    llama.free();
  }
});
