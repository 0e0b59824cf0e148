// cache.js: the weight cache. Checkpoints and tokenizers fetched from a URL are kept in the
// Cache API, so the next load reads them from disk with no network request.
//
//   import { WeightCache } from './cache.js';
//   const cache = new WeightCache({ onNote: (note) => console.log(note.status, note.message) });
//   await llama.loadCheckpoint(url, { cache });   // llama2.js calls cache.open(url, ...)
//
// Why the Cache API (not OPFS): it exists in pages, workers and service workers of every
// current browser; `cache.match()` hands back a Response whose body is a stream, so cached
// bytes flow into wasm memory chunk by chunk exactly like a download; and `cache.put()` is
// atomic: an entry whose body stream fails is never stored.
//
// Layout of one cached file (cache `llama2-weights-v1`, keys are synthetic same-origin URLs):
//   KEY/meta          JSON { url, size, sha256, etag, lastModified, segmentBytes }: a download began
//   KEY/part-K        bytes [K * segmentBytes, (K + 1) * segmentBytes) of the file
//   KEY/complete      the same JSON, put only after every part was stored: the entry is trusted
// KEY = <origin>/__llama2-weights__/<encoded URL>/<size>[/<sha256>]: keyed by URL and size (and
// the sha256 when the caller gives one). A failed or cancelled download leaves parts and meta
// but no `complete`: never trusted, and the next load resumes after the last whole part with a
// `Range` request (when the server answers 206 for the same file), else starts over.

const CACHE_NAME = 'llama2-weights-v1';
const PREFIX = '__llama2-weights__';
/** Parts of 4 MiB: a cut download loses at most that much; 110 parts for stories110M. */
export const SEGMENT_BYTES = 4 << 20;

/**
 * What happened to one file, for the page to show.
 * @typedef {{ url: string, status: 'hit' | 'stored' | 'resumed' | 'partial' | 'memory' | 'uncached', message: string }} CacheNote
 */

/**
 * One cached file, as listed.
 * @typedef {{ url: string, size: number, complete: boolean, stored: number, sha256?: string }} CachedFile
 */

const isQuotaError = (err) => err?.name === 'QuotaExceededError' || err?.code === 22;

/** The last path segment of a URL, for names. */
function baseName(url) {
  const path = new URL(url).pathname;
  return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
}

/** A cache of checkpoints and tokenizers by URL and size, in the Cache API. */
export class WeightCache {
  #cachePromise = null;
  #onNote;
  #segmentBytes;
  #storage;

