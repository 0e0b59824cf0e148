// offline.js: the page's offline side. Registers the app-shell service worker (sw.js) and
// shows the weight cache (cache.js) once: one row per stored file with its size, what the
// last load did with it (read from the cache, stored, resumed) and a Delete button; below,
// the files the cache could not keep (storage quota full: in memory only).

import { WeightCache } from '../cache/cache.js';
import { formatBytes } from '../ui/wording.js';

/** Registers sw.js (scope: the app's directory, above this one); the page works the same without it. */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register(new URL('../sw.js', import.meta.url));
  } catch (err) {
    console.warn(`offline app shell unavailable: ${err.message}`);
    return null;
  }
}

/** The "Cached models" block, appended to `into`: returns its elements. */
function buildPanel(into) {
  const section = document.createElement('section');
  section.id = 'cache-panel';
  section.setAttribute('aria-labelledby', 'cache-title');
  const title = document.createElement('h3');
  title.id = 'cache-title';
  title.textContent = 'Cached models';
  const list = document.createElement('ul');
  list.id = 'cache-list';
  const note = document.createElement('div');
  note.id = 'cache-note';
  note.setAttribute('role', 'status');
  const usage = document.createElement('p');
  usage.id = 'cache-usage';
  usage.className = 'hint';
  section.append(title, list, note, usage);
  into.append(section);
  return { list, note, usage };
}

/** A URL's file name, for a row ("aidreams260K.bin"); never throws on a malformed escape. */
function fileName(url) {
  const last = new URL(url).pathname.split('/').pop();
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** What a cache note's status means, said short (cache.js's statuses). */
const DID = { hit: 'read from the cache', stored: 'just stored', resumed: 'download resumed and stored', partial: 'download incomplete' };

/**
 * Shows the weight cache in `into` and the cache notes of the page's engine.
 * @param {{ into?: Element, serviceWorker?: boolean }} [options]
 * @returns {{ watch(engine: import('../worker/client.js').EngineClient): void, refresh(): Promise<void>, cache: WeightCache }}
 */
export function installOffline({ into = document.querySelector('main') ?? document.body, serviceWorker = true } = {}) {
  if (serviceWorker) registerServiceWorker();
  const cache = new WeightCache();
  const ui = buildPanel(into);
  /** The last note of each URL, newest last. */
  const notes = new Map();

  async function refresh() {
    const files = await cache.list().catch(() => []);
    // One row per URL: the newest entry (a file cached at two sizes shows once).
    const byUrl = new Map();
    for (const file of files) if (!byUrl.has(file.url)) byUrl.set(file.url, file);
    const items = [...byUrl.values()].map((file) => {
      const li = document.createElement('li');
      li.dataset.url = file.url;
      li.dataset.size = String(file.size);
      li.dataset.complete = String(file.complete);
      const status = notes.get(file.url)?.status;
      if (status) li.dataset.status = status;
      const label = document.createElement('span');
      const name = fileName(file.url);
      label.textContent = file.complete
        ? `${name}: ${formatBytes(file.size)}${status && DID[status] ? ` (${DID[status]})` : ''}`
        : `${name}: partial download, ${formatBytes(file.bytes)} of ${formatBytes(file.size)} (resumes on the next load)`;
      label.title = file.url;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Delete';
      remove.onclick = async () => {
        remove.disabled = true;
        await cache.delete(file.url);
        notes.delete(file.url);
        refresh();
      };
      li.append(label, ' ', remove);
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'hint';
      li.textContent = 'none yet: a model loaded from a URL is kept here for the next visit and for offline use';
      items.push(li);
    }
    ui.list.replaceChildren(...items);
    // Notes of files that have no row: the ones the cache could not keep.
    ui.note.replaceChildren(
      ...[...notes.values()].reverse().filter((n) => !byUrl.has(n.url)).slice(0, 4).map((n) => {
        const line = document.createElement('p');
        line.dataset.url = n.url;
        line.dataset.status = n.status;
        line.textContent = n.message;
        if (n.status === 'memory') line.className = 'warning';
        return line;
      }),
    );
    const estimate = await navigator.storage?.estimate?.().catch(() => null);
    ui.usage.textContent = estimate?.quota ? `storage used ${formatBytes(estimate.usage)} of ${formatBytes(estimate.quota)} available to this site` : '';
  }

  /** Follows an engine's cache notes (call again with a new engine after a restart). */
  function watch(engine) {
    engine.on('cache', (data) => {
      notes.delete(data.url);
      notes.set(data.url, data);
      // The row says it at once; the list itself is read again (asynchronously).
      const row = [...ui.list.children].find((li) => li.dataset.url === data.url);
      if (row) row.dataset.status = data.status;
      refresh();
    });
  }

  refresh();
  return { watch, refresh, cache };
}
