// Shared by the offline, embed, permalink and package tests: serve.mjs's server with a
// request log (what reached the network), optional COOP/COEP stripping, and a switch that
// cuts one download midway; the test models mounted at /models and /fixtures.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

/** The native CLI's ids and --trace object at `pos` of the Explain tests' story (aidreams260K,
 * "Once upon a time", greedy, 40 positions: the page's Explain test and `<llama-story explain>`). */
export function nativeTrace(pos) {
  const file = join(OUT, `explain-trace-${pos}.json`);
  const ids = execFileSync(join(ROOT, 'target/release/llama2'), [join(MODELS, 'aidreams260K.bin'), '-z', join(MODELS, 'tok512-aidreams.bin'),
    '-t', '0', '-p', '0.9', '-s', '1', '-n', '40', '-i', 'Once upon a time', '--ids', '--trace', file, '--trace-pos', String(pos)], { encoding: 'utf8' });
  return { ids: ids.trim().split(/\s+/).map(Number), trace: JSON.parse(readFileSync(file, 'utf8')) };
}

/**
 * Serves ROOT/www (or `root`) with /models = the test models and /fixtures = target/e2e.
 * `log` lists every request as { path, range, ifRange, ifNoneMatch, status } (status once
 * the answer began); `cutNext(path, bytes)` makes the next GET of `path` without Range send only
 * `bytes` bytes (of the announced length, with serve.mjs's headers) and drop the connection;
 * `isolation: false` removes the COOP/COEP/CORP headers (an ordinary static host). Pages of
 * other origins may read every file (serve.mjs's CORS headers, as a model host sends).
 */
export async function startServer({ root = join(ROOT, 'www'), isolation = true, mounts = [] } = {}) {
  const { server, url } = await serve({
    root, port: 0,
    mounts: [{ prefix: '/models', dir: MODELS }, { prefix: '/fixtures', dir: OUT }, ...mounts],
  });
  const log = [];
  const cuts = new Map();
  const [handler] = server.listeners('request');
  server.removeAllListeners('request');
  server.on('request', (req, res) => {
    const path = new URL(req.url, url).pathname;
    const entry = { path, range: req.headers.range ?? null, ifRange: req.headers['if-range'] ?? null, ifNoneMatch: req.headers['if-none-match'] ?? null, status: null };
    log.push(entry);
    const writeHead = res.writeHead.bind(res);
    res.writeHead = (status, ...rest) => {
      entry.status = status; // known as soon as the answer starts, before its body is read
      return writeHead(status, ...rest);
    };
    if (!isolation) {
      const setHeader = res.setHeader.bind(res);
      res.setHeader = (name, value) => (/^cross-origin-/i.test(name) ? res : setHeader(name, value));
    }
    const cut = cuts.get(path);
    if (cut !== undefined && req.method === 'GET' && !req.headers.range && !req.headers['if-none-match']) {
      // serve.mjs answers (its headers, validators included), but only `cut` bytes get through.
      cuts.delete(path);
      let left = cut;
      const write = res.write.bind(res);
      res.write = (chunk) => {
        if (left > 0) write(chunk.subarray(0, left));
        if (left > 0 && (left -= Math.min(left, chunk.length)) === 0) setTimeout(() => res.destroy(), 50);
        return true;
      };
      res.end = () => res;
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
