// The npm package as users get it: `npm pack www`, installed from the tarball into apps under
// target/npm, with no configuration and no files copied by hand:
// - the manifest: every file the package's modules import is packed (and nothing of the page);
// - Node: `import { loadModel } from 'llama2-wasm'` writes run.c's golden story; after free()
//   the engine says so (kind `state`);
// - a plain ESM page (an import map), in Chromium: the golden story, <llama-story>, and `wasm:`
//   given, with no request for the package's own .wasm;
// - a Vite app and a webpack 5 app (tests/e2e/apps/app.js, bundlers pinned in
//   tests/e2e/bundlers), production builds served as static files, in Chromium and Firefox:
//   the golden story on the page's thread, over 2 workers, and from <llama-story>; and the
//   same app on Vite's dev server;
// - TypeScript: `tsc --strict` with the documented lib (ES2020, DOM) accepts an example using
//   every declaration, the worker protocol included, and rejects a misspelled stop reason,
//   a wrong option type and the relaxed build without its module.
// Run from tests/e2e: `node --test package.test.mjs` (after tools/install.sh bundlers).

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT } from './browser.mjs';
import { launch } from './drive.mjs';
import { MODELS, STORY, startServer } from './harness.mjs';
import { freePort } from './webdriver.mjs';

const NPM = join(ROOT, 'target/npm');
const APP = join(NPM, 'app');
const BUNDLERS = join(ROOT, 'target/bundlers/node_modules/.bin');
const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'www/package.json'), 'utf8'));
const TARBALL = join(NPM, `llama2-wasm-${MANIFEST.version}.tgz`);
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

/** The ESM page: the import map stands in for a bundler's resolution of the package exports. */
const IMPORT_MAP = `<script type="importmap">
{ "imports": {
    "llama2-wasm": "./node_modules/llama2-wasm/engine/llama2.js",
    "llama2-wasm/cache": "./node_modules/llama2-wasm/cache/cache.js",
    "llama2-wasm/llama-story": "./node_modules/llama2-wasm/element/llama-story.js" } }
</script>`;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>llama2-wasm from npm</title>
${IMPORT_MAP}
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

/** `wasm:` given: the engine is that module, and the package's own builds are never asked for. */
const BYPASS_PAGE = `<!doctype html>
<meta charset="utf-8">
<title>llama2-wasm with its own wasm</title>
${IMPORT_MAP}
<pre id="out"></pre>
<script type="module">
  import { loadModel } from 'llama2-wasm';
  const out = document.querySelector('#out');
  try {
    const llama = await loadModel({
      model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin', wasm: '/custom/engine.wasm',
    });
    for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps: 256 })) out.textContent += piece;
    out.dataset.done = llama.stopReason;
  } catch (err) {
    out.dataset.error = err.message;
  }
</script>
`;

/** The README's Node example, run inside the app; then use after free(). */
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
llama.free();
try {
  llama.config;
} catch (err) {
  process.stderr.write(err.kind + ': ' + err.message);
}
`;

/** Uses every declared export; tsc must accept it under --strict with lib ES2020 + DOM. */
const TS_EXAMPLE = `
import {
  loadModel, createEngine, encode, defaults, wasmVariant, errorKind, LlamaError, MAX_WORKERS,
  type Llama2, type ModelConfig, type Progress, type StopReason, type Token, type TokensOptions, type ErrorKind,
  type Placement, type LoadOptions, type GenerateOptions, type ChatOptions, type Transport, type Variant,
  type WasmOptions, type Source, type SourceCache,
} from 'llama2-wasm';
import { WeightCache, SEGMENT_BYTES, type CacheNote, type CachedFile } from 'llama2-wasm/cache';
import type { LlamaStory, LlamaStoryDone, LlamaStoryLoaded, LlamaStoryState } from 'llama2-wasm/llama-story';
import { EngineClient, startWorker, type Run } from 'llama2-wasm/client';
import {
  REQUESTS, CONTROLS, FINAL,
  type PageMessage, type WorkerMessage, type Request, type Control, type DoneReply, type LoadedReply,
} from 'llama2-wasm/protocol';

