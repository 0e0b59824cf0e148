// cache-fetch.js: the cache's requests to the server and how their answers are read. HTTP's
// validators (ETag, Last-Modified) are what let the cache ask "has it changed?" for the price
// of a 304, and resume a cut download only when the rest belongs to the same file (If-Range):
// without one, a resumed download could join two different files.

import { networkError } from '../engine/errors.js';

/** A strong ETag (a weak one, W/"…", may not be used with If-Range), else null. */
const strongEtag = (etag) => (etag && !etag.startsWith('W/') ? etag : null);

/** The validators of a response, as a record stores them. `strongDate`: whether its
 * Last-Modified is a strong validator (RFC 9110 8.8.2.2: the response's Date is at least a
 * second later, so no other version of the file can have that same date). */
export function validatorsOf(response) {
  const lastModified = response.headers.get('last-modified') ?? undefined;
  const date = Date.parse(response.headers.get('date') ?? '');
  return {
    etag: response.headers.get('etag') ?? undefined,
    lastModified,
    strongDate: lastModified !== undefined && date - Date.parse(lastModified) >= 1000,
  };
}

/** Headers asking for the file only if it changed since `record` (empty when it has no validator). */
export function conditionalHeaders(record) {
  const headers = {};
  if (record.etag) headers['If-None-Match'] = record.etag;
  if (record.lastModified) headers['If-Modified-Since'] = record.lastModified;
  return headers;
}

/** The validator to send with If-Range, or null: then a resume would be a guess, and the
 * download starts over. Only a strong one (RFC 9110 13.1.5): a weak date (a file replaced
 * within the same second has the same one) would let a resume join two versions. */
const ifRange = (record) => strongEtag(record.etag) ?? (record.strongDate ? record.lastModified : null) ?? null;

/** Whether a cut download of `record` can be resumed. */
export const canResume = (record) => ifRange(record) !== null;

/** Headers asking for the file from byte `from` on, if it is still `record`'s, else null. */
export function resumeHeaders(record, from) {
  return canResume(record) ? { Range: `bytes=${from}-`, 'If-Range': ifRange(record) } : null;
}

/** Whether a 200 is `record`'s file again (a server that ignores conditional requests). */
export function sameFile(record, response) {
  const etag = strongEtag(response.headers.get('etag'));
  return etag !== null && etag === strongEtag(record.etag);
}

/** Whether a 206 is exactly the rest of `record`'s file from byte `from`. */
export function isRest(response, record, from) {
  const range = response.headers.get('content-range')?.match(/^bytes (\d+)-(\d+)\/(\d+)$/);
  return response.status === 206 && range !== null && range !== undefined &&
    Number(range[1]) === from && Number(range[2]) === record.size - 1 && Number(range[3]) === record.size;
}

/** GET `url`; a failed request is a `network` LlamaError, a cancelled one the signal's reason. */
export async function get(url, signal, headers = {}) {
  try {
    return await fetch(url, { signal, headers });
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    throw networkError(url, err);
  }
}

/** Drops a response's body (a 304's, or one not used). */
export function drop(response) {
  response.body?.cancel().catch(() => {});
}