  /**
   * @param {object} [options]
   * @param {(note: CacheNote) => void} [options.onNote] told whether each file came from the
   *   cache, was stored, resumed, or stays in memory only (quota, no Cache API, unknown size)
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
      .then(() => this.#storage?.open(CACHE_NAME) ?? null)
      .catch(() => null);
    return this.#cachePromise;
  }

  #note(url, status, message) {
    this.#onNote({ url, status, message });
  }

  /** The key prefix of a URL's entries (for one size, or all sizes). */
  static #urlPrefix(url) {
    const origin = globalThis.location?.origin ?? 'http://localhost';
    return `${origin}/${PREFIX}/${encodeURIComponent(url)}/`;
  }

  static #key(meta) {
    return `${WeightCache.#urlPrefix(meta.url)}${meta.size}${meta.sha256 ? `/${meta.sha256}` : ''}`;
  }

  /** The entries' JSON records (`meta` or `complete`) of a URL, or of every URL. */
  async #records(cache, kind, url) {
    const prefix = url ? WeightCache.#urlPrefix(url) : `${WeightCache.#urlPrefix('')}`.replace(/\/$/, '');
    const requests = (await cache.keys()).filter((r) => r.url.startsWith(prefix) && r.url.endsWith(`/${kind}`));
    const records = [];
    for (const request of requests) {
      const response = await cache.match(request);
      if (response) records.push({ ...(await response.json()), stored: Number(response.headers.get('x-stored') ?? 0) });
    }
    return records;
  }

  /** Number of consecutive parts of an entry present from part 0, with their byte total. */
  async #partsPresent(cache, meta) {
    const key = WeightCache.#key(meta);
    let count = 0;
    let bytes = 0;
    for (;;) {
      const response = await cache.match(`${key}/part-${count}`);
      if (!response) break;
      bytes += Number(response.headers.get('x-bytes'));
      count++;
    }
    return { count, bytes };
  }

  /** A complete entry of `url` whose parts are all present and match `expect`, else null. */
  async #trusted(cache, url, expect) {
    for (const meta of await this.#records(cache, 'complete', url)) {
      if (expect.size !== undefined && meta.size !== expect.size) continue;
      if (expect.sha256 && meta.sha256 !== expect.sha256) continue;
      const parts = await this.#partsPresent(cache, meta);
      if (parts.bytes === meta.size && parts.count === Math.ceil(meta.size / meta.segmentBytes)) return meta;
      await this.#deleteKey(cache, WeightCache.#key(meta)); // a part was evicted: not trustworthy
    }
    return null;
  }

  async #deleteKey(cache, key) {
    const requests = (await cache.keys()).filter((r) => r.url === key || r.url.startsWith(`${key}/`));
    await Promise.all(requests.map((r) => cache.delete(r)));
  }

  /**
   * Opens `url` as `{ name, size, stream }` for llama2.js: from the cache when a trusted entry
   * exists (no network request), else downloaded (resumed when possible) and stored as it
   * streams. The stream ends only once the entry is committed, so the load that follows can
   * be trusted to find it.
   * @param {string} url
   * @param {{ name?: string, signal?: AbortSignal, size?: number, sha256?: string }} [options]
   *   `size`/`sha256`: what the file must be (a preset's); a cached entry that differs is ignored
   */
  async open(url, { name, signal, size, sha256 } = {}) {
    url = new URL(url, globalThis.location?.href).href;
    name ??= baseName(url);
    const cache = await this.#cache();
    if (!cache) {
      this.#note(url, 'uncached', `${name}: no Cache API here (an insecure origin?): kept in memory only`);
      return this.#download(null, url, name, signal, { size, sha256 });
    }
    const hit = await this.#trusted(cache, url, { size, sha256 });
    if (hit) {
      this.#note(url, 'hit', `${name}: read from the browser cache`);
      return { name, size: hit.size, stream: this.#partsStream(cache, hit, 0, null, signal) };
    }
    return this.#download(cache, url, name, signal, { size, sha256 });
  }

  /** Downloads `url`, resuming a partial entry; tees the body into the cache when there is one. */
  async #download(cache, url, name, signal, expect) {
    // A partial entry of this URL (meta without complete): resume after its last whole part.
    let partial = null;
    if (cache) {
      for (const meta of await this.#records(cache, 'meta', url)) {
        const parts = await this.#partsPresent(cache, meta);
        const fits = (expect.size === undefined || meta.size === expect.size) && (!expect.sha256 || meta.sha256 === expect.sha256);
        if (fits && parts.count > 0 && parts.bytes < meta.size && !partial) partial = { meta, parts };
        else await this.#deleteKey(cache, WeightCache.#key(meta)); // stale, or a second one
      }
    }
    const headers = {};
    if (partial) {
      headers.Range = `bytes=${partial.parts.bytes}-`;
      // If-Range: the server sends the whole (new) file instead when it changed meanwhile.
      const validator = partial.meta.etag ?? partial.meta.lastModified;
      if (validator) headers['If-Range'] = validator;
    }
    let response;
    try {
      response = await fetch(url, { signal, headers });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new Error(`cannot download ${url}: ${err.message}`);
    }
    if (!response.ok) throw new Error(`cannot download ${url}: HTTP ${response.status} ${response.statusText}`);

    if (partial && response.status === 206) {
      const { meta, parts } = partial;
      const range = response.headers.get('content-range')?.match(/^bytes (\d+)-(\d+)\/(\d+)$/);
      if (range && Number(range[1]) === parts.bytes && Number(range[2]) === meta.size - 1 && Number(range[3]) === meta.size) {
        this.#note(url, 'resumed', `${name}: resumed the download at ${(parts.bytes / 1e6).toFixed(1)} MB`);
        const writer = new PartWriter(this, cache, meta, parts.count);
        return { name, size: meta.size, stream: this.#partsStream(cache, meta, parts.count, { response, writer }, signal) };
      }
      response.body?.cancel().catch(() => {});
      await this.#deleteKey(cache, WeightCache.#key(meta));
      return this.#download(cache, url, name, signal, expect); // not the range we asked for: start over
    }
    if (partial) await this.#deleteKey(cache, WeightCache.#key(partial.meta)); // 200: the server ignored Range

    // A compressed response's Content-Length is not the file size: treat it as unknown.
    const length = response.headers.get('content-length');
    const size = length !== null && !response.headers.get('content-encoding') ? Number(length) : null;
    if (expect.size !== undefined && size !== null && size !== expect.size) {
      response.body?.cancel().catch(() => {});
      throw new Error(`${url}: the server announces ${size} bytes, ${expect.size} were expected`);
    }
    if (!cache) return { name, size, stream: response.body };
    if (size === null) {
      this.#note(url, 'uncached', `${name}: the server gave no size, so it is not cached`);
      return { name, size, stream: response.body };
    }
    const meta = {
      url, size, sha256: expect.sha256, segmentBytes: this.#segmentBytes,
      etag: response.headers.get('etag') ?? undefined, lastModified: response.headers.get('last-modified') ?? undefined,
    };
    const writer = new PartWriter(this, cache, meta, 0);
    try {
      await writer.putRecord('meta');
    } catch (err) {
      writer.fail(err);
    }
    return { name, size, stream: this.#partsStream(cache, meta, 0, { response, writer }, signal) };
  }

  /**
   * One stream of the file: cached parts [0, firstNetworkPart) then, when `network` is given,
   * the response body, whose chunks also go to the writer. Ends after the writer committed.
   */
  #partsStream(cache, meta, firstNetworkPart, network, signal) {
    const key = WeightCache.#key(meta);
    const cachedParts = network ? firstNetworkPart : Math.ceil(meta.size / meta.segmentBytes);
    let part = 0;
    let reader = null;
    let fromNetwork = false;
    const self = this;
    return new ReadableStream({
      async pull(controller) {
        for (;;) {
          if (!reader) {
            if (part < cachedParts) {
              const response = await cache.match(`${key}/part-${part++}`);
              if (!response) {
                await self.#deleteKey(cache, key);
                throw new Error(`${meta.url}: the browser cache lost part ${part - 1}; load again to download it`);
              }
              reader = response.body.getReader();
            } else if (network && !fromNetwork) {
              fromNetwork = true;
              reader = network.response.body.getReader();
            } else {
              controller.close();
              return;
            }
          }
          let result;
          try {
            result = await reader.read();
          } catch (err) {
            if (!fromNetwork) throw err;
            await network.writer.abort(err);
            if (err?.name === 'AbortError') throw err;
            throw new Error(`cannot download ${meta.url}: ${err?.message ?? err} (the whole parts are kept: the next load resumes)`);
          }
          if (result.done) {
            reader = null;
            if (fromNetwork) await network.writer.finish(); // commit before the load completes
            continue;
          }
          if (fromNetwork) network.writer.write(result.value);
          controller.enqueue(result.value);
          return;
        }
      },
      async cancel(reason) {
        await reader?.cancel(reason).catch(() => {});
        if (network && !fromNetwork) await network.response.body.cancel(reason).catch(() => {});
        await network?.writer.abort(reason);
      },
    }, { highWaterMark: 0 });
  }

  /**
   * Cached files (complete, and partial downloads), newest first.
   * @returns {Promise<CachedFile[]>}
   */
  async list() {
    const cache = await this.#cache();
    if (!cache) return [];
    const complete = await this.#records(cache, 'complete');
    const done = new Set(complete.map((m) => WeightCache.#key(m)));
    const partial = [];
    for (const meta of await this.#records(cache, 'meta')) {
      if (done.has(WeightCache.#key(meta))) continue;
      partial.push({ ...meta, complete: false, bytes: (await this.#partsPresent(cache, meta)).bytes });
    }
    return [...complete.map((m) => ({ ...m, complete: true, bytes: m.size })), ...partial].sort((a, b) => b.stored - a.stored);
  }

  /** Deletes every cached entry (complete or partial) of `url`. */
  async delete(url) {
    const cache = await this.#cache();
    if (cache) await this.#deleteKey(cache, WeightCache.#urlPrefix(url).replace(/\/$/, ''));
  }

  /** Deletes the whole weight cache. */
  async clear() {
    this.#cachePromise = null;
    await this.#storage?.delete(CACHE_NAME);
  }

  /** @internal by PartWriter */
  _note(url, status, message) {
    this.#note(url, status, message);
  }

  /** @internal by PartWriter */
  _deleteKey(cache, key) {
    return this.#deleteKey(cache, key);
  }

  /** @internal by PartWriter */
  static _key(meta) {
    return WeightCache.#key(meta);
  }
}

/**
 * Cuts the downloaded chunks into parts, each stored by one streaming `cache.put` (subarray
 * views of the chunks, no copies). A quota error stops the caching, deletes the entry and
 * leaves the load going from the network: the model then lives in memory only.
 */
class PartWriter {
  #owner;
  #cache;
  #meta;
  #key;
  #part; // the part being written
  #filled = 0; // its bytes so far
  #controller = null; // of its body stream
  #puts = []; // pending puts
  #failed = null;
  #cleanup = Promise.resolve(); // the deletion of the entry after a failure

  constructor(owner, cache, meta, firstPart) {
    this.#owner = owner;
    this.#cache = cache;
    this.#meta = meta;
    this.#key = WeightCache._key(meta);
    this.#part = firstPart;
  }

  /** Stores the entry's JSON record (`meta` first, `complete` last). */
  async putRecord(kind) {
    const headers = { 'content-type': 'application/json', 'x-stored': String(Date.now()) };
    await this.#cache.put(`${this.#key}/${kind}`, new Response(JSON.stringify(this.#meta), { headers }));
  }

  #partBytes(part) {
    return Math.min(this.#meta.segmentBytes, this.#meta.size - part * this.#meta.segmentBytes);
  }

  #openPart() {
    const bytes = this.#partBytes(this.#part);
    const body = new ReadableStream({ start: (c) => { this.#controller = c; } });
    const put = this.#cache
      .put(`${this.#key}/part-${this.#part}`, new Response(body, { headers: { 'x-bytes': String(bytes) } }))
      .catch((err) => this.fail(err));
    this.#puts.push(put);
    this.#filled = 0;
  }

  /** @param {Uint8Array} chunk */
  write(chunk) {
    let at = 0;
    while (!this.#failed && at < chunk.length) {
      if (!this.#controller) this.#openPart();
      const n = Math.min(chunk.length - at, this.#partBytes(this.#part) - this.#filled);
      this.#controller.enqueue(chunk.subarray(at, at + n));
      at += n;
      this.#filled += n;
      if (this.#filled === this.#partBytes(this.#part)) {
        this.#controller.close();
        this.#controller = null;
        this.#part++;
      }
    }
  }

  /** A put failed: a quota error turns caching off for this file (the load goes on). */
  fail(err) {
    if (this.#failed) return;
    this.#failed = err;
    try {
      this.#controller?.error(err);
    } catch {
      // already closed
    }
    this.#controller = null;
    const { url } = this.#meta;
    const name = baseName(url);
    const why = isQuotaError(err) ? 'the browser storage quota is full' : `the cache failed (${err?.message ?? err})`;
    this.#owner._note(url, 'memory', `${name} is not cached: ${why}. It is loaded in memory only and will be downloaded again next time.`);
    // Delete the entry once every put has settled: a part whose put was already under way
    // would otherwise be stored after the deletion and stay behind.
    this.#cleanup = Promise.allSettled(this.#puts)
      .then(() => this.#owner._deleteKey(this.#cache, this.#key))
      .catch(() => {});
  }

  /** The download completed: wait for every part, then mark the entry trusted. */
  async finish() {
    await Promise.all(this.#puts);
    if (!this.#failed && this.#controller) {
      this.fail(new Error(`${this.#meta.url}: download ended inside part ${this.#part}`));
    }
    if (!this.#failed) {
      try {
        await this.putRecord('complete');
        this.#owner._note(this.#meta.url, 'stored', `${baseName(this.#meta.url)}: stored in the browser cache`);
      } catch (err) {
        this.fail(err);
      }
    }
    await this.#cleanup; // after a failure, the load ends once the entry is gone
  }

  /** The download failed or was cancelled: the part being written is dropped (its put
   * rejects), the whole parts stay for a resume, and there is no `complete` record. */
  async abort(reason) {
    if (this.#controller) {
      const controller = this.#controller;
      this.#controller = null;
      try {
        controller.error(reason ?? new Error('download aborted'));
      } catch {
        // already closed
      }
    }
    if (this.#failed) return this.#cleanup; // caching was already off (quota): nothing kept
    this.#failed = reason ?? new Error('download aborted');
    await Promise.allSettled(this.#puts);
    const kept = Math.min(this.#part * this.#meta.segmentBytes, this.#meta.size);
    this.#owner._note(this.#meta.url, 'partial',
      `${baseName(this.#meta.url)}: download interrupted; ${(kept / 1e6).toFixed(1)} MB kept, the next load resumes from there`);
  }
}
