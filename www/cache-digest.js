// cache-digest.js: reads a cached part and computes its digest, on a thread of its own where
// there can be one. In Chromium, WebCrypto's digest runs on the calling thread (measured: 50
// digests of 4 MiB took 400 ms inside the call, 0 ms after), so hashing in the loading worker
// adds its whole time to every cached load; a second worker (cache-digest-worker.js) hashes
// the next parts while the load copies this one into wasm memory, and that costs nothing where
// a core is free. Where no worker can be started (Node, a cross-origin script), or it fails,
// the digest is computed here.

import { partDigest } from './cache-layout.js';

let worker = null; // the digest worker, started on first use; false when there cannot be one
let nextId = 0;
const pending = new Map(); // id -> { resolve, fallback }

function startWorker() {
  try {
    worker = new Worker(new URL('./cache-digest-worker.js', import.meta.url), { type: 'module', name: 'llama2-cache-digest' });
  } catch {
    worker = false;
    return;
  }
  worker.onmessage = ({ data }) => {
    const job = pending.get(data.id);
    pending.delete(data.id);
    if (data.sha256) job.resolve({ bytes: new Uint8Array(data.buffer), sha256: data.sha256 });
    else job.fallback();
  };
  worker.onerror = () => {
    // It died (or never loaded) with the buffers it held: those parts are read again, here.
    worker.terminate();
    worker = false;
    for (const job of pending.values()) job.fallback();
    pending.clear();
  };
}

/** In this thread. */
async function here(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  return { bytes, sha256: await partDigest(bytes) };
}

/**
 * A part's bytes and their SHA-256 (hex).
 * @param {Blob} blob
 * @returns {Promise<{ bytes: Uint8Array, sha256: string }>}
 */
export async function readAndDigest(blob) {
  if (worker === null && typeof Worker === 'function') startWorker();
  if (!worker) return here(blob);
  const buffer = await blob.arrayBuffer();
  if (!worker) return here(blob); // it failed meanwhile
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, fallback: () => here(blob).then(resolve, reject) });
    worker.postMessage({ id, buffer }, [buffer]); // moved there and back: no copy
  });
}
