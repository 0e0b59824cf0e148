// start-worker.js: the two pieces of plumbing every worker start needs (the engine's worker in
// client.js, a shard's in shards.js, the digest worker in cache-digest.js), written once.

/**
 * Starts a module worker: `create()` is the caller's `new Worker(new URL(<its script, a string
 * literal>, import.meta.url), <a literal options object>)`, written out there because that is the
 * form bundlers (Vite, webpack) find and bundle (Vite also wants the options literal). A browser
 * refuses a worker script of another origin (this package served from a CDN): then a
 * same-origin blob module imports `url` (the same script) instead. `url` is built by the caller
 * without that form (`new URL(NAME, HERE)` with variables), or a bundler would also copy the
 * unbundled file as an asset, or warn of a request it cannot see.
 * @param {() => Worker} create
 * @param {string} url
 * @param {WorkerOptions} [options] for the blob's worker (`type` is always 'module')
 */
export function startModuleWorker(create, url, options = {}) {
  try {
    return create();
  } catch (err) {
    if (err?.name !== 'SecurityError') throw err;
    const blob = new Blob([`import ${JSON.stringify(url)};`], { type: 'text/javascript' });
    return new Worker(URL.createObjectURL(blob), { ...options, type: 'module' });
  }
}

/**
 * Imports one of Node's built-in modules (`node:fs/promises`, `node:worker_threads`), hidden
 * from bundlers: only Node takes the paths that call this, and a bundler must neither resolve
 * nor warn about it.
 * @param {string} name
 */
export function importNode(name) {
  return import(/* @vite-ignore */ /* webpackIgnore: true */ name);
}
