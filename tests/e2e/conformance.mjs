#!/usr/bin/env node
// Golden cases (generate, tokenizer, chat) through the wasm build, the way users run it, judged
// by the native runner's own rules (`conformance --check`, src/conformance.rs); a chat case
// runs its user turns through chat() (run.c's last line again once they are used up, as its
// stdin does), turn by turn:
//   node:   www/engine/llama2.js in Node (checkpoints read as Blobs, streamed into wasm memory);
//   chrome, firefox, webkit: headless Chromium, Firefox ESR or WebKit (drive.mjs), through
//   the page's own worker (www/worker/client.js -> worker.js).
//
//   node tests/e2e/conformance.mjs --target node|chrome|firefox|webkit [--workers N] [--transport T] GOLDEN.json MODELS_DIR
//
// Writes the outcomes to target/conformance/TARGET-….jsonl, then prints what
// `target/release/conformance GOLDEN --check FILE` says: a FAIL line per failing case and
// `<label>: N passed, M failed`; exits 1 on any failure.

import { spawnSync } from 'node:child_process';
import { mkdirSync, openAsBlob, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { createEngine, encode } from '../../www/engine/llama2.js';
import { ROOT, startServer } from './browser.mjs';
import { launch } from './drive.mjs';

const { values: opts, positionals } = parseArgs({
  options: { target: { type: 'string' }, workers: { type: 'string', default: '1' }, transport: { type: 'string', default: 'auto' } },
  allowPositionals: true,
});
const [golden, models] = positionals;
if (!['node', 'chrome', 'firefox', 'webkit'].includes(opts.target) || !golden || !models) {
  console.error('usage: conformance.mjs --target node|chrome|firefox|webkit [--workers N] [--transport auto|shared|messages] GOLDEN.json MODELS_DIR');
  process.exit(2);
}
const workers = Number(opts.workers);
const { transport } = opts;

/** A chat case's options as the API takes them (the golden file holds run.c's argv strings). */
const chatOptions = (c) => ({
  temperature: Number(c.temperature), topp: Number(c.topp), seed: c.seed, steps: Number(c.steps), system: c.system ?? '',
});

/** Node: the JS API directly, on the build LLAMA2_WASM_VARIANT (simd by default). */
async function nodeRunner() {
  const variant = process.env.LLAMA2_WASM_VARIANT ?? 'simd';
  const wasm = readFileSync(join(ROOT, `www/pkg/${variant}/llama2_wasm_bg.wasm`));
  const llama = await createEngine({ variant, wasm, workers, transport });
  return {
    label: `node ${variant}`,
    async run(c) {
      const tokenizer = readFileSync(join(models, c.tokenizer));
      if (!('checkpoint' in c)) return { ids: await encode(tokenizer, c.vocab_size, c.text, { bos: c.bos, eos: c.eos, variant, wasm }) };
      await llama.loadCheckpoint(await openAsBlob(join(models, c.checkpoint)), { name: c.checkpoint });
      await llama.loadTokenizer(tokenizer, { name: c.tokenizer });
      if (c.mode === 'chat') {
        // Each user turn through chat(), until a turn ends without EOS (as run.c's steps run out).
        const turns = [];
        llama.newChat();
        for (const message of c.user.concat(Array(8).fill(c.user.at(-1)))) {
          let text = '';
          for await (const piece of llama.chat(message, chatOptions(c))) text += piece;
          turns.push({ text, reason: llama.stopReason });
          if (llama.stopReason !== 'eos') break;
        }
        return { ids: llama.tokenIds, turns };
      }
      let text = '';
      const options = { temperature: c.temperature, topp: c.topp, seed: BigInt(c.seed), steps: c.steps };
      for await (const piece of llama.generate(c.prompt ?? '', options)) text += piece;
      return { ids: llama.tokenIds, text };
    },
    close: () => llama.free(),
  };
}

/** A browser: the page's worker over its protocol (www/worker/client.js); tokenizer cases in the page. */
async function browserRunner(name, label) {
  const server = await startServer([{ prefix: '/fixtures', dir: models }, { prefix: '/test', dir: join(ROOT, 'tests/e2e/pages') }]);
  let browser;
  try {
    // WebKitGTK keeps SharedArrayBuffer off unless asked (webdriver.mjs); Safari has it.
    browser = await launch(name, { sharedArrayBuffer: transport === 'shared' });
    const page = await browser.newPage();
    // An empty page of the server's origin, cross-origin isolated as serve.mjs makes every page.
    await page.goto(`${server.url}test/blank.html`);
    return {
      label,
      run: (c) => page.evaluate(runInPage, { c, workers, transport }),
      async close() {
        await browser.close();
        await server.close();
      },
    };
  } catch (err) {
    await browser?.close();
    await server.close();
    throw err;
  }
}

/** One golden case in a page of the test server (serialized into it: no closure). */
async function runInPage({ c, workers, transport }) {
  const fixture = (name) => `/fixtures/${encodeURIComponent(name)}`;
  if (!('checkpoint' in c)) {
    const { encode } = await import('/engine/llama2.js');
    return { ids: await encode(fixture(c.tokenizer), c.vocab_size, c.text, { bos: c.bos, eos: c.eos }) };
  }
  const { EngineClient } = await import('/worker/client.js');
  window.engine ??= new EngineClient();
  await window.engine.load({ model: fixture(c.checkpoint), tokenizer: fixture(c.tokenizer), modelName: c.checkpoint, workers, transport }).done;
  if (c.mode === 'chat') {
    const turns = [];
    let ids = [];
    await window.engine.newChat().done;
    for (const message of c.user.concat(Array(8).fill(c.user.at(-1)))) {
      let text = '';
      const options = { message, temperature: Number(c.temperature), topp: Number(c.topp), seed: c.seed, steps: Number(c.steps), system: c.system ?? '' };
      const done = await window.engine.chat(options, { onPiece: (piece) => (text += piece) }).done;
      turns.push({ text, reason: done.reason });
      ids = done.ids;
      if (done.reason !== 'eos') break;
    }
    return { ids, turns };
  }
  let text = '';
  const { temperature, topp, seed, steps } = c;
  const options = { prompt: c.prompt ?? '', temperature, topp, seed: String(seed), steps };
  const done = await window.engine.generate(options, { onPiece: (piece) => (text += piece) }).done;
  return { ids: done.ids, text };
}

/** The browser each target runs in, and its label in the outcomes. */
const BROWSER_TARGETS = { chrome: 'chromium', firefox: 'firefox', webkit: 'webkit' };

const cases = JSON.parse(readFileSync(golden, 'utf8'));
const runner = opts.target === 'node' ? await nodeRunner() : await browserRunner(BROWSER_TARGETS[opts.target], opts.target);
const lines = [];
for (const [index, c] of cases.entries()) {
  try {
    lines.push(JSON.stringify({ case: index, ...(await runner.run(c)) }));
  } catch (err) {
    lines.push(JSON.stringify({ case: index, error: String(err?.message ?? err) }));
  }
}
await runner.close();

const out = join(ROOT, 'target/conformance');
mkdirSync(out, { recursive: true });
const label = `${runner.label}${workers > 1 ? ` (${workers} workers, ${transport})` : ''}`;
const file = join(out, `${label.replace(/[^\w.-]+/g, '-')}-${basename(golden, '.json')}.jsonl`);
writeFileSync(file, `${lines.join('\n')}\n`);
const check = spawnSync(join(ROOT, 'target/release/conformance'), [golden, '--check', file, '--label', label, '--models', models], { stdio: 'inherit' });
process.exit(check.status ?? 1);
