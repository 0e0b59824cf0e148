// What broke where real use goes and the tests did not: a model split over workers, driven
// through the JS API in Node (www/engine/llama2.js) the way the page, the element and embedders do.
// - a prompt longer than the command slot (63+ tokens) over shared-memory workers;
// - a story, a lens or a step paused past the stall limit (made short here by a test hook);
// - a newer request, or a load, while an older run is mid-pass over messages;
// - a worker lost, then the model loaded again in the same engine;
// - a chat that filled the context: the next turn says so (it once restarted silently, without
//   the system prompt of its first turn);
// - a long context (a 5 MB checkpoint whose header says seq_len 131072) wrote its whole KV cache
//   at load: 160 MB resident before the first token (tests/memory.rs has the native side);
// - small contracts: a context past seq_len, top-k past 2^32, lens k 0, NaN, a second free();
//   a link's numbers checked as the engine takes them. (The JS copies of the engine's limits:
//   boundary.test.mjs.)

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { createEngine } from '../../www/engine/llama2.js';
import { readLink } from '../../www/page/permalink.js';
import { ROOT } from './browser.mjs';
import { MODELS, STORY } from './harness.mjs';

const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));
const TOKENIZER = readFileSync(join(MODELS, 'tok512-aidreams.bin'));
/** stories260K: seq_len 512 (room for a long prompt), 8 heads over 4 kv heads. */
const MODEL = 'stories260K.bin';
/** A prompt of a few hundred tokens: run.c's whole aidreams story. */
const LONG_PROMPT = STORY.stdout.trim();
const greedy = { temperature: 0, steps: 400 };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function engine({ workers = 1, transport, stallMs, model = MODEL } = {}) {
  const llama = await createEngine({ wasm, variant: 'simd' });
  if (stallMs) llama._setStallLimit(stallMs);
  await llama.loadCheckpoint(await openAsBlob(join(MODELS, model)), { name: model, workers, transport });
  await llama.loadTokenizer(TOKENIZER);
  assert.equal(llama.config.workers, workers);
  return llama;
}

async function drain(iterator) {
  let text = '';
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) text += typeof r.value === 'string' ? r.value : r.value.text;
  return text;
}

/** The ids of one worker, the reference every split must give. */
let reference;
async function referenceIds() {
  if (!reference) {
    const llama = await engine();
    await drain(llama.generate(LONG_PROMPT, greedy));
    reference = { ids: llama.tokenIds, stopReason: llama.stopReason };
    llama.free();
  }
  return reference;
}

const SPLITS = [[2, 'shared'], [3, 'shared'], [2, 'messages'], [3, 'messages']];

for (const [workers, transport] of SPLITS) {
  test(`a long prompt (more than one prefill batch) over ${workers} workers, ${transport}: the ids of one worker`, async () => {
    const { ids, stopReason } = await referenceIds();
    assert.ok(ids.length > 2 * 64, `more than two prefill batches (64 tokens): ${ids.length} ids`);
    const llama = await engine({ workers, transport });
    try {
      await drain(llama.generate(LONG_PROMPT, greedy));
      assert.deepEqual(llama.tokenIds, ids);
      assert.equal(llama.stopReason, stopReason);
      // And a chat whose system prompt is that long.
      await drain(llama.chat('Hello', { system: LONG_PROMPT, temperature: 0 }));
      assert.ok(llama.tokenIds.length > 2 * 64);
    } finally {
      llama.free();
    }
  });
}

for (const transport of ['shared', 'messages']) {
  test(`a story, a lens and a step paused past the stall limit (2 workers, ${transport}) go on: idle is not a stall`, async () => {
    const STALL = 300;
    const one = await engine();
    const expected = [];
    for await (const token of one.tokens('Once upon a time', { temperature: 0, steps: 40 })) expected.push(token.id);
    const lensExpected = await one.lens(3, 5);
    one.free();

    const llama = await engine({ workers: 2, transport, stallMs: STALL });
    try {
      const seen = [];
      const story = llama.tokens('Once upon a time', { temperature: 0, steps: 40 });
      for (let i = 0; i < 8; i++) seen.push((await story.next()).value.id);
      await sleep(3 * STALL); // the reader pauses (Step, the Inspect view)
      seen.push((await story.next()).value.id);
      assert.deepEqual(await llama.lens(3, 5), lensExpected, 'a lens after the pause');
      await sleep(3 * STALL); // the lens left open
      for (let r = await story.next(); !r.done; r = await story.next()) seen.push(r.value.id);
      assert.deepEqual(seen, expected);
    } finally {
      llama.free();
    }
  });
}

