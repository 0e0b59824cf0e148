// The page's essentials, written once and run in the browser engines beside Chromium
// (firefox.test.mjs, webkit.test.mjs; Firefox runs the page suite too, page-firefox.test.mjs): a load, run.c's golden story, its
// calm end with Steps left at the model's length, Stop,
// a bad file's error, the weight cache's second load without a request, and the model split
// over 2 workers, with shared memory (COOP/COEP headers) and on a host without those headers
// (the service worker's isolation, or messages where the browser cannot be isolated).
// The selectors are the page's, as page-helpers.mjs uses them with Playwright; here every
// step goes through drive.mjs, so it runs the same in Firefox (BiDi) and WebKit (WebDriver).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from './browser.mjs';
import { launch } from './drive.mjs';
import { MODELS, OUT, STORY, startServer } from './harness.mjs';

/** The 15M-shape checkpoint (formula weights, 60 MB): slow enough to stop mid-story. */
function formula15M() {
  const file = join(OUT, 'formula15M.bin');
  if (!existsSync(file)) execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', '15M', '--seed', '1', file]);
  return file;
}

// In-page steps (serialized into the page: no closures).
const isReady = () => document.body.dataset.ready !== undefined && document.querySelector('#topp').value !== '' && document.querySelector('#preset').options.length > 0;
const isIdle = () => ['idle', 'dead'].includes(document.body.dataset.busy);
const isOpen = (id) => document.getElementById(id).open;
const shownError = () => {
  const slot = [...document.querySelectorAll('.error')].find((e) => !e.hidden);
  return slot ? { where: slot.id, kind: slot.dataset.kind, message: slot.querySelector('.message').textContent } : null;
};
const storyOrError = () => document.querySelector('#output').dataset.done || [...document.querySelectorAll('.error')].some((e) => !e.hidden);
const output = () => ({ text: document.querySelector('#output').textContent, done: document.querySelector('#output').dataset.done ?? null });
const summary = () => document.querySelector('#model-summary').textContent;

/** The steps of a person on the page (page-helpers.mjs's, through drive.mjs). */
function person(page) {
  const openSection = async (id) => {
    if (!(await page.evaluate(isOpen, id))) await page.click(`#${id} > summary`);
  };
  return {
    async visit(url) {
      await page.goto(url);
      await page.waitFor(isReady);
    },
    async loadUrls(model, tokenizer) {
      await openSection('model-panel');
      await page.fill('#model-url', model);
      await page.fill('#tokenizer-url', tokenizer);
      await page.click('#load');
      await page.waitFor(isIdle);
      return page.evaluate(shownError);
    },
    async openFiles(files) {
      await openSection('model-panel');
      await page.setFiles('#files', files);
      await page.waitFor(() => document.body.dataset.busy !== 'idle' || [...document.querySelectorAll('.error')].some((e) => !e.hidden), null, { timeout: 10_000 }).catch(() => {});
      await page.waitFor(isIdle);
      return page.evaluate(shownError);
    },
    async workers(value) {
      await openSection('model-panel');
      await page.fill('#workers', value);
    },
    async settings(values) {
      await openSection('settings');
      for (const [field, value] of Object.entries(values)) await page.fill(`#${field}`, value);
    },
    /** Generate, until the story ends or an error shows: { text, done, error }. */
    async generate(values) {
      await page.fill('#prompt', 'Once upon a time');
      await this.settings(values);
      await page.evaluate(() => delete document.querySelector('#output').dataset.done);
      await page.click('#generate');
      await page.waitFor(storyOrError);
      await page.waitFor(isIdle);
      return { ...(await page.evaluate(output)), error: await page.evaluate(shownError) };
    },
    summary: () => page.evaluate(summary),
  };
}

const GREEDY = { temperature: '0', topp: '0.9', steps: '256', seed: '1' };

/**
 * Registers the essentials for browser `name` ('firefox', 'webkit'), with what was found of
 * it (docs/browsers.md):
 *   parallel   the runs of 2 workers on a page with COOP/COEP headers: `{ label, launch, transport }`
 *              (`launch`: options of drive.mjs `launch`; `transport`: what the page then uses)
 *   plainHost  a host without those headers: `{ coep, transport }`, the COEP that the service
 *              worker (sw.js, isolation.js) ends up serving, and the transport then used
 */
