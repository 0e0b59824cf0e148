// Shared memory on a host that sends no COOP/COEP headers (GitHub Pages and most static
// hosts): sw.js serves the app isolated once it controls the page (one reload, isolation.js),
// and the model, split over 2 workers, meets through SharedArrayBuffer; a model on another
// origin (with CORS, as Hugging Face sends) still loads. The embed page stays as hosted.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, watchPage } from './browser.mjs';
import { STORY, startServer } from './harness.mjs';

let app;
let models;
let browser;

before(async () => {
  app = await startServer({ isolation: false });
  models = await startServer({ isolation: false });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.close();
  await models?.close();
});

test('a host without COOP/COEP: isolated after one reload, 2 workers on shared memory, a CORS model from another origin', async () => {
  const page = await browser.newPage();
  watchPage(page);
  const headers = (await page.goto(app.url)).headers();
  assert.equal(headers['cross-origin-embedder-policy'], undefined, 'the host must not send COEP');
  // isolation.js registers sw.js and reloads once it controls the page.
  await page.waitForFunction(() => crossOriginIsolated === true && navigator.serviceWorker.controller, null, { timeout: 60_000 });
  const other = new URL(models.url);
  assert.notEqual(other.origin, new URL(app.url).origin);
  const result = await page.evaluate(async ({ origin }) => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    const loaded = await engine.load({
      model: `${origin}/models/aidreams260K.bin`, tokenizer: `${origin}/models/tok512-aidreams.bin`, workers: 2,
    }).done;
    let text = '';
    const done = await engine.generate({ prompt: 'Once upon a time', temperature: 0, steps: 256 }, { onPiece: (t) => (text += t) }).done;
    engine.terminate();
    return { workers: loaded.config.workers, transport: loaded.config.transport, text, reason: done.reason };
  }, { origin: other.origin });
  assert.deepEqual({ workers: result.workers, transport: result.transport }, { workers: 2, transport: 'shared' });
  assert.equal(result.text, STORY.stdout);
  // More workers than cores: `auto` takes messages (over shared memory they queue at every
  // meeting: docs/parallel.md); asked for, shared memory is still given.
  const split = await page.evaluate(async ({ origin }) => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    const model = { model: `${origin}/models/aidreams260K.bin`, tokenizer: `${origin}/models/tok512-aidreams.bin` };
    const workers = Math.min(navigator.hardwareConcurrency + 1, 4); // aidreams260K has 4 heads
    const auto = (await engine.load({ ...model, workers }).done).config.transport;
    const asked = (await engine.load({ ...model, workers, transport: 'shared' }).done).config.transport;
    engine.terminate();
    return { auto, asked, expected: workers > navigator.hardwareConcurrency ? 'messages' : 'shared' };
  }, { origin: other.origin });
  assert.deepEqual(split, { auto: split.expected, asked: 'shared', expected: split.expected });
  assert.ok(models.requests('/models/aidreams260K.bin').length >= 1, 'the model came from the other origin');
  await page.close();
});

test('the service worker unregistered mid-session: the next reload isolates the page again, not messages', async () => {
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(app.url);
  await page.waitForFunction(() => crossOriginIsolated === true && navigator.serviceWorker.controller, null, { timeout: 60_000 });
  await page.waitForSelector('body[data-ready]'); // the page started (and isolate() is done)
  await page.evaluate(async () => {
    for (const registration of await navigator.serviceWorker.getRegistrations()) await registration.unregister();
  });
  await page.reload();
  await page.waitForFunction(() => crossOriginIsolated === true && navigator.serviceWorker.controller, null, { timeout: 60_000 });
  await page.close();
});

test('the embed page is not isolated by the service worker (as on someone else\'s page)', async () => {
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(app.url); // the app registers sw.js, then reloads itself isolated
  await page.waitForFunction(() => crossOriginIsolated === true && navigator.serviceWorker.controller, null, { timeout: 60_000 });
  await page.goto(`${app.url}embed.html`);
  assert.equal(await page.evaluate(() => crossOriginIsolated), false);
  await page.close();
});
