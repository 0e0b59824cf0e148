// worker.js: the engine off the page's thread (a module worker). Its message protocol is in
// protocol.js: requests run strictly in order; `stop` and `cancel` act at once.

import { createEngine, defaults } from '../engine/llama2.js';
import { WeightCache } from '../cache/cache.js';
import { errorKind, LlamaError } from '../engine/errors.js';
import { CONTROLS, FINAL, KEEPS_STORY, REQUESTS } from './protocol.js';
import { ShardWorkersByParent } from '../engine/shards.js';

/** The shard workers of a model split over workers are started by the page (client.js), not
 * nested in this worker: in Firefox, while a debugger watches the page's workers (devtools,
 * WebDriver BiDi), `new Worker` inside a worker now and then never returns (docs/browsers.md). */
const shardWorkers = new ShardWorkersByParent((message, transfer) => postMessage(message, transfer));

const llama = createEngine({ startShardWorker: shardWorkers.start });

// The page learns that this worker ended (closed, terminated, killed with its tab's memory)
// without polling: the worker holds a Web Lock until it is gone, and client.js asks for the
// same lock, which it gets only then. (Where Web Locks are missing, only errors are seen.)
if (globalThis.navigator?.locks) {
  const lock = `llama2-engine-${globalThis.crypto?.randomUUID?.() ?? `${Date.now()}-${Math.random()}`}`;
  navigator.locks.request(lock, () => {
    postMessage({ type: 'alive', lock });
    return new Promise(() => {}); // held for the worker's life
  });
}
/** URLs are read from and stored to the browser's weight cache (cache.js). */
const cache = new WeightCache({ onNote: (note) => postMessage({ type: 'cache', ...note }) });
/** The story a `tokens` or `branch` request with `take` paused: { iterator }. */
let paused = null;

/** The requests waiting, and the one running: `{ id, type, abort?: AbortController }`. */
const queue = [];
let running = null;

/** At most one progress message per 50 ms (a big file comes in thousands of chunks), and the last. */
function progressOf(id) {
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (now - last < 50 && p.loaded < p.total) return;
    last = now;
    postMessage({ type: 'progress', id, ...p });
  };
}

const run = {
  async load(data, engine, signal) {
    const onProgress = progressOf(data.id);
    const { workers, transport, context, size, sha256 } = data;
    const through = data.cache === false ? undefined : cache;
    await engine.loadCheckpoint(data.model, { name: data.modelName, onProgress, signal, cache: through, workers, transport, context, size, sha256 });
    await engine.loadTokenizer(data.tokenizer, { name: data.tokenizerName, onProgress, signal, cache: through });
    postMessage({ type: 'loaded', id: data.id, config: engine.config, variant: engine.variant, wasmMemoryBytes: engine.wasmMemoryBytes });
  },
  // A request's fields but its own (type, id, the text, take) are the engine's options, passed
  // through as they are: the engine reads and checks them (src/wasm/args.rs `read_options`), so a new
  // option needs nothing here.
  generate(data, engine) {
    const { type, id, prompt, ...options } = data;
    return stream(id, engine, () => engine.generate(prompt, options));
  },
  chat(data, engine) {
    const { type, id, message, ...options } = data;
    return stream(id, engine, () => engine.chat(message, options));
  },
  async defaults(data) {
    postMessage({ type: 'defaults', id: data.id, defaults: await defaults() });
  },
  async tokens(data, engine) {
    const { type, id, prompt, take, ...options } = data;
    checkTake(take);
    const iterator = engine.tokens(prompt, options);
    return inspected(id, engine, { iterator }, take);
  },
  branch(data, engine) {
    const { pos, token, take } = data;
    checkTake(take); // pos and token: the engine checks them
    return inspected(data.id, engine, { iterator: engine.branch(pos, token) }, take);
  },
  more(data, engine) {
    if (!paused) throw new LlamaError('state', 'more: no story is paused (a tokens or branch request with take pauses one)');
    checkTake(data.take);
    const story = paused;
    paused = null;
    return inspected(data.id, engine, story, data.take);
  },
  async lens(data, engine) {
    // pos and k: the engine checks them (one place, one kind: a TypeError of kind `type`).
    postMessage({ type: 'lens', id: data.id, layers: await engine.lens(data.pos, data.k) });
  },
  async 'lens-map'(data, engine) {
    // pin: the engine checks it. The vectors are moved, not copied.
    const map = await engine.lensMap(data.pin);
    postMessage({ type: 'lens-map', id: data.id, map }, [map.entropy.buffer, map.kl.buffer, map.pinned.buffer]);
  },
  async trace(data, engine) {
    // pos: the engine checks it. The vectors are moved, not copied.
    const trace = await engine.trace(data.pos);
    const buffers = [trace.embedding, trace.final_norm, trace.logits, ...trace.layers.flatMap((l) => Object.values(l))].map((v) => v.buffer);
    postMessage({ type: 'trace', id: data.id, trace }, buffers);
  },
  vocab(data, engine) {
    postMessage({ type: 'vocab', id: data.id, pieces: engine.vocab });
  },
  'new-chat'(data, engine) {
    engine.newChat();
    postMessage({ type: 'done', id: data.id, reason: 'stopped', tokens: 0, ms: 0, ttftMs: null, seed: null, ids: [] });
  },
};

