// The weight cache and the offline app shell, end to end in headless Chromium:
// a second load makes no request (and the next page load one 304); a download cut midway is
// never trusted and resumes with a Range request; the page lists and deletes cached models;
// offline, the page reloads (service worker) and generates from the cache. And with the real
// Cache API: a file changed on the server is downloaded again, a cut download whose
// file was replaced is not mixed, a corrupt part or record is healed, a wrong sha256 refused.
// Run from tests/e2e: `node --test offline.test.mjs`.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, watchPage } from './browser.mjs';
import { MODELS, OUT, STORY, startServer } from './harness.mjs';
import { errorMessage, generate as generateThroughPage, loadUrls, modelSummary, pageReady } from './page-helpers.mjs';

const golden = (await import('node:fs')).readFileSync(join(MODELS, '../golden/generate.json'), 'utf8');
const GQA = JSON.parse(golden).find((c) => c.checkpoint === 'gqa-v0.bin' && c.temperature === 0);
const GQA_SIZE = statSync(join(MODELS, 'gqa-v0.bin')).size;
const PART = 4 << 20; // cache.js SEGMENT_BYTES

let server;
let browser;
let context;
let page;

/** Loads a model through the page's Model section; resolves once loaded or failed. */
async function load(model, tokenizer) {
  await pageReady(page);
  await loadUrls(page, model, tokenizer);
}

async function generate({ prompt = 'Once upon a time', temperature = '0', steps = '256', seed = '1' } = {}) {
  return (await generateThroughPage(page, { prompt, temperature, topp: '0.9', steps, seed })).text;
}

/** No error shown anywhere on the page (the message when there is one). */
async function assertNoError() {
  assert.equal(await errorMessage(page), null);
}

/** The cache panel's rows: { name, size, complete }. */
const cachedRows = () =>
  page.$$eval('#cache-list li[data-url]', (items) =>
    items.map((li) => ({ name: li.dataset.url.split('/').pop(), size: Number(li.dataset.size), complete: li.dataset.complete === 'true' })),
  );

/** The status of the cache panel's last note about `file` (hit, stored, partial, memory...):
 * on its row in the list, or below the list for a file that is not cached. */
async function noteOf(file) {
  const selector = `#cache-panel [data-url$="/${file}"][data-status]`;
  await page.waitForSelector(selector, { state: 'attached', timeout: 10_000 });
  return page.getAttribute(selector, 'data-status');
}

/** The keys of the weight cache (cache.js's layout) that name `file`. */
const cacheKeys = (file) =>
  page.evaluate(async (f) => {
    const cache = await caches.open('llama2-weights-v2');
    return (await cache.keys()).map((r) => decodeURIComponent(r.url)).filter((u) => u.includes(f)).map((u) => u.slice(u.lastIndexOf('/') + 1));
  }, file);

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Writes (or replaces) a file the server has under /fixtures/; returns its URL. */
function serveFile(name, bytes) {
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, name), bytes);
  return `${server.url}fixtures/${name}`;
}

/**
 * Opens `url` with a new WeightCache in the page (the real Cache API; a new one is what a new
 * page load has) and reads it all: `{ sha256, size, notes }`, or `{ error, kind, notes }`.
 */
const openInPage = (url, options = {}) =>
  page.evaluate(async ({ url, options }) => {
    const { WeightCache } = await import('/cache/cache.js');
    const notes = [];
    const cache = new WeightCache({ onNote: (n) => notes.push(n.status) });
    try {
      // Read by hand: a Response over the stream would replace its error with "Failed to fetch".
      const reader = (await cache.open(url, options)).stream.getReader();
      const chunks = [];
      for (let read = await reader.read(); !read.done; read = await reader.read()) chunks.push(read.value);
      const bytes = await new Blob(chunks).arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      return { sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join(''), size: bytes.byteLength, notes };
    } catch (err) {
      return { error: err.message, kind: err.kind, notes };
    }
  }, { url, options });

/** Replaces what the page's weight cache stores under one of `url`'s keys (`part-K`, `meta`,
 * `complete`: cache-layout.js). */
const tamper = (url, name, body, headers = {}) =>
  page.evaluate(async ({ url, name, body, headers }) => {
    const cache = await caches.open('llama2-weights-v2');
    const key = (await cache.keys()).find((r) => r.url.includes(`/${encodeURIComponent(url)}/`) && r.url.endsWith(`/${name}`));
    await cache.put(key, new Response(body, { headers }));
  }, { url, name, body, headers });

/** Flips one bit of part `k` of `url` in the page's weight cache (same length, same headers):
 * the part's sha256 before and after. */
