// Shared by the offline, embed, permalink and package tests: serve.mjs's server with a
// request log (what reached the network), optional COOP/COEP stripping, and a switch that
// cuts one download midway; the test models mounted at /models and /fixtures.

import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './browser.mjs';
import { serve } from '../../tools/serve.mjs';

export const MODELS = process.env.LLAMA2_MODELS ?? join(ROOT, '../shared/models');
export const OUT = join(ROOT, 'target/e2e');
const golden = JSON.parse(readFileSync(join(MODELS, '../golden/generate.json'), 'utf8'));
/** run.c's text for aidreams260K, "Once upon a time", temperature 0, 256 steps. */
export const STORY = golden.find(
  (c) => c.checkpoint === 'aidreams260K.bin' && c.prompt === 'Once upon a time' && c.temperature === 0 && c.steps === 256,
);

/**
 * Serves ROOT/www (or `root`) with /models = the test models and /fixtures = target/e2e.
 * `log` lists every request as { path, range }; `cutNext(path, bytes)` makes the next GET of
 * `path` send only `bytes` bytes (of the announced length) and drop the connection;
 * `isolation: false` removes the COOP/COEP/CORP headers (an ordinary static host); `cors: true`
 * lets pages of other origins read the files (a model host).
 */
export async function startServer({ root = join(ROOT, 'www'), isolation = true, mounts = [], cors = false } = {}) {
  const { server, url } = await serve({
    root, port: 0, cors,
    mounts: [{ prefix: '/models', dir: MODELS }, { prefix: '/fixtures', dir: OUT }, ...mounts],
  });
  const log = [];
  const cuts = new Map();
  const [handler] = server.listeners('request');
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    const path = new URL(req.url, url).pathname;
    log.push({ path, range: req.headers.range ?? null });
    if (!isolation) {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => (/^cross-origin-/i.test(name) ? res : setHeader(name, value));
    }
    const cut = cuts.get(path);
    if (cut !== undefined && req.method === 'GET' && !req.headers.range) {
      cuts.delete(path);
      const file = join(path.startsWith('/fixtures/') ? OUT : MODELS, path.replace(/^\/(fixtures|models)\//, ''));
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': statSync(file).size, 'Accept-Ranges': 'bytes' });
      const stream = createReadStream(file, { end: cut - 1 });
      stream.pipe(res, { end: false });
      stream.on('end', () => setTimeout(() => res.destroy(), 50));
      return;
    }
    handler(req, res);
  });
  return {
    url,
    log,
    /** Requests whose path ends with `suffix`. */
    requests: (suffix) => log.filter((r) => r.path.endsWith(suffix)),
    cutNext: (path, bytes) => cuts.set(path, bytes),
    close: () => new Promise((done) => { server.closeAllConnections(); server.close(done); }),
  };
}
