// <llama-story> on embed.html, served WITHOUT COOP/COEP like an ordinary static host: two
// elements generate, sharing one worker and one model load; the second loads only when
// scrolled into view; parts and custom properties style it; `workers` splits a model over
// messages (the page's headers are not the element's to change); a terminated worker is
// replaced (idle) or reported with Retry (mid-story), never a hang; the page fits a phone.
// Run from tests/e2e: `node --test embed.test.mjs`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { OUT, STORY, startServer } from './harness.mjs';

let server;
let browser;
let page;

const state = (id) => page.getAttribute(`#${id}`, 'state');
const stats = () => page.evaluate(() => customElements.get('llama-story').stats);
const part = (id, name) => page.locator(`#${id} [part~="${name}"]`);

/** Adds a <llama-story> with `attributes` at the top of the page (so it is in view). */
function addElement(attributes) {
  return page.evaluate((attributes) => {
    const story = document.createElement('llama-story');
    for (const [name, value] of Object.entries(attributes)) story.setAttribute(name, value);
    document.body.prepend(story);
    window.scrollTo(0, 0);
  }, attributes);
}

/** Closes the engine's worker from inside, as a crash or the browser would: no error event. */
async function closeEngineWorker() {
  const worker = page.workers().filter((w) => w.url().endsWith('/worker/worker.js')).at(-1);
  assert.ok(worker, 'no engine worker');
  const closed = new Promise((resolve) => worker.once('close', resolve));
  await worker.evaluate(() => setTimeout(() => close(), 0));
  await closed;
}

/** The 15M-shape checkpoint (formula weights): a story long enough to cut. */
function formula15M() {
  const file = join(OUT, 'formula15M.bin');
  if (!existsSync(file)) execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', '15M', '--seed', '1', file]);
  return '/fixtures/formula15M.bin';
}

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
  assert.match(await part('first', 'status').textContent(), /aidreams260K\.bin: 0\.9 MB, ready/);
  // The element does not register the page's service worker or change its headers.
  assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).length), 0);
});

test('two elements generate with one worker and one model load', async () => {
  await part('first', 'generate').click();
  await page.waitForSelector('#first[state="done"]', { timeout: 60_000 });
  // 128 steps = the model's seq_len: run.c's 256-step story.
  assert.equal(await part('first', 'output').textContent(), STORY.stdout);
  const tokens = STORY.ids.length - 1;
  // Greedy (temperature 0): no seed to show.
  assert.match(await part('first', 'status').textContent(), new RegExp(`^${tokens} tokens · [\\d.]+ tok/s · first text after [\\d.]+ m?s$`));

  await page.locator('#second').scrollIntoViewIfNeeded();
  await page.waitForSelector('#second[state="ready"]');
  const done = page.evaluate(() => new Promise((resolve) => {
    document.querySelector('#second').addEventListener('llama-story-done', (e) => resolve(e.detail), { once: true });
  }));
  await part('second', 'generate').click();
  const detail = await done;
  assert.equal(await state('second'), 'done');
  assert.ok(detail.text.startsWith('The little dog'), detail.text);
  assert.equal(detail.seed, '42');
  assert.equal(await part('second', 'output').textContent(), detail.text);
  assert.deepEqual(await stats(), { workers: 1, loads: 1, generations: 2 });
  assert.equal(server.requests('/models/aidreams260K.bin').length, 1, 'the model was downloaded twice');
  await page.screenshot({ path: join(OUT, 'embed.png'), fullPage: true });

  // Seeded: the same story again.
  await part('second', 'generate').click();
  await page.waitForSelector('#second[state="done"]');
  assert.equal(await part('second', 'output').textContent(), detail.text);
});

test('both generate at once: the second queues behind the first', async () => {
  await part('first', 'generate').click();
  await part('second', 'generate').click();
  await page.waitForSelector('#first[state="done"]');
  await page.waitForSelector('#second[state="done"]');
  assert.equal(await part('first', 'output').textContent(), STORY.stdout);
  assert.ok((await part('second', 'output').textContent()).startsWith('The little dog'));
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
  assert.equal(await part('second', 'status').textContent(), 'stopped');
  assert.equal(await part('second', 'output').textContent(), '');
  const before = (await stats()).generations;
  await part('second', 'generate').click();
  await page.waitForSelector('#second[state="done"]');
  assert.equal((await stats()).generations, before + 1);
});

test('custom properties and ::part restyle an element', async () => {
  const output = await part('second', 'output').evaluate((el) => getComputedStyle(el).fontFamily);
  assert.match(output, /monospace/);
  const button = await part('second', 'generate').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(button, 'rgb(142, 68, 173)'); // --llama-story-accent: #8e44ad
  const first = await part('first', 'generate').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(first, 'rgb(47, 111, 222)'); // the default accent
});

test('an element without a model says so', async () => {
  await addElement({ id: 'broken' });
  await page.waitForSelector('#broken[state="error"]');
  assert.match(await part('broken', 'status').textContent(), /needs model and tokenizer/);
  assert.equal(await part('broken', 'retry').isHidden(), true, 'Retry cannot fix a missing attribute');
});

