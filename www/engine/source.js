// source.js: a checkpoint or tokenizer as a stream of bytes, whatever it came as: a URL
// (fetched, or through the weight cache), a File/Blob (`blob.stream()`), or bytes.

import { httpError, LlamaError, networkError } from './errors.js';

/**
 * A checkpoint or tokenizer source.
 * @typedef {string | URL | Blob | ArrayBuffer | Uint8Array} Source
 */

/**
 * An opened source: its name (for messages), its size (null when a server does not say) and
 * its bytes.
 * @typedef {{ name: string, size: number | null, stream: ReadableStream<Uint8Array> }} Opened
 */

/** The last path segment of a URL, for names. */
export function baseName(url) {
  try {
    const path = new URL(url, globalThis.location?.href ?? 'file:///').pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || String(url);
  } catch {
    return String(url);
  }
}

/** The file size a response announces, or null (a compressed body's length is not it). */
export function announcedSize(response) {
  const length = response.headers.get('content-length');
  return length !== null && !response.headers.get('content-encoding') ? Number(length) : null;
}

/**
 * Opens `source`. URLs go through `cache.open` when a cache (cache.js) is given.
 * @param {Source} source
 * @param {{ name?: string, signal?: AbortSignal, cache?: { open(url: string, o: object): Promise<Opened> }, size?: number, sha256?: string }} [options]
 * @returns {Promise<Opened>}
 */
export async function open(source, { name, signal, cache, size, sha256 } = {}) {
  if (name !== undefined && typeof name !== 'string') {
    throw new TypeError(`name must be a string, not ${typeof name}`);
  }
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
    return { name: name ?? 'bytes', size: bytes.length, stream: new Blob([bytes]).stream() };
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) {
    return { name: name ?? source.name ?? 'blob', size: source.size, stream: source.stream() };
  }
  if (typeof source !== 'string' && !(source instanceof URL)) {
    throw new TypeError(`a source is a URL, a File/Blob or bytes, not ${source === null ? 'null' : typeof source}`);
  }
  const url = String(source);
  if (cache) return cache.open(url, { name, signal, size, sha256 });
  let response;
  try {
    response = await fetch(url, { signal });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw networkError(url, err);
  }
  if (!response.ok) throw httpError(url, response);
  return { name: name ?? baseName(url), size: announcedSize(response), stream: response.body };
}

/**
 * Reads a stream to its end, calling `onChunk(bytes)` for each chunk (awaited when it
 * returns a promise); a signal cancels it.
 */
export async function pump(stream, signal, onChunk) {
  const reader = stream.getReader();
  const onAbort = () => reader.cancel(signal.reason).catch(() => {});
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) break;
      const wait = onChunk(value);
      if (wait) await wait;
    }
    signal?.throwIfAborted();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}

/** Reads a whole (small) opened source into one Uint8Array; `progress(loaded, total)`. */
export async function readAll(opened, signal, progress = () => {}) {
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

/**
 * Calls `write(at, bytes)` for the parts of `chunk` (found at byte `at` of the file) that fall
 * in `ranges` (`[start, end, start, end, ...]`, sorted): how a shard gets only its bytes.
 */
export function forRanges(ranges, at, chunk, write) {
  const end = at + chunk.length;
  for (let i = 0; i < ranges.length; i += 2) {
    const from = Math.max(ranges[i], at);
    const to = Math.min(ranges[i + 1], end);
    if (from < to) write(from, chunk.subarray(from - at, to - at));
    if (ranges[i] >= end) break;
  }
}

/** A load that ended before its announced size. */
export function shortRead(name, loaded, size) {
  return new LlamaError('network', `${name}: download ended after ${loaded} of ${size} bytes`);
}