export async function main(output: HTMLElement): Promise<string> {
  const notes: CacheNote[] = [];
  const cache: SourceCache = new WeightCache({ onNote: (note) => notes.push(note), segmentBytes: SEGMENT_BYTES });
  const placement: Placement = { workers: 'auto', transport: 'auto' satisfies Transport, context: 0 };
  const source: Source = new URL('stories15M.bin', 'https://example.org/');
  const load: LoadOptions = { name: 'stories15M.bin', signal: AbortSignal.timeout(60_000), cache, size: 1, sha256: 'x', ...placement };
  const llama: Llama2 = await loadModel({
    model: source, tokenizer: 'tokenizer.bin', cache,
    onProgress: (p: Progress) => console.log(p.file, p.loaded / p.total),
    workers: MAX_WORKERS,
  });
  await llama.loadCheckpoint(new Uint8Array(8), load);
  await llama.loadTokenizer(new Blob([]), { name: 't' });
  const config: ModelConfig = llama.config;
  const options: GenerateOptions = { temperature: 0.8, topp: 0.9, seed: 42n, steps: config.seq_len };
  for await (const piece of llama.generate('Once upon a time', options)) output.textContent += piece;
  const chat: ChatOptions = { system: 'Be brief.', seed: '7' };
  for await (const piece of llama.chat('Hello', chat)) output.textContent += piece;
  llama.newChat();
  const inspect: TokensOptions = { topK: 5, attention: true };
  for await (const token of llama.tokens('Once', inspect)) {
    if (token.pos === undefined) continue; // a TextPiece: text with no pass of its own
    const t: Token = token;
    console.log(t.id, t.prompt, t.pos, t.token, t.top[0][1], t.prob, t.rank, t.attention?.weights.length, llama.vocab[t.id]);
  }
  for await (const step of llama.branch(1, 2)) console.log(typeof step === 'string' ? step : step.text);
  const lens: Array<Array<[number, number]>> = await llama.lens(1, 3);
  const reason: StopReason | undefined = llama.stopReason;
  llama.stop();
  console.log(llama.ready, llama.wasmMemoryBytes, llama.seed, lens.length, reason);
  const files: CachedFile[] = await (cache as WeightCache).list();
  const build: WasmOptions = { variant: 'relaxed', wasm: new Uint8Array(8) };
  const ids: number[] = await encode('tokenizer.bin', config.vocab_size, 'Hello', { bos: true, ...build });
  const variant: Variant = wasmVariant();
  const engine = await createEngine({ variant, workers: 2, transport: 'messages' });
  engine.free();
  const { temperature } = await defaults();
  try {
    engine.config;
  } catch (err) {
    const kind: ErrorKind = errorKind(err);
    if (err instanceof LlamaError && err.kind === 'state') console.log(kind);
  }

  // The engine in a worker, over its protocol.
  const client = new EngineClient(startWorker());
  const stopListening = client.on('cache', (note) => console.log(note.url, note.status));
  client.on('dead', (err) => console.log(err.kind));
  const loading: Run<LoadedReply> = client.load({ model: 'm.bin', tokenizer: 't.bin', workers: 2, cache: false }, { onProgress: (p) => console.log(p.loaded) });
  const loaded = await loading.done;
  const run: Run<DoneReply> = client.generate({ prompt: 'Once', temperature: 0, seed: '1' }, { onPiece: (text) => console.log(text) });
  run.stop();
  const done: DoneReply = await run.done;
  const turn = await client.chat({ message: 'Hi', system: 'Be brief.' }).done;
  await client.newChat().done;
  const paused: DoneReply = await client.tokens({ prompt: 'Once', topK: 3, attention: true, take: 2 }, {
    onToken: (token) => console.log(token.text, 'pos' in token ? token.top.length : 0),
  }).done;
  await client.more({ take: 1 }).done;
  await client.more().done;
  await client.branch({ pos: 1, token: 2 }, { onToken: (token) => console.log(token.text) }).done;
  console.log(paused.reason, (await client.lens(1, 3)).length, (await client.vocab()).length);
  console.log((await client.defaults()).topp, client.dead, loaded.config.workers, done.reason, turn.ids);
  client.killShard(1);
  stopListening();
  client.terminate();
  const request: Request = { type: 'generate', id: 1, prompt: 'Once' };
  const control: Control = { type: 'stop', id: 1 };
  const messages: PageMessage[] = [request, control, { type: 'kill-shard', shard: 1 }];
  const reply = (message: WorkerMessage): string => {
    switch (message.type) {
      case 'done': return message.reason;
      case 'error': return message.kind;
      case 'piece': return message.text;
      default: return message.type;
    }
  };
  console.log(REQUESTS.includes('load'), CONTROLS.length, FINAL.generate, messages.length, reply({ type: 'alive', lock: 'x' }));

  const story: LlamaStory | null = document.querySelector('llama-story');
  story?.addEventListener('llama-story-done', (e) => {
    const detail: LlamaStoryDone = e.detail;
    console.log(detail.text, detail.reason satisfies StopReason | 'paused');
  });
  story?.addEventListener('llama-story-loaded', (e) => console.log((e.detail satisfies LlamaStoryLoaded).workers));
  await story?.generate({ take: 3 });
  await story?.step();
  const state: LlamaStoryState = 'idle';
  return \`\${llama.tokenIds.length} \${files.length} \${ids.length} \${temperature} \${state} \${notes.length}\`;
}
`;

/** What tsc must refuse, each with the error it must name. */
const TS_WRONG = [
  ['stop-reason.ts', "import type { StopReason } from 'llama2-wasm';\nexport const reason: StopReason = 'stoped';\n",
    /stop-reason\.ts\(2,\d+\): error TS2820: Type '"stoped"' is not assignable to type 'StopReason'. Did you mean '"stopped"'/],
  ['done-reason.ts', "import type { DoneReply } from 'llama2-wasm/protocol';\nexport const ok = (d: DoneReply) => d.reason === 'finished';\n",
    /done-reason\.ts\(2,\d+\): error TS2367/],
  ['option-type.ts', "import { loadModel } from 'llama2-wasm';\nloadModel({ model: 1, tokenizer: 't' });\n",
    /option-type\.ts\(2,\d+\): error TS2322: Type 'number' is not assignable/],
  ['relaxed.ts', "import { createEngine } from 'llama2-wasm';\ncreateEngine({ variant: 'relaxed' });\n",
    /relaxed\.ts\(2,\d+\): error TS2\d+/],
];

/** The apps each bundler builds: where the app's code goes, and how it is built and served. */
const BUNDLED = {
  vite: { entry: 'src/main.js', script: '/src/main.js', build: ['vite', 'build'], dist: 'dist', html: '.' },
  // webpack's defaults: src/index.js -> dist/main.js; the page is the user's own, in dist/.
  webpack: { entry: 'src/index.js', script: 'main.js', build: ['webpack', '--mode', 'production'], dist: 'dist', html: 'dist' },
};

const appPage = (script) => `<!doctype html>
<meta charset="utf-8">
<title>llama2-wasm in a bundled app</title>
<script type="module" src="${script}"></script>
`;

/** A new app dir with the packed package installed. */
function newApp(dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }, null, 2));
  npm(['install', '--offline', TARBALL], dir);
}

