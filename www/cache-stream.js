// cache-stream.js: a cached file, a download, or a resume (cached parts, then the network's
// rest) as one stream of bytes, checked as they flow. Whatever its source, the stream closes
// only after every check passed and the entry was committed, and errors otherwise, so the load
// reading it can never succeed on unchecked bytes:
// - each cached part's digest is checked against the one stored with it (WebCrypto, read one
//   part ahead, so it runs while the load consumes the previous part);
// - with `sha256`, the whole file is hashed as it flows (cache-sha256.js);
// - network chunks are also given to the writer, which stores them (cache-writer.js).

import { partDigest } from './cache-layout.js';
import { Sha256 } from './cache-sha256.js';
import { LlamaError, networkError } from './errors.js';

/**
 * @param {object} o
 * @param {string} o.url
 * @param {string} o.name for messages
 * @param {import('./cache-entry.js').StoredPart[]} [o.parts] cached parts, first
 * @param {ReadableStream<Uint8Array> | null} [o.body] then the network's bytes
 * @param {import('./cache-writer.js').PartWriter | null} [o.writer] stores `body`
 * @param {string} [o.sha256] the whole file's expected digest: hashed as it flows
 * @param {AbortSignal} [o.signal] the load's (a cancelled read is not a network error)
 * @param {() => Promise<void>} o.discard deletes the entry (wrong bytes)
 * @param {(sha256?: string) => Promise<void>} [o.commit] after every check passed (`sha256`:
 *   the verified digest, when one was asked for)
 * @returns {ReadableStream<Uint8Array>}
 */
export function fileStream({ url, name, parts = [], body = null, writer = null, sha256, signal, discard, commit }) {
  const whole = sha256 ? new Sha256() : null;
  const checks = []; // one per cached part: null, or what was wrong
  let next = 0; // the next cached part
  let ahead = parts.length ? read(0) : null; // its bytes, being read
  let reader = null;

  /** Reads cached part `k` whole and starts the check of its digest. */
  function read(k) {
    return parts[k].blob.arrayBuffer().then((buffer) => {
      const bytes = new Uint8Array(buffer);
      checks.push(partDigest(bytes).then((digest) =>
        digest === parts[k].sha256 ? null : `part ${k} has sha256 ${digest}, ${parts[k].sha256} was stored`,
      ));
      return bytes;
    });
  }

  /** The end: every check, then the commit; a failure deletes the entry and errors the stream. */
  async function end() {
    const damaged = (await Promise.all(checks)).find((problem) => problem !== null);
    if (damaged) {
      await (writer ? writer.discard() : discard());
      throw new LlamaError('format', `${name}: the browser cache's copy is damaged (${damaged}); it was deleted, load it again to download it`);
    }
    const digest = whole?.hex();
    if (digest !== undefined && digest !== sha256) {
      await (writer ? writer.discard() : discard());
      throw new LlamaError('format', `${name}: its sha256 is ${digest}, but ${sha256} was expected (${url}); it was not kept`);
    }
    await commit?.(digest);
  }

  return new ReadableStream({
    async pull(controller) {
      let bytes;
      if (next < parts.length) {
        bytes = await ahead;
        next++;
        ahead = next < parts.length ? read(next) : null;
      } else if (body) {
        reader ??= body.getReader();
        let result;
        try {
          result = await reader.read();
        } catch (err) {
          await writer?.abort();
          throw signal?.aborted || err?.name === 'AbortError' ? err : networkError(url, err);
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
      whole?.update(bytes);
      controller.enqueue(bytes);
    },
    async cancel(reason) {
      ahead?.catch(() => {}); // a part being read ahead is not wanted any more
      await (reader ?? body)?.cancel(reason).catch(() => {});
      await writer?.abort();
    },
  }, { highWaterMark: 0 });
}
