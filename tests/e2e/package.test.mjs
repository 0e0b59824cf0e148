// The npm package (issue 5): `npm pack www` -> a tarball installed into an app under
// target/npm/app; `import { loadModel } from 'llama2-wasm'` then generates the golden story
// in Node (package exports) and in a plain ESM page (an import map, no bundler), the
// <llama-story> element works from the package, and the TypeScript declarations type-check
// an example (typescript, a pinned devDependency of tests/e2e).
// Run from tests/e2e: `node --test package.test.mjs`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';

const NPM = join(ROOT, 'target/npm');
const APP = join(NPM, 'app');
const VERSION = JSON.parse(readFileSync(join(ROOT, 'www/package.json'), 'utf8')).version;
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

/** The ESM page: the import map stands in for a bundler's resolution of the package exports. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>llama2-wasm from npm</title>
<script type="importmap">
{ "imports": {
    "llama2-wasm": "./node_modules/llama2-wasm/llama2.js",
    "llama2-wasm/cache": "./node_modules/llama2-wasm/cache.js",
    "llama2-wasm/llama-story": "./node_modules/llama2-wasm/llama-story.js" } }
</script>
<pre id="out"></pre>
<llama-story id="story" model="/models/aidreams260K.bin" tokenizer="/models/tok512-aidreams.bin" steps="128" temperature="0"></llama-story>
<script type="module">
  import { loadModel } from 'llama2-wasm';
  import { WeightCache } from 'llama2-wasm/cache';
  import 'llama2-wasm/llama-story';
  const out = document.querySelector('#out');
  try {
    const llama = await loadModel({
      model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin', cache: new WeightCache(),
    });
    for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps: 256 })) out.textContent += piece;
    out.dataset.done = llama.stopReason;
  } catch (err) {
    out.dataset.error = err.message;
  }
</script>
`;

/** The README's Node example, run inside the app. */
const NODE_EXAMPLE = `
import { readFileSync } from 'node:fs';
import { loadModel } from 'llama2-wasm';
const wasm = readFileSync(new URL(import.meta.resolve('llama2-wasm/pkg/simd/llama2_wasm_bg.wasm')));
const models = process.argv[2];
const llama = await loadModel({
  model: readFileSync(models + '/aidreams260K.bin'), modelName: 'aidreams260K.bin',
  tokenizer: readFileSync(models + '/tok512-aidreams.bin'), variant: 'simd', wasm,
});
let text = '';
for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps: 256 })) text += piece;
process.stdout.write(text);
`;

/** Uses every declared export; tsc must accept it under --strict. */
const TS_EXAMPLE = `
import { loadModel, createEngine, encode, wasmVariant, toSeed, type Llama2, type ModelConfig, type Progress } from 'llama2-wasm';
import { WeightCache, type CacheNote, type CachedFile } from 'llama2-wasm/cache';
import type { LlamaStory } from 'llama2-wasm/llama-story';

export async function main(output: HTMLElement): Promise<string> {
  const notes: CacheNote[] = [];
  const cache = new WeightCache({ onNote: (note) => notes.push(note) });
  const llama: Llama2 = await loadModel({
    model: 'stories15M.bin', tokenizer: 'tokenizer.bin', cache,
    onProgress: (p: Progress) => console.log(p.file, p.loaded / p.total),
    signal: AbortSignal.timeout(60_000),
  });
  const config: ModelConfig = llama.config;
  for await (const piece of llama.generate('Once upon a time', { temperature: 0.8, topp: 0.9, seed: 42n, steps: config.seq_len })) {
    output.textContent += piece;
  }
  const files: CachedFile[] = await cache.list();
  const ids: number[] = await encode('tokenizer.bin', config.vocab_size, 'Hello', { bos: true });
  const engine = await createEngine({ variant: wasmVariant() });
  engine.free();
  const story: LlamaStory | null = document.querySelector('llama-story');
  story?.addEventListener('llama-story-done', (e) => console.log(e.detail.text));
  return \`\${llama.stopReason} \${llama.tokenIds.length} \${files.length} \${ids.length} \${toSeed(0)}\`;
}
`;