export function essentials(name, { parallel, plainHost }) {
  let browser;
  let server;

  before(async () => {
    assert.ok(STORY, 'golden aidreams260K case (Once upon a time, t=0, 256 steps) not found');
    mkdirSync(OUT, { recursive: true });
    server = await startServer();
    browser = await launch(name);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test(`${name}: load, the golden story; Stop; a corrupt file's error; the page still works`, async () => {
    const page = await browser.newPage();
    const user = person(page);
    await user.visit(`${server.url}index.html`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'serve.mjs sends COOP/COEP');
    await user.workers('1');
    assert.equal(await user.loadUrls(`${server.url}models/aidreams260K.bin`, `${server.url}models/tok512-aidreams.bin`), null);
    assert.equal(await user.summary(), 'aidreams260K · 0.9 MB · fp32 · 1 worker');
    const story = await user.generate(GREEDY);
    assert.equal(story.error, null);
    assert.equal(story.text, STORY.stdout);
    assert.equal(story.done, 'context');
    // Steps left empty (the page's default: the model's length): the end is said calmly, and
    // greedy sampling shows no seed.
    const calm = await user.generate({ ...GREEDY, steps: '' });
    assert.equal(calm.text, STORY.stdout);
    assert.equal(await page.evaluate(() => document.querySelector('#end-note').textContent), "The story reached the model's length: 128 tokens.");
    assert.doesNotMatch(await page.evaluate(() => document.querySelector('#stats').textContent), /seed/);

    // Stop mid-story on the 60 MB shape, read from local files (the file input).
    assert.equal(await user.openFiles([formula15M(), join(MODELS, 'tokenizer.bin')]), null);
    assert.match(await user.summary(), /^formula15M · 60\.\d MB · fp32 · 1 worker$/);
    await user.settings({ temperature: '1', steps: '256', seed: '7' });
    await page.evaluate(() => delete document.querySelector('#output').dataset.done);
    await page.click('#generate');
    await page.waitFor(() => document.querySelector('#output').textContent.length > 20);
    await page.click('#stop');
    await page.waitFor(() => document.querySelector('#output').dataset.done === 'stopped');
    assert.equal(await page.evaluate(() => document.querySelector('#end-note').textContent), 'Stopped.');

    // A corrupt checkpoint: its error next to the Model controls, naming the file.
    const corrupt = join(OUT, 'corrupt.bin');
    writeFileSync(corrupt, Buffer.alloc(1000, 0xff));
    const error = await user.openFiles([corrupt, join(MODELS, 'tok512-aidreams.bin')]);
    assert.equal(error?.where, 'model-error', JSON.stringify(error));
    assert.match(error.message, /corrupt\.bin/);
    assert.equal(await user.summary(), 'corrupt: failed to load, none loaded');
    // Still usable.
    assert.equal(await user.loadUrls(`${server.url}models/aidreams260K.bin`, `${server.url}models/tok512-aidreams.bin`), null);
    assert.equal((await user.generate(GREEDY)).text, STORY.stdout);
    await page.close();
  });

  test(`${name}: the weight cache: a second visit loads the model from the cache (one revalidation, answered 304)`, async () => {
    const page = await browser.newPage();
    const user = person(page);
    const model = `${server.url}models/aidreams260K-v2.bin`;
    const tokenizer = `${server.url}models/tok512-aidreams.bin`;
    const before = server.requests('/models/aidreams260K-v2.bin').length;
    await user.visit(`${server.url}index.html`);
    assert.equal(await user.loadUrls(model, tokenizer), null);
    assert.equal(server.requests('/models/aidreams260K-v2.bin').length, before + 1);
    await page.waitFor(() => Boolean(document.querySelector('#cache-list li[data-url$="/aidreams260K-v2.bin"][data-status="stored"]')));
    await user.visit(`${server.url}index.html`);
    assert.equal(await user.loadUrls(model, tokenizer), null);
    await page.waitFor(() => Boolean(document.querySelector('#cache-panel [data-url$="/aidreams260K-v2.bin"][data-status="hit"]')));
    // A new visit checks once that the file has not changed (cache.js): no download.
    const again = server.requests('/models/aidreams260K-v2.bin').slice(before + 1);
    assert.deepEqual(again.map((r) => [r.status, r.range]), [[304, null]], 'the second visit did not read the model from the cache');
    await page.close();
  });

  for (const { label, launch: options, transport } of parallel) {
    test(`${name}: 2 workers, COOP/COEP headers, ${label}: ${transport}, the golden story`, async () => {
      const own = options ? await launch(name, options) : null;
      const page = await (own ?? browser).newPage();
      try {
        const user = person(page);
        await user.visit(`${server.url}index.html`);
        assert.equal(await page.evaluate(() => crossOriginIsolated), true);
        await user.workers('2');
        assert.equal(await user.loadUrls(`${server.url}models/aidreams260K.bin`, `${server.url}models/tok512-aidreams.bin`), null);
        assert.equal(await user.summary(), `aidreams260K · 0.9 MB · fp32 · 2 workers · ${transport}`);
        assert.equal((await user.generate(GREEDY)).text, STORY.stdout);
      } finally {
        await page.close();
        await own?.close();
      }
    });
  }

  test(`${name}: a host without COOP/COEP: the service worker isolates the page (COEP ${plainHost.coep}), 2 workers: ${plainHost.transport}`, async () => {
    const plain = await startServer({ isolation: false });
    const page = await browser.newPage();
    try {
      const user = person(page);
      // isolation.js registers sw.js and reloads (once, or twice for require-corp) before the
      // page starts.
      await user.visit(`${plain.url}index.html`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
      const coep = await page.evaluate(async () => {
        const stored = await (await caches.open('llama2-shell-v1')).match(new URL('__coep', location.href).href);
        return stored ? stored.text() : 'credentialless';
      });
      assert.equal(coep, plainHost.coep);
      await user.workers('2');
      assert.equal(await user.loadUrls(`${plain.url}models/aidreams260K.bin`, `${plain.url}models/tok512-aidreams.bin`), null);
      assert.equal(await user.summary(), `aidreams260K · 0.9 MB · fp32 · 2 workers · ${plainHost.transport}`);
      assert.equal((await user.generate(GREEDY)).text, STORY.stdout);
    } finally {
      await page.close();
      await plain.close();
    }
  });
}