const flipBit = (url, k, at) =>
  page.evaluate(async ({ url, k, at }) => {
    const cache = await caches.open('llama2-weights-v2');
    const key = (await cache.keys()).find((r) => r.url.includes(`/${encodeURIComponent(url)}/`) && r.url.endsWith(`/part-${k}`));
    const response = await cache.match(key);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const hex = async () => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
    const before = await hex();
    bytes[at] ^= 0x80;
    await cache.put(key, new Response(bytes, { headers: response.headers }));
    return { before, after: await hex() };
  }, { url, k, at });

/** The headers stored with part `k` of `url`. */
const partHeaders = (url, k) =>
  page.evaluate(async ({ url, k }) => {
    const cache = await caches.open('llama2-weights-v2');
    const key = (await cache.keys()).find((r) => r.url.includes(`/${encodeURIComponent(url)}/`) && r.url.endsWith(`/part-${k}`));
    return Object.fromEntries((await cache.match(key)).headers);
  }, { url, k });

before(async () => {
  assert.ok(STORY && GQA, 'golden cases not found');
  server = await startServer();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1000, height: 1000 } });
  page = await context.newPage();
  watchPage(page);
  await page.goto(`${server.url}index.html`);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the second load of a model reads the cache: no request in the same page load, one 304 in the next', async () => {
  await load('models/aidreams260K.bin', 'models/tok512-aidreams.bin');
  await assertNoError();
  assert.equal(server.requests('/models/aidreams260K.bin').length, 1);
  assert.equal(server.requests('/models/tok512-aidreams.bin').length, 1);
  await page.waitForSelector('#cache-list li[data-url$="/aidreams260K.bin"][data-status="stored"]');
  await page.waitForFunction(() => document.querySelectorAll('#cache-list li[data-url]').length === 2);
  // Each file once: a row in the list, and no second line about it below.
  const urls = await page.$$eval('#cache-panel [data-url]', (items) => items.map((e) => e.dataset.url));
  assert.equal(new Set(urls).size, urls.length, `listed twice: ${urls.join(', ')}`);
  const rows = await cachedRows();
  assert.deepEqual(rows.map((r) => [r.name, r.size, r.complete]).sort(), [
    ['aidreams260K.bin', 932124, true],
    ['tok512-aidreams.bin', statSync(join(MODELS, 'tok512-aidreams.bin')).size, true],
  ]);
  assert.match(await page.textContent('#cache-list'), /aidreams260K\.bin: 0\.9 MB/);

  // The same page load: no request at all.
  await load('models/aidreams260K.bin', 'models/tok512-aidreams.bin');
  assert.equal(await noteOf('aidreams260K.bin'), 'hit');
  assert.equal(server.requests('/models/aidreams260K.bin').length, 1, 'the second load went to the network');

  // A new visit: one conditional request per file (answered 304, no body), same golden story.
  await page.reload();
  await load('models/aidreams260K.bin', 'models/tok512-aidreams.bin');
  await assertNoError();
  assert.equal(await noteOf('aidreams260K.bin'), 'hit');
  assert.equal(await noteOf('tok512-aidreams.bin'), 'hit');
  for (const file of ['aidreams260K.bin', 'tok512-aidreams.bin']) {
    const [first, second, ...more] = server.requests(`/models/${file}`);
    assert.deepEqual(more, []);
    assert.equal(first.status, 200);
    assert.deepEqual([second.status, second.range], [304, null], `${file}: the revalidation`);
    assert.match(second.ifNoneMatch, /^".+"$/);
  }
  assert.equal(await generate(), STORY.stdout);
});

test('a download cut midway is never trusted; the next load resumes with a Range request', async () => {
  server.cutNext('/models/gqa-v0.bin', 6_000_000); // 1 whole 4 MiB part, then the connection drops
  await load('models/gqa-v0.bin', 'models/tokenizer.bin');
  assert.match(await errorMessage(page), /gqa-v0\.bin/);
  assert.equal(await modelSummary(page), 'gqa-v0: failed to load, none loaded');
  // Part 0 and the meta record stay for a resume; no `complete` record: nothing trusted.
  await page.waitForFunction(() => [...document.querySelectorAll('#cache-list li[data-url]')].some((li) => li.dataset.url.endsWith('gqa-v0.bin')));
  assert.deepEqual((await cacheKeys('gqa-v0.bin')).sort(), ['meta', 'part-0']);
  assert.deepEqual((await cachedRows()).find((r) => r.name === 'gqa-v0.bin'), { name: 'gqa-v0.bin', size: GQA_SIZE, complete: false });
  await page.screenshot({ path: join(OUT, 'cache-partial.png'), fullPage: true });

  // The next load asks for the rest only, and the bytes put together are the right model.
  await load('models/gqa-v0.bin', 'models/tokenizer.bin');
  await assertNoError();
  const requests = server.requests('/models/gqa-v0.bin');
  assert.equal(requests.length, 2);
  assert.deepEqual([requests[1].range, requests[1].status], [`bytes=${PART}-`, 206]);
  assert.match(requests[1].ifRange, /^".+"$/, 'resumed with the ETag of the first response');
  assert.equal(await noteOf('gqa-v0.bin'), 'stored');
  assert.deepEqual((await cacheKeys('gqa-v0.bin')).sort(), ['complete', 'meta', 'part-0', 'part-1', 'part-2']);
  assert.equal(await generate({ steps: String(GQA.steps) }), GQA.stdout);

  // And from the cache, with no request.
  await load('models/gqa-v0.bin', 'models/tokenizer.bin');
  assert.equal(server.requests('/models/gqa-v0.bin').length, 2);
  assert.equal(await generate({ steps: String(GQA.steps) }), GQA.stdout);
});

