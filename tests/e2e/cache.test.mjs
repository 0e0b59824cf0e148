// Unit tests of www/cache/cache.js in Node, through llama2.js's real loads and cache.open from
// serve.mjs, with an in-memory CacheStorage that behaves like the Cache API where it matters (a
// put consumes its body and stores nothing if the body fails) and can run out of quota. They
// cover the paths an e2e cannot provoke reliably: a quota error falls back to memory with a
// message; a load cancelled midway (AbortSignal) keeps only whole parts and resumes with a
// Range request; and that the cache never serves bytes other than the server's current file:
// revalidation, If-Range, sha256 and per-part digests, malformed entries healed.
// Run from tests/e2e: `node --test cache.test.mjs`.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';

const { loadModel } = await import(join(ROOT, 'www/engine/llama2.js'));
const { WeightCache, SEGMENT_BYTES } = await import(join(ROOT, 'www/cache/cache.js'));
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
/** Files the tests write and replace, served at /files/. */
const FILES = mkdtempSync(join(tmpdir(), 'llama2-cache-test-'));
const CACHE_NAME = 'llama2-weights-v2'; // cache-layout.js
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Writes (or replaces) a file under /files/; returns its URL. */
function serveFile(name, bytes) {
  writeFileSync(join(FILES, name), bytes);
  return `${server.url}files/${name}`;
}

/** Opens `url` through `cache` and reads it all; `cancelAt`: cancel once that many bytes came. */
async function read(cache, url, options = {}, cancelAt = Infinity) {
  const opened = await cache.open(url, options);
  const reader = opened.stream.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (loaded >= cancelAt) {
      await reader.cancel(new DOMException('cancelled', 'AbortError'));
      return null;
    }
  }
  return Buffer.concat(chunks);
}

/** The stored entries of `url` in `storage`, as { name: body } (part-K, meta, complete). */
async function stored(storage, url) {
  const cache = await storage.open(CACHE_NAME);
  const keys = [...cache.entries.keys()].filter((k) => k.includes(`/${encodeURIComponent(url)}/`));
  return Object.fromEntries(keys.map((k) => [k.slice(k.lastIndexOf('/') + 1), cache.entries.get(k)]));
}

/** Replaces what is stored under one of `url`'s keys (a part, a record). */
async function tamper(storage, url, name, body, headers) {
  const cache = await storage.open(CACHE_NAME);
  const key = [...cache.entries.keys()].find((k) => k.includes(`/${encodeURIComponent(url)}/`) && k.endsWith(`/${name}`));
  cache.entries.set(key, { body: Buffer.from(body), headers: headers ?? cache.entries.get(key).headers });
}

const until = async (check) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

async function generate(llama, steps = 256) {
  let text = '';
  for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps })) text += piece;
  return text;
}

before(async () => {
  server = await startServer({ mounts: [{ prefix: '/files', dir: FILES }] });
});
after(async () => {
  await server?.close();
  rmSync(FILES, { recursive: true, force: true });
});

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
  await until(() => notes.at(-1)?.status === 'partial');
  assert.equal(notes.at(-1)?.status, 'partial'); // sent once the kept parts are stored
  assert.deepEqual(storage.keys().filter((k) => k.includes('gqa-v0')).map((k) => k.split('/').pop()).sort(), ['meta', 'part-0']);
  assert.equal((await cache.list()).find((f) => f.url === url).complete, false);

  const llama = await loadModel({ model: url, tokenizer, cache, variant: 'simd', wasm });
  const requests = server.requests('/models/gqa-v0.bin');
  assert.deepEqual(requests.map((r) => r.range), [null, `bytes=${SEGMENT_BYTES}-`]);
  assert.match(requests[1].ifRange, /^".+"$/, 'resumed with If-Range: the ETag of the first response');
  assert.equal(requests[1].status, 206);
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