test('workers="2" on a page without cross-origin isolation: two workers over messages, the same story', async () => {
  await addElement({ id: 'split', model: 'models/aidreams260K.bin', tokenizer: 'models/tok512-aidreams.bin', workers: '2', steps: '128', temperature: '0' });
  const config = await page.evaluate(() => new Promise((resolve) => {
    document.querySelector('#split').addEventListener('llama-story-loaded', (e) => resolve(e.detail), { once: true });
  }));
  assert.equal(config.workers, 2);
  assert.equal(config.transport, 'messages');
  await part('split', 'generate').click();
  await page.waitForSelector('#split[state="done"]', { timeout: 60_000 });
  assert.equal(await part('split', 'output').textContent(), STORY.stdout);
  // A value that is not a number of workers is named in the element.
  await addElement({ id: 'bad-workers', model: 'models/aidreams260K.bin', tokenizer: 'models/tok512-aidreams.bin', workers: 'many' });
  await page.waitForSelector('#bad-workers[state="error"]', { timeout: 60_000 });
  assert.match(await part('bad-workers', 'status').textContent(), /workers must be 'auto' or a whole number from 1 to 64, not "many"/);
  await page.evaluate(() => ['#split', '#bad-workers', '#broken'].forEach((id) => document.querySelector(id).remove()));
});

test('an element taken off the page while its model loads writes no story', async () => {
  const model = formula15M();
  const before = await stats();
  // Far below the viewport, so that its Generate (not its nearness) loads the model.
  await page.evaluate(({ model }) => {
    const spacer = Object.assign(document.createElement('div'), { id: 'spacer' });
    spacer.style.height = '5000px';
    const story = document.createElement('llama-story');
    Object.entries({ id: 'gone', model, tokenizer: 'models/tokenizer.bin', steps: '64' }).forEach(([k, v]) => story.setAttribute(k, v));
    document.body.append(spacer, story);
    window.scrollTo(0, 0);
    story.shadowRoot.querySelector('[part~="generate"]').click();
  }, { model });
  await page.waitForSelector('#gone[state="loading"]', { state: 'attached' });
  await page.evaluate(() => ['#gone', '#spacer'].forEach((id) => document.querySelector(id).remove()));
  // A second element of the same model queues behind it: when its story is done, the first's
  // turn is long over.
  await addElement({ id: 'after', model, tokenizer: 'models/tokenizer.bin', steps: '8' });
  await page.waitForSelector('#after[state="ready"]', { timeout: 120_000 });
  await part('after', 'generate').click();
  await page.waitForSelector('#after[state="done"]', { timeout: 120_000 });
  const now = await stats();
  assert.equal(now.loads, before.loads + 1, 'the model loaded once');
  assert.equal(now.generations, before.generations + 1, 'only the element on the page wrote a story');
  await page.evaluate(() => document.querySelector('#after').remove());
});

test('a worker closed while idle: the next Generate starts a new one', async () => {
  const before = await stats();
  await closeEngineWorker();
  await part('first', 'generate').click();
  await page.waitForSelector('#first[state="done"]', { timeout: 60_000 });
  assert.equal(await part('first', 'output').textContent(), STORY.stdout);
  const after = await stats();
  assert.equal(after.workers, before.workers + 1, 'no new worker');
  assert.equal(after.loads, before.loads + 1, 'the model was not loaded into the new worker');
});

test('a worker closed mid-story: an error with Retry, never "waiting" for ever; Retry writes the story', async () => {
  await addElement({ id: 'slow', model: formula15M(), tokenizer: 'models/tokenizer.bin', steps: '256', temperature: '1', seed: '5' });
  await page.waitForSelector('#slow[state="ready"]', { timeout: 60_000 });
  await part('slow', 'generate').click();
  await page.waitForFunction(() => document.querySelector('#slow').shadowRoot.querySelector('[part~="output"]').textContent.length > 20);
  await closeEngineWorker();
  await page.waitForSelector('#slow[state="error"]', { timeout: 10_000 });
  assert.match(await part('slow', 'status').textContent(), /^The engine stopped: its worker was closed or crashed\.$/);
  assert.equal(await part('slow', 'retry').isVisible(), true, 'no Retry');
  await page.screenshot({ path: join(OUT, 'embed-worker-closed.png') });
  await part('slow', 'retry').click();
  await page.waitForSelector('#slow[state="done"]', { timeout: 120_000 });
  assert.ok((await part('slow', 'output').textContent()).startsWith('Once upon a time'));
  await page.evaluate(() => document.querySelector('#slow').remove());
});

test('a 390 px phone: the page and the elements fit, the snippet is not cut off', async () => {
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  watchPage(phone, 'phone');
  await phone.goto(`${server.url}embed.html`);
  await phone.waitForSelector('#first[state="ready"]', { timeout: 60_000 });
  const fit = await phone.evaluate(() => {
    const snippet = document.querySelector('pre.snippet');
    const first = document.querySelector('#first').getBoundingClientRect();
    return {
      page: document.documentElement.scrollWidth <= innerWidth,
      snippet: snippet.scrollWidth <= snippet.clientWidth,
      element: first.right <= innerWidth,
    };
  });
  assert.deepEqual(fit, { page: true, snippet: true, element: true });
  await phone.locator('#first [part~="generate"]').click();
  await phone.waitForSelector('#first[state="done"]');
  assert.equal(await phone.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true);
  await phone.screenshot({ path: join(OUT, 'embed-phone.png'), fullPage: true });
  await phone.close();
});
