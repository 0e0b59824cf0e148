// cache-entry.js: reads one URL's entry from the Cache API and decides what it is: complete
// (trusted), partial (a download to resume) or absent. Every check on stored data happens here,
// before a byte is used, and a malformed entry is deleted here, so the rest of the cache never
// meets a record it cannot parse or a part of the wrong length.

import { keyOf, parseKey, parseRecord, partBytes, partCount } from './cache-layout.js';

/**
 * A part as found: its bytes (a Blob: Chromium hands the stored body over without reading it)
 * and, in a complete entry, its digest from the record.
 * @typedef {{ blob: Blob, sha256?: string }} StoredPart
 */

/**
 * An entry as found.
 * @typedef {{ complete?: { record: object, parts: StoredPart[] },
 *             partial?: { record: object, parts: StoredPart[] },
 *             problem?: string }} Entry
 * `complete`: every part present, of the right length and of the same download; `partial`: a
 * `meta` record with parts 0..n-1 kept (n may be 0); `problem`: why a malformed entry was deleted.
 */

/** The record under `name` (`meta` or `complete`): `{ record }`, `{ problem }` or `{}` when none. */
async function readRecord(cache, url, name) {
  const response = await cache.match(keyOf(url, name));
  if (!response) return {};
  return parseRecord(await response.text(), url, name === 'complete');
}

/** Parts 0.. of `record` as long as each is present and sound; stops at the first that is
 * not, saying why (`problem`) when it is there but wrong. */
async function readParts(cache, url, record) {
  const count = partCount(record);
  const responses = await Promise.all(Array.from({ length: count }, (_, k) => cache.match(keyOf(url, `part-${k}`))));
  const parts = [];
  for (const [k, response] of responses.entries()) {
    if (!response) return { parts, problem: `part ${k} is missing` };
    const blob = await response.blob();
    if (blob.size !== partBytes(record, k)) return { parts, problem: `part ${k} has ${blob.size} bytes, ${partBytes(record, k)} expected` };
    if (response.headers.get('x-download') !== record.id) return { parts, problem: `part ${k} is from another download` };
    parts.push({ blob, sha256: record.parts?.[k] });
  }
  return { parts };
}

/**
 * Reads `url`'s entry; a malformed one (a record that does not parse or lacks fields, a part
 * missing, of the wrong length or from another download) is deleted and reported as `problem`.
 * @returns {Promise<Entry>}
 */
export async function readEntry(cache, url) {
  const complete = await readRecord(cache, url, 'complete');
  if (complete.record) {
    const { parts, problem } = await readParts(cache, url, complete.record);
    if (!problem) return { complete: { record: complete.record, parts } };
    await deleteEntry(cache, url);
    return { problem };
  }
  const meta = await readRecord(cache, url, 'meta');
  const problem = complete.problem ?? meta.problem;
  if (problem) {
    await deleteEntry(cache, url);
    return { problem };
  }
  if (!meta.record) return {};
  // A partial download: the whole parts before the first missing one are kept for a resume.
  return { partial: { record: meta.record, parts: (await readParts(cache, url, meta.record)).parts } };
}

/** Deletes every key of `url`'s entry. */
export async function deleteEntry(cache, url) {
  const keys = (await cache.keys()).filter((request) => parseKey(request.url)?.url === url);
  await Promise.all(keys.map((request) => cache.delete(request)));
}

/** The URLs that have keys in the cache; keys under our prefix that name no URL are deleted. */
export async function cachedUrls(cache) {
  const urls = new Set();
  for (const request of await cache.keys()) {
    const key = parseKey(request.url);
    if (key?.url) urls.add(key.url);
    else if (key) await cache.delete(request);
  }
  return [...urls];
}
