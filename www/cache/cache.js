// cache.js: the weight cache. Checkpoints and tokenizers fetched from a URL are kept in the
// Cache API, so the next load reads them from disk, and the page works offline.
//
//   import { WeightCache } from './cache.js';
//   const cache = new WeightCache({ onNote: (note) => console.log(note.status, note.message) });
//   await llama.loadCheckpoint(url, { cache });   // llama2.js calls cache.open(url, ...)
//
// Why the Cache API (not OPFS): it exists in pages, workers and service workers of every
// current browser; `cache.match()` hands back a body that flows into wasm memory like a
// download; and `cache.put()` is atomic: a part is stored whole or not at all.
//
// The cache may serve only the server's current file, checked:
// - a cached file is revalidated once per page load (a conditional request: 304, or the new
//   file, which replaces it); offline, it is used as it is, and the note says so. An entry
//   whose sha256 is the one asked for needs no request: those bytes are the ones wanted;
// - a cut download resumes only with If-Range (the server's validator), else it starts over;
// - a given sha256 is checked over the bytes as they flow: hashed whole as a file downloads,
//   and on a cached load each part against the digest stored with it when the file was
//   verified; a mismatch deletes the entry and fails the load;
// - a malformed entry (cache-entry.js) is deleted and downloaded again, with a note.
// The parts: cache-layout.js (keys, records), cache-entry.js (reading an entry),
// cache-fetch.js (requests), cache-stream.js (the one stream), cache-writer.js (storing).

import { cachedUrls, deleteEntry, readEntry } from './cache-entry.js';
import { conditionalHeaders, drop, get, isRest, resumeHeaders, sameFile, validatorsOf } from './cache-fetch.js';
import { CACHE_NAME, isSha256, keyOf, OLD_CACHE_NAMES, partCount, recordResponse, SEGMENT_BYTES } from './cache-layout.js';
import { fileStream } from './cache-stream.js';
import { PartWriter } from './cache-writer.js';
import { httpError, LlamaError } from '../engine/errors.js';
import { announcedSize, baseName } from '../engine/source.js';

export { SEGMENT_BYTES };

/**
 * What happened to one file, for the page to show.
 * @typedef {{ url: string, status: 'hit' | 'stored' | 'resumed' | 'partial' | 'memory' | 'uncached' | 'changed' | 'discarded', message: string }} CacheNote
 */

/**
 * One cached file, as listed.
 * @typedef {{ url: string, size: number, bytes: number, complete: boolean, stored: number, sha256?: string }} CachedFile
 */

/** Whether a cached record is the file the caller expects (a record with no sha256 is hashed as it is read). */
const fits = (record, { size, sha256 }) =>
  (size === undefined || record.size === size) && (!sha256 || !record.sha256 || record.sha256 === sha256);

/** A cache of checkpoints and tokenizers by URL, in the Cache API. */
export class WeightCache {
  #cachePromise = null;
  #onNote;
  #segmentBytes;
  #storage;
  /** URLs whose cached copy is known current in this page load: not revalidated again. */
  #current = new Set();

  /**
   * @param {object} [options]
   * @param {(note: CacheNote) => void} [options.onNote] told where each file came from (cache,
   *   checked or not; download, stored, resumed) and what went wrong (quota, a damaged entry)
   * @param {number} [options.segmentBytes] part size (default 4 MiB)
   * @param {CacheStorage} [options.storage] default: `globalThis.caches` (tests pass a fake)
   */
  constructor({ onNote, segmentBytes = SEGMENT_BYTES, storage = globalThis.caches } = {}) {
    this.#onNote = onNote ?? (() => {});
    this.#segmentBytes = segmentBytes;
    this.#storage = storage;
  }

  /** The Cache, or null where there is none (insecure origin, storage disabled). */
  async #cache() {
    this.#cachePromise ??= Promise.resolve()
      .then(async () => {
        if (!this.#storage) return null;
        for (const name of OLD_CACHE_NAMES) this.#storage.delete(name).catch(() => {});
        return await this.#storage.open(CACHE_NAME);
      })
      .catch(() => null);
    return this.#cachePromise;
  }

