// client.js: the one client of the engine worker (worker.js, protocol.js), used by the page,
// the <llama-story> element and the tests. Each request is a promise of its final reply;
// errors are LlamaErrors with a `kind` (errors.js), so callers decide on Retry by kind.
//
//   const engine = new EngineClient();
//   const loaded = await engine.load({ model, tokenizer }, { onProgress });
//   const run = engine.generate({ prompt: 'Once upon a time' }, { onPiece: (text) => ... });
//   run.stop();                    // this generation only
//   const done = await run.done;   // { reason, tokens, ms, ttftMs, seed, ids }
//
// Looking inside (the inspect view): `tokens` is `generate` with a Token per forward pass,
// `branch` takes another token at a position of that story, `more` goes on with a story paused
// by `take`, `lens` and `vocab` answer with their data.

import { LlamaError } from '../engine/errors.js';
import { FINAL } from './protocol.js';
import { startModuleWorker } from '../engine/start-worker.js';
import { ShardWorkersForChild } from '../engine/shards.js';

/** worker.js, for the fallback of `startModuleWorker` (see there why not in the URL form). */
const WORKER_SCRIPT = './worker.js';
const HERE = import.meta.url;

/** The page's engine worker (worker.js next to this file). */
export function startWorker() {
  return startModuleWorker(
    () => new Worker(new URL('./worker.js', import.meta.url), { type: 'module' }),
    new URL(WORKER_SCRIPT, HERE).href,
  );
}

/**
 * A request in flight.
 * @typedef {{ id: number, done: Promise<any>, stop(): void }} Run
 */

export class EngineClient {
  #worker;
  #nextId = 1;
  /** id -> { type, resolve, reject, onEvent } */
  #pending = new Map();
  #listeners = { cache: new Set(), dead: new Set() };
  /** The shard workers of a model split over workers: started here, on the page's thread,
   * for the engine worker (protocol.js `start-shard`, and why). */
  #shards = new ShardWorkersForChild((message) => this.#control(message));
  /** Why the worker is gone (a LlamaError of kind `engine`), or null. */
  dead = null;

  /** @param {Worker} [worker] default: a new worker.js */
  constructor(worker = startWorker()) {
    this.#worker = worker;
    worker.onmessage = ({ data }) => {
      if (data?.type === 'cache') return this.#emit('cache', data);
      if (data?.type === 'alive') return this.#watchLock(data.lock);
      if (this.#shards.handle(data)) return;
      const request = this.#pending.get(data?.id);
      if (!request) return;
      if (data.type === 'error') {
        this.#pending.delete(data.id);
        request.reject(new LlamaError(data.kind ?? 'engine', data.message));
      } else if (data.type === FINAL[request.type]) {
        this.#pending.delete(data.id);
        request.resolve(data);
      } else {
        request.onEvent?.(data);
      }
    };
    // An uncaught error in the worker (a wasm trap such as running out of memory, see
    // worker.js) leaves the engine unusable: every request fails, and the worker is ended.
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.#die(`The engine stopped: ${event.message ?? 'worker error'}.`);
    };
  }

