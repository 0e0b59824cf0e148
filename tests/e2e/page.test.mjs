// End-to-end tests of the page as `./build.sh serve` serves it, in headless Chromium.
// Run from tests/e2e: `node --test --test-concurrency=1 page.test.mjs` (build.sh test does).
// Needs the shared models (LLAMA2_MODELS, else ../shared/models) and target/release/gen-checkpoint.
// Screenshots go to target/e2e/; with UPDATE_SCREENSHOT=1 the one after a generation also
// replaces the README's docs/screenshot.png (a test run leaves tracked files alone).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';

const MODELS = process.env.LLAMA2_MODELS ?? join(ROOT, '../shared/models');
const OUT = join(ROOT, 'target/e2e');
const golden = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8'));
const STORY = golden.find(
  (c) => c.checkpoint === 'aidreams260K.bin' && c.prompt === 'Once upon a time' && c.temperature === 0 && c.steps === 256,
);

let server;
let browser;
let page;

/** Starts `./build.sh serve` on a free port; resolves with its URL. */
function startServe() {
  const child = spawn(join(ROOT, 'build.sh'), ['serve'], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const url = out.match(/serving .* at (http:\S+)/)?.[1];
      if (url) resolve({ child, url });
    });
    child.on('exit', (code) => reject(new Error(`build.sh serve exited with ${code}: ${out}`)));
  });
}

const shot = (name) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
const fact = (name) => page.locator(`#facts [data-fact="${name}"]`);

/** Fills the generation settings and clicks Generate. */
async function generate({ prompt = 'Once upon a time', temperature = '0', topp = '0.9', steps = '256', seed = '1' } = {}) {
  await page.fill('#prompt', prompt);
  await page.fill('#temperature', temperature);
  await page.fill('#topp', topp);
  await page.fill('#steps', steps);
  await page.fill('#seed', seed);
  await page.click('#generate');
}

/** Waits for the generation to end; returns its stop reason. */
async function finished() {
  await page.waitForSelector('#output[data-done]', { timeout: 120_000 });
  return page.getAttribute('#output', 'data-done');
}

/** Loads local files through the file input and waits for the result. */
async function openFiles(files) {
  await page.setInputFiles('#files', files);
  await page.waitForFunction(() => document.querySelector('#load').disabled === false, null, { timeout: 120_000 });
}

before(async () => {
  mkdirSync(OUT, { recursive: true });
  assert.ok(STORY, 'golden aidreams260K case (Once upon a time, t=0, 256 steps) not found');
  server = await startServe();
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  watchPage(page);
  await page.goto(server.url);
});

after(async () => {
  await browser?.close();
  if (server) process.kill(-server.child.pid);
});

test('the default model loads with a progress bar and its facts', async () => {
  await page.waitForFunction(() => document.querySelector('#preset').options.length > 4);
  assert.match(await page.inputValue('#model-url'), /\/models\/aidreams260K\.bin$/);
  assert.match(await page.inputValue('#tokenizer-url'), /\/models\/tok512-aidreams\.bin$/);
  // Record every progress text the page shows.
  await page.evaluate(() => {
    window.progressTexts = [];
    const text = document.querySelector('#progress-text');
    new MutationObserver(() => window.progressTexts.push(text.textContent)).observe(text, { childList: true, characterData: true, subtree: true });
  });
  await page.click('#load');
  await fact('format').waitFor();
  assert.ok(await page.isVisible('#progress'));
  assert.equal(await page.getAttribute('#progress', 'value'), '1');
  const texts = await page.evaluate(() => window.progressTexts);
  assert.ok(texts.some((t) => /model aidreams260K\.bin: [\d.]+ MB of 0\.9 MB \(\d+%\)/.test(t)), texts.join(' | '));
  assert.equal(await fact('format').textContent(), 'v0');
  assert.match(await fact('shape').textContent(), /dim 64, hidden 172, 4 layers/);
  assert.equal(await page.isDisabled('#generate'), false);
  await shot('loaded');
});

