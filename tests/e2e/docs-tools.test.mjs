// <llama-story> at home in documentation, in headless Chromium: a real mdBook build (its light
// and coal themes; html at 62.5 %, so 1rem is 10 px there), a Docusaurus-like page (its own
// font and a dark data-theme) and a plain page, each served by a plain static server on
// another origin than the element's (`./build.sh serve`'s serve.mjs), as a docs author
// publishes them. The element must take its size and font from the text around it (it used to
// size itself in rem: 10.5 px text in a book of 16 px), and write the golden story there.
// Screenshots go to target/e2e/docs-*.png. mdBook comes from tools/install.sh (pinned).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { serve } from '../../tools/serve.mjs';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, OUT, STORY } from './harness.mjs';

const DOCS = join(OUT, 'docs-site');
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript', '.svg': 'image/svg+xml', '.json': 'application/json' };

let browser;
let app; // the element's host: serve.mjs, as `./build.sh serve` runs it
let docs; // the docs' host: a plain static server, no special headers

/** A plain static file server of `dir` on a free port (another origin than `app`'s). */
async function staticServer(dir) {
  const server = createServer((req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (path.endsWith('/')) path += 'index.html';
    try {
      const body = readFileSync(join(dir, path));
      res.writeHead(200, { 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://localhost:${server.address().port}/`, close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }) };
}

/** The element as a docs author writes it: the golden story's settings, files from the app. */
const element = (url) => `<script type="module" src="${url}element/llama-story.js"></script>
<llama-story model="${url}models/aidreams260K.bin" tokenizer="${url}models/tok512-aidreams.bin"
             prompt="Once upon a time" steps="128" temperature="0"></llama-story>`;

const PARAGRAPH = 'A transformer writes one token at a time. Press Generate to watch this one write a story.';

/** Writes an mdBook with one chapter holding the element and builds it into DOCS/book. */
function buildBook(appUrl) {
  const book = join(OUT, 'docs-book');
  rmSync(book, { recursive: true, force: true });
  mkdirSync(join(book, 'src'), { recursive: true });
  writeFileSync(join(book, 'book.toml'), '[book]\ntitle = "A live demo"\n\n[output.html]\npreferred-dark-theme = "coal"\n');
  writeFileSync(join(book, 'src/SUMMARY.md'), '# Summary\n\n- [Demo](demo.md)\n');
  writeFileSync(join(book, 'src/demo.md'), `# Demo\n\n${PARAGRAPH}\n\n${element(appUrl)}\n\nThe text after the demo.\n`);
  execFileSync('mdbook', ['build', book, '--dest-dir', join(DOCS, 'book')], { stdio: 'pipe' });
}

/** A Docusaurus-like article: its own font stack and size, and a dark data-theme. */
function docusaurusLike(appUrl) {
  return `<!doctype html><html data-theme="light"><meta charset="utf-8"><title>Docs</title>
<style>
  :root { --ifm-font-family-base: system-ui, -apple-system, "Segoe UI", Roboto, Ubuntu, sans-serif; --ifm-font-size-base: 106.25%; }
  html { font: var(--ifm-font-size-base)/1.65 var(--ifm-font-family-base); background: #fff; color: #1c1e21; }
  html[data-theme="dark"] { background: #1b1b1d; color: #e3e3e3; }
  article { max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
</style>
<article><h1>Demo</h1><p>${PARAGRAPH}</p>${element(appUrl)}</article></html>`;
}

const plain = (appUrl) => `<!doctype html><meta charset="utf-8"><title>Plain</title><p>${PARAGRAPH}</p>${element(appUrl)}`;

before(async () => {
  const served = await serve({ root: join(ROOT, 'www'), port: 0, mounts: [{ prefix: '/models', dir: MODELS }] });
  app = { url: served.url, close: () => new Promise((done) => { served.server.closeAllConnections(); served.server.close(done); }) };
  rmSync(DOCS, { recursive: true, force: true });
  mkdirSync(DOCS, { recursive: true });
  buildBook(app.url);
  writeFileSync(join(DOCS, 'docusaurus.html'), docusaurusLike(app.url));
  writeFileSync(join(DOCS, 'plain.html'), plain(app.url));
  docs = await staticServer(DOCS);
  assert.notEqual(new URL(docs.url).origin, new URL(app.url).origin);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await docs?.close();
  await app?.close();
});

/** The sizes and fonts of the text around the element and of its parts, in px. */
function measure(page) {
  return page.evaluate(() => {
    const px = (el) => parseFloat(getComputedStyle(el).fontSize);
    const host = document.querySelector('llama-story');
    const paragraph = [...document.querySelectorAll('p')].find((p) => p.textContent.startsWith('A transformer'));
    const part = (name) => host.shadowRoot.querySelector(`[part~="${name}"]`);
    return {
      paragraph: px(paragraph), host: px(host), prompt: px(part('prompt')), button: px(part('generate')), output: px(part('output')),
      root: px(document.documentElement),
      paragraphFont: getComputedStyle(paragraph).fontFamily, promptFont: getComputedStyle(part('prompt')).fontFamily,
      color: getComputedStyle(part('output')).color, paragraphColor: getComputedStyle(paragraph).color,
    };
  });
}

/** Opens `path` of the docs host (in `scheme`), checks the element's sizes against the text
 * around it, writes the golden story, and keeps a screenshot. */
async function check(path, { scheme = 'light', shotName, setup } = {}) {
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, colorScheme: scheme });
  const page = await context.newPage();
  watchPage(page);
  try {
    await page.goto(`${docs.url}${path}`);
    if (setup) await setup(page);
    await page.waitForSelector('llama-story[state="ready"]', { timeout: 60_000 });
    const m = await measure(page);
    assert.equal(m.host, m.paragraph, `the element's text is ${m.host} px beside ${m.paragraph} px (root ${m.root} px)`);
    assert.equal(m.prompt, m.paragraph);
    assert.equal(m.button, m.paragraph);
    assert.ok(Math.abs(m.output - 1.05 * m.paragraph) < 0.1, `the story's text is ${m.output} px beside ${m.paragraph} px`);
    assert.equal(m.promptFont, m.paragraphFont, 'the controls use the page\'s font');
    assert.equal(m.color, m.paragraphColor, 'the story is in the page\'s text colour');
    await page.locator('llama-story [part~="generate"]').click();
    await page.waitForSelector('llama-story[state="done"]', { timeout: 60_000 });
    assert.equal(await page.locator('llama-story [part~="output"]').textContent(), STORY.stdout);
    await page.locator('llama-story').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(OUT, `docs-${shotName}.png`) });
    return m;
  } finally {
    await context.close();
  }
}

test('mdBook (light): the element is the size of the chapter\'s text (16 px on a 10 px root), in its font, and writes the golden story', async () => {
  const m = await check('book/demo.html', { shotName: 'mdbook-light' });
  assert.equal(m.root, 10, 'mdBook sets html to 62.5 %');
  assert.equal(m.paragraph, 16);
});

test('mdBook (coal, the dark theme): the story in the theme\'s text colour', async () => {
  const m = await check('book/demo.html', { scheme: 'dark', shotName: 'mdbook-coal' });
  assert.notEqual(m.color, 'rgb(0, 0, 0)', 'dark text on the coal background');
});

test('a Docusaurus-like page (its font at 106.25 %, dark data-theme) and a plain page', async () => {
  const docusaurus = await check('docusaurus.html', { shotName: 'docusaurus-light' });
  assert.equal(docusaurus.paragraph, 17);
  await check('docusaurus.html', {
    shotName: 'docusaurus-dark',
    setup: (page) => page.evaluate(() => document.documentElement.setAttribute('data-theme', 'dark')),
  });
  const bare = await check('plain.html', { shotName: 'plain' });
  assert.equal(bare.paragraph, 16);
});