  /**
   * Opens `url` as `{ name, size, stream }` for llama2.js: from the cache when a sound entry
   * exists and the server (asked at most once per page load) has not changed the file, else
   * downloaded (resumed when it safely can) and stored as it streams. The stream ends only
   * after its bytes were checked and the entry committed, so the next load finds it.
   * @param {string} url
   * @param {{ name?: string, signal?: AbortSignal, size?: number, sha256?: string }} [options]
   *   `size`/`sha256`: what the file must be (a preset's); a download that differs is refused
   */
  async open(url, { name, signal, size, sha256 } = {}) {
    if (sha256 !== undefined && !isSha256(sha256?.toLowerCase?.())) {
      throw new TypeError(`sha256 must be 64 hex digits, not ${JSON.stringify(sha256)}`);
    }
    if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
      throw new TypeError(`size must be a whole number of bytes, not ${JSON.stringify(size)}`);
    }
    url = new URL(url, globalThis.location?.href).href;
    name ??= baseName(url);
    const expect = { size, sha256: sha256?.toLowerCase() };
    const note = (status, message) => this.#onNote({ url, status, message });
    const cache = await this.#cache();
    if (!cache) note('uncached', `${name}: no Cache API here (an insecure origin?): kept in memory only`);
    const entry = cache ? await readEntry(cache, url) : {};
    if (entry.problem) note('discarded', `${name}: the cached copy was damaged (${entry.problem}): deleted, downloading it again`);
    const context = { cache, url, name, signal, expect, note };

