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
// The checkpoint streams straight into wasm memory: one copy of the weights. With `workers`,
// the model is split over that many workers (shards.js), so it can use every core and pass
// the 4 GB of one wasm memory; the token ids are the same for any number of workers.
//
// Options and their defaults are the engine's (src/generate.rs, run.c's): `defaults()`.

import { errorKind, LlamaError, remedy } from './errors.js';
import { BYTES_PER_WORKER, splitIsSlow } from './placement.js';
import { Shards, sharedMemoryWorks } from './shards.js';

export { ShardWorkersByParent, ShardWorkersForChild } from './shards.js';
import { forRanges, open, pump, readAll, shortRead } from './source.js';
import { instantiate, wasmVariant } from './wasm.js';

export { errorKind, LlamaError, remedy, splitIsSlow, wasmVariant };

/** The most workers a model may be split over: checked before the engine is instantiated, so
 * a copy of src/shard.rs MAX_SHARDS (the engine's `limits().maxWorkers`); a test checks that
 * the two agree. */
export const MAX_WORKERS = 64;

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

/** `workers`: 'auto' or a whole number of workers. */
function checkWorkers(workers) {
  if (workers === undefined || workers === 'auto') return 'auto';
  if (Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS) return workers;
  throw new LlamaError('options', `options: workers must be 'auto' or a whole number from 1 to ${MAX_WORKERS}, not ${JSON.stringify(workers)}`);
}

/** `transport`: how the workers meet ('auto': shared memory where it works, else messages). */
function checkTransport(transport) {
  if (transport === undefined || transport === 'auto') return sharedMemoryWorks() ? 'shared' : 'messages';
  if (transport === 'messages') return transport;
  if (transport === 'shared') {
    if (!sharedMemoryWorks()) {
      throw new LlamaError('options', "options: transport 'shared' needs SharedArrayBuffer and Atomics.wait: a crossOriginIsolated page's worker (COOP/COEP headers), or Node");
    }
    return transport;
  }
  throw new LlamaError('options', `options: transport must be 'auto', 'shared' or 'messages', not ${JSON.stringify(transport)}`);
}

/** `context`: positions of the KV cache (undefined or 0: as many as fit, up to seq_len). */
function checkContext(context) {
  if (context === undefined || context === 0) return 0;
  if (Number.isInteger(context) && context > 0) return context;
  throw new LlamaError('options', `options: context must be a whole number of positions (at most the model's seq_len), not ${JSON.stringify(context)}`);
}

/** An inspection's attention weights with their shape, or undefined. */
function attentionOf(seen) {
  if (!seen.attention) return undefined;
  return { layers: seen.layers, heads: seen.heads, positions: seen.pos + 1, weights: seen.attention };
}

/** The cores of this machine, as far as this thread can tell. */
function cores() {
  return globalThis.navigator?.hardwareConcurrency ?? 1;
}


/** A model in wasm memory that writes stories. Create it with `createEngine` or `loadModel`. */
export class Llama2 {
  #wasm;
  #engine;
  /** Bumped by every load and generation: an older generation sees it and ends quietly. */
  #run = 0;
  /** The other shards' workers, when the model is split. */
  #shards = null;
  #options;
  /** How the loaded model is run: { workers, transport, shardsMemoryBytes }. */
  #placement = { workers: 1, transport: 'none', shardsMemoryBytes: 0 };
  /** Whether a chat (chat()) is under way and may take another turn. */
  #chatting = false;
  /** What the generation asked to switch off (`ablate`), and what the other shards hold (as
   * JSON): they are given the list before the first pass that differs. */
  #ablate = [];
  #shardsAblate = '[]';
  /** The engine's limits (`limits()` in src/wasm/exports.rs). */
  #limits;
  /** The stall limit inside a pass for the next loads (undefined: transport.js's). */
  #stallMs;
  /** A pass out among the shards (messages), settled once it ended: a request that needs
   * the engine waits for it (the other shards are in it too). */
  #passing = null;
  #freed = false;