let server;
let browser;

before(() => {
  assert.ok(STORY, 'golden aidreams260K case not found');
  rmSync(NPM, { recursive: true, force: true });
  mkdirSync(APP, { recursive: true });
  npm(['pack', join(ROOT, 'www'), '--pack-destination', NPM], ROOT);
  writeFileSync(join(APP, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2));
  npm(['install', '--offline', `../llama2-wasm-${VERSION}.tgz`], APP);
  writeFileSync(join(APP, 'index.html'), PAGE);
  writeFileSync(join(APP, 'example.mjs'), NODE_EXAMPLE);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

test('the packed package has its manifest, declarations and wasm builds', () => {
  const dir = join(APP, 'node_modules/llama2-wasm');
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'llama2-wasm');
  assert.equal(manifest.types, './llama2.d.ts');
  assert.deepEqual(manifest.exports['.'], { types: './llama2.d.ts', default: './llama2.js' });
  for (const file of ['llama2.js', 'llama2.d.ts', 'cache.js', 'cache.d.ts', 'worker.js', 'llama-story.js', 'llama-story.d.ts',
    'pkg/simd/llama2_wasm.js', 'pkg/simd/llama2_wasm_bg.wasm', 'pkg/scalar/llama2_wasm.js', 'pkg/scalar/llama2_wasm_bg.wasm']) {
    assert.ok(existsSync(join(dir, file)), `${file} missing from the package`);
  }
  for (const file of ['index.html', 'main.js', 'models', 'sw.js']) assert.ok(!existsSync(join(dir, file)), `${file} should not be packed`);
});

test('Node: import { loadModel } from "llama2-wasm" writes the golden story', () => {
  const text = execFileSync(process.execPath, ['example.mjs', MODELS], { cwd: APP, encoding: 'utf8' });
  assert.equal(text, STORY.stdout);
});

test('a plain ESM page importing the package generates, and <llama-story> works from it', async () => {
  server = await startServer({ root: APP, isolation: false });
  browser = await launchBrowser();
  const page = await browser.newPage();
  watchPage(page);
  await page.goto(`${server.url}index.html`);
  await page.waitForSelector('#out[data-done], #out[data-error]', { timeout: 60_000 });
  assert.equal(await page.getAttribute('#out', 'data-error'), null);
  assert.equal(await page.textContent('#out'), STORY.stdout);
  // The element, from node_modules: its worker is the package's worker.js.
  await page.waitForSelector('#story[state="ready"]');
  await page.locator('#story [part~="generate"]').click();
  await page.waitForSelector('#story[state="done"]');
  assert.equal(await page.locator('#story [part~="output"]').textContent(), STORY.stdout);
  assert.ok(server.requests('/node_modules/llama2-wasm/worker.js').length === 1);
});

test('the TypeScript declarations type-check an example (tsc --strict)', () => {
  // typescript is a pinned devDependency of tests/e2e (installed by build.sh's npm ci).
  const tsc = join(ROOT, 'tests/e2e/node_modules/.bin/tsc');
  writeFileSync(join(APP, 'example.ts'), TS_EXAMPLE);
  const args = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--lib', 'es2022,dom,dom.iterable,dom.asynciterable', '--skipLibCheck', 'false', 'example.ts'];
  try {
    execFileSync(tsc, args, { cwd: APP, encoding: 'utf8' });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
  // And it can fail: a wrong option type is an error.
  writeFileSync(join(APP, 'wrong.ts'), "import { loadModel } from 'llama2-wasm';\nloadModel({ model: 1, tokenizer: 't' });\n");
  assert.throws(() => execFileSync(tsc, [...args.slice(0, -1), 'wrong.ts'], { cwd: APP, encoding: 'utf8' }), (err) => {
    assert.match(err.stdout, /wrong\.ts\(2,\d+\): error TS2322: Type 'number' is not assignable/);
    return true;
  });
});
