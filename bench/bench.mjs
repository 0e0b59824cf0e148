#!/usr/bin/env node
// The side-by-side benchmark behind `./build.sh bench` (which builds everything first).
//
//   node bench/bench.mjs --native BIN --tokenizer FILE [--dir target/bench] [--results DIR/results.json] [--runs 3]
//        [--models 15M,42M,110M] [--formats v0,v2] [--engines native,node-simd,...]
//        [--steps 256] [--context N]   (N: the KV cache's positions, for models past 4 GB)
//   node bench/bench.mjs --report-only [--dir target/bench] [--results FILE]   (the table of the last run)
//
// Engines: native (the `bench` binary; native-tN: the model over N threads), node-VARIANT
// (www/pkg/VARIANT in Node, one process per measurement), chrome-VARIANT and firefox-VARIANT
// (the same build in a module Web Worker of headless Chromium or Firefox ESR, a fresh page per
// measurement, tests/e2e/drive.mjs); a `-wN` suffix splits
// the model over N workers meeting through shared memory, `-wNm` through messages. Optional
// anchors built by you: runc (RUNC=path, run.c, fp32 decode, one thread), runomp (RUNOMP=path,
// run.c built with OpenMP, OMP_NUM_THREADS=2), runq (RUNQ=path, runq.c on the v2 files,
// OMP_NUM_THREADS=2). They may print `achieved tok/s` (run.c's own line) or a JSON object.
// Engines are alternated round-robin inside every (run, model, format), so load from other
// processes hits them alike; every figure is the median over the runs. Scalar wasm engines
// measure the 15M shape only unless --scalar-all (they take minutes per 110M run).
// Writes DIR/results.json: [{engine, model, format, decode_tok_s, ttft_ms, load_ms, memory_mb,
// runs: [...]}] and prints the table with the ratios the speed issue asks for. Exits 1 when a
// measurement failed (`./build.sh test` runs every engine once this way: see bench_smoke).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { basename, dirname, join, resolve } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;

function parseArgs(argv) {
  const o = {
    dir: join(ROOT, 'target/bench'), runs: 3, steps: 256, promptTokens: 64,
    models: ['15M', '42M', '110M'], formats: ['v0', 'v2'], scalarAll: false,
    engines: [
      'native', 'native-t2', 'node-simd', 'node-relaxed', 'node-scalar', 'chrome-simd', 'chrome-simd-w2', 'chrome-simd-w2m',
      'chrome-relaxed', 'chrome-scalar', 'firefox-simd', 'firefox-simd-w2',
    ],
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const list = () => value.split(',').filter(Boolean);
    if (flag === '--scalar-all') { o.scalarAll = true; continue; }
    if (value === undefined) throw new Error(`bench: ${flag} needs a value`);
    i++;
    if (flag === '--native') o.native = resolve(value);
    else if (flag === '--tokenizer') o.tokenizer = resolve(value);
    else if (flag === '--dir') o.dir = resolve(value);
    else if (flag === '--results') o.results = resolve(value);
    else if (flag === '--runs') o.runs = Number(value);
    else if (flag === '--steps') o.steps = Number(value);
    else if (flag === '--context') o.context = Number(value);
    else if (flag === '--models') o.models = list();
    else if (flag === '--formats') o.formats = list();
    else if (flag === '--engines') o.engines = list();
    else throw new Error(`bench: unknown option ${flag}`);
  }
  o.results ??= join(o.dir, 'results.json');
  if (!o.native || !o.tokenizer) throw new Error('bench: --native BIN and --tokenizer FILE are required');
  for (const [env, engine] of [['RUNC', 'runc'], ['RUNOMP', 'runomp'], ['RUNQ', 'runq']]) {
    if (process.env[env] && !o.engines.includes(engine)) o.engines.push(engine);
  }
  // A wasm variant that was not built is left out (with a note), not an error.
  o.engines = o.engines.filter((e) => {
    const { variant } = engineOf(e);
    if (!variant || existsSync(join(ROOT, `www/pkg/${variant}/llama2_wasm_bg.wasm`))) return true;
    console.error(`bench: no www/pkg/${variant}/ build, skipping ${e}`);
    return false;
  });
  return o;
}

