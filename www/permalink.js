// permalink.js: the page's settings in its URL, so a shared link regenerates the same story.
//
//   index.html?model=models/aidreams260K.bin&tokenizer=models/tok512-aidreams.bin
//             &prompt=Once+upon+a+time&temperature=0.8&topp=0.9&steps=256&seed=42
//
// Opening such a link fills the fields, loads the model and generates. After each story the
// address bar (and the "Link to this story" anchor) holds the settings and the seed actually
// used (the time, when the seed field was empty), so the link reproduces that very text.

/** URL parameter -> input id. */
const FIELDS = { prompt: 'prompt', temperature: 'temperature', topp: 'topp', steps: 'steps', seed: 'seed' };

/** A URL relative to the page when it is on the page's origin (shorter links). */
function shortUrl(url, base) {
  const u = new URL(url, base);
  const b = new URL('./', base);
  return u.origin === b.origin && u.href.startsWith(b.href) ? u.href.slice(b.href.length) : u.href;
}

/**
 * The query string of a story's settings.
 * @param {{ model?: string, tokenizer?: string, prompt?: string, temperature?: string | number,
 *   topp?: string | number, steps?: string | number, seed?: string | number }} settings
 * @param {string} base the page's URL (model URLs on its origin are made relative)
 */
export function toQuery(settings, base) {
  const params = new URLSearchParams();
  for (const key of ['model', 'tokenizer']) if (settings[key]) params.set(key, shortUrl(settings[key], base));
  for (const key of Object.keys(FIELDS)) if (settings[key] !== undefined && settings[key] !== '') params.set(key, String(settings[key]));
  return `?${params}`;
}

/** The settings in a query string (absolute model URLs), or null without a model. */
export function fromQuery(search, base) {
  const params = new URLSearchParams(search);
  if (!params.get('model') || !params.get('tokenizer')) return null;
  const settings = { model: new URL(params.get('model'), base).href, tokenizer: new URL(params.get('tokenizer'), base).href };
  for (const key of Object.keys(FIELDS)) if (params.has(key)) settings[key] = params.get(key);
  return settings;
}

/**
 * Wires the page (index.html's ids): applies a permalink (fill, load, generate), then keeps
 * the address bar on the last story. Call once the model picker is filled.
 */
export function installPermalinks() {
  const $ = (id) => document.getElementById(id);
  /** The model the worker holds, when it came from URLs (a local file cannot be linked). */
  let loaded = null;
  $('load').addEventListener('click', () => {
    loaded = { model: $('model-url').value, tokenizer: $('tokenizer-url').value };
  });
  $('files').addEventListener('change', () => (loaded = null));
  document.addEventListener('drop', () => (loaded = null));

  const link = document.createElement('a');
  link.id = 'permalink';
  link.textContent = 'Link to this story';
  link.hidden = true;
  $('stats').after(link);

  // After each finished story: its settings and seed in the URL.
  const output = $('output');
  new MutationObserver(() => {
    if (!output.dataset.done || !loaded) return;
    const settings = { ...loaded, seed: output.dataset.seed };
    for (const [key, id] of Object.entries(FIELDS)) if (key !== 'seed') settings[key] = $(id).value;
    const query = toQuery(settings, location.href);
    history.replaceState(null, '', query);
    link.href = query;
    link.hidden = false;
  }).observe(output, { attributes: true, attributeFilter: ['data-done'] });

  const settings = fromQuery(location.search, location.href);
  if (!settings) return;
  $('model-url').value = settings.model;
  $('tokenizer-url').value = settings.tokenizer;
  for (const [key, id] of Object.entries(FIELDS)) if (settings[key] !== undefined) $(id).value = settings[key];
  // Generate once this load ends (the Load button turns back on), if it succeeded.
  const load = $('load');
  const observer = new MutationObserver(() => {
    if (load.disabled) return;
    observer.disconnect();
    if (!$('generate').disabled) $('generate').click();
  });
  observer.observe(load, { attributes: true, attributeFilter: ['disabled'] });
  load.click();
}
