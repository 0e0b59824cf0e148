// shared-engine.js: what every <llama-story> of a page shares: one engine worker (the page's
// worker/worker.js), one request queue (a request waits for the one before), and one load per
// model (elements with the same model, tokenizer and workers follow the same load).

import { EngineClient } from '../worker/client.js';

/** One engine worker and one request queue for every element of the page. */
export const shared = {
  /** @type {EngineClient | null} */
  engine: null,
  /** `model\ntokenizer` of the model the worker holds */
  current: null,
  /** key -> { listeners: Set<progress handler>, promise } of the load queued or done */
  loads: new Map(),
  /** the queue: every request waits for the previous one */
  tail: Promise.resolve(),
  /** what was asked of the worker (read by tests and curious embedders) */
  stats: { workers: 0, loads: 0, generations: 0 },
  /** the element whose story the engine holds (an inspect view branches and looks into it) */
  story: null,
};

/** Forgets a dead worker and what it held; the next `engine()` starts a new one. */
export function forgetDeadEngine() {
  if (!shared.engine?.dead) return;
  shared.current = null;
  shared.loads.clear();
  shared.engine = null;
  shared.story = null;
}

/** The engine worker (worker.js next to this file), started on first use and after a death. */
export function engine() {
  forgetDeadEngine();
  if (!shared.engine) {
    shared.engine = new EngineClient();
    shared.stats.workers++;
  }
  return shared.engine;
}

/** Runs `task` after every task queued before it. */
export function exclusive(task) {
  const run = shared.tail.then(task, task);
  shared.tail = run.catch(() => {});
  return run;
}

/** Inside the queue: makes the worker hold `key`'s model (a no-op when it does). */
export async function holdModel(key, load) {
  const client = engine(); // first: a dead worker's model is gone with it
  if (shared.current === key) return load.config;
  shared.current = null;
  shared.story = null;
  const [model, tokenizer, workers] = key.split('\n');
  shared.stats.loads++;
  // A bad value goes to the engine as it is, which names it in its error.
  const count = /^\d+$/.test(workers) ? Number(workers) : workers;
  const reply = await client.load({ model, tokenizer, workers: count }, {
    onProgress: (p) => {
      for (const listener of load.listeners) listener(p);
    },
  }).done;
  shared.current = key;
  load.config = reply.config;
  return reply.config;
}

/** The record of `key`'s model: { listeners: Set<progress handler>, config, promise }. */
export function loadRecord(key) {
  let load = shared.loads.get(key);
  if (!load) {
    load = { listeners: new Set(), config: null, promise: null };
    shared.loads.set(key, load);
  }
  return load;
}

/** The shared load of a model: queued once per key, followed by every element that needs it. */
export function modelLoad(key, onProgress) {
  forgetDeadEngine();
  const load = loadRecord(key);
  if (!load.promise) {
    load.promise = exclusive(() => holdModel(key, load));
    load.promise.catch(() => shared.loads.delete(key)); // a failed load is tried again next time
  }
  load.listeners.add(onProgress);
  return load;
}
