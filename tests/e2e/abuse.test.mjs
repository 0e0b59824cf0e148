// A randomized abuse run of the engine worker's protocol in headless Chromium: a seeded
// random interleaving of loads (good, corrupt, missing files), generations, chat turns and the
// inspect requests (sane and absurd options, arguments of every type), stops and cancels aimed
// at any request, and malformed
// messages, sent without waiting (so they pile up) or awaited. It must end with every request
// answered exactly once (a final reply per id), the worker alive, wasm memory bounded, and
// run.c's golden story from the last request. ABUSE_STEPS (default 3000; `./build.sh fuzz`
// runs more) and ABUSE_SEED choose the run; a failure prints the seed to replay it.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FINAL } from '../../www/worker/protocol.js';
import { launchBrowser, watchPage } from './browser.mjs';
import { MODELS, OUT, STORY, startServer } from './harness.mjs';

const STEPS = Number(process.env.ABUSE_STEPS ?? 3000);
const SEED = Number(process.env.ABUSE_SEED ?? 20261202);

let server;
let browser;

before(async () => {
  mkdirSync(join(OUT, 'abuse'), { recursive: true });
  const good = readFileSync(join(MODELS, 'aidreams260K.bin'));
  const corrupt = Buffer.from(good);
  corrupt.writeInt32LE(-7, 0); // dim = -7
  writeFileSync(join(OUT, 'abuse/corrupt.bin'), corrupt);
  writeFileSync(join(OUT, 'abuse/truncated.bin'), good.subarray(0, 300_000));
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test(`${STEPS} random requests, stops, cancels and malformed messages (seed ${SEED}): every request answered once, the engine usable after`, { timeout: 1_800_000 }, async () => {
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(`${server.url}embed.html`);
  const result = await page.evaluate(async ({ steps, seed, final }) => {
    // mulberry32: a small seeded generator, so that a failing run can be replayed.
    let s = seed >>> 0;
    const rand = () => {
      s = (s + 0x6d2b79f5) >>> 0;
      let t = s;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = (xs) => xs[Math.floor(rand() * xs.length)];
    const { ShardWorkersForChild } = await import('/engine/llama2.js');
    const worker = new Worker('/worker/worker.js', { type: 'module' });
    const problems = [];
    let died = null;
    worker.onerror = (e) => { died = e.message ?? 'worker error'; };
    /** id -> { type, finals, resolve } */
    const requests = new Map();
    let nextId = 1;
    let maxMemory = 0;
    let malformedAnswers = 0;
    // A model over 2 workers: the page starts the shard workers (protocol.js `start-shard`).
    const shards = new ShardWorkersForChild((message) => worker.postMessage(message));
    worker.onmessage = ({ data }) => {
      if (shards.handle(data)) return;
      if (data?.id === undefined) {
        // A malformed message (no id) is answered with an error of its own; notes are no replies.
        if (data?.type === 'error') malformedAnswers++;
        else if (!['alive', 'cache'].includes(data?.type)) problems.push(`a message for no request: ${JSON.stringify(data).slice(0, 200)}`);
        return;
      }
      const r = requests.get(data.id);
      if (!r) return problems.push(`a reply for no request: ${JSON.stringify(data).slice(0, 200)}`);
      if (data.type !== 'error' && data.type !== final[r.type]) return; // progress, piece, token
      r.finals++;
      if (r.finals > 1) problems.push(`request ${data.id} (${r.type}) answered twice: ${data.type}`);
      if (data.type === 'loaded') maxMemory = Math.max(maxMemory, data.wasmMemoryBytes);
      r.resolve(data);
    };
    const send = (message) => {
      const id = nextId++;
      let resolve;
      const done = new Promise((res) => (resolve = res));
      requests.set(id, { type: message.type, finals: 0, resolve, done });
      worker.postMessage({ ...message, id });
      return done;
    };
    const models = [
      ['/models/aidreams260K.bin', '/models/tok512-aidreams.bin'],
      ['/models/stories260K.bin', '/models/tok512-aidreams.bin'],
      ['/models/aidreams260K-v2.bin', '/models/tok512-aidreams.bin'],
      ['/fixtures/abuse/corrupt.bin', '/models/tok512-aidreams.bin'],
      ['/fixtures/abuse/truncated.bin', '/models/tok512-aidreams.bin'],
      ['/models/missing.bin', '/models/tok512-aidreams.bin'],
      ['/models/aidreams260K.bin', '/models/tokenizer.bin'], // the wrong tokenizer
    ];
    const values = [0, 1, 0.8, -1, 2.5, NaN, Infinity, '0.5', null, undefined, {}, [], 1e12, -5, 'abc', 42n];
    const prompts = ['Once upon a time', '', 'The robot', 42, {}, null, ['x'], 'x'.repeat(100_000), '日本語 émoji 🙂'];
    const junk = [null, 42, 'generate', [], {}, { type: 5 }, { type: 'eval' }, { type: 'load', model: 42, tokenizer: null },
      { type: 'generate', prompt: {} }, { type: 'stop', id: 'x' }, { type: 'cancel', id: {} }, { type: 'kill-shard', shard: 9 }];
    const waits = [];
    for (let step = 0; step < steps && !died; step++) {
      const r = rand();
      if (r < 0.12) {
        const [model, tokenizer] = pick(models);
        const done = send({ type: 'load', model, tokenizer, workers: pick([undefined, 1, 'auto', 0, 2]), cache: false });
        if (rand() < 0.5) await done; else waits.push(done);
      } else if (r < 0.45) {
        const options = { prompt: pick(prompts), temperature: pick(values), topp: pick(values), steps: pick([8, 20, 0, 256, pick(values)]), seed: pick([1, 42, '', 'abc', -5, pick(values)]) };
        const done = send({ type: pick(['generate', 'generate', 'chat']), message: options.prompt, ...options });
        if (rand() < 0.4) await done; else waits.push(done);
      } else if (r < 0.52) {
        // Looking inside: a story token by token (paused by take), more of it, a branch, a lens.
        const take = pick([undefined, 1, 3, 0, -2, 'x', 2.5]);
        const count = () => pick([0, 1, 5, 40, 1000, -1, 1.5, 'x', null, 1e12]);
        const done = send(pick([
          { type: 'tokens', prompt: pick(prompts), temperature: pick(values), steps: pick([8, 20, 0, pick(values)]), topK: pick([undefined, 1, 10, 0, -1, 'x', 1e9]), attention: pick([true, false, 'yes']), take },
          { type: 'more', take },
          { type: 'branch', pos: count(), token: count(), take },
          { type: 'lens', pos: count(), k: pick([undefined, 1, 5, 0, 1e9, 'x']) },
          { type: 'vocab' },
        ]));
        if (rand() < 0.4) await done; else waits.push(done);
      } else if (r < 0.6) {
        worker.postMessage({ type: 'stop', id: rand() < 0.7 ? Math.max(1, nextId - 1 - Math.floor(rand() * 4)) : undefined });
      } else if (r < 0.7) {
        worker.postMessage({ type: 'cancel', id: Math.max(1, nextId - 1 - Math.floor(rand() * 4)) });
      } else if (r < 0.85) {
        try {
          worker.postMessage(pick(junk));
        } catch {
          // (what cannot even be posted)
        }
      } else if (waits.length) {
        await waits.splice(Math.floor(rand() * waits.length), 1)[0];
      }
      // Now and then, the queue drains before going on.
      if (step % 200 === 199) await Promise.all(waits.splice(0));
    }
    await Promise.all(waits.splice(0));
    // Every request got exactly one final reply.
    for (const [id, r] of requests) if (r.finals !== 1) problems.push(`request ${id} (${r.type}): ${r.finals} final replies`);
    // The last request: run.c's story.
    await send({ type: 'load', model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin' });
    let text = '';
    const pieces = ({ data }) => { if (data.type === 'piece') text += data.text; };
    worker.addEventListener('message', pieces);
    const done = await send({ type: 'generate', prompt: 'Once upon a time', temperature: 0, steps: 256 });
    worker.terminate();
    return { problems, died, text, done, requests: requests.size, maxMemory, malformedAnswers };
  }, { steps: STEPS, seed: SEED, final: FINAL });
  console.log(`abuse (seed ${SEED}): ${STEPS} steps, ${result.requests} requests, ${result.malformedAnswers} malformed messages answered, peak wasm memory ${(result.maxMemory / 1e6).toFixed(1)} MB`);
  assert.equal(result.died, null, `the worker died (replay with ABUSE_SEED=${SEED})`);
  assert.deepEqual(result.problems, [], `replay with ABUSE_SEED=${SEED}`);
  assert.equal(result.done.type, 'done');
  assert.equal(result.text, STORY.stdout, `not run.c's story at the end (replay with ABUSE_SEED=${SEED})`);
  // The largest model here is 1 MB; a 100 KB prompt or a failed load must not leave memory behind.
  assert.ok(result.maxMemory < 48e6, `wasm memory reached ${result.maxMemory} bytes`);
});
