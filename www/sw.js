// sw.js: the offline app shell. Keeps the page, its JS and the wasm builds in a cache, so the
// page reloads with the network off; the models themselves are in the weight cache
// (cache.js), which the worker reads directly.
//
// Network first, cache as the fallback: online, every reload gets the current files (and
// refreshes the cache); offline, the last ones. Requests outside the shell (models, other
// origins, Range requests) are not touched.

const SHELL_CACHE = 'llama2-shell-v1';
/** Files of the shell, relative to this script. Install fails without them. */
const SHELL = [
  './', 'index.html', 'main.js', 'offline.js', 'permalink.js', 'style.css', 'favicon.svg',
  'llama-story.js', 'embed.html', 'client.js', 'protocol.js', 'errors.js', 'worker.js',
  'llama2.js', 'wasm.js', 'source.js', 'cache.js', 'shards.js', 'transport.js', 'shard-worker.js',
  'cache-layout.js', 'cache-entry.js', 'cache-fetch.js', 'cache-stream.js', 'cache-writer.js', 'cache-sha256.js',
  'cache-digest.js', 'cache-digest-worker.js',
  'pkg/simd/llama2_wasm.js', 'pkg/simd/llama2_wasm_bg.wasm', 'pkg/scalar/llama2_wasm_bg.wasm',
];
/** Cached when present (a deployment may have no local models or no relaxed build). */
const OPTIONAL = ['models/models.json', 'pkg/relaxed/llama2_wasm_bg.wasm'];

const scope = new URL('./', self.location.href);
const shellUrls = new Set([...SHELL, ...OPTIONAL].map((path) => new URL(path, scope).href));

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      await cache.addAll(SHELL);
      await Promise.all(OPTIONAL.map((path) => cache.add(path).catch(() => {})));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      // Older shells only: the weight cache (llama2-weights-*) is the user's, not ours.
      for (const name of await caches.keys()) {
        if (name.startsWith('llama2-shell-') && name !== SHELL_CACHE) await caches.delete(name);
      }
      await self.clients.claim(); // control the page that registered us, without a reload
    })(),
  );
});

/** Network first; on failure the cached copy. `key` is the URL without its query, so a
 * permalink (index.html?model=...) is served the cached page offline. */
async function shell(request, key) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (response.status === 200) await cache.put(key, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(key);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || request.headers.has('range')) return;
  const url = new URL(request.url);
  url.search = '';
  if (shellUrls.has(url.href)) event.respondWith(shell(request, url.href));
});
