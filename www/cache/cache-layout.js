// cache-layout.js: what one cached file looks like in the Cache API, and the checks every
// reader applies. It is the one place that knows the keys, the records and the part headers,
// so a record written by an older version, a crash or someone's devtools is recognised here
// as malformed (and the entry treated as absent), never trusted and never a raw parse error.
//
// One entry per URL (cache CACHE_NAME, keys are synthetic same-origin URLs):
//   KEY/meta       record: a download of the file began (written first)
//   KEY/part-K     bytes [K * segmentBytes, (K + 1) * segmentBytes) of the file, with header
//                  x-download (the record's id)
//   KEY/complete   the record (with `parts`, each part's SHA-256, when it has a sha256),
//                  written only after every part was stored: trusted
// KEY = <origin>/__llama2-weights__/<encodeURIComponent(url)>.
// A record is JSON { url, size, segmentBytes, id, stored, etag?, lastModified?, strongDate?,
// sha256? }: `id` names one download (parts of another download, e.g. from a second tab, do
// not belong), `etag`/`lastModified` are the server's validators (revalidation, If-Range; the
// date only when `strongDate`, cache-fetch.js), `sha256` is the
// whole file's digest when it was verified, and a complete record's `parts` lists the parts'
// digests (checked on a cached load when a sha256 is asked for).

export const CACHE_NAME = 'llama2-weights-v2';
/** Caches of earlier layouts, deleted when the cache is first opened. */
export const OLD_CACHE_NAMES = ['llama2-weights-v1'];
/** Parts of 4 MiB: a cut download loses at most that much; 105 parts for a 110M checkpoint. */
export const SEGMENT_BYTES = 4 << 20;

const PREFIX = '__llama2-weights__';
const SHA256 = /^[0-9a-f]{64}$/;

/** The key prefix of every entry. */
function root() {
  return `${globalThis.location?.origin ?? 'http://localhost'}/${PREFIX}/`;
}

/** The key of an entry's record (`meta`, `complete`) or part (`part-K`). */
export function keyOf(url, name) {
  return `${root()}${encodeURIComponent(url)}/${name}`;
}

/** `{ url, name }` of a key of ours, `{ url: null }` for one under our prefix with another
 * shape (to delete), or null for a key that is not ours. */
export function parseKey(key) {
  if (!key.startsWith(root())) return null;
  const [encoded, name, ...rest] = key.slice(root().length).split('/');
  try {
    if (rest.length === 0 && name && /^(meta|complete|part-\d+)$/.test(name)) return { url: decodeURIComponent(encoded), name };
  } catch {
    // a malformed escape: not ours to read, ours to delete
  }
  return { url: null, name };
}

export const partCount = (record) => Math.ceil(record.size / record.segmentBytes);

export const partBytes = (record, part) => Math.min(record.segmentBytes, record.size - part * record.segmentBytes);

/** Whether `digest` is a SHA-256 digest as this code writes them (64 lowercase hex digits). */
export const isSha256 = (digest) => typeof digest === 'string' && SHA256.test(digest);

const isString = (value) => value === undefined || typeof value === 'string';

/**
 * The record stored under a key, or `{ problem }` when it is not one this code wrote for `url`.
 * @param {string} text
 * @param {string} url
 * @param {boolean} complete whether it is a `complete` record (with `parts` when it has a sha256)
 */
export function parseRecord(text, url, complete) {
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    return { problem: 'its record is not JSON' };
  }
  const ok = record !== null && typeof record === 'object' && record.url === url &&
    Number.isSafeInteger(record.size) && record.size > 0 &&
    Number.isSafeInteger(record.segmentBytes) && record.segmentBytes > 0 &&
    typeof record.id === 'string' && Number.isFinite(record.stored) &&
    isString(record.etag) && isString(record.lastModified) &&
    (record.strongDate === undefined || typeof record.strongDate === 'boolean') &&
    (record.sha256 === undefined || isSha256(record.sha256)) &&
    (record.parts === undefined ? !(complete && record.sha256) :
      Array.isArray(record.parts) && record.parts.length === partCount(record) && record.parts.every(isSha256));
  return ok ? { record } : { problem: 'its record has missing or wrong fields' };
}

/** A record as stored. */
export function recordResponse(record) {
  return new Response(JSON.stringify(record), { headers: { 'content-type': 'application/json' } });
}

/** A part as stored: its bytes (a stream) and the download it belongs to. */
export function partResponse(body, record) {
  return new Response(body, { headers: { 'x-download': record.id } });
}

/** The SHA-256 of a part, in hex. WebCrypto: native speed and off this thread, but one buffer
 * at a time (no streaming digest), which is why the cache keeps a digest per part. */
export async function partDigest(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}
