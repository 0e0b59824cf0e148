// isolation.js: makes the app's page crossOriginIsolated on a host that sends no headers
// (GitHub Pages, any static host), so that a model split over workers meets through shared
// memory (SharedArrayBuffer) instead of messages.
//
// sw.js adds `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
// credentialless` to the app's own documents once it controls the page: the first visit
// reloads once. A browser without `credentialless` (it then stays not isolated) is told to use
// `require-corp`, and the page reloads once more; cross-origin models keep loading either way
// (fetch uses CORS, which both policies accept). A page this file is not part of (someone
// else's, with a <llama-story>) is never touched.

/** sessionStorage key of the reloads done here, so that a failure never loops. */
const RELOADS = 'llama2-isolation-reloads';

/**
 * Isolates this page if it can: resolves with 'isolated', or with why not ('unsupported':
 * no service worker or insecure origin; 'failed': still not isolated after the reloads). May
 * reload the page (then it never resolves).
 * @param {{ serviceWorker?: URL | string }} [options] default: sw.js next to this file
 */
export async function isolate({ serviceWorker = new URL('./sw.js', import.meta.url) } = {}) {
  if (globalThis.crossOriginIsolated) {
    sessionStorage.removeItem(RELOADS);
    return 'isolated';
  }
  if (!('serviceWorker' in navigator) || !globalThis.isSecureContext) return 'unsupported';
  const reloads = Number(sessionStorage.getItem(RELOADS) ?? 0);
  let registration;
  try {
    registration = await navigator.serviceWorker.register(serviceWorker);
    await navigator.serviceWorker.ready;
  } catch (err) {
    console.warn(`llama2: no service worker, so no shared memory (${err.message})`);
    return 'unsupported';
  }
  const reload = () => {
    sessionStorage.setItem(RELOADS, String(reloads + 1));
    location.reload();
    return new Promise(() => {});
  };
  // Not controlled yet (the first visit): the next load of the page goes through sw.js.
  if (!navigator.serviceWorker.controller && reloads === 0) return reload();
  // Controlled but not isolated: this browser ignores `credentialless`.
  if (navigator.serviceWorker.controller && reloads === 1) {
    registration.active?.postMessage({ type: 'coep', value: 'require-corp' });
    return reload();
  }
  return 'failed';
}
