// cache-digest.js: the SHA-256 of cache parts, on a thread of its own where there can be one.
// In Chromium, WebCrypto's digest runs on the calling thread (measured: 50 digests of 4 MiB
// took 400 ms inside the call, 0 ms after), so hashing in the loading worker adds its whole
// time to the load; a second worker (cache-digest-worker.js) hashes while the load copies
// bytes into wasm memory, which costs nothing where a core is free. Where no worker can be
// started (Node, a cross-origin script) the digest is computed here; if the worker fails, the
// parts it held are digested here instead (or, for a download's part, reported as failed).

import { partDigest } from './cache-layout.js';
import { startModuleWorker } from '../engine/start-worker.js';

/** cache-digest-worker.js, for the fallback of `startModuleWorker` (see there why not in the URL form). */
const DIGEST_SCRIPT = './cache-digest-worker.js';
const HERE = import.meta.url;

let worker = null; // the digest worker, started on first use; false when there cannot be one
let nextId = 0;
const pending = new Map(); // id -> { resolve, fail }

function startWorker() {
  try {
    worker = startModuleWorker(
      () => new Worker(new URL('./cache-digest-worker.js', import.meta.url), { type: 'module', name: 'llama2-cache-digest' }),
      new URL(DIGEST_SCRIPT, HERE).href,
      { name: 'llama2-cache-digest' },
    );
  } catch {
    worker = false;
    return;
  }
  worker.onmessage = ({ data }) => {
    const job = pending.get(data.id);
    pending.delete(data.id);
    if (data.sha256) job.resolve(data);
    else job.fail();
  };
  worker.onerror = () => {
    // It died (or never loaded) with the buffers it held.
    worker.terminate();
    worker = false;
    for (const job of pending.values()) job.fail();
    pending.clear();
  };
}

/** Sends `buffer` (moved, not copied) to the worker: `{ sha256, buffer? }` (`buffer` back when `back`). */
function inWorker(buffer, back) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, fail: () => reject(new Error('the digest worker failed')) });
    worker.postMessage({ id, buffer, back }, [buffer]);
  });
}

const hasWorker = () => {
  if (worker === null && typeof Worker === 'function') startWorker();
  return Boolean(worker);
};

/**
 * The SHA-256 (hex) of a part being stored; `bytes` must own its buffer, which is moved away.
 * @param {Uint8Array} bytes
 */
export async function digestAndDrop(bytes) {
  if (!hasWorker()) return partDigest(bytes);
  return (await inWorker(bytes.buffer, false)).sha256;
}

/**
 * A cached part's bytes and their SHA-256 (hex).
 * @param {Blob} blob
 * @returns {Promise<{ bytes: Uint8Array, sha256: string }>}
 */
export async function readAndDigest(blob) {
  const here = async () => {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    return { bytes, sha256: await partDigest(bytes) };
  };
  if (!hasWorker()) return here();
  try {
    const { buffer, sha256 } = await inWorker(await blob.arrayBuffer(), true);
    return { bytes: new Uint8Array(buffer), sha256 };
  } catch {
    return here(); // the worker failed: read it again, digest it here
  }
}