/** What an engine name says: `{ host, variant, workers, transport }` (see the top). */
function engineOf(name) {
  const native = name.match(/^native(?:-t(\d+))?$/);
  if (native) return { host: 'native', workers: Number(native[1] ?? 1) };
  const wasm = name.match(/^(node|chrome|firefox)-(simd|relaxed|scalar)(?:-w(\d+)(m?))?$/);
  if (wasm) {
    return { host: wasm[1], variant: wasm[2], workers: Number(wasm[3] ?? 1), transport: wasm[4] ? 'messages' : 'shared' };
  }
  return { host: name };
}

/** run.c, runq.c (or a wrapper printing JSON): its decode tok/s. */
function runAnchor(path, args, threads) {
  const env = { ...process.env, ...(threads && { OMP_NUM_THREADS: String(threads) }) };
  const r = spawnSync(path, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${path}: exit ${r.status}\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(last);
  } catch {
    const tok = r.stderr.match(/achieved tok\/s: ([\d.]+)/);
    if (!tok) throw new Error(`${path}: no "achieved tok/s" on stderr`);
    return { decode_tok_s: Number(tok[1]) };
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};

function runJson(cmd, args, input) {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** A browser (`chrome`: Chromium, `firefox`): a fresh page (and worker) per measurement, in
 * one headless Chromium, or in a Firefox of its own (one Firefox for many measurements
 * sometimes hung a split model's run late in the series, never alone; the page suite's
 * Firefox does the same, tests/e2e/firefox-page.mjs). The start is not measured. */
async function startBrowser(host, dir, tokenizerDir) {
  const { startServer } = await import('../tests/e2e/browser.mjs');
  const { launch } = await import('../tests/e2e/drive.mjs');
  const server = await startServer([{ prefix: '/bench', dir: join(ROOT, 'bench') }, { prefix: '/models', dir }, { prefix: '/tok', dir: tokenizerDir }]);
  const name = host === 'chrome' ? 'chromium' : host;
  const shared = host === 'chrome' ? await launch(name) : null;
  return {
    async measure(options) {
      const browser = shared ?? (await launch(name));
      const page = await browser.newPage();
      try {
        await page.goto(`${server.url}bench/index.html`);
        const reply = await page.evaluate(
          async (options) => {
            const { ShardWorkersForChild } = await import('/engine/llama2.js');
            return new Promise((done) => {
              const worker = new Worker('/bench/worker.mjs', { type: 'module' });
              const shards = new ShardWorkersForChild((message) => worker.postMessage(message));
              worker.onmessage = ({ data }) => shards.handle(data) || done(data);
              worker.onerror = (e) => done({ ok: false, message: e.message ?? 'worker error' });
              worker.postMessage(options);
            });
          },
          options,
        );
        if (!reply.ok) throw new Error(reply.message);
        return reply.result;
      } finally {
        await page.close();
        if (!shared) await browser.close();
      }
    },
    async close() {
      await shared?.close();
      await server.close();
    },
  };
}

/** `--report-only`: the table of an earlier run's results.json (no measurement). */
function reportOnly(o) {
  const results = JSON.parse(readFileSync(o.results, 'utf8'));
  const uniq = (f) => [...new Set(results.map(f))];
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  const runs = Math.max(...results.map((r) => r.runs.length));
  report({ ...o, runs, models: uniq((r) => r.model), formats: uniq((r) => r.format), engines: uniq((r) => r.engine) }, results, cpu);
}

async function main() {
  if (process.argv.includes('--report-only')) {
    const argv = process.argv.slice(2).filter((a) => a !== '--report-only');
    return reportOnly(parseArgs([...argv, '--native', '-', '--tokenizer', '-']));
  }
  const o = parseArgs(process.argv.slice(2));
  const prompt = execFileSync(o.native, ['--prompt-of', String(o.promptTokens), o.tokenizer], { encoding: 'utf8' }).trim();
  // The browsers the engines run in, each started once.
  const browsers = {};
  for (const host of new Set(o.engines.map((e) => engineOf(e).host).filter((h) => ['chrome', 'firefox'].includes(h)))) {
    browsers[host] = await startBrowser(host, o.dir, dirname(o.tokenizer));
  }
  const runs = new Map(); // "engine model format" -> [measurement]
  let failed = 0;
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  console.error(`bench: ${o.runs} runs x ${o.models.join(',')} x ${o.formats.join(',')} x ${o.engines.join(',')} on ${cpu}`);

  for (let run = 1; run <= o.runs; run++) {
    for (const model of o.models) {
      for (const format of o.formats) {
        const file = join(o.dir, `${model}-${format}.bin`);
        for (const engine of o.engines) {
          const { host, variant, workers, transport } = engineOf(engine);
          if (variant === 'scalar' && model !== '15M' && !o.scalarAll) continue;
          if (['runc', 'runomp'].includes(host) && format !== 'v0') continue;
          if (host === 'runq' && format !== 'v2') continue;
          const context = o.context ? ['--context', String(o.context)] : [];
          const anchor = ['-n', String(o.steps), '-s', '42', '-t', '1', '-p', '1', '-z', o.tokenizer];
          let m;
          try {
          if (host === 'native') {
            const args = [file, o.tokenizer, '--prompt', prompt, '--steps', String(o.steps), '--threads', String(workers), ...context];
            m = runJson(o.native, args);
          } else if (host === 'runc') {
            m = runAnchor(process.env.RUNC, [file, ...anchor]);
          } else if (host === 'runomp') {
            m = runAnchor(process.env.RUNOMP, [file, ...anchor], 2);
          } else if (host === 'runq') {
            m = runAnchor(process.env.RUNQ, [file, ...anchor], 2);
          } else if (host === 'node') {
            // Node 20 runs relaxed SIMD only behind a flag (Chrome ships it).
            const flags = variant === 'relaxed' ? ['--experimental-wasm-relaxed-simd'] : [];
            const args = [...flags, join(ROOT, 'bench/node.mjs'), variant, file, o.tokenizer, String(o.promptTokens), String(o.steps), String(workers), transport];
            m = runJson(process.execPath, args, prompt);
          } else {
            m = await browsers[host].measure({
              variant, workers, transport, context: o.context,
              wasm: variant === 'relaxed' ? '/pkg/relaxed/llama2_wasm_bg.wasm' : undefined,
              model: `/models/${model}-${format}.bin`, tokenizer: `/tok/${basename(o.tokenizer)}`,
              prompt, promptTokens: o.promptTokens, steps: o.steps,
            });
          }
          } catch (err) {
            console.error(`  run ${run} ${engine} ${model} ${format} FAILED: ${err.message}`);
            failed++;
            continue;
          }
          const key = `${engine} ${model} ${format}`;
          runs.set(key, [...(runs.get(key) ?? []), m]);
          const show = (v, d = 1) => (v === undefined ? '-' : v.toFixed(d));
          console.error(`  run ${run} ${key}: ${show(m.decode_tok_s)} tok/s, ttft ${show(m.ttft_ms)} ms, load ${show(m.load_ms)} ms, ${show(m.memory_mb)} MB`);
        }
      }
    }
  }
  for (const browser of Object.values(browsers)) await browser.close();

  const results = [...runs].map(([key, ms]) => {
    const [engine, model, format] = key.split(' ');
    const pick = (f) => (ms.every((m) => m[f] !== undefined) ? median(ms.map((m) => m[f])) : null);
    return {
      engine, model, format,
      decode_tok_s: pick('decode_tok_s'), ttft_ms: pick('ttft_ms'), load_ms: pick('load_ms'), memory_mb: pick('memory_mb'),
      runs: ms,
    };
  });
  writeFileSync(o.results, JSON.stringify(results, null, 2) + '\n');
  report(o, results, cpu);
  if (failed) {
    console.error(`bench: ${failed} measurement(s) FAILED (above): an engine is broken`);
    process.exitCode = 1;
  }
}

function report(o, results, cpu) {
  const get = (engine, model, format) => results.find((r) => r.engine === engine && r.model === model && r.format === format);
  const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(d));
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) + 'x' : '-');
  const lines = [];
  lines.push(`llama2-wasm bench, ${new Date().toISOString().slice(0, 16)}Z, ${cpu}, ${o.runs} runs (medians), ${o.steps} decode steps, ${o.promptTokens}-token prompt`);
  lines.push('');
  lines.push('| model | fmt | engine | decode tok/s | ttft ms | ttft / 64 decode steps | load ms | memory MB |');
  lines.push('|---|---|---|---:|---:|---:|---:|---:|');
  for (const model of o.models) {
    for (const format of o.formats) {
      for (const engine of o.engines) {
        const r = get(engine, model, format);
        if (!r) continue;
        const steps64 = r.decode_tok_s ? (64 * 1000) / r.decode_tok_s : null;
        lines.push(`| ${model} | ${format} | ${engine} | ${fmt(r.decode_tok_s)} | ${fmt(r.ttft_ms)} | ${r.ttft_ms && steps64 ? (r.ttft_ms / steps64).toFixed(2) : '-'} | ${fmt(r.load_ms, 0)} | ${fmt(r.memory_mb)} |`);
      }
    }
  }
  lines.push('');
  lines.push('Ratios of decode tok/s (medians, measured side by side):');
  lines.push('');
  // [engine, over engine]: a column when both ran (the wN engines: the parallel speedups).
  const pairs = [
    ['chrome-simd', 'native'], ['node-simd', 'native'], ['chrome-simd', 'chrome-scalar'], ['chrome-relaxed', 'chrome-simd'],
    ['firefox-simd', 'chrome-simd'], ['chrome-simd-w2', 'chrome-simd'], ['chrome-simd-w2m', 'chrome-simd'],
    ['firefox-simd-w2', 'firefox-simd'], ['native-t2', 'native'], ['chrome-simd', 'runc'], ['chrome-simd-w2', 'runomp'],
    ['native', 'runc'], ['chrome-simd', 'runq'], ['chrome-simd-w2', 'runq'], ['chrome-simd-w2', 'native-t2'],
  ].filter(([a, b]) => o.engines.includes(a) && o.engines.includes(b));
  const v2OverV0 = o.engines.includes('chrome-simd') && o.formats.includes('v0') && o.formats.includes('v2');
  lines.push(`| model | fmt | ${pairs.map(([a, b]) => `${a} / ${b}`).join(' | ')}${v2OverV0 ? ' | chrome-simd v2 / v0' : ''} |`);
  lines.push(`|---|---|${pairs.map(() => '---:|').join('')}${v2OverV0 ? '---:|' : ''}`);
  for (const model of o.models) {
    for (const format of o.formats) {
      const d = (e, f = format) => get(e, model, f)?.decode_tok_s;
      const cells = pairs.map(([a, b]) => ratio(d(a), d(b)));
      if (v2OverV0) cells.push(format === 'v2' ? ratio(d('chrome-simd', 'v2'), d('chrome-simd', 'v0')) : '-');
      lines.push(`| ${model} | ${format} | ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push('wasm module sizes (www/pkg/*/llama2_wasm_bg.wasm):');
  for (const variant of ['simd', 'relaxed', 'scalar']) {
    const file = join(ROOT, `www/pkg/${variant}/llama2_wasm_bg.wasm`);
    if (!existsSync(file)) continue;
    const bytes = readFileSync(file);
    lines.push(`  ${variant}: ${(bytes.length / 1024).toFixed(1)} KB, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KB gzipped`);
  }
  lines.push('');
  lines.push(`results: ${o.results}`);
  console.log(lines.join('\n'));
}

await main();
