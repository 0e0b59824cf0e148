#!/usr/bin/env node
// A static file server for www/ (used by `./build.sh serve` and the browser tests): the wasm
// MIME type, no caching by the browser, HTTP's validators (ETag, Last-Modified; If-None-Match,
// If-Modified-Since, If-Range) so that the weight cache (www/cache/cache.js) can revalidate a file
// and resume a download as it would on a CDN, and the headers the README asks of a host:
// - for shared memory (a model split over workers on the page): COOP `same-origin` and COEP
//   `require-corp` (optional: the page's service worker adds them where a host cannot);
// - for `<llama-story>` on pages of other origins (a docs site embedding the element from
//   here): CORS (`Access-Control-Allow-Origin: *`, the validators and ranges exposed, the cache's
//   conditional and Range requests allowed in preflight) and CORP `cross-origin`, since a
//   module script, its worker, the wasm and the models are all read from the other page.
//
//   node tools/serve.mjs [--root www] [--port 8080] [--mount /fixtures=DIR]... [--csp POLICY]
//
// --csp (or LLAMA2_CSP) adds a Content-Security-Policy header to every response (the
// hardening test serves the page under `script-src 'self' 'wasm-unsafe-eval'`).
// Port 0 picks a free port. Prints "serving ROOT at URL" once listening.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function parseArgs(argv) {
  const options = { root: 'www', port: 8080, mounts: [], csp: process.env.LLAMA2_CSP };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`serve: ${flag} needs a value`);
    if (flag === '--root') options.root = value;
    else if (flag === '--port') options.port = Number(value);
    else if (flag === '--csp') options.csp = value;
    else if (flag === '--mount') {
      const [prefix, dir] = value.split('=');
      options.mounts.push({ prefix: prefix.replace(/\/$/, ''), dir: resolve(dir) });
    } else throw new Error(`serve: unknown option ${flag}`);
  }
  return options;
}

/** A file's validators: a strong ETag that changes whenever the file is replaced or written
 * (inode, size, mtime in µs), and Last-Modified (whole seconds, as HTTP dates are). */
export function validators(info) {
  const etag = `"${[info.ino, info.size, Math.round(info.mtimeMs * 1000)].map((n) => n.toString(36)).join('-')}"`;
  return { etag, lastModified: new Date(info.mtimeMs).toUTCString() };
}

/** Whether a conditional GET may be answered 304 Not Modified (RFC 9110 13.2.2). */
function notModified(req, { etag, lastModified }) {
  const match = req.headers['if-none-match'];
  if (match !== undefined) return match.trim() === '*' || match.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
  const since = Date.parse(req.headers['if-modified-since'] ?? '');
  return !Number.isNaN(since) && Date.parse(lastModified) <= since;
}

/** Whether a Range request's If-Range (an ETag, or a date) still names this file. */
function sameFile(req, { etag, lastModified }) {
  const ifRange = req.headers['if-range'];
  return ifRange === undefined || ifRange === etag || ifRange === lastModified;
}

/** The file a URL path names, or null when it would leave its directory. */
function filePath(options, urlPath) {
  const path = decodeURIComponent(urlPath);
  const mount = options.mounts.find((m) => path.startsWith(`${m.prefix}/`));
  const dir = resolve(mount ? mount.dir : options.root);
  const file = resolve(join(dir, mount ? path.slice(mount.prefix.length) : path));
  return file === dir || file.startsWith(dir + sep) ? file : null;
}

/** The headers every answer carries (see the top of this file). */
export const HOST_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'cross-origin',
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Date',
};

export function serve(options) {
  const server = createServer(async (req, res) => {
    for (const [name, value] of Object.entries(HOST_HEADERS)) res.setHeader(name, value);
    res.setHeader('Cache-Control', 'no-store');
    if (options.csp) res.setHeader('Content-Security-Policy', options.csp);
    if (req.method === 'OPTIONS') {
      // CORS preflight: the weight cache's conditional and resumed requests from other origins.
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, HEAD',
        'Access-Control-Allow-Headers': 'Range, If-Range, If-None-Match, If-Modified-Since',
        'Access-Control-Max-Age': '600',
      });
      return res.end();
    }
    try {
      let file = filePath(options, new URL(req.url, 'http://localhost').pathname);
      if (file === null) throw Object.assign(new Error('forbidden'), { code: 'EACCES' });
      let info = await stat(file);
      if (info.isDirectory()) {
        file = join(file, 'index.html');
        info = await stat(file);
      }
      const tags = validators(info);
      if ((req.method === 'GET' || req.method === 'HEAD') && notModified(req, tags)) {
        res.writeHead(304, { ETag: tags.etag, 'Last-Modified': tags.lastModified });
        return res.end();
      }
      // A single `Range: bytes=START-[END]` is answered with 206 (resumed model downloads),
      // unless its If-Range names another version of the file: then the whole file, 200.
      const range = sameFile(req, tags) ? req.headers.range?.match(/^bytes=(\d+)-(\d*)$/) : null;
      const start = range ? Number(range[1]) : 0;
      const end = range && range[2] !== '' ? Math.min(Number(range[2]), info.size - 1) : info.size - 1;
      const partial = range !== undefined && range !== null && start <= end;
      res.writeHead(partial ? 206 : 200, {
        'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
        'Content-Length': end - start + 1,
        'Accept-Ranges': 'bytes',
        ETag: tags.etag,
        'Last-Modified': tags.lastModified,
        ...(partial && { 'Content-Range': `bytes ${start}-${end}/${info.size}` }),
      });
      if (req.method === 'HEAD') return res.end();
      createReadStream(file, partial ? { start, end } : {}).pipe(res);
    } catch (err) {
      const status = err.code === 'ENOENT' || err.code === 'ENOTDIR' ? 404 : 403;
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(`${status} ${req.url}\n`);
    }
  });
  return new Promise((done) => {
    server.listen(options.port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      done({ server, url });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = parseArgs(process.argv.slice(2));
  const { url } = await serve(options);
  console.log(`serving ${resolve(options.root)} at ${url}`);
  console.log('with COOP/COEP (shared memory for split models) and CORS + CORP cross-origin (<llama-story> on other sites): the README\'s host table');
}