/** Streams a generation's pieces, then its `done`. */
async function stream(id, engine, start) {
  const t0 = performance.now();
  let tokens = 0;
  let ttftMs = null;
  for await (const text of start()) {
    ttftMs ??= performance.now() - t0;
    tokens++;
    postMessage({ type: 'piece', id, text });
  }
  const ms = performance.now() - t0;
  postMessage({ type: 'done', id, reason: engine.stopReason, tokens, ms, ttftMs, seed: engine.seed, ids: engine.tokenIds, used: engine.optionsUsed });
}

/** Checks `take`, the worker's own argument (the engine checks its own): undefined (no pause)
 * or a whole number of at least 1. */
function checkTake(take) {
  if (take === undefined || (Number.isInteger(take) && take >= 1 && take < 2 ** 32)) return;
  throw new LlamaError('options', `options: take must be a whole number from 1, not ${JSON.stringify(take)}`);
}

/**
 * Streams an inspected story's tokens (the attention weights moved, not copied), then its
 * `done`; with `take`, pauses it after that many new tokens (reason 'paused', see `more`).
 * The iterator is driven by hand: a `for await` would end the story on leaving it.
 */
async function inspected(id, engine, story, take) {
  const t0 = performance.now();
  let tokens = 0;
  let fresh = 0;
  let ttftMs = null;
  for (;;) {
    // (A story the engine has ended already is not paused: it is done.)
    if (take !== undefined && fresh >= take && engine.stopReason === undefined) {
      paused = story;
      break;
    }
    const { value: token, done } = await story.iterator.next();
    if (done) break;
    ttftMs ??= performance.now() - t0;
    if (token.pos !== undefined) tokens++;
    if (token.prompt === false) fresh++;
    postMessage({ type: 'token', id, token }, token.attention ? [token.attention.weights.buffer] : []);
  }
  const ms = performance.now() - t0;
  const reason = paused === story ? 'paused' : engine.stopReason;
  postMessage({ type: 'done', id, reason, tokens, ms, ttftMs, seed: engine.seed, ids: engine.tokenIds, used: engine.optionsUsed });
}

/** Runs the queue, one request after another. */
async function drain() {
  if (running) return;
  while (queue.length) {
    running = queue.shift();
    const { data, abort } = running;
    try {
      if (paused && !KEEPS_STORY.includes(data.type)) {
        // The paused story ends here: another request takes the engine.
        const { iterator } = paused;
        paused = null;
        await iterator.return();
      }
      await run[data.type](data, await llama, abort.signal);
    } catch (err) {
      if (err instanceof WebAssembly.RuntimeError) {
        setTimeout(() => {
          throw err;
        });
        return;
      }
      const kind = errorKind(err);
      postMessage({ type: 'error', id: data.id, message: kind === 'cancelled' ? 'cancelled' : String(err?.message ?? err), kind });
    } finally {
      running = null;
    }
  }
}

/** The reply to a request dropped before it ran: a story's `done`, else a cancellation. */
function dropped(data) {
  if (FINAL[data.type] !== 'done') postMessage({ type: 'error', id: data.id, message: 'cancelled', kind: 'cancelled' });
  else postMessage({ type: 'done', id: data.id, reason: 'stopped', tokens: 0, ms: 0, ttftMs: null, seed: null, ids: [] });
}

const controls = {
  async stop({ id }) {
    const queued = id === undefined ? -1 : queue.findIndex((r) => r.data.id === id);
    if (queued >= 0) return dropped(queue.splice(queued, 1)[0].data);
    if (running?.data.id === id || id === undefined) (await llama).stop();
  },
  cancel({ id }) {
    if (running?.data.id === id || id === undefined) running?.abort.abort();
    const queued = id === undefined ? -1 : queue.findIndex((r) => r.data.id === id);
    if (queued >= 0) dropped(queue.splice(queued, 1)[0].data);
  },
  async 'kill-shard'({ shard }) {
    (await llama)._killShard(shard);
  },
  /** The page: the worker it started for `start-shard` `shard` failed (its `error` event). */
  'shard-error'(data) {
    shardWorkers.failed(data);
  },
};

onmessage = async ({ data }) => {
  try {
    if (typeof data?.type !== 'string') throw new TypeError('a message is an object with a string `type`');
    if (CONTROLS.includes(data.type)) return await controls[data.type](data);
    if (!REQUESTS.includes(data.type)) throw new TypeError(`unknown request '${data.type}'`);
    if (!Number.isInteger(data.id)) throw new TypeError(`a '${data.type}' request needs a whole-number id`);
    if (data.type === 'load') {
      // A new model: whatever runs now is over.
      running?.abort.abort();
      (await llama).stop();
    }
    queue.push({ data, abort: new AbortController() });
    drain();
  } catch (err) {
    postMessage({ type: 'error', id: data?.id, message: String(err?.message ?? err), kind: errorKind(err) });
  }
};
