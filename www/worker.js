// worker.js: runs the engine off the page's thread (a module worker), one request at a time.
//
// Protocol. Every request but `stop`/`cancel` carries an `id`; replies repeat it.
//
// page -> worker
//   { type: 'load', id, model: Source, tokenizer: Source, modelName?, tokenizerName? }
//        Source = URL string | File/Blob | ArrayBuffer (see llama2.js). Frees the old model,
//        cancels a running load and ends a running generation first.
//   { type: 'generate', id, prompt, temperature, topp, seed, steps }
//   { type: 'stop' }       end the running generation after the current token
//   { type: 'cancel' }     abort the running load (its reply is an `error` with `cancelled`)
//
// worker -> page
//   { type: 'progress', id, file: 'model'|'tokenizer', name, loaded, total }
//   { type: 'loaded', id, config: ModelConfig, variant, wasmMemoryBytes }
//   { type: 'piece', id, text }                     one per token ('' while UTF-8 is partial)
//   { type: 'done', id, reason, tokens, ms, ttftMs, seed: string, ids: number[] }
//   { type: 'error', id, message, cancelled: boolean }
//   { type: 'cache', url, status, message }         where a URL came from / went to (cache.js)
//   a wasm trap (out of memory, a bug) is not replied to but rethrown uncaught: the engine is
//   unusable after one, and the page's `error` event offers a reload.

import { createEngine, toSeed } from './llama2.js';
import { WeightCache } from './cache.js';

const llama = createEngine();
/** URLs are read from and stored to the browser's weight cache (cache.js). */
const cache = new WeightCache({ onNote: (note) => postMessage({ type: 'cache', ...note }) });
/** @type {AbortController | null} the running load's */
let loading = null;

async function load({ id, model, tokenizer, modelName, tokenizerName }) {
  loading?.abort();
  const controller = (loading = new AbortController());
  const engine = await llama;
  engine.stop();
  // At most one progress message per 50 ms (a big file comes in thousands of chunks), and the last.
  let last = 0;
  const onProgress = (p) => {
    const now = performance.now();
    if (now - last < 50 && p.loaded < p.total) return;
    last = now;
    postMessage({ type: 'progress', id, ...p });
  };
  const options = { onProgress, signal: controller.signal, cache };
  await engine.loadCheckpoint(model, { ...options, name: modelName });
  await engine.loadTokenizer(tokenizer, { ...options, name: tokenizerName });
  if (loading === controller) loading = null;
  postMessage({ type: 'loaded', id, config: engine.config, variant: engine.variant, wasmMemoryBytes: engine.wasmMemoryBytes });
}

async function generate({ id, prompt, temperature, topp, seed, steps }) {
  const engine = await llama;
  const seed64 = toSeed(seed);
  const t0 = performance.now();
  let tokens = 0;
  let ttftMs = null;
  for await (const text of engine.generate(prompt, { temperature, topp, seed: seed64, steps })) {
    ttftMs ??= performance.now() - t0;
    tokens++;
    postMessage({ type: 'piece', id, text });
  }
  const ms = performance.now() - t0;
  postMessage({ type: 'done', id, reason: engine.stopReason, tokens, ms, ttftMs, seed: String(seed64), ids: engine.tokenIds });
}

onmessage = async ({ data }) => {
  try {
    if (data.type === 'stop') return (await llama).stop();
    if (data.type === 'cancel') return loading?.abort();
    if (data.type === 'load') return await load(data);
    if (data.type === 'generate') return await generate(data);
    throw new Error(`worker: unknown request '${data.type}'`);
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) return setTimeout(() => { throw err; });
    const cancelled = err?.name === 'AbortError';
    postMessage({ type: 'error', id: data.id, message: cancelled ? 'cancelled' : String(err?.message ?? err), cancelled });
  }
};