test('an expected size is checked even when the server announces none', async () => {
  const bytes = randomBytes(100_000);
  const chunked = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }); // no Content-Length: chunked
    res.end(bytes);
  });
  await new Promise((done) => chunked.listen(0, '127.0.0.1', done));
  try {
    const url = `http://127.0.0.1:${chunked.address().port}/chunked.bin`;
    const cache = new WeightCache({ storage: new MemoryStorage() });
    await assert.rejects(read(cache, url, { size: bytes.length + 1 }), { kind: 'network', message: `chunked.bin: download ended after ${bytes.length} of ${bytes.length + 1} bytes` });
    await assert.rejects(read(cache, url, { size: bytes.length - 1 }), { kind: 'format', message: `chunked.bin: more data than the expected ${bytes.length - 1} bytes (${url})` });
    assert.ok((await read(cache, url, { size: bytes.length })).equals(bytes));
  } finally {
    chunked.closeAllConnections();
    await new Promise((done) => chunked.close(done));
  }
});

// Found by an adversarial pass: a file changed on the server was served from the cache for ever.
test('a cached file is revalidated once per page load: a 304 keeps it, a changed file replaces it', async () => {
  const storage = new MemoryStorage();
  const notes = [];
  const page = () => new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) }); // one per page load
  const first = randomBytes(300_000);
  const url = serveFile('revalidate.bin', first);
  const requests = () => server.requests('/files/revalidate.bin');

  const cache = page();
  assert.ok((await read(cache, url)).equals(first));
  assert.ok((await read(cache, url)).equals(first));
  assert.equal(requests().length, 1, 'the same page load asks the server once');

  // The next page load: one conditional request, answered 304 without a body.
  assert.ok((await read(page(), url)).equals(first));
  assert.deepEqual(requests().slice(1).map((r) => [r.status, Boolean(r.ifNoneMatch)]), [[304, true]]);
  assert.deepEqual([notes.at(-1).status, notes.at(-1).message], ['hit', 'revalidate.bin: read from the browser cache (unchanged on the server)']);

  // Replaced by a file of the same size, then of another size: downloaded again, and stored.
  const same = randomBytes(300_000);
  serveFile('revalidate.bin', same);
  notes.length = 0;
  assert.ok((await read(page(), url)).equals(same));
  assert.deepEqual(notes.map((n) => n.status), ['changed', 'stored']);
  assert.equal(requests().at(-1).status, 200);
  const other = randomBytes(200_000);
  serveFile('revalidate.bin', other);
  assert.ok((await read(page(), url)).equals(other));
  assert.ok((await read(page(), url)).equals(other), 'the new file was stored');
  assert.equal(requests().at(-1).status, 304);
  assert.deepEqual(Object.keys(await stored(storage, url)).sort(), ['complete', 'meta', 'part-0', 'part-1', 'part-2', 'part-3']);
});

test('offline, the cached copy is used and the note says it was not checked', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(100_000);
  writeFileSync(join(FILES, 'offline.bin'), bytes);
  const other = await startServer({ mounts: [{ prefix: '/files', dir: FILES }] });
  const url = `${other.url}files/offline.bin`;
  assert.ok((await read(new WeightCache({ storage }), url)).equals(bytes));
  await other.close();
  const notes = [];
  assert.ok((await read(new WeightCache({ storage, onNote: (n) => notes.push(n) }), url)).equals(bytes));
  assert.deepEqual(notes.map((n) => n.status), ['hit']);
  assert.match(notes[0].message, /the server could not be reached to check it \(offline\?\)/);
});

// Found by an adversarial pass: a download cut, the file replaced with one of the same size, resumed
// with Range and no If-Range, was stored as complete: a mix of two files.
test('a cut download resumes only with If-Range: a file replaced meanwhile is downloaded whole, never mixed', async () => {
  const storage = new MemoryStorage();
  const notes = [];
  const cache = new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) });
  const url = serveFile('replaced.bin', randomBytes(300_000));
  assert.equal(await read(cache, url, {}, 150_000), null);
  await until(() => notes.at(-1)?.status === 'partial');
  const kept = Object.keys(await stored(storage, url)).filter((k) => k.startsWith('part-')).length;
  assert.ok(kept >= 2 && !('complete' in (await stored(storage, url))), `${kept} parts kept, no complete record`);
  const replaced = randomBytes(300_000);
  serveFile('replaced.bin', replaced);
  assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url)).equals(replaced));
  const resume = server.requests('/files/replaced.bin')[1];
  assert.deepEqual([resume.range, resume.status], [`bytes=${kept * (64 << 10)}-`, 200]);
  assert.match(resume.ifRange, /^".+"$/);
  assert.ok((await read(new WeightCache({ storage }), url)).equals(replaced), 'the stored copy is the new file');
});

