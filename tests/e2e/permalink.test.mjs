// Permalinks (issue 5): the page's model, prompt, temperature, top-p, steps and seed round-trip
// through the URL, and a link regenerates the same story. Run from tests/e2e:
// `node --test permalink.test.mjs`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, watchPage } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';

/** run.c's sampled case: "The robot", temperature 1, top-p 0.9, seed 42, 200 steps. */
const SAMPLED = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8')).find(
  (c) => c.checkpoint === 'aidreams260K.bin' && c.prompt === 'The robot' && c.temperature === 1,
);
const MODEL = 'model=models/aidreams260K.bin&tokenizer=models/tok512-aidreams.bin';

let server;
let browser;

/** Opens `query` on index.html in a fresh page; resolves with the page once its story is done. */
async function open(query) {
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(`${server.url}index.html${query}`);
  await page.waitForSelector('#output[data-done]', { timeout: 120_000 });
  return page;
}

before(async () => {
  assert.ok(STORY && SAMPLED, 'golden cases not found');
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('a permalink loads its model, fills the settings and writes the golden story', async () => {
  const page = await open(`?${MODEL}&prompt=Once+upon+a+time&temperature=0&topp=0.9&steps=256&seed=1`);
  assert.equal(await page.textContent('#output'), STORY.stdout);
  assert.equal(await page.inputValue('#prompt'), 'Once upon a time');
  assert.equal(await page.inputValue('#temperature'), '0');
  assert.equal(await page.inputValue('#steps'), '256');
  const sampled = await open(`?${MODEL}&prompt=The+robot&temperature=1&topp=0.9&steps=200&seed=42`);
  assert.equal(await sampled.textContent('#output'), SAMPLED.stdout);
});

test('after a story the URL holds its settings and seed, and reproduces the same text', async () => {
  const page = await open(`?${MODEL}&prompt=The+robot&temperature=1&topp=0.9&steps=200&seed=42`);
  // A new story with a time seed (empty field) and other settings.
  await page.fill('#prompt', 'One day');
  await page.fill('#temperature', '0.9');
  await page.fill('#topp', '0.8');
  await page.fill('#steps', '100');
  await page.fill('#seed', '');
  await page.evaluate(() => delete document.querySelector('#output').dataset.done);
  await page.click('#generate');
  await page.waitForSelector('#output[data-done]');
  const text = await page.textContent('#output');
  const url = new URL(page.url());
  const seed = url.searchParams.get('seed');
  assert.match(seed, /^\d+$/);
  assert.notEqual(seed, '42');
  assert.match(await page.textContent('#stats'), new RegExp(`seed ${seed} `));
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    model: 'models/aidreams260K.bin', tokenizer: 'models/tok512-aidreams.bin',
    prompt: 'One day', temperature: '0.9', topp: '0.8', steps: '100', seed,
  });
  assert.equal(await page.getAttribute('#permalink', 'href'), url.search);
  const again = await open(url.search);
  assert.equal(await again.textContent('#output'), text);
  assert.ok(text.startsWith('One day'), text);
});
