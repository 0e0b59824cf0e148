// cache-writer.js: stores a download as it streams: cuts the chunks into parts, each stored by
// one streaming `cache.put` fed as the chunks arrive (views, not copies; measured twice as fast
// in Chromium as putting each part whole, and a put is still atomic: a part whose body fails
// is not stored), digests each part once it is whole when a sha256 was asked for, and writes
// the `complete` record, with those digests, only after every part is stored. A failing put (quota) turns caching off
// for this file, deletes what was stored and lets the load go on from the network.

import { digestAndDrop } from './cache-digest.js';
import { deleteEntry } from './cache-entry.js';
import { canResume } from './cache-fetch.js';
import { keyOf, partBytes, partCount, partResponse, recordResponse } from './cache-layout.js';

const isQuotaError = (err) => err?.name === 'QuotaExceededError' || err?.code === 22;
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Parts being stored at once: bounds the memory a slow disk can make the download hold. */
const MAX_PENDING_PUTS = 3;

export class PartWriter {
  #cache;
  #record;
  #name;
  #note;
  #part; // the part being filled
  #controller = null; // the body of its put
  #chunks = []; // its bytes so far (views of the download's chunks), for its digest
  #filled = 0;
  #puts = []; // pending puts
  #digests = null; // of the parts written here, in order (promises), when asked for
  #failed = null;
  #cleanup = Promise.resolve(); // the deletion of the entry after a failure

  /**
   * @param {Cache} cache
   * @param {object} record the entry's record (cache-layout.js)
   * @param {number} firstPart the part the download starts at (0, or the resumed one)
   * @param {{ name: string, note: (status: string, message: string) => void, digestParts?: boolean }} options
   *   `digestParts`: list each part's digest in the record (a cached load with a sha256 checks them)
   */
  constructor(cache, record, firstPart, { name, note, digestParts = false }) {
    if (digestParts) this.#digests = [];
    this.#cache = cache;
    this.#record = record;
    this.#part = firstPart;
    this.#name = name;
    this.#note = note;
  }

  /** Writes the `meta` record: a download of this file began. */
  async begin() {
    try {
      await this.#cache.put(keyOf(this.#record.url, 'meta'), recordResponse(this.#record));
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Adds a chunk of the download; waits while too many parts are still being stored. */
  async write(chunk) {
    let at = 0;
    while (!this.#failed && at < chunk.length) {
      if (!this.#controller) this.#open();
      const n = Math.min(chunk.length - at, partBytes(this.#record, this.#part) - this.#filled);
      const bytes = chunk.subarray(at, at + n);
      this.#controller.enqueue(bytes);
      if (this.#digests) this.#chunks.push(bytes);
      this.#filled += n;
      at += n;
      if (this.#filled === partBytes(this.#record, this.#part)) this.#close();
    }
    while (this.#puts.length > MAX_PENDING_PUTS) {
      await this.#puts[0]; // settled before it leaves the list: a cleanup waits for every put
      this.#puts.shift();
    }
  }

  /** Starts the put of the next part; its body is fed by `write`. */
  #open() {
    const body = new ReadableStream({ start: (controller) => { this.#controller = controller; } });
    const key = keyOf(this.#record.url, `part-${this.#part}`);
    this.#puts.push(this.#cache.put(key, partResponse(body, this.#record)).catch((err) => this.#fail(err)));
  }

  /** The part is whole: its put completes, and its digest is computed (one copy, off this thread). */
  #close() {
    this.#controller.close();
    this.#controller = null;
    if (this.#digests) {
      const bytes = new Uint8Array(this.#filled);
      this.#chunks.reduce((at, chunk) => (bytes.set(chunk, at), at + chunk.length), 0);
      this.#digests.push(digestAndDrop(bytes));
      this.#digests.at(-1).catch((err) => this.#fail(err));
    }
    this.#part++;
    this.#chunks = [];
    this.#filled = 0;
  }

  /** Errors the body of the part being written, so its put stores nothing. */
  #dropPart(reason) {
    try {
      this.#controller?.error(reason);
    } catch {
      // already closed
    }
    this.#controller = null;
    this.#chunks = [];
  }

  /** A put failed: caching is off for this file (the load goes on), and the entry goes. */
  #fail(err) {
    if (this.#failed) return;
    this.#failed = err;
    this.#dropPart(err);
    const why = isQuotaError(err) ? 'the browser storage quota is full' : `the cache failed (${err?.message ?? err})`;
    this.#note('memory', `${this.#name} is not cached: ${why}. It is loaded in memory only and will be downloaded again next time.`);
    // Once every put has settled: a put already under way would otherwise land after the deletion.
    this.#cleanup = Promise.allSettled(this.#puts)
      .then(() => deleteEntry(this.#cache, this.#record.url))
      .catch(() => {});
  }

  /**
   * The download ended and was verified: waits for every part, then writes the `complete`
   * record with the parts' digests (`kept`: those of the parts a resume started from) and
   * `sha256` when the whole file's digest was checked. Resolves once the entry is trusted, or
   * gone after a failure, so the load that follows finds it either way.
   */
  async finish(sha256, kept = []) {
    await Promise.all(this.#puts);
    const digests = this.#digests && (await Promise.all(this.#digests).catch(() => null)); // null: #fail'ed
    if (!this.#failed && this.#part !== partCount(this.#record)) {
      this.#fail(new Error(`the download ended inside part ${this.#part}`));
    }
    if (!this.#failed) {
      const parts = digests ? [...kept, ...digests] : undefined;
      const record = { ...this.#record, sha256, parts, stored: Date.now() };
      try {
        await this.#cache.put(keyOf(this.#record.url, 'complete'), recordResponse(record));
        this.#note('stored', `${this.#name}: stored in the browser cache`);
      } catch (err) {
        this.#fail(err);
      }
    }
    await this.#cleanup;
  }

  /**
   * The download failed or was cancelled: the part being filled is dropped, the whole parts
   * stay for a resume, and there is no `complete` record. Without a validator no resume is
   * possible, so nothing is kept. Resolves with the bytes kept.
   */
  async abort() {
    this.#dropPart(new Error('download aborted'));
    if (this.#failed) {
      await this.#cleanup; // caching was already off: nothing is kept
      return 0;
    }
    this.#failed = new Error('download aborted');
    await Promise.allSettled(this.#puts);
    const kept = canResume(this.#record) ? Math.min(this.#part * this.#record.segmentBytes, this.#record.size) : 0;
    if (kept === 0) await deleteEntry(this.#cache, this.#record.url);
    this.#note('partial', kept > 0
      ? `${this.#name}: download interrupted; ${mb(kept)} kept, the next load resumes from there`
      : `${this.#name}: download interrupted; nothing could be kept, the next load starts over`);
    return kept;
  }

  /** The bytes were wrong (a digest mismatch): nothing of this download is kept. */
  async discard() {
    this.#dropPart(new Error('discarded'));
    this.#failed ??= new Error('discarded');
    await Promise.allSettled(this.#puts);
    await this.#cleanup;
    await deleteEntry(this.#cache, this.#record.url);
  }
}
