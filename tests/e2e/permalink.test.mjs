// Permalinks: the page's model, prompt, temperature, top-p, steps and seed round-trip through
// its address, and a link regenerates the same story; a link cannot load anything unasked
// (files on another site wait for a click; data: and blob: URLs are refused); malformed
// addresses are said on the page, never thrown. Run from tests/e2e:
// `node --test permalink.test.mjs`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, watchPage } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';
import { generate, loadUrls, modelSummary, overflowsSideways, pageReady, shownError } from './page-helpers.mjs';
import { serve } from '../../tools/serve.mjs';

/** run.c's sampled case: "The robot", temperature 1, top-p 0.9, seed 42, 200 steps. */
const SAMPLED = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8')).find(
  (c) => c.checkpoint === 'aidreams260K.bin' && c.prompt === 'The robot' && c.temperature === 1,
);
const MODEL = 'model=models/aidreams260K.bin&tokenizer=models/tok512-aidreams.bin';

let server;
/** Another origin (another port) that serves the models with CORS, and logs each method. */
let foreign;
let browser;

/** Serves the test models at /models with CORS (any origin may read them). */
async function startForeign() {
  const { server: http, url } = await serve({ root: MODELS, port: 0, mounts: [{ prefix: '/models', dir: MODELS }] });
  const [handler] = http.listeners('request');
  http.removeAllListeners('request');
  const log = [];
  http.on('request', (req, res) => {
    log.push({ method: req.method, path: new URL(req.url, url).pathname });
    res.setHeader('Access-Control-Allow-Origin', '*');
    handler(req, res);
  });
  return { url, log, close: () => new Promise((done) => { http.closeAllConnections(); http.close(done); }) };
}

/** Opens index.html + `link` in a fresh context; the page, its errors and its requests. */
async function open(link, { viewport = { width: 1000, height: 900 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  watchPage(page);
  page.errors = [];
  page.requests = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  context.on('request', (request) => page.requests.push({ method: request.method(), url: request.url() }));
  await page.goto(`${server.url}index.html${link}`);
  await pageReady(page);
  return page;
}

/** Waits for the story a link started. */
async function story(page) {
  await page.waitForSelector('#output[data-done]', { timeout: 120_000 });
  return page.textContent('#output');
}

before(async () => {
  assert.ok(STORY && SAMPLED, 'golden cases not found');
  server = await startServer();
  foreign = await startForeign();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
  await foreign?.close();
});

test('an old link (?prompt=) loads its model, fills the settings and writes the golden story', async () => {
  const page = await open(`?${MODEL}&prompt=Once+upon+a+time&temperature=0&topp=0.9&steps=256&seed=1`);
  assert.equal(await story(page), STORY.stdout);
  assert.equal(await page.inputValue('#prompt'), 'Once upon a time');
  assert.equal(await page.inputValue('#temperature'), '0');
  assert.equal(await page.inputValue('#steps'), '256');
  assert.equal(await modelSummary(page), 'aidreams260K · 0.9 MB · fp32 · 1 worker');
  // Rewritten the new way: the prompt moves to the fragment.
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('prompt'), null);
  assert.equal(new URLSearchParams(url.hash.slice(1)).get('prompt'), 'Once upon a time');
  await page.context().close();
});

test('a link keeps its prompt in the fragment: the server never sees it; the link reproduces the story', async () => {
  const page = await open(`?${MODEL}&temperature=1&topp=0.9&steps=200&seed=42#prompt=The+robot`);
  assert.equal(await story(page), SAMPLED.stdout);
  // A new story with a time seed (empty field) and other settings.
  const result = await generate(page, { prompt: 'One day', temperature: '0.9', topp: '0.8', steps: '100', seed: '' });
  assert.ok(result.text.startsWith('One day'), result.text);
  const url = new URL(page.url());
  const seed = url.searchParams.get('seed');
  assert.match(seed, /^\d+$/);
  assert.notEqual(seed, '42');
  assert.match(await page.textContent('#stats'), new RegExp(`seed ${seed}$`));
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    model: 'models/aidreams260K.bin', tokenizer: 'models/tok512-aidreams.bin', temperature: '0.9', topp: '0.8', steps: '100', seed,
  });
  assert.equal(url.hash, '#prompt=One+day');
  assert.equal(await page.getAttribute('#permalink', 'href'), `${url.search}${url.hash}`);
  const sent = page.requests.filter((r) => /robot|One(\+|%20)day|prompt=/i.test(r.url));
  assert.deepEqual(sent, [], 'a prompt reached the server');
  const again = await open(`${url.search}${url.hash}`);
  assert.equal(await story(again), result.text);
  await page.context().close();
  await again.context().close();
});

