// shards.js: a model split over workers, seen from its leader (the thread running llama2.js,
// which holds shard 0). See src/shard.rs for the split and transport.js for how the shards
// meet mid-pass.
//
// The leader has the other shards' workers started (shard-worker.js, each with the same compiled
// wasm module and its own memory, so the model may pass 4 GB): by its own thread, or, for an
// engine in a page's worker, by the page (`ShardWorkersByParent`). It sends each one only the byte
// ranges of the file it holds, sizes every KV cache alike, and during a generation forwards
// its commands and gathers through the link.

import { LlamaError, shardsLost } from './errors.js';
import { forRanges } from './source.js';
import { COMMAND, PortLink, SharedLink } from './transport.js';
import { importNode, startModuleWorker } from './start-worker.js';

/** shard-worker.js, for the fallbacks below (see `startModuleWorker` why not in the URL form). */
const SHARD_SCRIPT = './shard-worker.js';
const HERE = import.meta.url;

/** Whether this thread can use shared memory: SharedArrayBuffer exists (a crossOriginIsolated
 * page, or Node) and it may block in Atomics.wait (a worker, or Node; not a page's main thread). */
export function sharedMemoryWorks() {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  if (globalThis.crossOriginIsolated === false) return false;
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * How a shard's worker is started: a function returning a Worker, or anything with its face
 * (`postMessage(message, transfer)`, `onmessage`, `onerror`, `terminate()`) that runs
 * shard-worker.js. The default, `nestedWorker`, starts it from this thread. An engine that
 * runs in a worker of a page is better given one that asks the page (worker/worker.js does):
 * in Firefox, while a debugger watches the page's workers (devtools open, or WebDriver BiDi
 * driving it), starting a worker from inside a worker now and then never returns
 * (docs/browsers.md).
 * @typedef {() => Worker | Promise<Worker>} StartShardWorker
 */

/** A shard's worker started from this thread: a module Web Worker, or a Node worker thread
 * behind the same face. */
async function nestedWorker() {
  if (typeof Worker === 'function') return startShardWorker();
  const { Worker: NodeWorker } = await importNode('node:worker_threads');
  const worker = new NodeWorker(new URL(SHARD_SCRIPT, HERE));
  const face = {
    postMessage: (message, transfer) => worker.postMessage(message, transfer),
    terminate: () => worker.terminate(),
    onmessage: null,
    onerror: null,
  };
  worker.on('message', (data) => face.onmessage?.({ data }));
  worker.on('error', (err) => face.onerror?.({ message: String(err?.message ?? err), error: err }));
  return face;
}

/** shard-worker.js as a module Web Worker of this thread (a page's: worker/client.js calls it
 * for the engine worker it serves). */
export function startShardWorker() {
  return startModuleWorker(
    () => new Worker(new URL('./shard-worker.js', import.meta.url), { type: 'module' }),
    new URL(SHARD_SCRIPT, HERE).href,
  );
}

/**
 * In a worker running an engine: shard workers started by the thread that started this worker
 * (its page), not nested in this one (see `StartShardWorker` why). `start` is the
 * StartShardWorker to give `createEngine`; each asks with `{ type: 'start-shard', shard, port }`
 * (posted by `post`, the worker's own `postMessage`) and talks through `port`'s other end;
 * `terminate` posts `{ type: 'end-shard', shard }`. The parent reports a worker's failure with
 * `{ type: 'shard-error', shard, message }`: pass it to `failed`. (worker/protocol.js)
 */
export class ShardWorkersByParent {
  #faces = new Map();
  #next = 1;

  /** @param {(message: object, transfer?: Transferable[]) => void} post */
  constructor(post) {
    this.post = post;
  }

  /** @type {StartShardWorker} */
  start = () => {
    const { port1, port2 } = new MessageChannel();
    const shard = this.#next++;
    const face = {
      postMessage: (message, transfer) => port1.postMessage(message, transfer),
      terminate: () => {
        this.#faces.delete(shard);
        port1.close();
        this.post({ type: 'end-shard', shard });
      },
      onmessage: null,
      onerror: null,
    };
    port1.onmessage = (event) => face.onmessage?.(event);
    this.#faces.set(shard, face);
    this.post({ type: 'start-shard', shard, port: port2 }, [port2]);
    return face;
  };

  /** The parent's `shard-error`: shard `shard`'s worker failed. */
  failed({ shard, message }) {
    this.#faces.get(shard)?.onerror?.({ message });
  }
}

/**
 * The other side, in the thread that started an engine's worker: starts shard-worker.js for
 * its `start-shard` messages, ends them at `end-shard`, and tells it of their `error` events
 * through `report` (`{ type: 'shard-error', shard, message }`).
 */
export class ShardWorkersForChild {
  #workers = new Map();