  /** @param {object} wasm from `instantiate`; @param {object} options of `createEngine` */
  constructor(wasm, options) {
    this.#wasm = wasm;
    this.#options = options;
    this.#engine = new wasm.glue.Engine();
    this.#limits = wasm.glue.limits();
    // Once per module: run the hot code on a tiny model so that the engine's optimizing tier
    // has compiled it before the first real prompt (see `warm_up` in src/wasm/exports.rs).
    if (!wasm.warm) {
      wasm.warm = true;
      try {
        wasm.glue.warm_up(0);
      } catch (err) {
        console.warn(`llama2: warm-up failed (${err}); the first prompt will be slower`);
      }
    }
  }

  /** @returns {'simd' | 'scalar' | 'relaxed'} the wasm build in use */
  get variant() {
    return this.#wasm.variant;
  }

  /** Ends the running generation quietly (a load or a newer generation takes over). */
  #takeOver() {
    const run = ++this.#run;
    this.#engine.stop();
    this.#shards?.endSession();
    this.#chatting = false;
    return run;
  }

  /** How many workers for a checkpoint of `size` bytes. */
  #workersFor(size, requested, transport) {
    const needed = this.#wasm.glue.min_workers(size);
    if (requested !== 'auto') return requested;
    if (transport !== 'shared') return needed;
    const useful = Math.floor(size / BYTES_PER_WORKER);
    return Math.max(needed, Math.min(useful, cores(), MAX_WORKERS), 1);
  }

  /**
   * Loads a checkpoint (`.bin`, v0/v1/v2), freeing the previous model first. The bytes stream
   * straight into wasm memory (an unknown size, with no Content-Length, is buffered first).
   * Follow with `loadTokenizer`.
   * @param {import('./source.js').Source} source
   * @param {object} [options] see llama2.d.ts `LoadOptions`
   */
  async loadCheckpoint(source, { name, onProgress, signal, cache, size, sha256, workers, transport, context } = {}) {
    const run = this.#takeOver();
    this.#shardsAblate = '[]'; // new shard engines switch nothing off
    workers = checkWorkers(workers ?? this.#options.workers);
    const chosen = (transport ?? this.#options.transport ?? 'auto') === 'auto';
    transport = checkTransport(transport ?? this.#options.transport);
    context = checkContext(context ?? this.#options.context);
    const opened = await open(source, { name, signal, cache, size, sha256 });
    try {
      return await this.#fillCheckpoint(run, opened, { onProgress, signal, workers, transport, chosen, context });
    } catch (err) {
      // A failed load ends its download too (an open one holds a connection to the host).
      opened.stream.cancel(err).catch(() => {});
      throw err;
    }
  }

  /** The body of `loadCheckpoint`, once the source is open. */
  async #fillCheckpoint(run, opened, { onProgress, signal, workers, transport, chosen, context }) {
    const progress = (loaded, total) => onProgress?.({ file: 'model', name: opened.name, loaded, total });
    if (opened.size === null) {
      const bytes = await readAll(opened, signal, progress);
      opened = { name: opened.name, size: bytes.length, stream: new Blob([bytes]).stream() };
    }
    const count = this.#workersFor(opened.size, workers, transport);
    // More workers than cores meet faster by messages: over shared memory every meeting is a
    // barrier all of them must reach, and on too few cores they queue for them (measured:
    // docs/parallel.md). Only when the transport is ours to choose and the cores are known.
    const known = globalThis.navigator?.hardwareConcurrency;
    if (chosen && transport === 'shared' && known && count > known) transport = 'messages';
    this.#wasm.glue.check_checkpoint_size(opened.size, opened.name, count); // before the download
    progress(0, opened.size);

    // The header first: every shard plans its part from it.
    const chunks = [];
    let loaded = 0;
    const reader = opened.stream.getReader();
    const headerBytes = Math.min(this.#limits.headerBytes, opened.size);
    const onAbort = () => reader.cancel(signal.reason).catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (loaded < headerBytes) {
        signal?.throwIfAborted();
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      reader.releaseLock();
    }
    const head = new Uint8Array(loaded);
    chunks.reduce((at, chunk) => (head.set(chunk, at), at + chunk.length), 0);
    const prefix = head.subarray(0, headerBytes);
    // A wrong file or a context past its seq_len fails now: before the download, and with the
    // model already loaded kept.
    this.#wasm.glue.check_header(prefix, opened.size, opened.name, context);

    await this.#placeShards(count, transport);
    this.#engine.begin_checkpoint(prefix, opened.size, opened.name, 0, count);
    await this.#shards?.begin(prefix, opened.size, opened.name);
    const ranges = this.#engine.checkpoint_ranges();
    let at = 0;
    const write = async (chunk) => {
      if (run !== this.#run) throw new LlamaError('cancelled', 'cancelled: another load began');
      if (at + chunk.length > opened.size) {
        throw new LlamaError('format', `${opened.name}: more data than the announced ${opened.size} bytes`);
      }
      forRanges(ranges, at, chunk, (from, bytes) => this.#engine.write_checkpoint(from, bytes));
      await this.#shards?.write(at, chunk);
      at += chunk.length;
      progress(at, opened.size);
    };
    await write(head);
    await pump(opened.stream, signal, write);
    if (at !== opened.size) throw shortRead(opened.name, at, opened.size);
    this.#engine.end_checkpoint();
    await this.#shards?.end();

    // The KV cache: the context asked for, or as much of seq_len as every shard can hold.
    const seqLen = this.#engine.config().seq_len;
    const want = Math.min(context || seqLen, seqLen);
    let fits = this.#engine.fit_context(want);
    if (this.#shards) fits = Math.min(fits, await this.#shards.fit(want));
    if (fits === 0 || (context && fits < context)) {
      const asked = context ? `a context of ${context} positions` : 'even one position of context';
      throw new LlamaError('memory', `out of memory: checkpoint '${opened.name}': the KV cache for ${asked} does not fit (${fits} would); load it over more workers or with a smaller context`);
    }
    this.#engine.set_context(fits);
    const shardsMemoryBytes = await this.#shards?.setContext(fits, this.#engine.config()) ?? 0;
    this.#placement = { workers: count, transport: count > 1 ? transport : 'none', shardsMemoryBytes };
    return this.config;
  }

  /** Starts (or reuses) the workers of `count` shards. */
  async #placeShards(count, transport) {
    const shards = this.#shards;
    if (shards && (shards.count !== count || shards.transport !== transport || shards.broken)) {
      this.#shards.terminate();
      this.#shards = null;
    }
    if (count > 1 && !this.#shards) {
      // (The test hook's stall limit stands for the start limit too: a shard silent that long.)
      this.#shards = await Shards.start(count, this.#wasm.module, transport, this.#limits, this.#options.startShardWorker, this.#stallMs);
    }
    if (this.#shards) this.#shards.stallMs = this.#stallMs; // new or reused: the limit asked now
  }

  /**
   * Loads the tokenizer (`tokenizer.bin`) of the loaded checkpoint; the model is then ready.
   * @param {import('./source.js').Source} source
   * @param {object} [options] `name`, `onProgress`, `signal`, `cache`
   */
  async loadTokenizer(source, { name, onProgress, signal, cache } = {}) {
    this.#takeOver();
    const opened = await open(source, { name, signal, cache });
    const bytes = await readAll(opened, signal, (loaded, total) =>
      onProgress?.({ file: 'tokenizer', name: opened.name, loaded, total }),
    ).catch((err) => {
      opened.stream.cancel(err).catch(() => {});
      throw err;
    });
    this.#engine.load_tokenizer(bytes, opened.name);
    return this.config;
  }

  /** @returns {boolean} whether a checkpoint and its tokenizer are loaded */
  get ready() {
    return this.#engine.is_ready();
  }

  /**
   * Facts about the loaded checkpoint (throws when none is loaded), with how it runs:
   * `workers` and `transport` ('shared', 'messages' or 'none' for one worker).
   */
  get config() {
    return { ...this.#engine.config(), workers: this.#placement.workers, transport: this.#placement.transport };
  }

  /** @returns {string[]} each token id's piece, as tokenizer.bin has it (`' upon'`, `'<0x0A>'`) */
  get vocab() {
    return this.#engine.vocab();
  }

  /** @returns {number} bytes of wasm memory: this thread's, plus the other shards' workers' */
  get wasmMemoryBytes() {
    return this.#wasm.memory.buffer.byteLength + this.#placement.shardsMemoryBytes;
  }

  /**
   * Runs `step` (the engine's `generate_next` or a lens's poll) until it no longer waits for
   * the shards: its result, or a promise of it while an exchange is under way (messages). A
   * pass, once begun, is driven to its end whoever owns the engine by then: the other shards
   * are in it too (left there, they would wait for ever), and a newer request waits for it.
   */
  #drive(step) {
    for (;;) {
      const result = step();
      const pending = this.#engine.pending();
      if (pending === 0) return result;
      const wait = this.#shards.exchange(this.#engine, this.#wasm.memory, pending);
      if (wait) {
        const pass = wait.then(() => this.#drive(step));
        const settled = pass.then(() => {}, () => {}).finally(() => {
          if (this.#passing === settled) this.#passing = null;
        });
        this.#passing = settled;
        return pass;
      }
    }
  }

  /**
   * Starts a run: `begin()` starts the engine (and checks the arguments, so a bad one throws
   * here), then the run's steps. After an older run's pass still out among the shards, both
   * wait for it to end. `begin` may return whether the run is inspected.
   */
  #begin(run, begin, signal) {
    if (!this.#passing) return this.#steps(run, signal, begin() ?? {});
    const [passing, self] = [this.#passing, this];
    return (async function* afterThePass() {
      await passing;
      if (run !== self.#run) return;
      yield* self.#steps(run, signal, begin() ?? {});
    })();
  }

  /**
   * Runs the engine's steps of a generation (or a chat turn) already started: yields one
   * text piece per token, or with `inspecting` one `Token` per forward pass (see `tokens`);
   * `first`: text that comes before them (a branch's fed token).
   * Only the newest run drives the engine: an older one ends quietly.
   */
  async *#steps(run, signal, { inspecting = false, first = '' }) {
    const engine = this.#engine;
    if (this.#shards && JSON.stringify(this.#ablate) !== this.#shardsAblate) {
      // Every shard computes the same model: the others get the leader's list first.
      await this.#shards.ablate(this.#ablate);
      this.#shardsAblate = JSON.stringify(this.#ablate);
      if (run !== this.#run) return;
    }
    this.#shards?.beginSession();
    let seenPos = -1;
    const seen = (text) => {
      const s = engine.inspection();
      if (!s || s.pos === seenPos) return null;
      seenPos = s.pos;
      // The engine's record (src/inspect.rs `Inspection`) under its own names, with the text.
      const { layers, heads, attention, ...record } = s;
      return { text, ...record, attention: attentionOf(s) };
    };
    const next = () => engine.generate_next();
    try {
      if (first) yield inspecting ? { text: first } : first;
      let slice = performance.now();
      for (;;) {
        if (run !== this.#run) return; // a load or a newer generation took over
        if (signal?.aborted) engine.stop();
        let piece = this.#drive(next);
        if (piece instanceof Promise) piece = await piece;
        if (run !== this.#run) return; // (its pass is over: the newer run goes on from here)
        if (piece === undefined) {
          const last = inspecting && seen(''); // the pass that ended the story
          if (last) yield last;
          return;
        }
        yield inspecting ? seen(piece) ?? { text: piece } : piece;
        // Let a stop request through at least every 15 ms, without paying a task per token.
        if (performance.now() - slice > 15) {
          await yieldToEventLoop();
          slice = performance.now();
        }
      }
    } catch (err) {
      if (run === this.#run) throw err; // an older run's end is nobody's error
    } finally {
      if (run === this.#run) {
        engine.stop();
        this.#shards?.endSession();
      }
    }
  }

  /**
   * Generates text, one piece per token (the prompt's tokens come first, as run.c prints
   * them). Breaking out of the loop, `stop()` or the signal ends it between two tokens.
   * @param {string} [prompt=''] empty = unconditional story
   * @param {object} [options] `temperature`, `topp`, `seed`, `steps` (defaults: `defaults()`), `signal`
   * @returns {AsyncGenerator<string, void, void>}
   */
  generate(prompt = '', options = undefined) {
    const run = this.#takeOver();
    return this.#begin(run, () => {
      this.#engine.inspect_off();
      this.#engine.start(prompt, options); // checks the prompt and options (TypeError, ...)
      this.#ablate = options?.ablate ?? [];
    }, options?.signal);
  }

  /**
   * `generate`, seen from inside: one `Token` per forward pass, `{ text, id, prompt, pos, token,
   * top, prob, rank, attention }`: the text of the token `id` that came next (sampled, or the
   * prompt's: `prompt` true), the `topK` most probable next tokens under the model's own distribution
   * (softmax of the logits at temperature 1) as `[id, probability]` most probable first, the
   * probability and rank of `id` there, and with `attention: true` the attention weights the
   * pass used (`{ layers, heads, positions, weights }`, weights `(layer, head, position)`).
   * The prompt's positions come one by one (each with its numbers); the ids are the same as
   * `generate`'s.
   * @param {string} [prompt='']
   * @param {object} [options] `topK` (`defaults()`: 10; the engine checks it), `attention`
   *   (false), and `generate`'s options
   */
  tokens(prompt = '', { topK, attention = false, ...options } = {}) {
    const run = this.#takeOver();
    return this.#begin(run, () => {
      this.#engine.inspect(topK, Boolean(attention));
      this.#engine.start(prompt, options);
      this.#ablate = options.ablate ?? [];
      return { inspecting: true };
    }, options.signal);
  }

  /**
   * Takes another branch of the last story: from position `pos` (already run) with token `id`
   * fed there, the story goes on as `tokens` (or `generate` when the story was not inspected)
   * did. The KV cache below `pos` is kept: no pass over the prefix. Sampling starts again from
   * the story's seed, so the ids are those of a story started from its ids before `pos` + `id`.
   * The text of `id` comes first (`{ text }` without `pos` when inspecting), as the engine
   * decodes it in the story.
   * @returns {AsyncGenerator<import('./llama2.d.ts').Token | string, void, void>}
   */
  branch(pos, id, { signal } = {}) {
    const run = this.#takeOver();
    return this.#begin(run, () => {
      const inspecting = this.#engine.inspection() !== undefined;
      return { inspecting, first: this.#engine.branch(pos, id) };
    }, signal);
  }

  /**
   * The logit lens at position `pos` (already run): per layer, the `k` most probable tokens of
   * the classifier applied to the residual stream after that layer, `[[id, probability], ...]`;
   * `k` undefined: `defaults().lensK` (5).
   * @returns {Promise<Array<Array<[number, number]>>>}
   */
  lens(pos, k) {
    return this.#look((engine) => engine.lens_start(pos, k), (engine) => engine.lens());
  }

  /** A look into the story the engine holds (a lens, a trace, a lens map), which stays where
   * it is: `start(engine)` starts it, `poll_look()` drives it through the shards' meetings,
   * `result(engine)` reads it. Between two steps of a story, its session serves this too. */
  async #look(start, result) {
    while (this.#passing) await this.#passing;
    const engine = this.#engine;
    this.#shards?.beginSession();
    let started = false;
    const step = () => (started ? engine.poll_look() : ((started = true), start(engine)));
    for (let done = this.#drive(step); !(await done); done = this.#drive(step));
    return result(engine);
  }

  /**
   * The logit lens over the whole last story, summed up (llama2.d.ts `LensMap`): per layer and
   * position, the entropy of the lens's distribution and its KL divergence to the final one, in
   * bits, and with `pin` (a token id) that token's probability. The story stays where it is.
   * @param {number} [pin]
   */
  lensMap(pin) {
    return this.#look((engine) => engine.lens_map_start(pin), (engine) => engine.lens_map());
  }

  /**
   * Every intermediate vector of the pass at position `pos` (already run) of the last story,
   * which stays where it is (see llama2.d.ts `Trace`; the CLI's `--trace` names): the
   * embedding, per layer the norms, q, k, v (after RoPE), the attention weights, the heads'
   * output, `wo`'s, the SwiGLU gate, `w2`'s and the residual stream after each block, the
   * final norm and the logits. Over any number of workers, the same numbers.
   * @returns {Promise<import('./llama2.d.ts').Trace>}
   */
  trace(pos) {
    return this.#look((engine) => engine.trace_start(pos), (engine) => engine.trace());
  }

  /**
   * One turn of a chat in Llama 2's template (run.c's `-m chat`): the assistant's reply to
   * `message`, piece by piece, until its end-of-turn. The next call continues the same
   * conversation (the KV cache holds it) until `newChat()`, a `generate` or a load; the first
   * turn takes `options.system`. A conversation that fills the context ends with reason
   * `context`, and the next turn then fails (kind `prompt`): start a new chat.
   * @param {string} message the user's turn
   * @param {object} [options] `system` (first turn), `temperature`, `topp`, `seed`, `steps`, `signal`
   * @returns {AsyncGenerator<string, void, void>}
   */
  chat(message, options = undefined) {
    const ended = this.#chatting && ['context', 'steps'].includes(this.stopReason);
    if (ended) {
      // Not a silent new chat (without the system prompt of its first turn): the caller says.
      const limit = this.stopReason === 'context' ? `the model's context (${this.config.context} positions)` : 'its steps';
      throw new LlamaError('prompt', `chat: the conversation filled ${limit}: start a new one (newChat())`);
    }
    const continuing = this.#chatting && this.stopReason === 'eos';
    const run = this.#takeOver();
    return this.#begin(run, () => {
      this.#engine.inspect_off();
      if (continuing) this.#engine.chat_turn(message);
      else {
        this.#engine.start_chat(options?.system, message, options);
        this.#ablate = options?.ablate ?? [];
      }
      this.#chatting = true;
    }, options?.signal);
  }

  /** Ends the conversation: the next `chat` starts a new one. */
  newChat() {
    this.#takeOver();
  }

  /** Stops the running generation: its iterator ends after the current token. */
  stop() {
    this.#engine.stop();
  }

  /** @returns {number[]} token ids of the last generation (golden-file format) */
  get tokenIds() {
    return Array.from(this.#engine.token_ids());
  }

  /** @returns {'bos' | 'eos' | 'steps' | 'context' | 'stopped' | undefined} why the last generation ended */
  get stopReason() {
    return this.#engine.stop_reason();
  }

  /** @returns {string | undefined} the seed of the last generation (the time when none was given) */
  get seed() {
    return this.#engine.seed();
  }

  /**
   * The last generation's options as the engine applied them (run.c's rules: a negative
   * temperature is 0, a top-p outside [0, 1] is 0.9, steps 0 or past seq_len are seq_len, seed
   * 0 is the time): what a page should show as used.
   * @returns {import('./llama2.d.ts').UsedOptions | undefined}
   */
  get optionsUsed() {
    return this.#engine.options_used();
  }

  /** Test hook: ends the worker of shard `index` as a crash would. */
  _killShard(index) {
    if (!this.#shards) throw new RangeError('the model runs in one worker');
    this.#shards.kill(index);
  }

  /** Test hook: the stall limit inside a pass (transport.js STALL_MS), and the limit on a
   * shard worker's start (shards.js START_MS), from the next load on, so that a test can pause
   * past it without waiting minutes. */
  _setStallLimit(ms) {
    this.#stallMs = ms;
  }

  /** Frees the engine, its model and its workers; the object is unusable after (a second
   * `free()` does nothing). */
  free() {
    if (this.#freed) return;
    this.#freed = true;
    this.#takeOver();
    this.#shards?.terminate();
    this.#shards = null;
    this.#engine.free();
    this.#engine = new Proxy({}, {
      get: () => () => {
        throw new LlamaError('state', 'this engine was freed: create a new one');
      },
    });
  }
}

/**
 * The options' defaults, from the engine: run.c's `{ temperature, topp, steps }`, and the
 * inspection's `topK` (a pass's top tokens, `tokens()`) and `lensK` (per layer, `lens()`).
 * @param {object} [options] `variant`, `wasm` (see `createEngine`)
 */
export async function defaults(options) {
  return (await instantiate(options)).glue.defaults();
}

/**
 * Token ids of `text` under a tokenizer (as the engine encodes prompts), without a model.
 * @param {import('./source.js').Source} tokenizer a tokenizer.bin
 * @param {number} vocabSize its number of tokens (the checkpoint's vocab_size)
 * @param {string} text
 * @param {{ bos?: boolean, eos?: boolean, variant?: string, wasm?: BufferSource }} [options]
 * @returns {Promise<number[]>}
 */
export async function encode(tokenizer, vocabSize, text, { bos = true, eos = false, ...wasm } = {}) {
  const { glue } = await instantiate(wasm);
  const bytes = await readAll(await open(tokenizer));
  return Array.from(glue.encode(bytes, vocabSize, text, bos, eos));
}

/**
 * An empty engine; load a model into it with `loadCheckpoint` and `loadTokenizer`.
 * @param {object} [options] `variant`, `wasm` (the module: bytes, a WebAssembly.Module or a URL),
 *   the defaults of every load: `workers`, `transport`, `context`; and `startShardWorker`, how
 *   the worker of each other shard is started (shards.js `StartShardWorker`; default: from this
 *   thread)
 * @returns {Promise<Llama2>}
 */
export async function createEngine({ variant, wasm, workers, transport, context, startShardWorker } = {}) {
  if (startShardWorker !== undefined && typeof startShardWorker !== 'function') {
    throw new TypeError(`startShardWorker must be a function, not ${typeof startShardWorker}`);
  }
  const options = { workers: checkWorkers(workers), transport, context: checkContext(context), startShardWorker };
  if (transport !== undefined) checkTransport(transport);
  return new Llama2(await instantiate({ variant, wasm }), options);
}

/**
 * A ready engine: loads a checkpoint and its tokenizer.
 * @param {object} options see llama2.d.ts
 * @returns {Promise<Llama2>}
 */
export async function loadModel({
  model, tokenizer, modelName, tokenizerName, onProgress, signal, cache, size, sha256,
  variant, wasm, workers, transport, context, startShardWorker,
}) {
  const llama = await createEngine({ variant, wasm, workers, transport, context, startShardWorker });
  await llama.loadCheckpoint(model, { name: modelName, onProgress, signal, cache, size, sha256 });
  await llama.loadTokenizer(tokenizer, { name: tokenizerName, onProgress, signal, cache });
  return llama;
}