test('over messages, a newer generate (or a load) while an older run is mid-pass: the newer one runs exactly, and so does the next', async () => {
  const { ids } = await referenceIds();
  const llama = await engine({ workers: 2, transport: 'messages' });
  try {
    for (let round = 0; round < 3; round++) {
      const older = llama.generate(LONG_PROMPT, { temperature: 1, seed: 5 + round });
      const pending = older.next(); // its first pass is under way: it waits for the other worker
      const newer = llama.generate(LONG_PROMPT, greedy);
      await drain(newer);
      assert.deepEqual(llama.tokenIds, ids, `round ${round}`);
      await pending; // settles (quietly) once its pass is over
    }
    // A load mid-pass: the other worker drops the old pass and loads.
    const older = llama.generate(LONG_PROMPT, { temperature: 1, seed: 9 });
    const pending = older.next();
    await llama.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL, workers: 2, transport: 'messages' });
    await llama.loadTokenizer(TOKENIZER);
    await pending.catch(() => {});
    await drain(llama.generate(LONG_PROMPT, greedy));
    assert.deepEqual(llama.tokenIds, ids, 'after the load');
    // A generate during a lens waits for it.
    const lens = llama.lens(5, 3);
    const after = drain(llama.generate(LONG_PROMPT, greedy));
    assert.equal((await lens).length, llama.config.n_layers);
    await after;
    assert.deepEqual(llama.tokenIds, ids, 'after the lens');
  } finally {
    llama.free();
  }
});

for (const transport of ['shared', 'messages']) {
  test(`a worker lost mid-story (${transport}), then the model loaded again in the same engine: the first story is whole`, async () => {
    const { ids } = await referenceIds();
    const llama = await engine({ workers: 2, transport });
    try {
      const story = llama.generate(LONG_PROMPT, greedy);
      await story.next();
      llama._killShard(1);
      await assert.rejects(drain(story), (err) => err.kind === 'shards');
      await llama.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL, workers: 2, transport });
      await llama.loadTokenizer(TOKENIZER);
      const text = await drain(llama.generate(LONG_PROMPT, greedy));
      assert.ok(text.length > LONG_PROMPT.length, 'the story goes past its prompt');
      assert.deepEqual(llama.tokenIds, ids);
      assert.notEqual(llama.stopReason, 'stopped');
    } finally {
      llama.free();
    }
  });
}

// The page starts the shard workers of its engine worker (a worker started inside a worker
// hung in Firefox under a debugger: docs/browsers.md); `startShardWorker` is how. A worker that
// never starts fails the load with kind `shards` at the start limit, and the engine loads the
// next model.
test('startShardWorker starts the shard workers; one that never starts fails the load at the start limit, and the engine goes on', async () => {
  const { ids } = await referenceIds();
  const { Worker } = await import('node:worker_threads');
  const started = [];
  const own = () => {
    const worker = new Worker(new URL('../../www/engine/shard-worker.js', import.meta.url));
    const face = { postMessage: (m, t) => worker.postMessage(m, t), terminate: () => worker.terminate(), onmessage: null, onerror: null };
    worker.on('message', (data) => face.onmessage?.({ data }));
    started.push(face);
    return face;
  };
  const llama = await createEngine({ wasm, variant: 'simd', startShardWorker: own });
  try {
    await llama.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL, workers: 2, transport: 'messages' });
    await llama.loadTokenizer(TOKENIZER);
    assert.equal(started.length, 1);
    await drain(llama.generate(LONG_PROMPT, greedy));
    assert.deepEqual(llama.tokenIds, ids);
  } finally {
    llama.free();
  }
  let silent = 0;
  const never = () => ({ postMessage() {}, terminate() {}, onmessage: null, onerror: null, silent: ++silent });
  const stuck = await createEngine({ wasm, variant: 'simd', startShardWorker: never });
  stuck._setStallLimit(300);
  try {
    await assert.rejects(stuck.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL, workers: 2 }),
      (err) => err.kind === 'shards' && /a worker did not start within 0\.3 s/.test(err.message));
    await stuck.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL, workers: 1 });
    await stuck.loadTokenizer(TOKENIZER);
    assert.equal((await drain(stuck.generate('Once upon a time', { temperature: 0, steps: 20 }))).length > 0, true);
  } finally {
    stuck.free();
  }
  await assert.rejects(createEngine({ wasm, startShardWorker: 'shard-worker.js' }), /startShardWorker must be a function, not string/);
});