test('the page lists cached models with their sizes and deletes them', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#cache-list li[data-url]').length === 4);
  assert.deepEqual((await cachedRows()).find((r) => r.name === 'gqa-v0.bin'), { name: 'gqa-v0.bin', size: GQA_SIZE, complete: true });
  await page.locator('#cache-list li[data-url$="/gqa-v0.bin"] button').click();
  await page.waitForFunction(() => document.querySelectorAll('#cache-list li[data-url]').length === 3);
  assert.deepEqual(await cacheKeys('gqa-v0.bin'), []);
  await page.screenshot({ path: join(OUT, 'cache-list.png'), fullPage: true });
  // Deleted means downloaded again.
  await load('models/gqa-v0.bin', 'models/tokenizer.bin');
  const requests = server.requests('/models/gqa-v0.bin');
  assert.equal(requests.length, 3);
  assert.equal(requests[2].range, null);
});

test('offline, the page reloads from the service worker and generates from the cache', async () => {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
  });
  const before = server.log.length;
  await context.setOffline(true);
  try {
    await page.reload();
    await load('models/aidreams260K.bin', 'models/tok512-aidreams.bin');
    await assertNoError();
    assert.equal(await noteOf('aidreams260K.bin'), 'hit');
    assert.equal(await generate(), STORY.stdout);
    assert.match(await page.textContent('#stats'), /tok\/s/);
    await page.screenshot({ path: join(OUT, 'offline.png'), fullPage: true });
    // The page icon is the browser's own request, made when the browser chooses: once in CI one
    // reached the server during this test, answered 200 (most likely a late fetch for the page
    // before the reload, issued before the network went offline). It is not the page's request
    // for its code or weights, so it does not count.
    const reached = server.log.slice(before).filter((r) => r.path !== '/favicon.svg');
    assert.deepEqual(reached, [], 'requests reached the server while offline');
  } finally {
    await context.setOffline(false);
  }
});

test('over the storage quota, the model loads into memory only and the page says so', async () => {
  // A fresh profile whose origin may store 1 MB (Chromium's quota override, over CDP).
  const small = await browser.newContext();
  const quotaPage = await small.newPage();
  watchPage(quotaPage, 'quota page');
  const cdp = await small.newCDPSession(quotaPage);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(server.url).origin, quotaSize: 1_000_000 });
  const previous = page;
  page = quotaPage;
  try {
    await page.goto(`${server.url}index.html`);
    await load('models/gqa-v0.bin', 'models/tokenizer.bin');
    await assertNoError();
    await page.waitForSelector('#cache-note [data-url$="/gqa-v0.bin"][data-status="memory"]');
    assert.match(await page.textContent('#cache-note [data-url$="/gqa-v0.bin"]'), /gqa-v0\.bin is not cached: the browser storage quota is full\. It is loaded in memory only/);
    assert.equal(await generate({ steps: String(GQA.steps) }), GQA.stdout);
    await page.screenshot({ path: join(OUT, 'cache-quota.png'), fullPage: true });
    await page.waitForFunction(() => ![...document.querySelectorAll('#cache-list li[data-url]')].some((li) => li.dataset.url.endsWith('gqa-v0.bin')));
    assert.deepEqual(await cacheKeys('gqa-v0.bin'), []);
  } finally {
    page = previous;
    await small.close();
  }
});

