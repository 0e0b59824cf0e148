// shard-worker.js: one shard of a model split over workers (see shards.js), other than the
// leader. It holds its rows of every matrix in its own wasm memory and runs the forward
// passes the leader commands, meeting the other shards through a link (transport.js).
//
// Its messages with the leader (shards.js): worker/protocol.js, "The shard worker's protocol"
// (written beside the page's protocol; `SHARD_REQUESTS` there are this file's handlers). The
// leader's thread may have started this worker itself, or asked its page to (worker/client.js):
// then the page's first message hands over the port to the leader, `{ type: 'connect', port }`,
// and everything after goes through that port.
// With ports, commands come on the leader's port. A wasm trap marks this shard dead (so the
// others stop waiting) and is rethrown: the leader's `error` handler sees it.

import { instantiate } from './wasm.js';
import { COMMAND, PortLink, SharedLink } from './transport.js';
import { errorKind } from './errors.js';
import { importNode } from './start-worker.js';

/** This thread's messaging: a worker's global scope, or Node's parentPort (set below). */
let host = globalThis;

let wasm = null; // { glue, memory }
let engine = null;
let ports = null;
/** The link of the current model: SharedLink or PortLink. */
let link = null;

/** Runs the pass of `command`, exchanging with the other shards wherever the engine waits
 * (with the engine and link of the pass's own model, should another replace them meanwhile). */
async function serve(command) {
  const [mine, over] = [engine, link];
  let done = mine.serve(command);
  while (!done) {
    const pending = mine.pending();
    if (pending === COMMAND) throw new Error('a shard cannot command');
    const wait = over.gather(mine, wasm.memory, pending);
    if (wait) await wait;
    done = mine.poll();
  }
}

/** Something broke mid-pass (a wasm trap): tell the others, so that no one waits for this
 * shard, and rethrow it (the leader's `error` handler sees it). */
function die(err) {
  link?.announceDead();
  if (err instanceof WebAssembly.RuntimeError) throw err;
  host.postMessage({ ok: false, message: String(err?.message ?? err), kind: errorKind(err) });
}

/** Commands over ports run one after another. */
let passes = Promise.resolve();

const handlers = {
  async init({ module, ports: given }) {
    wasm = await instantiate({ wasm: module });
    ports = given;
    try {
      wasm.glue.warm_up(0); // as the leader's first engine does (src/wasm/exports.rs `warm_up`)
    } catch (err) {
      console.warn(`llama2 shard: warm-up failed (${err}); the first prompt will be slower`);
    }
    return {};
  },
  begin({ prefix, size, name, shard, count }) {
    link?.close?.(); // a pass the last model left waiting ends quietly (see `passes`)
    link = null;
    engine?.free();
    engine = new wasm.glue.Engine();
    engine.begin_checkpoint(prefix, size, name, shard, count);
    return { ranges: engine.checkpoint_ranges() };
  },
  write({ at, bytes }) {
    engine.write_checkpoint(at, bytes);
  },
  sync() {
    return {};
  },
  end() {
    engine.end_checkpoint();
    return {};
  },
  fit({ want }) {
    return { context: engine.fit_context(want) };
  },
  context({ context, shared, sizes, epoch, shard, count }) {
    engine.set_context(context);
    if (shared) {
      link = new SharedLink(shared, shard, count, sizes);
    } else {
      const mine = new PortLink(ports, shard, { epoch, stallMs: sizes.stallMs });
      link = mine;
      // A pass of a link that another model replaced ends without a word: its leader moved on.
      mine.onCommand = (command) => {
        passes = passes.then(() => serve(command)).catch((err) => (link === mine ? die(err) : undefined));
      };
    }
    return { memoryBytes: engine.memory_bytes(), wasmMemoryBytes: wasm.memory.buffer.byteLength };
  },
  ablate({ list }) {
    engine.set_ablation(list);
    return {};
  },
  async session({ id, seq }) {
    // Blocks this worker until the leader ends the session (its messages wait meanwhile).
    if (link instanceof SharedLink) await link.runSession(id, seq, serve);
  },
};

/** Handles one request; requests run strictly one after another. */
async function handle(data) {
  const handler = Object.hasOwn(handlers, data?.type ?? '') ? handlers[data.type] : undefined;
  try {
    if (!handler) throw new Error(`shard worker: unknown request '${data?.type}'`);
    const reply = await handler(data);
    if (reply) host.postMessage({ ok: true, ...reply });
  } catch (err) {
    die(err);
  }
}

let requests = Promise.resolve();
const onmessage = (event) => {
  const data = event.data ?? event; // Node's parentPort may pass the data itself
  if (data?.type === 'connect' && data.port instanceof MessagePort) {
    // Started by the page for a leader in another worker: the leader is at the port's end.
    host = data.port;
    host.onmessage = onmessage;
    return;
  }
  requests = requests.then(() => handle(data));
};
// No top-level await: bundlers may build this worker as a classic script (Vite's default
// worker format, iife, has none). Node's parentPort keeps the messages that arrive before it
// is listened to.
if (typeof WorkerGlobalScope !== 'undefined') {
  host.onmessage = onmessage;
} else {
  importNode('node:worker_threads').then(({ parentPort }) => {
    host = parentPort;
    host.onmessage = onmessage;
  });
}