let server;

before(() => {
  assert.ok(STORY, 'golden aidreams260K case not found');
  assert.ok(existsSync(join(BUNDLERS, 'vite')) && existsSync(join(BUNDLERS, 'webpack')), 'no bundlers: run tools/install.sh bundlers');
  rmSync(NPM, { recursive: true, force: true });
  mkdirSync(NPM, { recursive: true });
  npm(['pack', join(ROOT, 'www'), '--pack-destination', NPM], ROOT);
  newApp(APP);
  writeFileSync(join(APP, 'index.html'), PAGE);
  writeFileSync(join(APP, 'bypass.html'), BYPASS_PAGE);
  writeFileSync(join(APP, 'example.mjs'), NODE_EXAMPLE);
});

after(async () => {
  await server?.close();
});

test('the packed package: its manifest, every module its files import, README and LICENSE; no page, no relaxed build', () => {
  const dir = join(APP, 'node_modules/llama2-wasm');
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  assert.equal(manifest.name, 'llama2-wasm');
  assert.equal(manifest.types, './engine/llama2.d.ts');
  assert.deepEqual(manifest.exports['.'], { types: './engine/llama2.d.ts', default: './engine/llama2.js' });
  for (const entry of Object.values(manifest.exports)) {
    for (const file of typeof entry === 'string' ? [entry] : Object.values(entry)) {
      if (!file.includes('*')) assert.ok(existsSync(join(dir, file)), `export ${file} missing from the package`);
    }
  }
  // Every relative import of every packed module (static, dynamic or `new URL`) is packed.
  const modules = readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith('.js') && !f.startsWith('node_modules'));
  assert.ok(modules.includes('engine/llama2.js') && modules.includes('worker/worker.js'), modules.join(' '));
  for (const module of modules) {
    const text = readFileSync(join(dir, module), 'utf8');
    const specifiers = [...text.matchAll(/(?:from|import\(|new URL\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]);
    for (const specifier of specifiers) {
      assert.ok(existsSync(join(dir, dirname(module), specifier)), `${module} imports ${specifier}, which is not packed`);
    }
  }
  for (const file of ['README.md', 'LICENSE', 'pkg/simd/llama2_wasm_bg.wasm', 'pkg/scalar/llama2_wasm_bg.wasm', 'worker/client.d.ts', 'worker/protocol.d.ts']) {
    assert.ok(existsSync(join(dir, file)), `${file} missing from the package`);
  }
  assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /^MIT License/);
  for (const file of ['index.html', 'page', 'models', 'sw.js', 'pkg/relaxed']) assert.ok(!existsSync(join(dir, file)), `${file} should not be packed`);
});

