// Unit tests of www/cache.js in Node, through llama2.js's real loads from serve.mjs, with an
// in-memory CacheStorage that behaves like the Cache API where it matters (a put consumes its
// body and stores nothing if the body fails) and can run out of quota. They cover the paths an
// e2e cannot provoke reliably: a quota error falls back to memory with a message; a load
// cancelled midway (AbortSignal) keeps only whole parts and resumes with a Range request.
// Run from tests/e2e: `node --test cache.test.mjs`.

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';

const { loadModel } = await import(join(ROOT, 'www/llama2.js'));
const { WeightCache, SEGMENT_BYTES } = await import(join(ROOT, 'www/cache.js'));
const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));
const GQA = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8')).find(
  (c) => c.checkpoint === 'gqa-v0.bin' && c.temperature === 0,
);

/** A Cache: `put` reads the whole body first (a failing body stores nothing), then checks the quota. */
class MemoryCache {
  entries = new Map();
  constructor(storage) {
    this.storage = storage;
  }
  async put(request, response) {
    const body = new Uint8Array(await response.arrayBuffer());
    if (this.storage.used() + body.length > this.storage.quota) {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    }
    this.entries.set(String(request.url ?? request), { body, headers: [...response.headers] });
  }
  async match(request) {
    const entry = this.entries.get(String(request.url ?? request));
    return entry && new Response(entry.body, { headers: entry.headers });
  }
  async keys() {
    return [...this.entries.keys()].map((url) => new Request(url));
  }
  async delete(request) {
    return this.entries.delete(String(request.url ?? request));
  }
}

class MemoryStorage {
  caches = new Map();
  constructor(quota = Infinity) {
    this.quota = quota;
  }
  used() {
    let bytes = 0;
    for (const cache of this.caches.values()) for (const { body } of cache.entries.values()) bytes += body.length;
    return bytes;
  }
  async open(name) {
    if (!this.caches.has(name)) this.caches.set(name, new MemoryCache(this));
    return this.caches.get(name);
  }
  async delete(name) {
    return this.caches.delete(name);
  }
  /** The last path segments of every key: "part-0", "meta", ... per file name. */
  keys() {
    return [...this.caches.values()].flatMap((c) => [...c.entries.keys()]).map((u) => decodeURIComponent(u).split('/').slice(-4).join('/'));
  }
}

let server;

async function generate(llama, steps = 256) {
  let text = '';
  for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps })) text += piece;
  return text;
}

before(async () => {
  server = await startServer();
});
after(() => server?.close());

test('a quota error falls back to memory with a message, and leaves nothing cached', async () => {
  const storage = new MemoryStorage(300_000); // room for the tokenizer, not the 0.9 MB model
  const notes = [];
  const cache = new WeightCache({ storage, onNote: (n) => notes.push(n), segmentBytes: 256 << 10 });
  const llama = await loadModel({
    model: `${server.url}models/aidreams260K.bin`, tokenizer: `${server.url}models/tok512-aidreams.bin`,
    cache, variant: 'simd', wasm,
  });
  assert.equal(await generate(llama), STORY.stdout);
  const model = notes.filter((n) => n.url.endsWith('aidreams260K.bin'));
  assert.deepEqual(model.map((n) => n.status), ['memory']);
  assert.match(model[0].message, /aidreams260K\.bin is not cached: the browser storage quota is full\. It is loaded in memory only/);
  assert.deepEqual(notes.filter((n) => n.url.endsWith('tok512-aidreams.bin')).map((n) => n.status), ['stored']);
  await new Promise((r) => setTimeout(r, 50)); // the entry's deletion runs after the note
  assert.deepEqual(storage.keys().filter((k) => k.includes('aidreams260K')), []);
  assert.deepEqual((await cache.list()).map((f) => f.url.split('/').pop()), ['tok512-aidreams.bin']);
  // The next load downloads again (and fails to store again): still works.
  const before = server.requests('/models/aidreams260K.bin').length;
  await llama.loadCheckpoint(`${server.url}models/aidreams260K.bin`, { cache });
  assert.equal(server.requests('/models/aidreams260K.bin').length, before + 1);
});