test('a link to files on another site says what it would load and waits for a click', async () => {
  const model = `${foreign.url}models/aidreams260K.bin`;
  const link = `?model=${encodeURIComponent(model)}&tokenizer=models/tok512-aidreams.bin&temperature=0&steps=256&seed=1#prompt=Once+upon+a+time`;
  const page = await open(link);
  await page.waitForSelector('#link-check li[data-what="model"][data-size]');
  const host = new URL(foreign.url).host;
  assert.equal(await page.getAttribute('#link-check li[data-what="model"]', 'data-host'), host);
  assert.equal(await page.getAttribute('#link-check li[data-what="model"]', 'data-size'), '932124');
  assert.equal(await page.textContent('#link-check li[data-what="model"]'), `model: aidreams260K.bin from ${host} (0.9 MB)`);
  assert.equal(await page.$$eval('#link-check li', (items) => items.length), 1, 'the same-origin tokenizer needs no consent');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(foreign.log.map((r) => r.method), ['HEAD'], 'the link downloaded before the click');
  assert.match(await modelSummary(page), /waiting for your click/);
  await page.screenshot({ path: join(new URL('../../target/e2e/', import.meta.url).pathname, 'link-check.png') });
  await page.click('#link-load');
  assert.equal(await story(page), STORY.stdout);
  assert.deepEqual(foreign.log.map((r) => r.method), ['HEAD', 'GET']);
  // "Not now" leaves the default model chosen and loads nothing.
  const other = await open(link);
  await other.waitForSelector('#link-check:not([hidden])');
  await other.click('#link-cancel');
  assert.equal(await other.isHidden('#link-check'), true);
  assert.match(await modelSummary(other), /\(not loaded yet/);
  assert.equal(foreign.log.filter((r) => r.method === 'GET').length, 1);
  await page.context().close();
  await other.context().close();
});

test('data: and blob: URLs in a link are refused with a message; a long one does not overflow a phone', async () => {
  // Long (a real model would be megabytes), within what the server takes in a request line.
  const data = `data:application/octet-stream;base64,${'QUFB'.repeat(1500)}`;
  const page = await open(`?model=${encodeURIComponent(data)}&tokenizer=models/tok512-aidreams.bin#prompt=Hi`, { viewport: { width: 390, height: 844 } });
  const error = await shownError(page);
  assert.equal(error.where, 'story-error');
  assert.match(error.message, /^The link's model is a data: URL\. Links may only name files on http\(s\) servers/);
  assert.equal(await overflowsSideways(page), false, 'the data: URL overflows the page');
  assert.match(await modelSummary(page), /not loaded yet/);
  assert.deepEqual(page.requests.filter((r) => new URL(r.url).pathname.endsWith('.bin')), [], 'a file was loaded');
  await page.screenshot({ path: join(new URL('../../target/e2e/', import.meta.url).pathname, 'link-data-refused.png') });
  const blob = await open(`?model=${encodeURIComponent('blob:http://127.0.0.1/0b4c5e8e-1')}&tokenizer=models/tok512-aidreams.bin`);
  assert.match((await shownError(blob)).message, /^The link's model is a blob: URL/);
  // The page still works: a model chosen, Generate loads it.
  await loadUrls(page, 'models/aidreams260K.bin', 'models/tok512-aidreams.bin');
  const result = await generate(page, { temperature: '0', steps: '256', seed: '1', prompt: 'Once upon a time' });
  assert.equal(result.text, STORY.stdout);
  assert.deepEqual([...page.errors, ...blob.errors], []);
  await page.context().close();
  await blob.context().close();
});

test('malformed addresses (a bad percent-escape, http://[bad, a missing tokenizer) are said on the page', async () => {
  const cases = [
    [`?model=models/%E0%A4%A.bin&tokenizer=models/tok512-aidreams.bin`, /^The link's model address ".*" has a malformed percent-escape/],
    [`?model=http://[bad&tokenizer=models/tok512-aidreams.bin`, /^The link's model address "http:\/\/\[bad" is not a valid URL\.$/],
    [`?model=models/aidreams260K.bin`, /^The link names a model but no tokenizer: it needs both\.$/],
    [`?${MODEL}&temperature=warm`, /^The link's temperature "warm" is not a number\.$/],
  ];
  for (const [link, message] of cases) {
    const page = await open(link);
    const error = await shownError(page);
    assert.ok(error, `${link}: nothing said`);
    assert.match(error.message, message, link);
    assert.deepEqual(page.errors, [], `${link}: an uncaught error`);
    console.log(`| ${link} | ${error.message} |`);
    await page.context().close();
  }
  // Typed into the Model section: said next to Load.
  const page = await open('');
  const typed = await loadUrls(page, `${server.url}models/%E0%A4%A.bin`, 'models/tok512-aidreams.bin');
  assert.match(typed, /^The model address ".*" has a malformed percent-escape/);
  assert.equal((await shownError(page)).where, 'model-error');
  assert.deepEqual(page.errors, []);
  await page.context().close();
});
