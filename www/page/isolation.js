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

/** Whether `registration` has (or gets) an active worker; false once its install failed. */
function activated(registration) {
  if (registration.active) return Promise.resolve(true);
  const worker = registration.installing ?? registration.waiting;
  if (!worker) return Promise.resolve(false);
  return new Promise((resolve) => {
    const settle = () => {
      if (worker.state === 'activated' || worker.state === 'activating') resolve(true);
      else if (worker.state === 'redundant') resolve(registration.active !== null);
    };
    worker.addEventListener('statechange', settle);
    settle();
  });
}

/** sessionStorage key of the reloads done here, so that a failure never loops. */
const RELOADS = 'llama2-isolation-reloads';

/**
 * Isolates this page if it can: resolves with 'isolated', or with why not ('unsupported':
 * no service worker or insecure origin; 'not-installed': the service worker could not install,
 * e.g. a file of the app shell is missing on this host; 'failed': still not isolated after the
 * reloads). Never waits for ever: the page starts either way (its split models then meet by
 * messages). May reload the page (then it never resolves).
 * @param {{ serviceWorker?: URL | string }} [options] default: the app's sw.js (www/sw.js)
 */
export async function isolate({ serviceWorker = new URL('../sw.js', import.meta.url) } = {}) {
  if (globalThis.crossOriginIsolated) {
    sessionStorage.removeItem(RELOADS);
    return 'isolated';
  }
  if (!('serviceWorker' in navigator) || !globalThis.isSecureContext) return 'unsupported';
  const reloads = Number(sessionStorage.getItem(RELOADS) ?? 0);
  let registration;
  try {
    registration = await navigator.serviceWorker.register(serviceWorker);
  } catch (err) {
    console.warn(`llama2: no service worker, so no shared memory (${err.message})`);
    return 'unsupported';
  }
  // `navigator.serviceWorker.ready` never resolves when the install fails: watch the worker.
  if (!(await activated(registration))) {
    console.warn('llama2: the service worker could not install (a file of the app missing?), so no shared memory and no offline copy');
    return 'not-installed';
  }
  const reload = () => {
    sessionStorage.setItem(RELOADS, String(reloads + 1));
    location.reload();
    return new Promise(() => {});
  };
  // This load of the page did not come through sw.js (a first visit, or the service worker
  // was unregistered meanwhile): the next one does. Even when the worker controls the page
  // already (its activation claims it), this document's headers were not its.
  // (A second chance when a reload still came without it, e.g. a reload that bypassed it.)
  if (reloads === 0 || (reloads === 1 && !navigator.serviceWorker.controller)) return reload();
  // Controlled but not isolated: this browser ignores `credentialless`.
  if (navigator.serviceWorker.controller && reloads === 1) {
    registration.active?.postMessage({ type: 'coep', value: 'require-corp' });
    return reload();
  }
  return 'failed';
}
