// Requests have owners: a generation is ended only by its own iterator or request, or by
// stop(); the engine worker runs requests strictly in order and every `done` describes its own
// run; arguments of the wrong type are TypeErrors naming them, never a wasm trap. The API in
// Node (www/engine/llama2.js), the worker protocol in headless Chromium (www/worker/client.js -> worker.js).

import assert from 'node:assert/strict';
import { openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createEngine } from '../../www/engine/llama2.js';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';

const greedy = { temperature: 0, steps: 256 };
let llama;

before(async () => {
  llama = await createEngine({ wasm: readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm')), variant: 'simd' });
  await llama.loadCheckpoint(await openAsBlob(join(MODELS, 'aidreams260K.bin')), { name: 'aidreams260K.bin' });
  await llama.loadTokenizer(readFileSync(join(MODELS, 'tok512-aidreams.bin')));
});

async function drain(iterator) {
  let text = '';
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) text += r.value;
  return text;
}

test('an older generation resumed after a newer one began ends quietly and leaves the newer one alone', async () => {
  const a = llama.generate('Once upon a time', { temperature: 1, seed: 7, steps: 256 });
  for (let i = 0; i < 3; i++) await a.next();
  const b = llama.generate('Once upon a time', greedy);
  const first = await b.next();
  assert.deepEqual(await a.next(), { done: true, value: undefined }, 'a ends');
  const text = first.value + (await drain(b));
  assert.equal(text, STORY.stdout, 'b runs to its end, untouched by a');
  assert.deepEqual(llama.tokenIds, STORY.ids);
  assert.notEqual(llama.stopReason, 'stopped');
});

test('arguments of the wrong type are TypeErrors that name them, and the engine stays usable', async () => {
  for (const [call, pattern] of [
    [() => llama.generate(42), /prompt must be a string, not number/],
    [() => llama.generate({}), /prompt must be a string, not object/],
    [() => llama.generate('x', 'fast'), /options must be an object, not string/],
    [() => llama.generate('x', { temperature: '0.5' }), /temperature must be a number, not string/],
    [() => llama.generate('x', { seed: {} }), /seed must be a number, BigInt or string, not object/],
    [() => llama.chat(7), /user message must be a string, not number/],
  ]) {
    assert.throws(call, (err) => err instanceof TypeError && err.kind === 'type' && pattern.test(err.message), String(call));
  }
  await assert.rejects(llama.loadCheckpoint(new Uint8Array(8), { name: 5 }), (err) => err instanceof TypeError && /name must be a string/.test(err.message));
  await assert.rejects(llama.loadCheckpoint(42), (err) => err instanceof TypeError && /a source is a URL, a File\/Blob or bytes, not number/.test(err.message));
  // (The failed load above freed the model: load it again.)
  await llama.loadCheckpoint(await openAsBlob(join(MODELS, 'aidreams260K.bin')), { name: 'aidreams260K.bin' });
  await llama.loadTokenizer(readFileSync(join(MODELS, 'tok512-aidreams.bin')));
  assert.equal(await drain(llama.generate('Once upon a time', greedy)), STORY.stdout);
  // Positions, ids and counts: whole numbers (wasm would read 'x' as 0 and -1 as 4294967295).
  const named = (pattern) => (err) => err instanceof TypeError && err.kind === 'type' && pattern.test(err.message);
  assert.throws(() => llama.branch('x', 1), named(/branch: pos must be a whole number from 0 to 4294967295, not "x"/));
  assert.throws(() => llama.branch(3, -1), named(/branch: token must be a whole number from 0 to 4294967295, not -1/));
  await assert.rejects(llama.lens(1.5), named(/lens: pos must be a whole number from 0 to 4294967295, not 1.5/));
  await assert.rejects(llama.lens(1, 2 ** 40), named(/lens: k must be a whole number/));
  const lens = await llama.lens(1, 1e6); // more than the vocabulary: all of it
  assert.equal(lens[0].length, llama.config.vocab_size);
  assert.equal(llama.vocab.length, llama.config.vocab_size);
});

test('after free(), every use says the engine was freed', async () => {
  const engine = await createEngine({ wasm: readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm')), variant: 'simd' });
  engine.free();
  assert.throws(() => engine.config, (err) => err.kind === 'state' && /was freed/.test(err.message));
  assert.throws(() => engine.generate('x'), /was freed/);
});

// ---------------------------------------------------------------------------------------
// The worker protocol, in Chromium
// ---------------------------------------------------------------------------------------

let server;
let browser;
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  watchPage(page);
  await page.goto(`${server.url}embed.html`);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the worker runs requests in order: a generate sent right after a load waits for it', async () => {
  const result = await page.evaluate(async () => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    await engine.load({ model: '/models/stories260K.bin', tokenizer: '/models/tok512-aidreams.bin' }).done;
    // Both at once: the generate must run on the model of the load before it.
    const load = engine.load({ model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin' });
    let text = '';
    const run = engine.generate({ prompt: 'Once upon a time', temperature: 0, steps: 256 }, { onPiece: (t) => (text += t) });
    const loaded = await load.done;
    const done = await run.done;
    engine.terminate();
    return { model: loaded.config.name, text, ids: done.ids, reason: done.reason };
  });
  assert.equal(result.model, 'aidreams260K.bin');
  assert.equal(result.text, STORY.stdout);
  assert.deepEqual(result.ids, STORY.ids);
});

test('two generations back to back: each `done` describes its own run', async () => {
  const result = await page.evaluate(async () => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    await engine.load({ model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin' }).done;
    const texts = ['', ''];
    const runs = [0, 1].map((i) => engine.generate(
      { prompt: i ? 'The robot' : 'Once upon a time', temperature: 0, steps: 256 },
      { onPiece: (t) => (texts[i] += t) },
    ));
    const done = await Promise.all(runs.map((r) => r.done));
    engine.terminate();
    return done.map((d, i) => ({ reason: d.reason, ids: d.ids, tokens: d.tokens, text: texts[i] }));
  });
  assert.equal(result[0].text, STORY.stdout);
  assert.deepEqual(result[0].ids, STORY.ids);
  assert.notEqual(result[0].reason, 'stopped');
  assert.ok(result[1].text.startsWith('The robot'), result[1].text);
  assert.notDeepEqual(result[1].ids, result[0].ids);
  assert.equal(result[1].tokens, result[1].ids.length - 1);
});

test('a malformed request is answered with an error naming it; the engine stays usable', async () => {
  const result = await page.evaluate(async () => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    await engine.load({ model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin' }).done;
    const errors = [];
    for (const prompt of [{}, 42, ['x']]) {
      await engine.generate({ prompt, temperature: 0 }).done.catch((err) => errors.push(`${err.kind}: ${err.message}`));
    }
    await engine.generate({ prompt: 'x', seed: 'abc' }).done.catch((err) => errors.push(`${err.kind}: ${err.message}`));
    let text = '';
    await engine.generate({ prompt: 'Once upon a time', temperature: 0, steps: 256 }, { onPiece: (t) => (text += t) }).done;
    engine.terminate();
    return { errors, text, dead: engine.dead?.message ?? null };
  });
  assert.deepEqual(result.errors, [
    'type: prompt must be a string, not object',
    'type: prompt must be a string, not number',
    'type: prompt must be a string, not object',
    "options: options: seed 'abc' is not an integer (empty or 0 = the time)",
  ]);
  assert.equal(result.text, STORY.stdout);
});