test('a download whose every part was stored, but not its complete record, resumes at its last part', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(200_000);
  const url = serveFile('uncommitted.bin', bytes);
  assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url)).equals(bytes));
  const weights = await storage.open(CACHE_NAME);
  await weights.delete([...weights.entries.keys()].find((k) => k.includes('uncommitted') && k.endsWith('/complete')));
  assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url)).equals(bytes));
  assert.deepEqual(server.requests('/files/uncommitted.bin').slice(1).map((r) => [r.range, r.status]), [[`bytes=${3 * (64 << 10)}-`, 206]]);
  assert.ok('complete' in (await stored(storage, url)));
});

test('a cut download from a server without validators starts over', async () => {
  // A server that honours Range but sends no ETag or Last-Modified.
  const bytes = randomBytes(300_000);
  const ranges = [];
  const bare = createServer((req, res) => {
    const start = Number(req.headers.range?.match(/^bytes=(\d+)-$/)?.[1] ?? 0);
    ranges.push(req.headers.range ?? null);
    res.writeHead(start ? 206 : 200, {
      'Content-Length': bytes.length - start, ...(start && { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` }),
    });
    res.end(bytes.subarray(start));
  });
  await new Promise((done) => bare.listen(0, '127.0.0.1', done));
  try {
    const storage = new MemoryStorage();
    const url = `http://127.0.0.1:${bare.address().port}/bare.bin`;
    const notes = [];
    assert.equal(await read(new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) }), url, {}, 150_000), null);
    await until(() => notes.at(-1)?.status === 'partial');
    assert.equal(notes.at(-1).message, 'bare.bin: download interrupted; nothing could be kept, the next load starts over');
    assert.deepEqual(await stored(storage, url), {}, 'parts that cannot be resumed are not kept');
    assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url)).equals(bytes));
    assert.deepEqual(ranges, [null, null], 'no Range without a validator for If-Range');
  } finally {
    bare.closeAllConnections();
    await new Promise((done) => bare.close(done));
  }
});

