#!/usr/bin/env node
// Golden cases through the wasm build, the way users run it:
//   node: www/llama2.js in Node (checkpoints read as Blobs, streamed into wasm memory);
//   chrome: headless Chromium, generate cases through the page's own worker.js.
//
//   node tests/e2e/conformance.mjs --target node|chrome GOLDEN.json MODELS_DIR
//
// Prints `FAIL <case>: <first difference>` per failing case and `<target>: N passed, M failed`
// (the native runner's format); exits 1 on any failure.

import { openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine, encode } from '../../www/llama2.js';
import { launchBrowser, ROOT, startServer, watchPage } from './browser.mjs';

const [flag, target, golden, models] = process.argv.slice(2);
if (flag !== '--target' || !['node', 'chrome'].includes(target) || !golden || !models) {
  console.error('usage: conformance.mjs --target node|chrome GOLDEN.json MODELS_DIR');
  process.exit(2);
}

/** How the native runner names a case (src/conformance.rs `Case::name`). */
function caseName(c) {
  if (!('checkpoint' in c)) return `${c.tokenizer} ${JSON.stringify(c.text)} bos=${c.bos} eos=${c.eos}`;
  const prompt = JSON.stringify(c.prompt ?? '(no prompt)');
  return `${c.checkpoint} ${prompt} t=${c.temperature} p=${c.topp} s=${c.seed} n=${c.steps}`;
}

/** null when equal, else the first differing position (src/conformance.rs `first_difference`). */
function firstDifference(expected, got) {
  let at = expected.findIndex((id, i) => id !== got[i]);
  if (at < 0) {
    if (expected.length === got.length) return null;
    at = Math.min(expected.length, got.length);
  }
  const show = (ids) => (at < ids.length ? String(ids[at]) : '(end)');
  return `first difference at position ${at}: expected ${show(expected)} got ${show(got)} (${expected.length} ids expected, ${got.length} got)`;
}

/** run.c drops byte-fallback bytes >= 0x80 that we reassemble: compare the ASCII only. */
const ascii = (text) => text.replace(/[^\x00-\x7f]/g, '');

function check(c, result) {
  const diff = firstDifference(c.ids, result.ids);
  if (diff) return diff;
  if ('stdout' in c && result.text !== c.stdout && ascii(result.text) !== ascii(c.stdout)) {
    return `same ids but the text differs: expected ${JSON.stringify(c.stdout)} got ${JSON.stringify(result.text)}`;
  }
  return null;
}

/** Node: the JS API directly, on the build LLAMA2_WASM_VARIANT (simd by default). */
async function nodeRunner() {
  const variant = process.env.LLAMA2_WASM_VARIANT ?? 'simd';
  const wasm = readFileSync(join(ROOT, `www/pkg/${variant}/llama2_wasm_bg.wasm`));
  const llama = await createEngine({ variant, wasm });
  return {
    async run(c) {
      const tokenizer = readFileSync(join(models, c.tokenizer));
      if (!('checkpoint' in c)) return { ids: await encode(tokenizer, c.vocab_size, c.text, { bos: c.bos, eos: c.eos, variant, wasm }) };
      await llama.loadCheckpoint(await openAsBlob(join(models, c.checkpoint)), { name: c.checkpoint });
      await llama.loadTokenizer(tokenizer, { name: c.tokenizer });
      let text = '';
      const options = { temperature: c.temperature, topp: c.topp, seed: BigInt(c.seed), steps: c.steps };
      for await (const piece of llama.generate(c.prompt ?? '', options)) text += piece;
      return { ids: llama.tokenIds, text };
    },
    close() {},
  };
}

/** Chrome: the page's worker.js over its message protocol; tokenizer cases on the page. */
async function chromeRunner() {
  const server = await startServer([{ prefix: '/fixtures', dir: models }]);
  const browser = await launchBrowser();
  const page = await browser.newPage();
  watchPage(page, 'chrome');
  await page.goto(`${server.url}index.html`);
  return {
    run: (c) =>
      page.evaluate(async (c) => {
        const fixture = (name) => `/fixtures/${encodeURIComponent(name)}`;
        if (!('checkpoint' in c)) {
          const { encode } = await import('/llama2.js');
          return { ids: await encode(fixture(c.tokenizer), c.vocab_size, c.text, { bos: c.bos, eos: c.eos }) };
        }
        window.conformanceWorker ??= new Worker('/worker.js', { type: 'module' });
        const worker = window.conformanceWorker;
        const request = (message) =>
          new Promise((resolve, reject) => {
            let text = '';
            worker.onmessage = ({ data }) => {
              if (data.type === 'piece') text += data.text;
              if (data.type === 'error') reject(new Error(data.message));
              if (data.type === 'loaded') resolve(data);
              if (data.type === 'done') resolve({ ids: data.ids, text });
            };
            worker.postMessage(message);
          });
        await request({ type: 'load', id: 1, model: fixture(c.checkpoint), tokenizer: fixture(c.tokenizer), modelName: c.checkpoint });
        const { temperature, topp, seed, steps } = c;
        return request({ type: 'generate', id: 2, prompt: c.prompt ?? '', temperature, topp, seed: String(seed), steps });
      }, c),
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

const cases = JSON.parse(readFileSync(golden, 'utf8'));
const runner = target === 'node' ? await nodeRunner() : await chromeRunner();
let passed = 0;
let failed = 0;
for (const c of cases) {
  let problem;
  try {
    problem = check(c, await runner.run(c));
  } catch (err) {
    problem = err.message;
  }
  if (problem) {
    failed++;
    console.log(`FAIL ${caseName(c)}: ${problem}`);
  } else passed++;
}
await runner.close();
console.log(`${target}: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
