// Past wasm32's 4 GB: a checkpoint of more than 2^32 bytes (the shape 2048,5632,24,32,4,32000,
// 2048, fp32 v0: 4.49 GB, made by gen-checkpoint under target/e2e/) loads in headless
// Chromium split over 2 workers, through the page's worker and API, over shared memory and
// over messages; its greedy ids for 16 steps are the native engine's, and the workers' wasm
// memories together stay within file + KV cache + 10 %.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, OUT, startServer } from './harness.mjs';

const SHAPE = '2048,5632,24,32,4,32000,2048';
const FILE = join(OUT, 'big-4.5G.bin');
const STEPS = 16;

let server;
let browser;
let nativeIds;

before(async () => {
  if (!existsSync(FILE)) {
    execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', SHAPE, '--seed', '1', FILE], { stdio: 'inherit' });
  }
  assert.ok(statSync(FILE).size > 2 ** 32, 'the checkpoint must pass 4 GB');
  const out = execFileSync(join(ROOT, 'target/release/llama2'), [
    FILE, '-z', join(MODELS, 'tokenizer.bin'), '-t', '0', '-n', String(STEPS), '--ids', '--threads', '2',
  ], { encoding: 'utf8' });
  nativeIds = out.trim().split(/\s+/).map(Number);
  assert.equal(nativeIds.length, STEPS + 1);
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

for (const transport of ['shared', 'messages']) {
  test(`4.49 GB over 2 workers (${transport}): the native engine's greedy ids, memory within file + KV cache + 10 %`, { timeout: 600_000 }, async () => {
    const page = await browser.newPage();
    watchPage(page);
    await page.goto(`${server.url}embed.html`); // any page of the origin (isolated: serve.mjs sends COOP/COEP)
    const result = await page.evaluate(async ({ transport, steps }) => {
      const { EngineClient } = await import('/worker/client.js');
      const engine = new EngineClient();
      const t0 = performance.now();
      const loaded = await engine.load({
        model: '/fixtures/big-4.5G.bin', tokenizer: '/models/tokenizer.bin', workers: 2, transport, cache: false,
      }).done;
      const loadMs = performance.now() - t0;
      const done = await engine.generate({ prompt: '', temperature: 0, steps }).done;
      engine.terminate();
      return { config: loaded.config, wasmMemoryBytes: loaded.wasmMemoryBytes, ids: done.ids, loadMs, ms: done.ms };
    }, { transport, steps: STEPS });
    const { config } = result;
    assert.deepEqual({ workers: config.workers, transport: config.transport }, { workers: 2, transport });
    assert.deepEqual(result.ids, nativeIds, 'not the native engine\'s greedy ids');
    const bound = (config.file_size + config.kv_cache_bytes) * 1.1;
    console.log(`${transport}: loaded ${(config.file_size / 1e9).toFixed(2)} GB in ${(result.loadMs / 1000).toFixed(1)} s; `
      + `${STEPS} tokens in ${(result.ms / 1000).toFixed(1)} s; wasm memory ${(result.wasmMemoryBytes / 1e9).toFixed(2)} GB `
      + `(bound ${(bound / 1e9).toFixed(2)} GB: file + KV cache ${(config.kv_cache_bytes / 1e6).toFixed(0)} MB + 10 %)`);
    assert.ok(result.wasmMemoryBytes <= bound, `${result.wasmMemoryBytes} > ${bound}`);
    await page.close();
  });
}