test('small contracts: context past seq_len before the download (the old model kept), top-k, lens k, NaN, a second free()', async () => {
  const llama = await engine({ model: 'aidreams260K.bin' });
  // aidreams260K's seq_len is 128: a context of 129 is refused from the header alone.
  await assert.rejects(
    llama.loadCheckpoint(await openAsBlob(join(MODELS, 'aidreams260K.bin')), { name: 'aidreams260K.bin', context: 129 }),
    (err) => err.kind === 'options' && /context 129 is more than checkpoint 'aidreams260K.bin' has: its seq_len is 128/.test(err.message),
  );
  assert.equal(await drain(llama.generate('Once upon a time', { temperature: 0, steps: 256 })), STORY.stdout, 'the loaded model still works');
  assert.throws(() => llama.tokens('Once', { topK: 2 ** 32 }), (err) => err instanceof TypeError && /tokens: topK must be a whole number/.test(err.message));
  await assert.rejects(llama.lens(1, 0), (err) => err.kind === 'options' && /k must be at least 1/.test(err.message));
  await assert.rejects(llama.lens(Number.NaN), (err) => err instanceof TypeError && /not NaN/.test(err.message));
  llama.free();
  llama.free(); // a second free() does nothing
  assert.throws(() => llama.config, (err) => err.kind === 'state' && /was freed/.test(err.message));
});

test("a link's numbers are checked as the engine takes them: a seed past 64 bits and steps=0x10 are refused at once", () => {
  const link = (query) => readLink(`http://host/index.html?model=m.bin&tokenizer=t.bin${query}`).problem;
  assert.equal(link('&seed=99999999999999999999999'), 'The link\'s seed "99999999999999999999999" is out of range (a seed is a 64-bit integer).');
  assert.equal(link('&steps=0x10'), 'The link\'s steps "0x10" is not a number.');
  assert.equal(link('&temperature=1e400'), 'The link\'s temperature "1e400" is not a number.');
  for (const fine of ['&seed=18446744073709551615', '&seed=-5', '&seed=', '&steps=16', '&temperature=.8', '&topp=0.9']) assert.equal(link(fine), null, fine);
});

test('a chat that filled the context: the next turn fails saying so, and newChat() starts afresh with its own system prompt', async () => {
  const llama = await engine({ model: 'aidreams260K.bin' }); // seq_len 128
  try {
    await drain(llama.chat('Hello', { system: LONG_PROMPT, temperature: 0 }));
    assert.equal(llama.stopReason, 'context');
    assert.throws(() => llama.chat('And then?'), (err) => err.kind === 'prompt' && /filled the model's context \(128 positions\): start a new one/.test(err.message));
    llama.newChat();
    await drain(llama.chat('Hello', { system: 'Be brief.', temperature: 0, steps: 60 }));
    assert.ok(['eos', 'steps'].includes(llama.stopReason), llama.stopReason);
  } finally {
    llama.free();
  }
});

test('a long context costs no resident memory until it is used (wasm: the KV cache is reserved, not written)', async () => {
  const dir = join(ROOT, 'target/e2e');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'long-context.bin');
  // The 260K shape with seq_len 131072: 160 MB of KV cache for a 5 MB checkpoint.
  execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', '64,172,5,8,4,512,131072', '--seed', '1', file]);
  const llama = await createEngine({ wasm, variant: 'simd' });
  try {
    const before = process.memoryUsage().rss;
    await llama.loadCheckpoint(await openAsBlob(file), { name: 'long-context.bin' });
    const grown = process.memoryUsage().rss - before;
    assert.equal(llama.config.context, 131072);
    assert.ok(grown < 64 * 2 ** 20, `resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MB at load`);
    await llama.loadTokenizer(TOKENIZER);
    assert.equal(llama.tokenIds.length, 0);
    await drain(llama.generate('Once upon a time', { temperature: 0, steps: 20 }));
    assert.equal(llama.stopReason, 'steps');
  } finally {
    llama.free();
  }
});