// Found by an adversarial pass: with Last-Modified only, a file replaced within the same second
// has the same date, and a resume with that date in If-Range joined the two versions (RFC 9110
// 13.1.5 allows a date there only when it is strong: the response's Date a second later).
test('a cut download from a server with only Last-Modified resumes only when that date is strong', async () => {
  for (const strong of [false, true]) {
    let bytes = randomBytes(300_000);
    const modified = new Date(Math.floor(Date.now() / 1000) * 1000 - (strong ? 5000 : 0));
    const requests = [];
    const dated = createServer((req, res) => {
      const ifRange = req.headers['if-range'];
      // As a server does: If-Range with the current date means "the same file".
      const start = ifRange === modified.toUTCString() ? Number(req.headers.range?.match(/^bytes=(\d+)-$/)?.[1] ?? 0) : 0;
      requests.push({ range: req.headers.range ?? null, ifRange: ifRange ?? null });
      res.writeHead(start ? 206 : 200, {
        'Content-Length': bytes.length - start, 'Last-Modified': modified.toUTCString(), 'Accept-Ranges': 'bytes',
        Date: new Date(strong ? Date.now() : modified.getTime()).toUTCString(),
        ...(start && { 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` }),
      });
      res.end(bytes.subarray(start));
    });
    await new Promise((done) => dated.listen(0, '127.0.0.1', done));
    try {
      const storage = new MemoryStorage();
      const url = `http://127.0.0.1:${dated.address().port}/dated.bin`;
      const notes = [];
      assert.equal(await read(new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) }), url, {}, 150_000), null);
      await until(() => notes.at(-1)?.status === 'partial');
      if (!strong) bytes = randomBytes(300_000); // replaced within the same second: same date, same size
      const got = await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url);
      assert.ok(got.equals(bytes), `strong ${strong}: the server's current file, whole`);
      assert.equal(requests.length, 2);
      if (strong) assert.deepEqual(requests[1].ifRange, modified.toUTCString(), 'a strong date resumes');
      else assert.deepEqual(requests[1], { range: null, ifRange: null }, 'a weak date starts over');
    } finally {
      dated.closeAllConnections();
      await new Promise((done) => dated.close(done));
    }
  }
});

// Integrity: a given sha256 used to be part of the key only; the bytes were never hashed.
test('a sha256 that differs is refused naming the file and both digests, and nothing is kept', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(200_000);
  const url = serveFile('digest.bin', bytes);
  const wrong = sha256(Buffer.from('another file'));
  await assert.rejects(read(new WeightCache({ storage }), url, { sha256: wrong }), (err) => {
    assert.equal(err.kind, 'format');
    assert.equal(err.message, `digest.bin: its sha256 is ${sha256(bytes)}, but ${wrong} was expected (${url}); it was not kept`);
    return true;
  });
  assert.deepEqual(await stored(storage, url), {});
  assert.deepEqual(await new WeightCache({ storage }).list(), []);
  // The right one: stored with it, and later page loads need no request at all (the bytes are the ones asked for).
  assert.ok((await read(new WeightCache({ storage }), url, { sha256: sha256(bytes).toUpperCase() })).equals(bytes));
  const before = server.requests('/files/digest.bin').length;
  const notes = [];
  assert.ok((await read(new WeightCache({ storage, onNote: (n) => notes.push(n) }), url, { sha256: sha256(bytes) })).equals(bytes));
  assert.equal(server.requests('/files/digest.bin').length, before);
  assert.match(notes[0].message, /its sha256 is the one asked for/);
  assert.equal((await new WeightCache({ storage }).list())[0].sha256, sha256(bytes));
  await assert.rejects(new WeightCache({ storage }).open(url, { sha256: 'abc' }), { name: 'TypeError', message: /sha256 must be 64 hex digits/ });
  await assert.rejects(new WeightCache({ storage }).open(url, { size: '200000' }), { name: 'TypeError', message: 'size must be a whole number of bytes, not "200000"' });
});

test('an entry stored without a sha256 is hashed once when one is asked for', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(200_000);
  const url = serveFile('later.bin', bytes);
  assert.ok((await read(new WeightCache({ storage }), url)).equals(bytes));
  const cache = new WeightCache({ storage });
  await assert.rejects(read(cache, url, { sha256: '0'.repeat(64) }), { kind: 'format', message: new RegExp(`its sha256 is ${sha256(bytes)}, but 0{64} was expected`) });
  assert.deepEqual(await stored(storage, url), {}, 'the wrong copy was deleted');
  assert.ok((await read(new WeightCache({ storage }), url)).equals(bytes));
  assert.ok((await read(new WeightCache({ storage }), url, { sha256: sha256(bytes) })).equals(bytes));
  assert.equal((await new WeightCache({ storage }).list())[0].sha256, sha256(bytes), 'the record now carries it');
  assert.equal(JSON.parse(Buffer.from((await stored(storage, url)).complete.body).toString()).parts.length, 1, 'and its parts\' digests');
});

test('a resumed download with a sha256 is verified whole, and its record lists every part\'s digest', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(300_000);
  const url = serveFile('resumed-digest.bin', bytes);
  const notes = [];
  const options = { sha256: sha256(bytes) };
  assert.equal(await read(new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) }), url, options, 150_000), null);
  await until(() => notes.at(-1)?.status === 'partial');
  assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) }), url, options)).equals(bytes));
  assert.deepEqual(notes.slice(-2).map((n) => n.status), ['resumed', 'stored']);
  const { parts } = JSON.parse(Buffer.from((await stored(storage, url)).complete.body).toString());
  assert.deepEqual(parts, Array.from({ length: 5 }, (_, k) => sha256(bytes.subarray(k * (64 << 10), (k + 1) * (64 << 10)))));
});