  /** Waits for the worker's life lock (worker.js): granted only once the worker is gone. */
  #watchLock(lock) {
    if (typeof lock !== 'string' || !globalThis.navigator?.locks) return;
    navigator.locks.request(lock, () => {
      this.#die('The engine stopped: its worker was closed or crashed.');
    }).catch(() => {});
  }

  #die(message) {
    if (this.dead) return;
    this.dead = new LlamaError('engine', message);
    this.#worker.terminate();
    this.#shards.terminateAll();
    for (const request of this.#pending.values()) request.reject(this.dead);
    this.#pending.clear();
    this.#emit('dead', this.dead);
  }

  #emit(kind, data) {
    for (const listener of this.#listeners[kind]) listener(data);
  }

  /**
   * Listens to `cache` notes ({ url, status, message }: cache.js) or to the worker's death
   * (`dead`: the LlamaError). Returns a function that stops listening.
   */
  on(kind, listener) {
    this.#listeners[kind].add(listener);
    return () => this.#listeners[kind].delete(listener);
  }

  /** Sends request `message` (protocol.js); `onEvent` gets its non-final replies. */
  #request(message, onEvent) {
    const id = this.#nextId++;
    const done = new Promise((resolve, reject) => {
      if (this.dead) return reject(this.dead);
      this.#pending.set(id, { type: message.type, resolve, reject, onEvent });
      this.#worker.postMessage({ ...message, id });
    });
    return { id, done, stop: () => this.#control({ type: 'stop', id }) };
  }

  #control(message) {
    if (!this.dead) this.#worker.postMessage(message);
  }

  /**
   * Loads a model (`{ model, tokenizer, modelName?, tokenizerName?, workers?, transport?,
   * context?, size?, sha256? }`). Resolves with `{ config, variant, wasmMemoryBytes }`.
   * @returns {Run}
   */
  load(options, { onProgress } = {}) {
    const run = this.#request({ ...options, type: 'load' }, (data) => data.type === 'progress' && onProgress?.(data));
    return { ...run, stop: () => this.#control({ type: 'cancel', id: run.id }) };
  }

  /** A story: `{ prompt, temperature?, topp?, seed?, steps? }`; `onPiece(text)` per token. */
  generate(options, { onPiece } = {}) {
    return this.#request({ ...options, type: 'generate' }, (data) => data.type === 'piece' && onPiece?.(data.text));
  }

  /** A chat turn: `{ message, system?, temperature?, ... }`; `onPiece(text)` per token. */
  chat(options, { onPiece } = {}) {
    return this.#request({ ...options, type: 'chat' }, (data) => data.type === 'piece' && onPiece?.(data.text));
  }

  /**
   * A story seen from inside: `{ prompt, temperature?, topp?, seed?, steps?, topK?,
   * attention?, take? }`; `onToken(token)` per forward pass (protocol.js `token`). With `take`,
   * the story pauses after that many new tokens (done.reason 'paused'); `more` goes on.
   */
  tokens(options, { onToken } = {}) {
    return this.#request({ ...options, type: 'tokens' }, (data) => data.type === 'token' && onToken?.(data.token));
  }

  /** The last story from position `pos` with `token` fed there (`{ pos, token, take? }`). */
  branch(options, { onToken } = {}) {
    return this.#request({ ...options, type: 'branch' }, (data) => data.type === 'token' && onToken?.(data.token));
  }

  /** The paused story goes on (`{ take? }`: that many new tokens, else to its end). */
  more(options = {}, { onToken } = {}) {
    return this.#request({ ...options, type: 'more' }, (data) => data.type === 'token' && onToken?.(data.token));
  }

  /** The logit lens at position `pos` of the last story: per layer, `[[id, prob], ...]` (top `k`). */
  async lens(pos, k) {
    return (await this.#request({ type: 'lens', pos, k }).done).layers;
  }

  /** Every vector of the pass at position `pos` of the last story (llama2.d.ts `Trace`). */
  async trace(pos) {
    return (await this.#request({ type: 'trace', pos }).done).trace;
  }

  /** The logit lens over the whole last story, summed up (llama2.d.ts `LensMap`); `pin`: a
   * token id whose probability to map. */
  async lensMap(pin) {
    return (await this.#request({ type: 'lens-map', pin }).done).map;
  }

  /** The loaded tokenizer's pieces, index = token id. */
  async vocab() {
    return (await this.#request({ type: 'vocab' }).done).pieces;
  }

  /** Ends the conversation: the next `chat` starts a new one. */
  newChat() {
    return this.#request({ type: 'new-chat' });
  }

  /** The engine's option defaults (from the Rust core): `{ temperature, topp, steps, topK, lensK }`. */
  async defaults() {
    return (await this.#request({ type: 'defaults' }).done).defaults;
  }

  /** Test hook: ends the worker of shard `shard` (a model split over workers) as a crash would. */
  killShard(shard) {
    this.#control({ type: 'kill-shard', shard });
  }

  /** Ends the worker (every request fails). */
  terminate() {
    this.#die('the engine was shut down');
  }
}