test('a load cancelled midway keeps whole parts only; the next load resumes with Range', async () => {
  const storage = new MemoryStorage();
  const notes = [];
  const cache = new WeightCache({ storage, onNote: (n) => notes.push(n) });
  const url = `${server.url}models/gqa-v0.bin`;
  const tokenizer = `${server.url}models/tokenizer.bin`;
  const controller = new AbortController();
  const onProgress = ({ file, loaded }) => {
    if (file === 'model' && loaded > SEGMENT_BYTES + 100_000) controller.abort();
  };
  await assert.rejects(loadModel({ model: url, tokenizer, cache, onProgress, signal: controller.signal, variant: 'simd', wasm }), { name: 'AbortError' });
  assert.deepEqual(storage.keys().filter((k) => k.includes('gqa-v0')).map((k) => k.split('/').pop()).sort(), ['meta', 'part-0']);
  for (let i = 0; i < 100 && notes.at(-1)?.status !== 'partial'; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(notes.at(-1)?.status, 'partial'); // sent once the kept parts are stored
  assert.equal((await cache.list()).find((f) => f.url === url).complete, false);

  const llama = await loadModel({ model: url, tokenizer, cache, variant: 'simd', wasm });
  const requests = server.requests('/models/gqa-v0.bin');
  assert.deepEqual(requests.map((r) => r.range), [null, `bytes=${SEGMENT_BYTES}-`]);
  assert.equal(await generate(llama, GQA.steps), GQA.stdout);
  const entry = (await cache.list()).find((f) => f.url === url);
  assert.deepEqual([entry.complete, entry.size], [true, statSync(join(MODELS, 'gqa-v0.bin')).size]);
  // Cached: no request, same text; deleting it empties the storage.
  await llama.loadCheckpoint(url, { cache });
  await llama.loadTokenizer(tokenizer, { cache });
  assert.equal(server.requests('/models/gqa-v0.bin').length, 2);
  assert.equal(await generate(llama, GQA.steps), GQA.stdout);
  await cache.delete(url);
  assert.deepEqual(storage.keys().filter((k) => k.includes('gqa-v0')), []);
});

test('a cached entry that lost a part is not trusted', async () => {
  const storage = new MemoryStorage();
  const cache = new WeightCache({ storage, segmentBytes: 256 << 10 });
  const url = `${server.url}models/aidreams260K.bin`;
  const tokenizer = `${server.url}models/tok512-aidreams.bin`;
  await loadModel({ model: url, tokenizer, cache, variant: 'simd', wasm });
  const weights = await storage.open('llama2-weights-v2');
  const part = [...weights.entries.keys()].find((k) => k.includes('aidreams260K') && k.endsWith('/part-2'));
  await weights.delete(part);
  const before = server.requests('/models/aidreams260K.bin').length;
  const llama = await loadModel({ model: url, tokenizer, cache, variant: 'simd', wasm });
  assert.equal(server.requests('/models/aidreams260K.bin').length, before + 1);
  assert.equal(await generate(llama), STORY.stdout);
});

test('an expected size that differs from the cached one is not served from the cache', async () => {
  const storage = new MemoryStorage();
  const cache = new WeightCache({ storage });
  const url = `${server.url}models/tok512-aidreams.bin`;
  const size = statSync(join(MODELS, 'tok512-aidreams.bin')).size;
  const read = async (options) => {
    const opened = await cache.open(url, options);
    return new Uint8Array(await new Response(opened.stream).arrayBuffer()).length;
  };
  assert.equal(await read({}), size);
  const before = server.requests('/models/tok512-aidreams.bin').length;
  assert.equal(await read({ size }), size);
  assert.equal(server.requests('/models/tok512-aidreams.bin').length, before, 'same size: from the cache');
  // Not trusted: downloaded again, and refused since the server's file has another size.
  await assert.rejects(read({ size: size + 1 }), /announces \d+ bytes, \d+ were expected/);
  assert.equal(server.requests('/models/tok512-aidreams.bin').length, before + 1);
});