// Found by an adversarial pass: flipped bytes in the cache gave silent garbage.
test('with a sha256, bytes changed inside a cached part fail the load with both digests, and the entry is deleted', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(200_000);
  const url = serveFile('flipped.bin', bytes);
  const cache = new WeightCache({ storage, segmentBytes: 64 << 10 });
  const options = { sha256: sha256(bytes) };
  assert.ok((await read(cache, url, options)).equals(bytes));
  const { body } = (await stored(storage, url))['part-1'];
  const flipped = Buffer.from(body);
  flipped[1000] ^= 1;
  await tamper(storage, url, 'part-1', flipped);
  await assert.rejects(read(cache, url, options), (err) => {
    assert.equal(err.kind, 'format');
    assert.equal(err.message, `flipped.bin: the browser cache's copy is damaged (part 1 has sha256 ${sha256(flipped)}, ${sha256(body)} was stored); it was deleted, load it again to download it`);
    return true;
  });
  assert.deepEqual(await stored(storage, url), {});
  assert.ok((await read(cache, url, options)).equals(bytes));
});

// Found by an adversarial pass: a part of the wrong length failed every reload while the list said
// "complete"; a `complete` record that is not JSON broke open() and list(), so it could not be deleted.
for (const [what, name, body, headers] of [
  ['a part of the wrong length', 'part-1', 'twenty-eight bytes of junk..'],
  ['a part from another download', 'part-1', Buffer.alloc(64 << 10), [['x-download', 'another'], ['x-sha256', '0'.repeat(64)]]],
  ['a complete record that is not JSON', 'complete', '{"url": '],
  ['a complete record missing fields', 'complete', '{"size": 200000}'],
  ['a meta record that is not JSON', 'meta', 'not json'],
]) {
  test(`${what}: the entry is deleted and downloaded again, with a note`, async () => {
    const storage = new MemoryStorage();
    const bytes = randomBytes(200_000);
    const file = `malformed-${name}-${what.length}.bin`;
    const url = serveFile(file, bytes);
    assert.ok((await read(new WeightCache({ storage, segmentBytes: 64 << 10 }), url)).equals(bytes));
    if (name === 'meta') await (await storage.open(CACHE_NAME)).delete((await (await storage.open(CACHE_NAME)).keys()).find((r) => r.url.includes(file) && r.url.endsWith('/complete')));
    await tamper(storage, url, name, body, headers);
    const notes = [];
    const cache = new WeightCache({ storage, segmentBytes: 64 << 10, onNote: (n) => notes.push(n) });
    assert.ok((await read(cache, url)).equals(bytes));
    assert.equal(notes[0].status, 'discarded');
    assert.match(notes[0].message, new RegExp(`^${file}: the cached copy was damaged \\(.+\\): deleted, downloading it again$`));
    assert.deepEqual(notes.slice(1).map((n) => n.status), ['stored']);
    assert.equal((await cache.list())[0].complete, true);
  });
}

test('list() never throws: malformed entries are deleted, and delete() always works', async () => {
  const storage = new MemoryStorage();
  const bytes = randomBytes(100_000);
  const good = serveFile('listed.bin', bytes);
  const bad = serveFile('unlisted.bin', bytes);
  const cache = new WeightCache({ storage });
  await read(cache, good);
  await read(cache, bad);
  await tamper(storage, bad, 'complete', 'garbage');
  const weights = await storage.open(CACHE_NAME);
  await weights.put('http://localhost/__llama2-weights__/%E0%A4%A/part-0', new Response('junk'));
  await weights.put('http://localhost/__llama2-weights__/odd', new Response('junk'));
  const notes = [];
  const files = await new WeightCache({ storage, onNote: (n) => notes.push(n) }).list();
  assert.deepEqual(files.map((f) => [f.url, f.complete, f.bytes]), [[good, true, bytes.length]]);
  assert.deepEqual(notes.map((n) => [n.url, n.status]), [[bad, 'discarded']]);
  assert.deepEqual([...weights.entries.keys()].filter((k) => !k.includes(encodeURIComponent(good))), []);
  await tamper(storage, good, 'meta', '{');
  await cache.delete(good);
  assert.deepEqual([...weights.entries.keys()], []);
});
