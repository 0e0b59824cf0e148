// offline.js: the page's offline side. Registers the app-shell service worker (sw.js) and
// shows the weight cache (cache.js): which models are stored, their sizes, a Delete button
// each, and what the worker reported about the last load (read from cache, stored, resumed,
// or kept in memory only when the storage quota is full).

import { WeightCache } from './cache.js';

/** 0.9 MB, 6 KB: a tokenizer is a few KB. */
const mb = (bytes) => (bytes < 1e5 ? `${Math.ceil(bytes / 1e3)} KB` : `${(bytes / 1e6).toFixed(1)} MB`);

/** Registers sw.js (scope: this directory); the page works the same without it. */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    return await navigator.serviceWorker.register(new URL('./sw.js', import.meta.url));
  } catch (err) {
    console.warn(`offline app shell unavailable: ${err.message}`);
    return null;
  }
}

/** The "Offline" section, appended to <main>: returns its elements. */
function buildPanel() {
  const section = document.createElement('section');
  section.id = 'cache-panel';
  section.setAttribute('aria-labelledby', 'cache-title');
  const title = document.createElement('h2');
  title.id = 'cache-title';
  title.textContent = 'Cached models';
  const note = document.createElement('div');
  note.id = 'cache-note';
  note.setAttribute('role', 'status');
  const list = document.createElement('ul');
  list.id = 'cache-list';
  const usage = document.createElement('p');
  usage.id = 'cache-usage';
  usage.className = 'hint';
  section.append(title, note, list, usage);
  (document.querySelector('main') ?? document.body).append(section);
  return { note, list, usage };
}

/**
 * Shows the weight cache in the page and the worker's cache notes.
 * @param {import('./client.js').EngineClient} engine the page's engine (its `cache` notes)
 * @param {{ serviceWorker?: boolean }} [options]
 */
export function installOffline(engine, { serviceWorker = true } = {}) {
  if (serviceWorker) registerServiceWorker();
  const cache = new WeightCache();
  const ui = buildPanel();

  async function refresh() {
    const files = await cache.list();
    const items = files.map((file) => {
      const li = document.createElement('li');
      li.dataset.url = file.url;
      li.dataset.size = String(file.size);
      li.dataset.complete = String(file.complete);
      const label = document.createElement('span');
      const name = decodeURIComponent(new URL(file.url).pathname.split('/').pop());
      label.textContent = file.complete
        ? `${name}: ${mb(file.size)}`
        : `${name}: partial download, ${mb(file.bytes)} of ${mb(file.size)} (resumes on the next load)`;
      label.title = file.url;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Delete';
      remove.onclick = async () => {
        remove.disabled = true;
        await cache.delete(file.url);
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
    const estimate = await navigator.storage?.estimate?.().catch(() => null);
    ui.usage.textContent = estimate?.quota ? `storage used ${mb(estimate.usage)} of ${mb(estimate.quota)} available to this site` : '';
  }

  // The last note of each URL, newest first (a load has two files: model and tokenizer).
  const notes = new Map();
  engine.on('cache', (data) => {
    notes.delete(data.url);
    notes.set(data.url, data);
    ui.note.replaceChildren(
      ...[...notes.values()].reverse().slice(0, 4).map((n) => {
        const line = document.createElement('p');
        line.dataset.url = n.url;
        line.dataset.status = n.status;
        line.textContent = n.message;
        if (n.status === 'memory') line.style.color = 'var(--error, #c62828)'; // style.css's error color
        return line;
      }),
    );
    if (data.status !== 'hit') refresh();
  });
  refresh();
  return { refresh, cache };
}
