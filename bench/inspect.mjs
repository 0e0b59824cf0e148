// What looking inside costs: decode tok/s of `generate()` against `tokens()` (top 10, without
// and with attention) through the JS API in a module worker of headless Chromium, and
// optionally `generate()` of an earlier build (`--before DIR`: a www/ with its own pkg/), to
// check that capture off costs nothing. Sampling as bench/measure.mjs: 256 positions from BOS,
// temperature 1, top-p 1, seed 42; one worker per model, split over nothing (workers 1).
//
//   node bench/inspect.mjs [--shapes 15M,110M] [--runs 5] [--steps 256] [--before DIR]
//
// Each run loads each model once into a fresh worker and measures every engine there, one
// right after another, in an order that rotates from run to run. On a shared machine the
// speed swings by 2x within minutes, but engines measured back to back see mostly the same
// load: so besides the median tok/s of each engine, the table gives the median over runs of
// each engine's ratio to `generate` *in the same run*, the figure to compare. Every figure
// goes to target/bench/inspect.json.
// Checkpoints: target/bench/SHAPE-v0.bin (made with gen-checkpoint when missing).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser } from '../tests/e2e/browser.mjs';
import { serve } from '../tools/serve.mjs';

const ROOT = new URL('../', import.meta.url).pathname;
const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
const SHAPES = (args.shapes ?? '15M,110M').split(',');
const RUNS = Number(args.runs ?? 5);
const STEPS = Number(args.steps ?? 256);
const DIR = join(ROOT, 'target/bench');
const TOKENIZER = join(process.env.LLAMA2_MODELS ?? join(ROOT, '../shared/models'), 'tokenizer.bin');

/** The engines measured: `www` is which server (this tree's, or --before's). */
const ENGINES = [
  { name: 'generate', www: 'now' },
  { name: 'tokens', www: 'now', options: { topK: 10, attention: false } },
  { name: 'tokens+attention', www: 'now', options: { topK: 10, attention: true } },
  ...(args.before ? [{ name: 'generate (before)', www: 'before' }] : []),
];

/** In the worker: decode tok/s of one engine's 256 positions. */
const WORKER = (origin) => `
import * as llama2 from '${origin}/engine/llama2.js';
let llama;
onmessage = async ({ data }) => {
  try {
    if (data.load) {
      llama = await llama2.createEngine({ variant: 'simd', workers: 1 });
      await llama.loadCheckpoint(data.load.model);
      await llama.loadTokenizer(data.load.tokenizer);
      return postMessage({ ok: true });
    }
    const sampling = { temperature: 1, topp: 1, seed: 42n, steps: data.steps };
    const run = data.options ? llama.tokens('', { ...sampling, ...data.options }) : llama.generate('', sampling);
    const t0 = performance.now();
    let n = 0;
    for await (const _ of run) n++;
    postMessage({ ok: true, tokS: n / ((performance.now() - t0) / 1e3), n });
  } catch (err) {
    postMessage({ ok: false, message: String(err?.stack ?? err) });
  }
};`;

function checkpoint(shape) {
  const file = join(DIR, `${shape}-v0.bin`);
  if (!existsSync(file)) {
    mkdirSync(DIR, { recursive: true });
    execFileSync(join(ROOT, 'target/release/gen-checkpoint'), ['--shape', shape, '--seed', '1', file]);
  }
  return file;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const mounts = [{ prefix: '/models', dir: DIR }, { prefix: '/tok', dir: join(TOKENIZER, '..') }];
const servers = { now: await serve({ root: join(ROOT, 'www'), port: 0, mounts }) };
if (args.before) servers.before = await serve({ root: args.before, port: 0, mounts });
const browser = await launchBrowser();

/** A page of `www`'s server with one worker holding `shape`'s model; `measure(engine)`. */
async function open(www, shape) {
  const { url } = servers[www];
  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error(`[chrome] ${err.message}`));
  await page.goto(`${url}favicon.svg`);
  await page.evaluate((code) => {
    window.bench = new Worker(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })), { type: 'module' });
    window.ask = (message) => new Promise((done) => {
      window.bench.onmessage = ({ data }) => done(data);
      window.bench.postMessage(message);
    });
  }, WORKER(new URL(url).origin));
  const ask = async (message) => {
    const reply = await page.evaluate((m) => window.ask(m), message);
    if (!reply.ok) throw new Error(reply.message);
    return reply;
  };
  // Absolute: a blob worker has no base URL.
  await ask({ load: { model: `${url}models/${shape}-v0.bin`, tokenizer: `${url}tok/tokenizer.bin` } });
  return { measure: (engine) => ask({ steps: STEPS, options: engine.options }), close: () => page.close() };
}

const results = [];
for (const shape of SHAPES) checkpoint(shape);
for (let run = 0; run < RUNS; run++) {
  for (const shape of SHAPES) {
    const pages = {};
    for (const www of Object.keys(servers)) pages[www] = await open(www, shape);
    const order = ENGINES.map((_, i) => ENGINES[(i + run) % ENGINES.length]);
    for (const engine of order) {
      const { tokS, n } = await pages[engine.www].measure(engine);
      results.push({ shape, engine: engine.name, run, tok_s: tokS, tokens: n });
      console.error(`run ${run + 1}/${RUNS} ${shape} ${engine.name}: ${tokS.toFixed(1)} tok/s`);
    }
    for (const page of Object.values(pages)) await page.close();
  }
}
await browser.close();
for (const { server } of Object.values(servers)) server.close();

writeFileSync(join(DIR, 'inspect.json'), JSON.stringify(results, null, 1));
const cpu = (await import('node:fs')).readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
console.log(`llama2-wasm inspect cost, ${new Date().toISOString().slice(0, 16)}Z, ${cpu}, Chromium simd, 1 worker, ${RUNS} runs (medians), ${STEPS} decode steps`);
const others = ENGINES.slice(1);
console.log(`\n| model | ${ENGINES.map((e) => `${e.name} tok/s`).join(' | ')} | ${others.map((e) => `${e.name} / generate`).join(' | ')} |`);
console.log(`|---|${ENGINES.map(() => '---:').join('|')}|${others.map(() => '---:').join('|')}|`);
for (const shape of SHAPES) {
  const of = (name) => results.filter((r) => r.shape === shape && r.engine === name);
  const speeds = ENGINES.map((e) => median(of(e.name).map((r) => r.tok_s)).toFixed(1));
  const base = of('generate');
  const ratios = others.map((e) => median(of(e.name).map((r) => r.tok_s / base.find((b) => b.run === r.run).tok_s)).toFixed(3));
  console.log(`| ${shape} | ${speeds.join(' | ')} | ${ratios.join(' | ')} |`);
}
