#!/usr/bin/env node
// The side-by-side benchmark behind `./build.sh bench` (which builds everything first).
//
//   node bench/bench.mjs --native BIN --tokenizer FILE [--dir target/bench] [--runs 3]
//        [--models 15M,42M,110M] [--formats v0,v2] [--engines native,node-simd,...]
//   node bench/bench.mjs --report-only [--dir target/bench]   (the table of the last run)
//
// Engines: native (the `bench` binary), node-VARIANT (www/pkg/VARIANT in Node, one process per
// measurement), chrome-VARIANT (the same build in a module Web Worker of headless Chromium,
// a fresh page per measurement), and runc when RUNC names a run.c binary (fp32 decode only).
// Engines are alternated round-robin inside every (run, model, format), so load from other
// processes hits them alike; every figure is the median over the runs. Scalar wasm engines
// measure the 15M shape only unless --scalar-all (they take minutes per 110M run).
// Writes DIR/results.json: [{engine, model, format, decode_tok_s, ttft_ms, load_ms, memory_mb,
// runs: [...]}] and prints the table with the ratios the speed issue asks for.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { basename, dirname, join, resolve } from 'node:path';

const ROOT = new URL('../', import.meta.url).pathname;

function parseArgs(argv) {
  const o = {
    dir: join(ROOT, 'target/bench'), runs: 3, steps: 256, promptTokens: 64,
    models: ['15M', '42M', '110M'], formats: ['v0', 'v2'], scalarAll: false,
    engines: ['native', 'node-simd', 'node-relaxed', 'node-scalar', 'chrome-simd', 'chrome-relaxed', 'chrome-scalar'],
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
    else if (flag === '--runs') o.runs = Number(value);
    else if (flag === '--steps') o.steps = Number(value);
    else if (flag === '--models') o.models = list();
    else if (flag === '--formats') o.formats = list();
    else if (flag === '--engines') o.engines = list();
    else throw new Error(`bench: unknown option ${flag}`);
  }
  if (!o.native || !o.tokenizer) throw new Error('bench: --native BIN and --tokenizer FILE are required');
  if (process.env.RUNC) o.engines.push('runc');
  // A wasm variant that was not built is left out (with a note), not an error.
  o.engines = o.engines.filter((e) => {
    const variant = e.replace(/^(node|chrome)-/, '');
    if (e === variant || existsSync(join(ROOT, `www/pkg/${variant}/llama2_wasm_bg.wasm`))) return true;
    console.error(`bench: no www/pkg/${variant}/ build, skipping ${e}`);
    return false;
  });
  return o;
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

/** The browser: one headless Chromium, a fresh page (and worker) per measurement. */
async function startChrome(dir, tokenizerDir) {
  const { launchBrowser, startServer } = await import('../tests/e2e/browser.mjs');
  const server = await startServer([{ prefix: '/bench', dir: join(ROOT, 'bench') }, { prefix: '/models', dir }, { prefix: '/tok', dir: tokenizerDir }]);
  const browser = await launchBrowser();
  return {
    async measure(options) {
      const page = await browser.newPage();
      page.on('pageerror', (err) => console.error(`[chrome] ${err.message}`));
      try {
        await page.goto(`${server.url}bench/index.html`);
        const reply = await page.evaluate(
          (options) =>
            new Promise((done) => {
              const worker = new Worker('/bench/worker.mjs', { type: 'module' });
              worker.onmessage = ({ data }) => done(data);
              worker.onerror = (e) => done({ ok: false, message: e.message ?? 'worker error' });
              worker.postMessage(options);
            }),
          options,
        );
        if (!reply.ok) throw new Error(reply.message);
        return reply.result;
      } finally {
        await page.close();
      }
    },
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** `--report-only`: the table of an earlier run's results.json (no measurement). */
function reportOnly(o) {
  const results = JSON.parse(readFileSync(join(o.dir, 'results.json'), 'utf8'));
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
  const chrome = o.engines.some((e) => e.startsWith('chrome-')) ? await startChrome(o.dir, dirname(o.tokenizer)) : null;
  const runs = new Map(); // "engine model format" -> [measurement]
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown CPU';
  console.error(`bench: ${o.runs} runs x ${o.models.join(',')} x ${o.formats.join(',')} x ${o.engines.join(',')} on ${cpu}`);

  for (let run = 1; run <= o.runs; run++) {
    for (const model of o.models) {
      for (const format of o.formats) {
        const file = join(o.dir, `${model}-${format}.bin`);
        for (const engine of o.engines) {
          if (engine.endsWith('-scalar') && model !== '15M' && !o.scalarAll) continue;
          if (engine === 'runc' && format !== 'v0') continue;
          let m;
          try {
          if (engine === 'native') {
            m = runJson(o.native, [file, o.tokenizer, '--prompt', prompt, '--steps', String(o.steps)]);
          } else if (engine === 'runc') {
            m = runJson(process.env.RUNC, [file, '-n', String(o.steps), '-s', '42', '-t', '1', '-p', '1']);
          } else if (engine.startsWith('node-')) {
            // Node 20 runs relaxed SIMD only behind a flag (Chrome ships it).
            const flags = engine === 'node-relaxed' ? ['--experimental-wasm-relaxed-simd'] : [];
            const args = [...flags, join(ROOT, 'bench/node.mjs'), engine.slice(5), file, o.tokenizer, String(o.promptTokens), String(o.steps)];
            m = runJson(process.execPath, args, prompt);
          } else {
            m = await chrome.measure({
              variant: engine.slice(7), model: `/models/${model}-${format}.bin`, tokenizer: `/tok/${basename(o.tokenizer)}`,
              prompt, promptTokens: o.promptTokens, steps: o.steps,
            });
          }
          } catch (err) {
            console.error(`  run ${run} ${engine} ${model} ${format} FAILED: ${err.message}`);
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
  await chrome?.close();

  const results = [...runs].map(([key, ms]) => {
    const [engine, model, format] = key.split(' ');
    const pick = (f) => (ms.every((m) => m[f] !== undefined) ? median(ms.map((m) => m[f])) : null);
    return {
      engine, model, format,
      decode_tok_s: pick('decode_tok_s'), ttft_ms: pick('ttft_ms'), load_ms: pick('load_ms'), memory_mb: pick('memory_mb'),
      runs: ms,
    };
  });
  writeFileSync(join(o.dir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  report(o, results, cpu);
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
  lines.push('| model | fmt | chrome-simd / native | node-simd / native | chrome-simd / chrome-scalar | chrome-relaxed / chrome-simd | native / runc | chrome-simd v2 / v0 |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const model of o.models) {
    for (const format of o.formats) {
      const d = (e, f = format) => get(e, model, f)?.decode_tok_s;
      lines.push(`| ${model} | ${format} | ${ratio(d('chrome-simd'), d('native'))} | ${ratio(d('node-simd'), d('native'))} | ${ratio(d('chrome-simd'), d('chrome-scalar'))} | ${ratio(d('chrome-relaxed'), d('chrome-simd'))} | ${format === 'v0' ? ratio(d('native'), d('runc')) : '-'} | ${format === 'v2' ? ratio(d('chrome-simd', 'v2'), d('chrome-simd', 'v0')) : '-'} |`);
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
  lines.push(`results: ${join(o.dir, 'results.json')}`);
  console.log(lines.join('\n'));
}

await main();
