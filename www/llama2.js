// llama2.js: the JavaScript API of llama2-wasm, for the page's worker and for embedders.
//
//   import { loadModel } from './llama2.js';
//   const llama = await loadModel({ model: 'stories15M.bin', tokenizer: 'tokenizer.bin',
//                                   onProgress: ({ loaded, total }) => console.log(loaded, total) });
//   for await (const piece of llama.generate('Once upon a time', { temperature: 0 })) {
//     out.textContent += piece;
//   }
//
// Generation runs on the calling thread: in a page, call it from a Web Worker (see worker.js).
// The checkpoint is written chunk by chunk straight into wasm memory: one copy of the weights.

/** A tiny module using SIMD (`i8x16.popcnt`): valid only where wasm simd128 is supported. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15,
  253, 98, 11,
]);

/**
 * The wasm build this JS engine can run: `'simd'` (simd128) or `'scalar'`.
 * @returns {'simd' | 'scalar'}
 */
export function wasmVariant() {
  return WebAssembly.validate(SIMD_PROBE) ? 'simd' : 'scalar';
}

/**
 * A checkpoint or tokenizer source: a URL (fetched, streamed), a `File`/`Blob` (read with
 * `blob.stream()`), or bytes.
 * @typedef {string | URL | Blob | ArrayBuffer | Uint8Array} Source
 */

/**
 * Download or read progress of one file.
 * @typedef {{ file: 'model' | 'tokenizer', name: string, loaded: number, total: number }} Progress
 */

/**
 * Options of a load.
 * @typedef {object} LoadOptions
 * @property {string} [name] name shown in errors and facts (default: the URL's or file's name)
 * @property {(p: Progress) => void} [onProgress] called after every chunk
 * @property {AbortSignal} [signal] cancels the download or read
 * @property {{ open(url: string, o: { name?: string, signal?: AbortSignal }): Promise<{ name: string, size: number | null, stream: ReadableStream<Uint8Array> }> }} [cache]
 *   where URLs are read from and stored to: a `WeightCache` from cache.js (default: plain fetch)
 */

/**
 * Sampling options (run.c's flags and defaults).
 * @typedef {object} GenerateOptions
 * @property {number} [temperature=1] 0 = greedy
 * @property {number} [topp=0.9] nucleus sampling; 0 or 1 = off
 * @property {number | bigint} [seed] RNG seed, any u64 (negative numbers wrap as run.c's `-s`); 0 or missing = time
 * @property {number} [steps=256] positions to run including the prompt; 0 = the model's seq_len
 * @property {AbortSignal} [signal] stops the generation between two tokens
 */

/**
 * Facts about the loaded model, from the engine.
 * @typedef {object} ModelConfig
 * @property {string} name
 * @property {string} format "v0", "v1" or "v2 (int8, group size N)"
 * @property {number} dim
 * @property {number} hidden_dim
 * @property {number} n_layers
 * @property {number} n_heads
 * @property {number} n_kv_heads
 * @property {number} vocab_size
 * @property {number} seq_len
 * @property {boolean} shared_classifier
 * @property {number} params parameter count
 * @property {number} file_size checkpoint bytes
 * @property {number} kv_cache_bytes
 * @property {number} memory_bytes weights plus run state
 */

/** Lets queued events (a stop request, a cancel) run; a macrotask, not a 4 ms timer. */
function yieldToEventLoop() {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  const { port1, port2 } = new MessageChannel();
  return new Promise((resolve) => {
    port1.onmessage = () => {
      port1.close();
      resolve();
    };
    port2.postMessage(null);
  });
}

/** The last path segment of a URL, for names. */
function baseName(url) {
  const path = new URL(url, globalThis.location?.href ?? 'file:///').pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || String(url);
}

/** Reads a stream to its end, calling `onChunk(bytes)` for each chunk. */
async function pump(stream, signal, onChunk) {
  const reader = stream.getReader();
  const onAbort = () => reader.cancel(signal.reason).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      onChunk(value);
    }
    signal?.throwIfAborted();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

/**
 * Opens a source as `{ name, size, stream }`; `size` is null when a server does not say.
 * @param {Source} source
 * @param {LoadOptions} options
 */
async function open(source, { name, signal, cache } = {}) {
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    return { name: name ?? 'bytes', size: bytes.length, stream: new Blob([bytes]).stream() };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { name: name ?? source.name ?? 'blob', size: source.size, stream: source.stream() };
  }
  const url = String(source);
  if (cache) return cache.open(url, { name, signal }); // the weight cache (cache.js)
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new Error(`cannot download ${url}: ${err.message}`);
  }
  if (!response.ok) throw new Error(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  // A compressed response's Content-Length is not the file size: treat it as unknown.
  const length = response.headers.get('content-length');
  const size = length !== null && !response.headers.get('content-encoding') ? Number(length) : null;
  return { name: name ?? baseName(url), size, stream: response.body };
}

