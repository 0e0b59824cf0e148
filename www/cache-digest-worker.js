// cache-digest-worker.js: the worker of cache-digest.js. Digests the parts it is sent (moved,
// not copied) and sends them back with their SHA-256; `sha256: null` when it could not.

import { partDigest } from './cache-layout.js';

onmessage = async ({ data: { id, buffer } }) => {
  let sha256 = null;
  try {
    sha256 = await partDigest(new Uint8Array(buffer));
  } catch {
    // the caller digests it itself
  }
  postMessage({ id, buffer, sha256 }, [buffer]);
};
