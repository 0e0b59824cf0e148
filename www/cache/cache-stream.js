// cache-stream.js: a cached file, a download, or a resume (cached parts, then the network's
// rest) as one stream of bytes, checked as they flow. Whatever its source, the stream closes
// only after every check passed and the entry was committed, and errors otherwise, so a load
// can never succeed on bytes that failed a check:
// - with `digestParts`, each cached part is digested (cache-digest.js: WebCrypto on another
//   thread, a few parts ahead) and, when its record lists its digest, checked before its bytes
//   go on; the digests go to `commit` (a resumed download's record needs them);
// - with `sha256`, the whole file is hashed as it flows (cache-sha256.js);
// - network chunks are also given to the writer, which stores them (cache-writer.js).

import { readAndDigest } from './cache-digest.js';
import { Sha256 } from './cache-sha256.js';
import { LlamaError, networkError } from '../engine/errors.js';
import { shortRead } from '../engine/source.js';

/** Cached parts read (and digested) ahead of the load: 3 x 4 MiB in flight. */
const READ_AHEAD = 3;

/**
 * @param {object} o
 * @param {string} o.url
 * @param {string} o.name for messages
 * @param {number | null} o.size the file's size, when known: a stream that ends short fails
 * @param {import('./cache-entry.js').StoredPart[]} [o.parts] cached parts, first
 * @param {boolean} [o.digestParts] digest each cached part (and check it against `sha256` of its StoredPart)
 * @param {ReadableStream<Uint8Array> | null} [o.body] then the network's bytes
 * @param {import('./cache-writer.js').PartWriter | null} [o.writer] stores `body`
 * @param {string} [o.sha256] the whole file's expected digest: hashed as it flows
 * @param {AbortSignal} [o.signal] the load's (a cancelled read is not a network error)
 * @param {() => Promise<void>} o.discard deletes the entry (wrong bytes)
 * @param {(sha256?: string, digests?: string[]) => Promise<void>} [o.commit] after every check
 *   passed (`sha256`: the verified digest, when one was asked for; `digests`: the cached parts')
 * @returns {ReadableStream<Uint8Array>}
 */
export function fileStream({ url, name, size, parts = [], digestParts = false, body = null, writer = null, sha256, signal, discard, commit }) {
  const whole = sha256 ? new Sha256() : null;
  let next = 0; // the next cached part
  const ahead = []; // the parts after it being read (and digested), in order
  let reader = null;
  let at = 0; // bytes so far

  const digests = []; // of the cached parts, with `digestParts`

  /** Reads cached part `k` whole; with `digestParts`, with its digest (off this thread). */
  function read(k) {
    if (!digestParts) return parts[k].blob.arrayBuffer().then((buffer) => ({ bytes: new Uint8Array(buffer) }));
    return readAndDigest(parts[k].blob).then(({ bytes, sha256: digest }) => {
      digests[k] = digest;
      const stored = parts[k].sha256;
      return { bytes, problem: stored === undefined || digest === stored ? null : `part ${k} has sha256 ${digest}, ${stored} was stored` };
    });
  }
  const readAhead = () => {
    while (ahead.length < READ_AHEAD && next + ahead.length < parts.length) ahead.push(read(next + ahead.length));
  };
  readAhead();

  /** A damaged entry: deleted, and the load fails before the bytes reach it. */
  async function damaged(problem) {
    await (writer ? writer.discard() : discard());
    throw new LlamaError('format', `${name}: the browser cache's copy is damaged (${problem}); it was deleted, load it again to download it`);
  }

  /** The end: the size, the whole file's digest, then the commit; a mismatch deletes the entry
   * and errors the stream (a short one keeps the whole parts for a resume). */
  async function end() {
    if (size !== null && size !== undefined && at !== size) {
      await writer?.abort();
      throw shortRead(name, at, size);
    }
    const digest = whole?.hex();
    if (digest !== undefined && digest !== sha256) {
      await (writer ? writer.discard() : discard());
      throw new LlamaError('format', `${name}: its sha256 is ${digest}, but ${sha256} was expected (${url}); it was not kept`);
    }
    await commit?.(digest, digests);
  }

  return new ReadableStream({
    async pull(controller) {
      let bytes;
      if (next < parts.length) {
        const part = await ahead.shift();
        next++;
        readAhead();
        if (part.problem) await damaged(part.problem);
        bytes = part.bytes;
      } else if (body) {
        reader ??= body.getReader();
        let result;
        try {
          result = await reader.read();
        } catch (err) {
          const kept = await writer?.abort();
          if (signal?.aborted || err?.name === 'AbortError') throw err;
          const why = err?.message ?? String(err);
          throw networkError(url, kept ? new Error(`${why}; ${(kept / 1e6).toFixed(1)} MB are kept, the next load resumes from there`, { cause: err }) : err);
        }
        if (result.done) body = null;
        else {
          bytes = result.value;
          await writer?.write(bytes);
        }
      }
      if (!bytes) {
        await end();
        controller.close();
        return;
      }
      at += bytes.length;
      if (size !== null && size !== undefined && at > size) {
        await writer?.discard();
        throw new LlamaError('format', `${name}: more data than the expected ${size} bytes (${url})`);
      }
      whole?.update(bytes);
      controller.enqueue(bytes);
    },
    async cancel(reason) {
      for (const part of ahead) part.catch(() => {}); // parts read ahead are not wanted any more
      await (reader ?? body)?.cancel(reason).catch(() => {});
      await writer?.abort();
    },
  }, { highWaterMark: 0 });
}