    // A complete entry: used unless the server says the file changed (then that answer is the new file).
    let response;
    if (entry.complete && fits(entry.complete.record, expect)) {
      const checked = await this.#revalidate(entry.complete.record, context);
      if (!checked.response) {
        note('hit', `${name}: ${checked.message}`);
        return this.#fromCache(entry.complete, context);
      }
      note('changed', `${name}: changed on the server: downloading the new version`);
      response = checked.response;
    } else {
      // A partial entry resumes after its whole parts (at most all but the last: a Range past
      // the end would be refused), if the server confirms it is the same file.
      const partial = entry.partial && fits(entry.partial.record, expect) ? entry.partial : null;
      const kept = partial ? partial.parts.slice(0, partCount(partial.record) - 1) : [];
      const from = partial ? kept.length * partial.record.segmentBytes : 0;
      const headers = from > 0 ? resumeHeaders(partial.record, from) : null;
      response = await get(url, signal, headers ?? {});
      if (headers && isRest(response, partial.record, from)) return this.#resume(partial.record, kept, response, context);
      if (response.status === 206) {
        drop(response); // not the range asked for: start over
        response = await get(url, signal);
      }
    }
    if (response.status !== 200) {
      drop(response);
      throw httpError(url, response);
    }
    return this.#download(response, context);
  }

  /**
   * Asks the server whether `record` is still its file: `{ message }` to use the cache, or
   * `{ response }`, the server's new file.
   */
  async #revalidate(record, { url, signal, expect }) {
    if (this.#current.has(url)) return { message: 'read from the browser cache' };
    if (expect.sha256 && record.sha256 === expect.sha256) {
      return { message: 'read from the browser cache (its sha256 is the one asked for)' };
    }
    if (globalThis.navigator?.onLine === false) {
      return { message: 'read from the browser cache, offline: not checked with the server' };
    }
    let response;
    try {
      response = await get(url, signal, conditionalHeaders(record));
    } catch (err) {
      if (signal?.aborted) throw err;
      return { message: 'read from the browser cache; the server could not be reached to check it (offline?)' };
    }
    if (response.status === 304 || (response.status === 200 && sameFile(record, response))) {
      drop(response);
      this.#current.add(url);
      return { message: 'read from the browser cache (unchanged on the server)' };
    }
    if (response.status === 200) return { response };
    drop(response);
    return { message: `read from the browser cache; not checked: the server answered HTTP ${response.status}` };
  }

  /**
   * A complete entry's bytes. With a sha256 asked for: if it is the record's (verified when it
   * was stored), each part is checked against its digest in the record; if the record has
   * none, the whole file is hashed once (slow: cache-sha256.js) and the record then carries it
   * and the parts' digests.
   * Without one, the bytes are not hashed: records and part lengths are checked, and the
   * browser's disk cache has its own checksums.
   */
  #fromCache({ record, parts }, { cache, url, name, signal, expect }) {
    const hash = expect.sha256 && record.sha256 !== expect.sha256 ? expect.sha256 : undefined;
    const stream = fileStream({
      url, name, size: record.size, parts, digestParts: Boolean(expect.sha256), signal, sha256: hash,
      discard: () => deleteEntry(cache, url),
      commit: async (sha256, digests) => {
        if (hash) await cache.put(keyOf(url, 'complete'), recordResponse({ ...record, sha256, parts: digests }));
      },
    });
    return { name, size: record.size, stream };
  }

  /** A 206 with the rest of a partial entry: its kept parts, then the network's bytes, stored. */
  #resume(record, parts, response, { cache, url, name, signal, expect, note }) {
    this.#current.add(url);
    note('resumed', `${name}: resumed the download at ${(parts.length * record.segmentBytes / 1e6).toFixed(1)} MB`);
    const writer = new PartWriter(cache, record, parts.length, { name, note, digestParts: Boolean(expect.sha256) });
    const stream = fileStream({
      url, name, size: record.size, parts, digestParts: Boolean(expect.sha256), body: response.body, writer, signal, sha256: expect.sha256,
      discard: () => deleteEntry(cache, url), commit: (sha256, kept) => writer.finish(sha256, kept),
    });
    return { name, size: record.size, stream };
  }

  /** A 200: the whole file, checked against what is expected, replacing the entry as it streams. */
  async #download(response, { cache, url, name, signal, expect, note }) {
    this.#current.add(url);
    const size = announcedSize(response);
    if (expect.size !== undefined && size !== null && size !== expect.size) {
      drop(response);
      throw new LlamaError('format', `${url}: the server announces ${size} bytes, ${expect.size} were expected`);
    }
    let writer = null;
    if (cache && size === null) note('uncached', `${name}: the server gave no size, so it is not cached`);
    if (cache && size !== null && size > 0) {
      await deleteEntry(cache, url);
      const record = {
        url, size, segmentBytes: this.#segmentBytes, id: crypto.randomUUID(), stored: Date.now(), ...validatorsOf(response),
      };
      writer = new PartWriter(cache, record, 0, { name, note, digestParts: Boolean(expect.sha256) });
      await writer.begin();
    }
    const stream = fileStream({
      url, name, size: size ?? expect.size, body: response.body, writer, signal, sha256: expect.sha256,
      discard: () => (cache ? deleteEntry(cache, url) : Promise.resolve()), commit: (sha256) => writer?.finish(sha256),
    });
    return { name, size, stream };
  }

  /**
   * Cached files (complete, and partial downloads), newest first. Never throws: a malformed
   * entry is deleted (and told to `onNote`), not listed.
   * @returns {Promise<CachedFile[]>}
   */
  async list() {
    const files = [];
    try {
      const cache = await this.#cache();
      for (const url of cache ? await cachedUrls(cache) : []) {
        const entry = await readEntry(cache, url).catch((err) => ({ problem: String(err?.message ?? err) }));
        if (entry.problem) {
          await deleteEntry(cache, url).catch(() => {});
          this.#onNote({ url, status: 'discarded', message: `${baseName(url)}: the cached copy was damaged (${entry.problem}): deleted` });
        }
        const found = entry.complete ?? entry.partial;
        if (!found) continue;
        const { size, stored, sha256 } = found.record;
        const bytes = entry.complete ? size : found.parts.reduce((sum, part) => sum + part.blob.size, 0);
        files.push({ url, size, bytes, complete: Boolean(entry.complete), stored, ...(sha256 && { sha256 }) });
      }
    } catch {
      // the storage went away meanwhile: what was found so far
    }
    return files.sort((a, b) => b.stored - a.stored);
  }

  /** Deletes every cached entry (complete or partial) of `url`. */
  async delete(url) {
    const cache = await this.#cache();
    if (cache) await deleteEntry(cache, new URL(url, globalThis.location?.href).href);
  }

  /** Deletes the whole weight cache. */
  async clear() {
    this.#cachePromise = null;
    this.#current.clear();
    await this.#storage?.delete(CACHE_NAME);
  }
}