/** Reads a whole (small) source into one Uint8Array. */
async function readAll(opened, signal, progress) {
  const chunks = [];
  let loaded = 0;
  await pump(opened.stream, signal, (chunk) => {
    chunks.push(chunk);
    loaded += chunk.length;
    progress(loaded, opened.size ?? loaded);
  });
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** wasm-bindgen modules already instantiated, per variant (one engine module per thread). */
const modules = new Map();

/**
 * Instantiates the wasm engine module (once per variant).
 * @param {object} [options]
 * @param {'simd' | 'scalar'} [options.variant] default: `wasmVariant()`
 * @param {BufferSource | WebAssembly.Module} [options.wasm] the `.wasm` bytes or module
 *   (Node, or a custom location); default: fetched from `pkg/<variant>/` next to this file
 */
async function instantiate({ variant = wasmVariant(), wasm } = {}) {
  const key = wasm ? wasm : variant;
  if (!modules.has(key)) {
    const glue = await import(`./pkg/${variant}/llama2_wasm.js`);
    const exports = wasm ? glue.initSync({ module: wasm }) : await glue.default();
    modules.set(key, { glue, exports, variant, warm: false });
  }
  return modules.get(key);
}

/** A model in wasm memory that writes stories. Create it with `createEngine` or `loadModel`. */
export class Llama2 {
  #module;
  #engine;
  /** Bumped by every load and generation: an older generation sees it and ends quietly. */
  #run = 0;

  /** @param {object} module from `instantiate` */
  constructor(module) {
    this.#module = module;
    this.#engine = new module.glue.Engine();
    // Once per module: run the hot code on a tiny model so that the engine's optimizing tier
    // has compiled it before the first real prompt (see `warm_up` in src/wasm.rs).
    if (!module.warm) {
      module.warm = true;
      try {
        module.glue.warm_up(0);
      } catch (err) {
        console.warn(`llama2: warm-up failed (${err}); the first prompt will be slower`);
      }
    }
  }

  /** @returns {'simd' | 'scalar'} the wasm build in use */
  get variant() {
    return this.#module.variant;
  }

  /**
   * Loads a checkpoint (`.bin`, v0/v1/v2), freeing the previous model first. With a known
   * size the bytes stream straight into wasm memory; an unknown size (no Content-Length) is
   * buffered in JS first. Follow with `loadTokenizer`.
   * @param {Source} source
   * @param {LoadOptions} [options]
   */
  async loadCheckpoint(source, { name, onProgress, signal, cache } = {}) {
    this.#run++;
    const opened = await open(source, { name, signal, cache });
    const progress = (loaded, total) => onProgress?.({ file: 'model', name: opened.name, loaded, total });
    if (opened.size === null) {
      const bytes = await readAll(opened, signal, progress);
      this.#engine.alloc_checkpoint(bytes.length);
      this.#view().set(bytes);
    } else {
      try {
        this.#engine.alloc_checkpoint(opened.size); // too big: refused before the download
      } catch (err) {
        opened.stream.cancel().catch(() => {});
        throw new Error(`checkpoint '${opened.name}': ${err.message}`);
      }
      progress(0, opened.size);
      let loaded = 0;
      await pump(opened.stream, signal, (chunk) => {
        if (loaded + chunk.length > opened.size) {
          throw new Error(`${opened.name}: more data than the announced ${opened.size} bytes`);
        }
        this.#view().set(chunk, loaded); // a fresh view: memory may have grown meanwhile
        loaded += chunk.length;
        progress(loaded, opened.size);
      });
      if (loaded !== opened.size) {
        throw new Error(`${opened.name}: download ended after ${loaded} of ${opened.size} bytes`);
      }
    }
    this.#engine.load_checkpoint(opened.name);
    return this.config;
  }

  /**
   * Loads the tokenizer (`tokenizer.bin`) of the loaded checkpoint; the model is then ready.
   * @param {Source} source
   * @param {LoadOptions} [options]
   */
  async loadTokenizer(source, { name, onProgress, signal, cache } = {}) {
    this.#run++;
    const opened = await open(source, { name, signal, cache });
    const bytes = await readAll(opened, signal, (loaded, total) =>
      onProgress?.({ file: 'tokenizer', name: opened.name, loaded, total }),
    );
    this.#engine.load_tokenizer(bytes, opened.name);
    return this.config;
  }

  /** The checkpoint buffer as a byte view of wasm memory (valid until memory grows). */
  #view() {
    const ptr = this.#engine.checkpoint_ptr();
    return new Uint8Array(this.#module.exports.memory.buffer, ptr, this.#engine.checkpoint_len());
  }

  /** @returns {boolean} whether a checkpoint and its tokenizer are loaded */
  get ready() {
    return this.#engine.is_ready();
  }

  /** @returns {ModelConfig} facts about the loaded checkpoint (throws when none is loaded) */
  get config() {
    return this.#engine.config();
  }

  /** @returns {number} bytes of the wasm memory (all of it: weights, state, heap) */
  get wasmMemoryBytes() {
    return this.#module.exports.memory.buffer.byteLength;
  }

  /**
   * Generates text, one piece per token (the prompt's tokens come first, as run.c prints
   * them). Breaking out of the loop, `stop()` or the signal ends it between two tokens.
   * @param {string} [prompt=''] empty = unconditional story
   * @param {GenerateOptions} [options]
   * @returns {AsyncGenerator<string, void, void>}
   */
  async *generate(prompt = '', { temperature = 1, topp = 0.9, seed, steps = 256, signal } = {}) {
    const run = ++this.#run;
    this.#engine.start(prompt, temperature, topp, toSeed(seed), toSteps(steps));
    try {
      let slice = performance.now();
      for (;;) {
        if (run !== this.#run || signal?.aborted) this.#engine.stop();
        if (run !== this.#run) return; // a load or a newer generation took over
        const piece = this.#engine.generate_next();
        if (piece === undefined) return;
        yield piece;
        // Let a stop request through at least every 15 ms, without paying a task per token.
        if (performance.now() - slice > 15) {
          await yieldToEventLoop();
          slice = performance.now();
        }
      }
    } finally {
      if (run === this.#run) this.#engine.stop();
    }
  }

  /** Stops the running generation: its iterator ends after the current token. */
  stop() {
    this.#engine.stop();
  }

  /** @returns {number[]} token ids of the last generation (golden-file format) */
  get tokenIds() {
    return Array.from(this.#engine.token_ids());
  }

  /** @returns {string | undefined} why the last generation ended: bos, eos, steps or stopped */
  get stopReason() {
    return this.#engine.stop_reason();
  }

  /** Frees the engine and its model (the object is unusable after). */
  free() {
    this.#run++;
    this.#engine.free();
  }
}

/**
 * The u64 seed for the engine: 0 or missing becomes the time (as run.c), negatives wrap.
 * @param {number | bigint | string | undefined} seed
 * @returns {bigint}
 */
export function toSeed(seed) {
  let value;
  try {
    value = seed === undefined || seed === null || seed === '' ? 0n : BigInt(seed);
  } catch {
    throw new Error(`options: seed '${seed}' is not an integer (empty or 0 = the time)`);
  }
  return value === 0n ? BigInt(Date.now()) : BigInt.asUintN(64, value);
}

/**
 * The step count for the engine's u32: as run.c, below 1 (or not a number) means seq_len,
 * and the engine caps anything above seq_len; never wraps around 2^32.
 * @param {number} steps
 * @returns {number}
 */
function toSteps(steps) {
  const n = Math.floor(Number(steps));
  return n >= 1 ? Math.min(n, 0xffffffff) : 0;
}

/**
 * Token ids of `text` under a tokenizer (as the engine encodes prompts), without a model.
 * @param {Source} tokenizer a tokenizer.bin
 * @param {number} vocabSize its number of tokens (the checkpoint's vocab_size)
 * @param {string} text
 * @param {{ bos?: boolean, eos?: boolean, variant?: 'simd' | 'scalar', wasm?: BufferSource }} [options]
 * @returns {Promise<number[]>}
 */
export async function encode(tokenizer, vocabSize, text, { bos = true, eos = false, ...wasm } = {}) {
  const { glue } = await instantiate(wasm);
  const bytes = await readAll(await open(tokenizer), undefined, () => {});
  return Array.from(glue.encode(bytes, vocabSize, text, bos, eos));
}

/**
 * An empty engine; load a model into it with `loadCheckpoint` and `loadTokenizer`.
 * @param {object} [options] see `instantiate`: `variant`, `wasm`
 * @returns {Promise<Llama2>}
 */
export async function createEngine(options) {
  return new Llama2(await instantiate(options));
}

/**
 * A ready engine: loads a checkpoint and its tokenizer.
 * @param {object} options
 * @param {Source} options.model the checkpoint
 * @param {Source} options.tokenizer its tokenizer.bin
 * @param {string} [options.modelName]
 * @param {string} [options.tokenizerName]
 * @param {(p: Progress) => void} [options.onProgress]
 * @param {AbortSignal} [options.signal]
 * @param {LoadOptions['cache']} [options.cache] a `WeightCache` (cache.js) to read and store URLs
 * @param {'simd' | 'scalar'} [options.variant]
 * @param {BufferSource | WebAssembly.Module} [options.wasm]
 * @returns {Promise<Llama2>}
 */
export async function loadModel({ model, tokenizer, modelName, tokenizerName, onProgress, signal, cache, ...wasm }) {
  const llama = await createEngine(wasm);
  await llama.loadCheckpoint(model, { name: modelName, onProgress, signal, cache });
  await llama.loadTokenizer(tokenizer, { name: tokenizerName, onProgress, signal, cache });
  return llama;
}
