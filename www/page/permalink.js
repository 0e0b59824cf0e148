// permalink.js: a story's settings in the page's address, so a shared link regenerates the
// same story, and the checks that keep a link from loading anything unasked.
//
//   index.html?model=models/aidreams260K.bin&tokenizer=models/tok512-aidreams.bin
//             &temperature=0.8&topp=0.9&steps=256&seed=42#prompt=Once+upon+a+time
//
// The prompt is in the fragment (#), which browsers never send to a server, so it stays out
// of server logs; old links with ?prompt= still work. A link may only name http(s) files: a
// data: or blob: URL would let a link make this site's page show any text it likes. Files on
// other sites than this page's (unless they are one of the page's presets) are shown first
// (host, size) and load only after a click: a link must not start a multi-GB download or
// fill the weight cache by itself.

import { shortUrl } from '../ui/wording.js';

/** The settings a link carries besides model, tokenizer and prompt, as the page's field ids. */
export const LINK_FIELDS = ['temperature', 'topp', 'steps', 'seed'];

/** A URL relative to the page when it is on the page's origin and below it (shorter links). */
function relative(url, base) {
  const u = new URL(url, base);
  const b = new URL('./', base);
  return u.origin === b.origin && u.href.startsWith(b.href) ? u.href.slice(b.href.length) : u.href;
}

/**
 * The address of a story: model, tokenizer and settings in the query, the prompt in the fragment.
 * @param {{ model: string, tokenizer: string, prompt?: string, temperature?: string | number,
 *   topp?: string | number, steps?: string | number, seed?: string | number }} settings
 * @param {string} base the page's URL (URLs on its origin are made relative)
 * @returns {string} `?…#…`
 */
export function toLink(settings, base) {
  const query = new URLSearchParams();
  query.set('model', relative(settings.model, base));
  query.set('tokenizer', relative(settings.tokenizer, base));
  for (const key of LINK_FIELDS) {
    if (settings[key] !== undefined && settings[key] !== '') query.set(key, String(settings[key]));
  }
  const fragment = settings.prompt ? `#${new URLSearchParams({ prompt: settings.prompt })}` : '';
  return `?${query}${fragment}`;
}

/**
 * Checks a `what` ('model' or 'tokenizer') address: `{ url }` (absolute) or `{ problem }`.
 * `link`: it comes from a link, which may only name http(s) files; typed into the page's
 * fields, any URL the browser can fetch is the reader's own choice.
 * @param {string} what
 * @param {string} value
 * @param {string} base
 * @param {{ link?: boolean }} [options]
 * @returns {{ url?: string, problem?: string }}
 */
export function checkFileUrl(what, value, base, { link = true } = {}) {
  const source = link ? `The link's ${what}` : `The ${what}`;
  let url;
  try {
    url = new URL(value, base);
  } catch {
    return { problem: `${source} address "${shortUrl(value)}" is not a valid URL.` };
  }
  if (link && (url.protocol === 'data:' || url.protocol === 'blob:')) {
    return {
      problem: `The link's ${what} is a ${url.protocol} URL. Links may only name files on http(s) servers, so a link cannot make this page show text of its own choosing; open local files with "Open files" instead.`,
    };
  }
  if (link && url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { problem: `The link's ${what} address uses ${url.protocol}; only http and https files can be linked.` };
  }
  try {
    decodeURIComponent(url.pathname);
  } catch {
    return { problem: `${source} address "${shortUrl(value)}" has a malformed percent-escape (a % not followed by a valid UTF-8 byte sequence).` };
  }
  return { url: url.href };
}

/** A decimal number as a person writes one (`Number()` also takes `0x10`, `1e400`, `Infinity`). */
const DECIMAL = /^\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,3})?\s*$/;

/** Why `value` is no seed the engine takes (src/generate.rs `parse_seed`: empty, or an
 * integer that is an i64 or a u64), or null. */
function seedProblem(value) {
  const t = value.trim();
  if (t === '') return null;
  if (!/^-?\d+$/.test(t)) return 'is not a whole number';
  const n = BigInt(t);
  return n >= -(2n ** 63n) && n < 2n ** 64n ? null : 'is out of range (a seed is a 64-bit integer)';
}

/**
 * The settings a page address carries.
 * @param {string} href the page's address
 * @returns {{ settings: null | { model: string, tokenizer: string, prompt?: string,
 *   temperature?: string, topp?: string, steps?: string, seed?: string }, problem: string | null }}
 *   settings null and problem null: the address has no model
 */
export function readLink(href) {
  const page = new URL(href);
  const query = page.searchParams;
  const fragment = new URLSearchParams(page.hash.slice(1));
  const model = query.get('model');
  const tokenizer = query.get('tokenizer');
  if (model === null && tokenizer === null) return { settings: null, problem: null };
  if (!model || !tokenizer) {
    return { settings: null, problem: `The link names a ${model ? 'model but no tokenizer' : 'tokenizer but no model'}: it needs both.` };
  }
  const settings = {};
  for (const [what, value] of [['model', model], ['tokenizer', tokenizer]]) {
    const { url, problem } = checkFileUrl(what, value, href);
    if (problem) return { settings: null, problem };
    settings[what] = url;
  }
  const prompt = fragment.get('prompt') ?? query.get('prompt');
  if (prompt !== null) settings.prompt = prompt;
  for (const key of LINK_FIELDS) {
    const value = query.get(key);
    if (value === null) continue;
    const problem = key === 'seed' ? seedProblem(value) : DECIMAL.test(value) && Number.isFinite(Number(value)) ? null : 'is not a number';
    if (problem) return { settings: null, problem: `The link's ${key} "${value}" ${problem}.` };
    settings[key] = value;
  }
  return { settings, problem: null };
}

/**
 * The files of `settings` that need the reader's consent: on another origin than the page's
 * and not a preset's. Each `{ what: 'model' | 'tokenizer', url, host }`.
 * @param {{ model: string, tokenizer: string }} settings absolute URLs
 * @param {string} base the page's address
 * @param {Set<string>} known absolute URLs of the page's presets
 */
export function foreignFiles(settings, base, known) {
  const origin = new URL(base).origin;
  return ['model', 'tokenizer']
    .map((what) => ({ what, url: settings[what], host: new URL(settings[what]).host }))
    .filter(({ url }) => new URL(url).origin !== origin && !known.has(url));
}

/**
 * The size of a file on another site, from a HEAD request, or null when it does not say
 * (no Content-Length, or no CORS).
 * @param {string} url
 * @param {AbortSignal} [signal]
 */
export async function remoteSize(url, signal) {
  try {
    const response = await fetch(url, { method: 'HEAD', signal, credentials: 'omit' });
    const length = response.ok ? response.headers.get('content-length') : null;
    return length === null ? null : Number(length);
  } catch {
    return null;
  }
}