test('the weight cache: a file changed on the server is downloaded again; unchanged, one 304', async () => {
  const first = randomBytes(600_000);
  const url = serveFile('cache-changed.bin', first);
  assert.deepEqual(await openInPage(url), { sha256: sha256(first), size: first.length, notes: ['stored'] });
  assert.deepEqual(await openInPage(url), { sha256: sha256(first), size: first.length, notes: ['hit'] });
  assert.deepEqual(server.requests('/fixtures/cache-changed.bin').map((r) => r.status), [200, 304]);
  const same = randomBytes(600_000); // the same size: only the validators tell
  serveFile('cache-changed.bin', same);
  assert.deepEqual(await openInPage(url), { sha256: sha256(same), size: same.length, notes: ['changed', 'stored'] });
  assert.deepEqual(await openInPage(url), { sha256: sha256(same), size: same.length, notes: ['hit'] });
});

test('the weight cache: a download cut, then the file replaced with another of the same size, is not mixed', async () => {
  const size = PART + 2_000_000;
  const url = serveFile('cache-replaced.bin', randomBytes(size));
  server.cutNext('/fixtures/cache-replaced.bin', PART + 1_000_000); // part 0 whole, then the connection drops
  const cut = await openInPage(url);
  assert.equal(cut.kind, 'network', cut.error);
  await page.waitForFunction(async () => (await (await caches.open('llama2-weights-v2')).keys()).some((r) => r.url.includes('cache-replaced') && r.url.endsWith('/part-0')));
  assert.deepEqual((await cacheKeys('cache-replaced.bin')).sort(), ['meta', 'part-0']);

  const replaced = randomBytes(size);
  serveFile('cache-replaced.bin', replaced);
  assert.deepEqual(await openInPage(url), { sha256: sha256(replaced), size, notes: ['stored'] });
  const resume = server.requests('/fixtures/cache-replaced.bin')[1];
  assert.deepEqual([resume.range, resume.status], [`bytes=${PART}-`, 200], 'If-Range named the old file: the whole new one');
  assert.match(resume.ifRange, /^".+"$/);
  assert.deepEqual(await openInPage(url), { sha256: sha256(replaced), size, notes: ['hit'] });
});

test('the weight cache: a part of the wrong length and an unparsable record are healed', async () => {
  const bytes = randomBytes(PART + 300_000);
  const url = serveFile('cache-healed.bin', bytes);
  const whole = { sha256: sha256(bytes), size: bytes.length };
  assert.deepEqual(await openInPage(url), { ...whole, notes: ['stored'] });
  await tamper(url, 'part-1', 'twenty-eight bytes of junk..', await partHeaders(url, 1));
  assert.deepEqual(await openInPage(url), { ...whole, notes: ['discarded', 'stored'] });
  await tamper(url, 'complete', '{"url": ');
  assert.deepEqual(await openInPage(url), { ...whole, notes: ['discarded', 'stored'] });
  // The page's list survives one too (the entry is deleted), and the next load downloads it again.
  await tamper(url, 'complete', 'not json');
  const listed = await page.evaluate(async () => (await new (await import('/cache/cache.js')).WeightCache().list()).map((f) => f.url));
  assert.equal(listed.includes(url), false);
  assert.deepEqual(await cacheKeys('cache-healed.bin'), []);
  assert.deepEqual(await openInPage(url), { ...whole, notes: ['stored'] });
});

test('the weight cache: a wrong sha256 is refused with both digests; changed bytes in a part are caught', async () => {
  const bytes = randomBytes(PART + 300_000);
  const url = serveFile('cache-digest.bin', bytes);
  const wrong = sha256(Buffer.from('another model'));
  const refused = await openInPage(url, { sha256: wrong });
  assert.equal(refused.kind, 'format', refused.error);
  assert.equal(refused.error, `cache-digest.bin: its sha256 is ${sha256(bytes)}, but ${wrong} was expected (${url}); it was not kept`);
  assert.deepEqual(await cacheKeys('cache-digest.bin'), []);

  assert.deepEqual(await openInPage(url, { sha256: sha256(bytes) }), { sha256: sha256(bytes), size: bytes.length, notes: ['stored'] });
  assert.deepEqual(await openInPage(url, { sha256: sha256(bytes) }), { sha256: sha256(bytes), size: bytes.length, notes: ['hit'] });
  assert.ok(page.workers().some((w) => w.url().endsWith('/cache/cache-digest-worker.js')), 'parts were digested in their own worker');
  const part = await flipBit(url, 0, 12345);
  const damaged = await openInPage(url, { sha256: sha256(bytes) });
  assert.equal(damaged.kind, 'format');
  assert.equal(damaged.error, `cache-digest.bin: the browser cache's copy is damaged (part 0 has sha256 ${part.after}, ${part.before} was stored); it was deleted, load it again to download it`);
  assert.deepEqual(await cacheKeys('cache-digest.bin'), []);
});