test('Node: import { loadModel } from "llama2-wasm" writes the golden story; after free() the engine says so', () => {
  const run = spawnSync(process.execPath, ['example.mjs', MODELS], { cwd: APP, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout, STORY.stdout);
  assert.equal(run.stderr, 'state: this engine was freed: create a new one');
});

/** Waits for the page's `#id[data-done]` (or its error); resolves with { text, done, workers, error }. */
async function result(page, id) {
  await page.waitFor((id) => {
    const out = document.getElementById(id);
    return Boolean(out && (out.dataset.done || out.dataset.error));
  }, id, { timeout: 120_000 });
  return page.evaluate((id) => {
    const out = document.getElementById(id);
    return { text: out.textContent, done: out.dataset.done ?? null, workers: out.dataset.workers ?? null, error: out.dataset.error ?? null };
  }, id);
}

/** Clicks Generate on `#story` and resolves with its text once it is done. */
async function elementStory(page) {
  const inState = (states) => states.includes(document.querySelector('#story')?.getAttribute('state'));
  await page.waitFor(inState, ['ready', 'idle', 'error'], { timeout: 60_000 });
  await page.evaluate(() => document.querySelector('#story').shadowRoot.querySelector('[part~="generate"]').click());
  await page.waitFor(inState, ['done', 'error'], { timeout: 120_000 });
  return page.evaluate(() => ({
    state: document.querySelector('#story').getAttribute('state'),
    text: document.querySelector('#story').shadowRoot.querySelector('[part~="output"]').textContent,
  }));
}

test('a plain ESM page importing the package: the golden story, <llama-story>, and wasm: bypassing the lookup (Chromium)', async () => {
  server = await startServer({ root: APP, isolation: false, mounts: [{ prefix: '/custom', dir: join(NPM, 'custom') }] });
  mkdirSync(join(NPM, 'custom'), { recursive: true });
  copyFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'), join(NPM, 'custom/engine.wasm'));
  const browser = await launch('chromium');
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}index.html`);
    const out = await result(page, 'out');
    assert.equal(out.error, null);
    assert.equal(out.text, STORY.stdout);
    // The element, from node_modules: its worker is the package's worker/worker.js.
    assert.deepEqual(await elementStory(page), { state: 'done', text: STORY.stdout });
    assert.equal(server.requests('/node_modules/llama2-wasm/worker/worker.js').length, 1);
    await page.close();

    const before = server.log.length;
    const bypass = await browser.newPage();
    await bypass.goto(`${server.url}bypass.html`);
    const own = await result(bypass, 'out');
    assert.equal(own.error, null);
    assert.equal(own.text, STORY.stdout);
    const asked = server.log.slice(before).map((r) => r.path);
    assert.ok(asked.includes('/custom/engine.wasm'), asked.join(' '));
    assert.deepEqual(asked.filter((path) => path.endsWith('.wasm') && path !== '/custom/engine.wasm'), [], 'the package\'s own wasm was fetched');
  } finally {
    await browser.close();
  }
});

/** Checks an app served at `url` in `page`: the golden story on the page's thread, over 2
 * workers, and from <llama-story>. */
async function checkApp(page, url) {
  await page.goto(url);
  const one = await result(page, 'one');
  assert.deepEqual(one, { text: STORY.stdout, done: 'context', workers: '1', error: null });
  const two = await result(page, 'two');
  assert.deepEqual(two, { text: STORY.stdout, done: 'context', workers: '2', error: null });
  assert.deepEqual(await elementStory(page), { state: 'done', text: STORY.stdout });
}

for (const [bundler, app] of Object.entries(BUNDLED)) {
  test(`a ${bundler} app, built with no configuration, served as static files: the golden story three ways in Chromium and Firefox`, async () => {
    const dir = join(NPM, `${bundler}-app`);
    newApp(dir);
    mkdirSync(join(dir, 'src'), { recursive: true });
    copyFileSync(join(ROOT, 'tests/e2e/apps/app.js'), join(dir, app.entry));
    mkdirSync(join(dir, app.html), { recursive: true });
    writeFileSync(join(dir, app.html, 'index.html'), appPage(app.script));
    const [tool, ...args] = app.build;
    const t0 = Date.now();
    const output = execFileSync(join(BUNDLERS, tool), args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    console.log(`${bundler} build: ${Date.now() - t0} ms`);
    assert.doesNotMatch(output, /warn/i, `${bundler} warned:\n${output}`);
    const dist = join(dir, app.dist);
    const served = await startServer({ root: dist, isolation: false });
    try {
      for (const name of ['chromium', 'firefox']) {
        const browser = await launch(name);
        try {
          await checkApp(await browser.newPage(), `${served.url}index.html`);
        } finally {
          await browser.close();
        }
      }
      // Nothing was asked outside the build and the models (dist/ is all there is).
      const outside = served.log.map((r) => r.path).filter((path) => !path.startsWith('/models/') && path !== '/favicon.ico' && !existsSync(join(dist, path)));
      assert.deepEqual(outside, []);
    } finally {
      await served.close();
    }
  });
}

test('the Vite app on Vite\'s dev server (no optimizeDeps configuration): the golden story three ways in Chromium and Firefox', async () => {
  const dir = join(NPM, 'vite-app');
  assert.ok(existsSync(join(dir, 'src/main.js')), 'the vite build test makes the app');
  const models = await startServer({ isolation: false });
  const port = await freePort();
  const vite = spawn(join(BUNDLERS, 'vite'), ['--port', String(port), '--strictPort', '--host', '127.0.0.1'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  vite.stdout.on('data', (chunk) => (log += chunk));
  vite.stderr.on('data', (chunk) => (log += chunk));
  try {
    const start = Date.now();
    while (!/ready in/.test(log)) {
      assert.ok(Date.now() - start < 60_000 && vite.exitCode === null, `vite did not start:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const name of ['chromium', 'firefox']) {
      const browser = await launch(name);
      try {
        await checkApp(await browser.newPage(), `http://127.0.0.1:${port}/?models=${encodeURIComponent(`${models.url}models/`)}`);
      } finally {
        await browser.close();
      }
    }
  } finally {
    process.kill(-vite.pid);
    await models.close();
  }
});

test('the TypeScript declarations: tsc --strict with lib ES2020 + DOM accepts every declaration, refuses what is wrong', () => {
  // typescript is a pinned devDependency of tests/e2e (installed by build.sh's npm ci).
  const tsc = join(ROOT, 'tests/e2e/node_modules/.bin/tsc');
  writeFileSync(join(APP, 'example.ts'), TS_EXAMPLE);
  const args = ['--noEmit', '--strict', '--target', 'es2020', '--module', 'nodenext', '--moduleResolution', 'nodenext',
    '--lib', 'es2020,dom', '--skipLibCheck', 'false'];
  try {
    execFileSync(tsc, [...args, 'example.ts'], { cwd: APP, encoding: 'utf8' });
  } catch (err) {
    assert.fail(`tsc failed:\n${err.stdout}${err.stderr}`);
  }
  for (const [file, text, error] of TS_WRONG) {
    writeFileSync(join(APP, file), text);
    assert.throws(() => execFileSync(tsc, [...args, file], { cwd: APP, encoding: 'utf8' }), (err) => {
      assert.match(err.stdout, error);
      return true;
    }, `tsc accepted ${file}`);
  }
});
