// cache-digest-worker.js: the worker of cache-digest.js. Digests the buffers it is sent
// (moved, not copied) and answers with their SHA-256 (null when it could not), and the buffer
// itself when asked to send it back.

import { partDigest } from './cache-layout.js';

onmessage = async ({ data: { id, buffer, back } }) => {
  let sha256 = null;
  try {
    sha256 = await partDigest(new Uint8Array(buffer));
  } catch {
    // the caller handles it
  }
  if (back) postMessage({ id, sha256, buffer }, [buffer]);
  else postMessage({ id, sha256 });
};