  /** @param {(message: { type: 'shard-error', shard: number, message: string }) => void} report */
  constructor(report) {
    this.report = report;
  }

  /** Handles `data` if it is `start-shard` or `end-shard`: whether it was. */
  handle(data) {
    if (data?.type === 'start-shard') {
      const { shard, port } = data;
      const worker = startShardWorker();
      this.#workers.set(shard, worker);
      worker.onerror = (event) => {
        event.preventDefault?.();
        this.report({ type: 'shard-error', shard, message: event.message ?? 'an error' });
      };
      worker.postMessage({ type: 'connect', port }, [port]);
      return true;
    }
    if (data?.type === 'end-shard') {
      this.#workers.get(data.shard)?.terminate();
      this.#workers.delete(data.shard);
      return true;
    }
    return false;
  }

  /** Ends every shard worker (the engine's worker is gone). */
  terminateAll() {
    for (const worker of this.#workers.values()) worker.terminate();
    this.#workers.clear();
  }
}

/** How long a shard's worker may take to start (its `init` answered) before the load fails,
 * rather than waiting for ever (a worker script that never loads, a page that does not start
 * the worker it was asked for). */
const START_MS = 60_000;

/** Bytes of writes sent to a shard before waiting for it to catch up. */
const WRITE_WINDOW = 32 << 20;

/** One shard's worker, with its requests answered in order. */
class Remote {
  constructor(worker, index, onDead) {
    this.worker = worker;
    this.index = index;
    this.replies = [];
    this.dead = null;
    this.unsynced = 0;
    worker.onmessage = ({ data }) => {
      const reply = this.replies.shift();
      if (!reply) return;
      if (data.ok) reply.resolve(data);
      else reply.reject(new LlamaError(data.kind ?? 'engine', data.message));
    };
    worker.onerror = (event) => {
      event.preventDefault?.();
      this.fail(`worker ${index + 1} stopped: ${event.message ?? 'an error'}`);
      onDead(index);
    };
  }

  fail(message) {
    this.dead ??= shardsLost(message);
    for (const reply of this.replies.splice(0)) reply.reject(this.dead);
  }

