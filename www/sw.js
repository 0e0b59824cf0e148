// sw.js: the offline app shell. Keeps the page, its JS and the wasm builds in a cache, so the
// page reloads with the network off; the models themselves are in the weight cache
// (cache.js), which the worker reads directly.
//
// Network first, cache as the fallback: online, every reload gets the current files (and
// refreshes the cache); offline, the last ones. Requests outside the shell (models, other
// origins, Range requests) are not touched.
//
// Cross-origin isolation (see isolation.js): the app's files (all but AS_HOSTED) are served
// with COOP `same-origin` and COEP `credentialless` (or `require-corp`, when the page says the
// browser ignored `credentialless`) unless the host sent its own, so that the page can use SharedArrayBuffer on a host that
// sends no such headers. embed.html stays as a host serves it: it shows <llama-story> as it
// runs on someone else's page.

const SHELL_CACHE = 'llama2-shell-v1';
/** Files of the shell, relative to this script. Install fails without them. */
const SHELL = [
  './', 'index.html', 'page/main.js', 'page/model-panel.js', 'page/chat.js', 'ui/wording.js', 'ui/story-settings.js', 'ui/story-text.js',
  'page/offline.js', 'page/permalink.js', 'page/style.css', 'favicon.svg',
  'element/llama-story.js', 'element/shared-engine.js', 'element/template.js', 'ui/focus.js', 'page/link-view.js', 'embed.html', 'worker/client.js', 'worker/protocol.js', 'engine/errors.js', 'worker/worker.js',
  'engine/llama2.js', 'engine/wasm.js', 'engine/source.js', 'cache/cache.js', 'engine/shards.js', 'engine/transport.js', 'engine/shard-worker.js', 'engine/placement.js',
  'page/isolation.js', 'ui/inspect-view.js', 'ui/inspect-draw.js', 'ui/inspect-view.css', 'ui/explain-view.js', 'ui/explain-stages.js', 'ui/explain-view.css',
  'cache/cache-layout.js', 'cache/cache-entry.js', 'cache/cache-fetch.js', 'cache/cache-stream.js', 'cache/cache-writer.js', 'cache/cache-sha256.js',
  'cache/cache-digest.js', 'cache/cache-digest-worker.js', 'engine/start-worker.js',
  'pkg/simd/llama2_wasm.js', 'pkg/simd/llama2_wasm_bg.wasm', 'pkg/scalar/llama2_wasm_bg.wasm',
];
/** Cached when present (a deployment may have no local models or no relaxed build). */
const OPTIONAL = ['models/models.json', 'pkg/relaxed/llama2_wasm_bg.wasm'];

const scope = new URL('./', self.location.href);
const shellUrls = new Set([...SHELL, ...OPTIONAL].map((path) => new URL(path, scope).href));
/** Shell files served as a host serves them (no isolation headers): the embed demo page. The
 * others get them, the workers' scripts included (a worker is isolated by its own response). */
const AS_HOSTED = new Set(['embed.html'].map((path) => new URL(path, scope).href));
/** Where the COEP value in use is kept (it must survive the service worker's restarts). */
const COEP_KEY = new URL('__coep', scope).href;

async function coep() {
  const stored = await (await caches.open(SHELL_CACHE)).match(COEP_KEY);
  return stored ? stored.text() : 'credentialless';
}

self.addEventListener('message', (event) => {
  const { type, value } = event.data ?? {};
  if (type === 'coep' && ['credentialless', 'require-corp'].includes(value)) {
    event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.put(COEP_KEY, new Response(value))));
  }
});

/** `response` with the isolation headers (a new Response: fetched ones are immutable). A
 * redirect (a "pretty URL" host sends /index.html to /) is passed through untouched: its
 * status is 0 (opaque) and the page it leads to comes through here again. */
async function isolated(response) {
  if (response.type === 'opaqueredirect' || response.redirected || response.status < 200) return response;
  const headers = new Headers(response.headers);
  // What the host sends stays: a host's COEP require-corp replaced with credentialless left
  // WebKit (which ignores credentialless) isolated before the service worker and not after.
  if (!headers.has('Cross-Origin-Opener-Policy')) headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  if (!headers.has('Cross-Origin-Embedder-Policy')) headers.set('Cross-Origin-Embedder-Policy', await coep());
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

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
  url.hash = '';
  if (!shellUrls.has(url.href)) return;
  const response = shell(request, url.href);
  event.respondWith(AS_HOSTED.has(url.href) ? response : response.then(isolated));
});
