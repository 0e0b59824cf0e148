// <llama-story> on embed.html (issue 5), served WITHOUT COOP/COEP like an ordinary static
// host: two elements generate, sharing one worker and one model load; the second loads only
// when scrolled into view; parts and custom properties style it. Run from tests/e2e:
// `node --test embed.test.mjs`.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, watchPage } from './browser.mjs';
import { OUT, STORY, startServer } from './harness.mjs';

let server;
let browser;
let page;

const state = (id) => page.getAttribute(`#${id}`, 'state');
const stats = () => page.evaluate(() => customElements.get('llama-story').stats);

before(async () => {
  server = await startServer({ isolation: false });
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  watchPage(page);
  await page.goto(`${server.url}embed.html`);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the first element loads when visible; the second waits until scrolled to', async () => {
  assert.equal(await page.evaluate(() => crossOriginIsolated), false, 'served without COOP/COEP');
  await page.waitForSelector('#first[state="ready"]', { timeout: 60_000 });
  assert.equal(await state('second'), 'idle');
  assert.deepEqual(await stats(), { workers: 1, loads: 1, generations: 0 });
  assert.match(await page.locator('#first [part~="status"]').textContent(), /aidreams260K\.bin: 0\.9 MB, ready/);
});

test('two elements generate with one worker and one model load', async () => {
  await page.locator('#first [part~="generate"]').click();
  await page.waitForSelector('#first[state="done"]', { timeout: 60_000 });
  // 128 steps = the model's seq_len: run.c's 256-step story.
  assert.equal(await page.locator('#first [part~="output"]').textContent(), STORY.stdout);
  const tokens = STORY.ids.length - 1;
  assert.match(await page.locator('#first [part~="status"]').textContent(), new RegExp(`^${tokens} tokens · \\d+ tok/s · seed \\d+$`));

  await page.locator('#second').scrollIntoViewIfNeeded();
  await page.waitForSelector('#second[state="ready"]');
  const done = page.evaluate(() => new Promise((resolve) => {
    document.querySelector('#second').addEventListener('llama-story-done', (e) => resolve(e.detail), { once: true });
  }));
  await page.locator('#second [part~="generate"]').click();
  const detail = await done;
  assert.equal(await state('second'), 'done');
  assert.ok(detail.text.startsWith('The little dog'), detail.text);
  assert.equal(detail.seed, '42');
  assert.equal(await page.locator('#second [part~="output"]').textContent(), detail.text);
  assert.deepEqual(await stats(), { workers: 1, loads: 1, generations: 2 });
  assert.equal(server.requests('/models/aidreams260K.bin').length, 1, 'the model was downloaded twice');
  await page.screenshot({ path: join(OUT, 'embed.png'), fullPage: true });

  // Seeded: the same story again.
  await page.locator('#second [part~="generate"]').click();
  await page.waitForSelector('#second[state="done"]');
  assert.equal(await page.locator('#second [part~="output"]').textContent(), detail.text);
});

test('both generate at once: the second queues behind the first', async () => {
  await page.locator('#first [part~="generate"]').click();
  await page.locator('#second [part~="generate"]').click();
  await page.waitForSelector('#first[state="done"]');
  await page.waitForSelector('#second[state="done"]');
  assert.equal(await page.locator('#first [part~="output"]').textContent(), STORY.stdout);
  assert.ok((await page.locator('#second [part~="output"]').textContent()).startsWith('The little dog'));
  assert.equal((await stats()).loads, 1);
});

test('Stop drops a queued generation; the element stays usable', async () => {
  await page.evaluate(() => {
    const [first, second] = ['#first', '#second'].map((id) => document.querySelector(id));
    first.shadowRoot.querySelector('[part~="generate"]').click();
    second.shadowRoot.querySelector('[part~="generate"]').click(); // queued behind the first
    second.shadowRoot.querySelector('[part~="stop"]').click();
  });
  await page.waitForSelector('#first[state="done"]');
  await page.waitForSelector('#second[state="ready"]');
  assert.equal(await page.locator('#second [part~="status"]').textContent(), 'stopped');
  assert.equal(await page.locator('#second [part~="output"]').textContent(), '');
  const before = (await stats()).generations;
  await page.locator('#second [part~="generate"]').click();
  await page.waitForSelector('#second[state="done"]');
  assert.equal((await stats()).generations, before + 1);
});

test('custom properties and ::part restyle an element', async () => {
  const output = await page.locator('#second [part~="output"]').evaluate((el) => getComputedStyle(el).fontFamily);
  assert.match(output, /monospace/);
  const button = await page.locator('#second [part~="generate"]').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(button, 'rgb(142, 68, 173)'); // --llama-story-accent: #8e44ad
  const first = await page.locator('#first [part~="generate"]').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(first, 'rgb(47, 111, 222)'); // the default accent
});

test('an element without a model says so', async () => {
  await page.evaluate(() => {
    const story = document.createElement('llama-story');
    story.id = 'broken';
    document.body.prepend(story);
    window.scrollTo(0, 0);
  });
  await page.waitForSelector('#broken[state="error"]');
  assert.match(await page.locator('#broken [part~="status"]').textContent(), /needs model and tokenizer/);
});