test('temperature 0 streams the golden story', async () => {
  await generate();
  assert.equal(await finished(), 'steps');
  assert.equal(await page.textContent('#output'), STORY.stdout);
  // One token per position after the first: seq_len (128) caps the 256 steps, as in run.c.
  const tokens = STORY.ids.length - 1;
  const stats = new RegExp(`^${tokens} tokens · [\\d.]+ tok/s · first token \\d+ ms · seed 1 · end: steps$`);
  assert.match(await page.textContent('#stats'), stats);
  await shot('generated');
  if (process.env.UPDATE_SCREENSHOT === '1') {
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    copyFileSync(join(OUT, 'generated.png'), join(ROOT, 'docs/screenshot.png'));
  }
});

test('a corrupt file shows an error and the page stays usable', async () => {
  const corrupt = join(OUT, 'corrupt.bin');
  writeFileSync(corrupt, Buffer.alloc(1000, 0xff));
  await openFiles([corrupt, join(MODELS, 'tok512-aidreams.bin')]);
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /corrupt\.bin/);
  assert.equal(await page.isDisabled('#generate'), true);
  await shot('corrupt');
  // Still usable: load the default model again and generate.
  await page.click('#load');
  await fact('format').waitFor();
  assert.equal(await page.isHidden('#error'), true);
  await generate();
  assert.equal(await finished(), 'steps');
  assert.equal(await page.textContent('#output'), STORY.stdout);
});

test('a local checkpoint and tokenizer load through the file input', async () => {
  await openFiles([join(MODELS, 'aidreams260K-v2.bin'), join(MODELS, 'tok512-aidreams.bin')]);
  assert.equal(await page.isHidden('#error'), true, await page.textContent('#error'));
  assert.equal(await fact('model').textContent(), 'aidreams260K-v2.bin');
  assert.match(await fact('format').textContent(), /^v2 \(int8, group size 4\)$/);
  await generate();
  assert.equal(await finished(), 'steps');
  assert.ok((await page.textContent('#output')).startsWith('Once upon a time'));
});

test('a 15M-shape checkpoint fits in file size + KV cache + 10 % of wasm memory; Stop works', async () => {
  const file = join(OUT, 'formula15M.bin');
  if (!existsSync(file)) {
    execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', '15M', '--seed', '1', file]);
  }
  await openFiles([file, join(MODELS, 'tokenizer.bin')]);
  assert.equal(await page.isHidden('#error'), true, await page.textContent('#error'));
  const size = statSync(file).size;
  const kvCache = 2 * 6 * 256 * 288 * 4; // 2 (k, v) x layers x seq_len x kv_dim x f32
  const wasmMemory = Number(await fact('wasm-memory').getAttribute('data-value'));
  const limit = (size + kvCache) * 1.1;
  console.log(`15M shape: file ${size} B, KV cache ${kvCache} B, wasm memory ${wasmMemory} B, limit ${Math.round(limit)} B`);
  assert.ok(wasmMemory <= limit, `wasm memory ${wasmMemory} > ${limit}`);

  // Stop mid-generation, then generate again.
  await generate({ prompt: 'Once upon a time', temperature: '1', steps: '256', seed: '7' });
  await page.waitForFunction(() => document.querySelector('#output').textContent.length > 20);
  await page.click('#stop');
  assert.equal(await finished(), 'stopped');
  const stats = await page.textContent('#stats');
  const tokens = Number(stats.match(/^(\d+) tokens/)[1]);
  assert.ok(tokens < 256, stats);
  await shot('stopped');
  await generate({ prompt: 'Once upon a time', temperature: '0', steps: '40', seed: '1' });
  assert.notEqual(await finished(), 'stopped');
  assert.match(await page.textContent('#stats'), /^40 tokens/);
});
