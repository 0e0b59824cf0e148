// The page and the element on real hosts, in headless Chromium:
// - a "pretty URL" host (Netlify, Cloudflare Pages) that redirects /index.html to /: once the
//   service worker controlled the page, every navigation to index.html failed (sw.js rebuilt
//   the redirect with status 0);
// - a host missing one file of the app shell: the service worker's install failed, and the
//   page waited for it for ever, on every reload, with no word;
// - a host that sends COOP/COEP itself: the service worker replaced its COEP require-corp with
//   credentialless, which WebKit ignores (isolated before the service worker, not after);
// - a third-party page on another origin embedding <llama-story> from `./build.sh serve`'s
//   server (tools/serve.mjs): it sent CORP same-origin and no CORS, and the element showed
//   nothing.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '../../tools/serve.mjs';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, STORY } from './harness.mjs';
import { fact, generate, loadUrls, pageReady } from './page-helpers.mjs';

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/**
 * serve.mjs as a host with its own rules: `isolation: false` drops the cross-origin headers (an
 * ordinary static host), `redirectIndex` answers /index.html with a 301 to /, `missing` is a
 * path answered 404.
 */
async function host({ isolation = true, redirectIndex = false, missing = null } = {}) {
  const { server, url } = await serve({ root: join(ROOT, 'www'), port: 0, mounts: [{ prefix: '/models', dir: MODELS }] });
  const [handler] = server.listeners('request');
  server.removeAllListeners('request');
  const paths = [];
  server.on('request', (req, res) => {
    const path = new URL(req.url, url).pathname;
    paths.push(path);
    if (!isolation) {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => (/^cross-origin-/i.test(name) ? res : setHeader(name, value));
    }
    if (redirectIndex && path === '/index.html') {
      res.writeHead(301, { Location: `/${new URL(req.url, url).search}` });
      return res.end();
    }
    if (path === missing) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      return res.end('404\n');
    }
    return handler(req, res);
  });
  return {
    url, paths,
    close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
  };
}

test('a host that redirects /index.html to /: the page opens by either address, isolated, before and after the service worker took over', async () => {
  const site = await host({ isolation: false, redirectIndex: true });
  const page = await browser.newPage();
  watchPage(page);
  try {
    await page.goto(site.url);
    await page.waitForFunction(() => crossOriginIsolated === true && navigator.serviceWorker.controller, null, { timeout: 60_000 });
    for (let visit = 0; visit < 2; visit++) {
      const response = await page.goto(`${site.url}index.html?visit=${visit}`);
      assert.ok(response?.ok(), `visit ${visit}: ${response?.status()}`);
      assert.equal(new URL(page.url()).pathname, '/');
      await pageReady(page);
      assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    }
    assert.equal(await loadUrls(page, '/models/aidreams260K.bin', '/models/tok512-aidreams.bin'), null);
    const story = await generate(page, { prompt: 'Once upon a time', temperature: 0, steps: 256 });
    assert.equal(story.text, STORY.stdout);
  } finally {
    await page.close();
    await site.close();
  }
});

test('a host missing one file of the app shell: the page starts anyway, without isolation, and the Model facts say why', async () => {
  const site = await host({ isolation: false, missing: '/favicon.svg' });
  const page = await browser.newPage();
  watchPage(page);
  try {
    for (let visit = 0; visit < 2; visit++) {
      await page.goto(site.url);
      await pageReady(page);
      assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    }
    assert.equal(await loadUrls(page, '/models/aidreams260K.bin', '/models/tok512-aidreams.bin'), null);
    const story = await generate(page, { prompt: 'Once upon a time', temperature: 0, steps: 256 });
    assert.equal(story.text, STORY.stdout);
    const isolation = await fact(page, 'isolation');
    assert.match(isolation.text, /^no: the page's service worker could not install/);
  } finally {
    await page.close();
    await site.close();
  }
});

test("a host's own COOP/COEP headers stay as it sends them once the service worker serves the page", async () => {
  const site = await host(); // serve.mjs: COOP same-origin, COEP require-corp
  const page = await browser.newPage();
  watchPage(page);
  try {
    const first = await page.goto(site.url);
    assert.equal(first.headers()['cross-origin-embedder-policy'], 'require-corp');
    await page.waitForFunction(() => navigator.serviceWorker.controller, null, { timeout: 60_000 });
    const again = await page.reload();
    assert.ok(again.fromServiceWorker(), 'served by the service worker');
    assert.equal(again.headers()['cross-origin-embedder-policy'], 'require-corp');
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  } finally {
    await page.close();
    await site.close();
  }
});

test("<llama-story> from `./build.sh serve`'s server on a third-party page of another origin", async () => {
  const app = await host(); // serve.mjs as ./build.sh serve runs it
  const third = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Someone's docs</title>
<script type="module" src="${app.url}element/llama-story.js"></script>
<llama-story model="${app.url}models/aidreams260K.bin" tokenizer="${app.url}models/tok512-aidreams.bin"
             prompt="Once upon a time" steps="128" temperature="0"></llama-story>`);
  });
  await new Promise((done) => third.listen(0, '127.0.0.1', done));
  const thirdUrl = `http://localhost:${third.address().port}/`;
  assert.notEqual(new URL(thirdUrl).origin, new URL(app.url).origin);
  const page = await browser.newPage();
  watchPage(page);
  try {
    await page.goto(thirdUrl);
    await page.waitForSelector('llama-story[state="ready"]', { timeout: 60_000 });
    await page.locator('llama-story [part~="generate"]').click();
    await page.waitForSelector('llama-story[state="done"]', { timeout: 60_000 });
    assert.equal(await page.locator('llama-story [part~="output"]').textContent(), STORY.stdout);
    assert.ok(app.paths.includes('/models/aidreams260K.bin'), 'the model came from the app host');
  } finally {
    await page.close();
    third.closeAllConnections();
    await new Promise((done) => third.close(done));
    await app.close();
  }
});