  /** Sends a request and waits for its answer. */
  call(message, transfer) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.replies.push({ resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }

  /** Sends a request that is not answered. */
  post(message, transfer) {
    if (this.dead) throw this.dead;
    this.worker.postMessage(message, transfer);
  }
}

export class Shards {
  /**
   * Starts the workers of shards 1..count-1.
   * @param {number} count shards, the leader included
   * @param {WebAssembly.Module} module the engine's compiled module
   * @param {'shared' | 'messages'} transport
   * @param {{ prefillBatch: number, commandWords: number }} limits the engine's `limits()`
   * @param {StartShardWorker} [start] how each worker is started
   * @param {number} [startMs] how long they may take (START_MS; tests shorten it)
   */
  static async start(count, module, transport, limits, start = nestedWorker, startMs = START_MS) {
    const shards = new Shards(count, transport, limits);
    // A port between every two shards (messages); shard 0's are the leader's.
    const ports = Array.from({ length: count }, () => Array(count).fill(null));
    for (let i = 0; i < count; i++) {
      for (let j = i + 1; j < count; j++) {
        const channel = new MessageChannel();
        ports[i][j] = channel.port1;
        ports[j][i] = channel.port2;
      }
    }
    shards.ports = ports[0];
    const onDead = (index) => shards.link?.markDead(index);
    shards.remotes = await Promise.all(
      Array.from({ length: count - 1 }, async (_, i) => new Remote(await start(), i + 1, onDead)),
    );
    let timer;
    try {
      const late = new Promise((_, reject) => {
        timer = setTimeout(() => reject(shardsLost(`a worker did not start within ${startMs / 1000} s`)), startMs);
      });
      await Promise.race([late, Promise.all(shards.remotes.map((r) => {
        const mine = ports[r.index];
        return r.call({ type: 'init', module, ports: mine }, mine.filter(Boolean));
      }))]);
    } catch (err) {
      shards.terminate();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return shards;
  }

  constructor(count, transport, limits) {
    this.count = count;
    this.transport = transport;
    this.limits = limits;
    /** The stall limit inside a pass for the next model (undefined: transport.js's; tests
     * shorten it). */
    this.stallMs = undefined;
    /** Bumped by every model: the messages of an older model's link are told apart. */
    this.epoch = 0;
    this.remotes = [];
    this.ranges = [];
    this.link = null;
    this.session = 0;
    this.inSession = false;
    /** The shards lost each other mid-pass (see `broken`). */
    this.failed = false;
  }

  /** Every other shard: a new checkpoint (its header in `prefix`). Collects their ranges. */
  async begin(prefix, size, name) {
    this.endSession();
    this.link?.close?.(); // a pass the last model left waiting (messages) ends quietly
    this.link = null;
    const replies = await Promise.all(this.remotes.map((r) =>
      r.call({ type: 'begin', prefix, size, name, shard: r.index, count: this.count })));
    this.ranges = replies.map((reply) => reply.ranges);
  }

  /** Bytes of the file found at `at`: each shard gets the parts it holds. Waits, now and
   * then, for the slowest to catch up, so that chunks do not pile up in its queue. */
  async write(at, chunk) {
    for (const [i, remote] of this.remotes.entries()) {
      forRanges(this.ranges[i], at, chunk, (from, bytes) => {
        const copy = bytes.slice(); // its own buffer, to transfer
        remote.post({ type: 'write', at: from, bytes: copy }, [copy.buffer]);
        remote.unsynced += copy.length;
      });
    }
    const behind = this.remotes.filter((r) => r.unsynced > WRITE_WINDOW);
    await Promise.all(behind.map(async (r) => {
      r.unsynced = 0;
      await r.call({ type: 'sync' });
    }));
  }

  /** Every other shard: the checkpoint is complete. */
  async end() {
    await Promise.all(this.remotes.map((r) => r.call({ type: 'end' })));
  }

  /** The most positions every other shard can hold (up to `want`). */
  async fit(want) {
    const replies = await Promise.all(this.remotes.map((r) => r.call({ type: 'fit', want })));
    return Math.min(...replies.map((reply) => reply.context));
  }

  /**
   * Every shard sizes its KV cache to `context`, and the link for the passes is set up.
   * @param {{ dim: number, hidden_dim: number, vocab_size: number }} config
   * @returns {Promise<number>} bytes of the other shards' wasm memories
   */
  async setContext(context, config) {
    let shared = null;
    // The largest part: a prefill batch of activations, or the leader's logits.
    const maxPart = this.limits.prefillBatch * Math.max(config.dim, config.hidden_dim) + config.vocab_size;
    const sizes = { maxPart, commandWords: this.limits.commandWords, stallMs: this.stallMs };
    const epoch = ++this.epoch;
    if (this.transport === 'shared') {
      shared = SharedLink.buffer(this.count, sizes);
      this.link = new SharedLink(shared, 0, this.count, sizes);
    } else {
      this.link = new PortLink(this.ports, 0, { epoch, stallMs: this.stallMs });
    }
    const replies = await Promise.all(this.remotes.map((r) =>
      r.call({ type: 'context', context, shared, sizes, epoch, shard: r.index, count: this.count })));
    for (const r of this.remotes) if (r.dead) this.link.markDead(r.index);
    return replies.reduce((sum, reply) => sum + reply.wasmMemoryBytes, 0);
  }

  /** Every other shard switches off what `list` says (the leader's `ablate`) from its next
   * pass on. Outside a session: the shards answer messages only between sessions. */
  async ablate(list) {
    this.endSession();
    await Promise.all(this.remotes.map((r) => r.call({ type: 'ablate', list })));
  }

  /** A generation begins: with shared memory, the other shards wait for commands (until
   * `endSession`; a session already open serves on). */
  beginSession() {
    if (this.transport !== 'shared' || !this.link || this.inSession) return;
    this.session++;
    this.inSession = true;
    const seq = this.link.commandSeq();
    for (const r of this.remotes) r.post({ type: 'session', id: this.session, seq });
  }

  /** The generation ended: the other shards go back to their messages. */
  endSession() {
    if (!this.inSession) return;
    this.inSession = false;
    this.link.endSession(this.session);
  }

  /**
   * What the leader's engine waits for (`pending`): its command to the other shards, or a
   * gather. Returns a promise when the exchange is not done yet (messages).
   */
  exchange(engine, memory, pending) {
    if (!this.link) throw new LlamaError('state', 'the shards are not loaded');
    const failed = (err) => {
      this.failed = true;
      throw err;
    };
    try {
      if (pending === COMMAND) {
        const command = engine.command();
        return this.link.sendCommand(command);
      }
      return this.link.gather(engine, memory, pending)?.catch(failed);
    } catch (err) {
      return failed(err);
    }
  }

  /** Whether a worker died or the shards lost each other: a new model needs new workers. */
  get broken() {
    return this.failed || this.remotes.some((r) => r.dead);
  }

  /** Ends every other shard's worker. */
  terminate() {
    for (const r of this.remotes) {
      r.fail('the model was unloaded');
      r.worker.terminate();
    }
    this.link?.markDead?.(0);
    this.remotes = [];
  }

  /** Test hook: ends worker `index` as a crash would (the page's "one shard terminated"). */
  kill(index) {
    const remote = this.remotes.find((r) => r.index === index);
    if (!remote) throw new RangeError(`no shard ${index}`);
    remote.worker.terminate();
    remote.fail(`worker ${index + 1} was terminated`);
    this.link?.markDead(index);
  }
}
