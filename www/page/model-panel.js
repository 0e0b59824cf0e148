// model-panel.js: the page's "Model" section (index.html's <details id="model-panel">): which
// model is chosen (a preset, URLs, or local files), how many workers, and what the loaded
// model is (a one-line summary and its facts). It only shows and reports choices; main.js
// decides when to load.

import { checkFileUrl } from './permalink.js';
import { splitIsSlow } from '../engine/placement.js';
import { formatBytes } from '../ui/wording.js';

const HF = 'https://huggingface.co/karpathy/tinyllamas/resolve/main';
const LLAMA_TOKENIZER = 'https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin';
/** Public checkpoints, each with its tokenizer (after the models this server stages). */
const PUBLIC_PRESETS = [
  { name: 'stories260K', label: 'stories260K (1 MB)', model: `${HF}/stories260K/stories260K.bin`, tokenizer: `${HF}/stories260K/tok512.bin` },
  { name: 'stories15M', label: 'stories15M (58 MB)', model: `${HF}/stories15M.bin`, tokenizer: LLAMA_TOKENIZER },
  { name: 'stories42M', label: 'stories42M (167 MB)', model: `${HF}/stories42M.bin`, tokenizer: LLAMA_TOKENIZER },
  { name: 'stories110M', label: 'stories110M (438 MB)', model: `${HF}/stories110M.bin`, tokenizer: LLAMA_TOKENIZER },
];

/**
 * What is chosen: URLs (a preset's or typed) or local files.
 * @typedef {{ kind: 'urls', name: string, model: string, tokenizer: string, size?: number, sha256?: string }
 *   | { kind: 'files', name: string, model: File, tokenizer: File | string }} Selection
 */

const $ = (id) => document.getElementById(id);
const stem = (name) => name.replace(/\.bin$/i, '');

/** A file name from a URL, for the summary ("stories15M"). */
function urlName(url) {
  try {
    const path = new URL(url).pathname;
    return stem(decodeURIComponent(path.slice(path.lastIndexOf('/') + 1))) || url;
  } catch {
    return url;
  }
}

/** "fp32" or "int8": what a reader wants to know of config.format ("v0", "v1", "v2 (int8, …)"). */
const precision = (format) => (format.startsWith('v2') ? 'int8' : 'fp32');

/** What `isolate()` said, as the Model facts tell it. */
const ISOLATION = {
  isolated: 'yes: the page is cross-origin isolated, so a model split over workers meets through shared memory',
  unsupported: 'no: this browser or address has no service worker (not https?), so split models meet by messages',
  'not-installed': "no: the page's service worker could not install (a file of the app missing on this host?), so split models meet by messages and the page is not kept for offline use",
  failed: 'no: the page is still not isolated after reloading, so split models meet by messages',
};

/** Whether a model was trained to chat: models.json's `chat` when it says, else its name. */
export function isChatModel(selection) {
  return selection.chat ?? /chat|instruct/i.test(selection.name ?? '');
}

/** "1 worker", "2 workers · shared memory", "2 workers · messages". */
export function workersText({ workers, transport }) {
  if (workers <= 1) return '1 worker';
  return `${workers} workers · ${transport === 'shared' ? 'shared memory' : 'messages'}`;
}

export class ModelPanel {
  ui = {
    panel: $('model-panel'), summary: $('model-summary'), preset: $('preset'),
    modelUrl: $('model-url'), tokenizerUrl: $('tokenizer-url'), load: $('load'), cancel: $('cancel'),
    files: $('files'), workers: $('workers'), facts: $('facts'),
  };
  /** URL presets: the server's models (models.json), then the public ones. */
  presets = [];
  /** The default: the server's best story model. */
  defaultPreset = null;
  /** Local files chosen (kept so that Generate can load them again). */
  #files = null;
  /** @type {(files: FileList | File[]) => void} */
  onFiles = () => {};

  /** @param {{ isolation?: string }} [page] what `isolate()` (isolation.js) said */
  constructor({ isolation = 'unsupported' } = {}) {
    this.isolation = isolation;
    const { ui } = this;
    ui.preset.onchange = () => {
      const preset = ui.preset.selectedOptions[0]?.preset;
      if (preset) this.#showUrls(preset);
    };
    for (const input of [ui.modelUrl, ui.tokenizerUrl]) input.oninput = () => this.#matchPreset();
    ui.files.onchange = () => {
      this.onFiles(ui.files.files);
      ui.files.value = '';
    };
    this.#fillWorkers();
  }

  /** Workers: Auto, 1, 2, 4, … up to this machine's cores (2 at least, to try a split). */
  #fillWorkers() {
    const cores = Math.max(2, navigator.hardwareConcurrency || 1);
    const counts = [1, 2, 4, 8, 16].filter((n) => n <= cores);
    const options = [new Option('Auto', 'auto'), ...counts.map((n) => new Option(String(n), String(n)))];
    this.ui.workers.replaceChildren(...options);
  }

  /** The workers chosen: 'auto' or a number. */
  workers() {
    const value = this.ui.workers.value;
    return value === 'auto' ? 'auto' : Number(value);
  }

  /** Fills the picker: the server's models (www/models/models.json), then the public presets. */
  async fillPresets() {
    let served = { default: null, models: [] };
    try {
      const response = await fetch('models/models.json');
      if (response.ok) served = await response.json();
    } catch {
      // No models on this server: the public presets are enough.
    }
    const base = location.href;
    const local = served.models.map((m) => ({
      ...m,
      label: `${m.name} (${formatBytes(m.size)}, on this server)`,
      model: new URL(m.model, base).href,
      tokenizer: new URL(m.tokenizer, base).href,
    }));
    this.presets = [...local, ...PUBLIC_PRESETS];
    const defaultUrl = served.default ? new URL(served.default, base).href : null;
    this.defaultPreset = this.presets.find((p) => p.model === defaultUrl) ?? this.presets[0];
    this.ui.preset.replaceChildren(
      ...this.presets.map((preset) => {
        const option = new Option(preset.label);
        option.preset = preset;
        return option;
      }),
      Object.assign(new Option('Other URLs (type them below)'), { value: 'urls' }),
    );
    this.#showUrls(this.defaultPreset);
  }

  /** The first preset trained to chat (the chat mode prefers it), or undefined. */
  chatPreset() {
    return this.presets.find((p) => isChatModel(p));
  }

  /** Absolute URLs of every preset (a link may load those without asking). */
  knownUrls() {
    return new Set(this.presets.flatMap((p) => [p.model, p.tokenizer]));
  }

  /** Shows `urls` ({ model, tokenizer }) in the fields and the picker. */
  #showUrls({ model, tokenizer }) {
    this.#files = null;
    this.#removeFilesOption();
    this.ui.modelUrl.value = model;
    this.ui.tokenizerUrl.value = tokenizer;
    for (const input of [this.ui.modelUrl, this.ui.tokenizerUrl]) input.placeholder = '';
    this.#matchPreset();
  }

  /** Selects the preset whose URLs the fields hold, else "Other URLs". */
  #matchPreset() {
    this.#files = null;
    this.#removeFilesOption();
    const { modelUrl, tokenizerUrl, preset } = this.ui;
    const index = this.presets.findIndex((p) => p.model === modelUrl.value && p.tokenizer === tokenizerUrl.value);
    preset.selectedIndex = index >= 0 ? index : this.presets.length;
  }

  #removeFilesOption() {
    this.ui.preset.querySelector('option[value="files"]')?.remove();
  }

  /** Shows a model and tokenizer chosen by URL (a link, or a load that failed): fields, picker. */
  showUrls(model, tokenizer) {
    this.#showUrls({ model, tokenizer });
  }

  /**
   * Shows local files as the choice: the picker says "Local files: …", the URL fields are
   * emptied (a file has no URL, so nothing here can be linked).
   * @param {File} model
   * @param {File | string} tokenizer a File, or the URL of the tokenizer in use
   */
  showFiles(model, tokenizer) {
    const name = typeof tokenizer === 'string' ? model.name : `${model.name} + ${tokenizer.name}`;
    this.#removeFilesOption();
    const option = new Option(`Local files: ${name}`, 'files');
    this.ui.preset.append(option);
    this.ui.preset.value = 'files';
    this.ui.modelUrl.value = '';
    this.ui.modelUrl.placeholder = `local file ${model.name}`;
    if (typeof tokenizer !== 'string') {
      this.ui.tokenizerUrl.value = '';
      this.ui.tokenizerUrl.placeholder = `local file ${tokenizer.name}`;
    }
    this.#files = { model, tokenizer };
  }

  /**
   * What is chosen now, or `{ problem }` when the fields do not make a model.
   * @returns {Selection | { problem: string }}
   */
  selection() {
    if (this.#files) {
      const { model, tokenizer } = this.#files;
      return { kind: 'files', name: stem(model.name), model, tokenizer };
    }
    const base = location.href;
    const model = checkFileUrl('model', this.ui.modelUrl.value.trim(), base, { link: false });
    if (!this.ui.modelUrl.value.trim()) return { problem: 'Choose a model: a preset, a checkpoint URL, or local files.' };
    if (model.problem) return { problem: model.problem };
    const tokenizer = checkFileUrl('tokenizer', this.ui.tokenizerUrl.value.trim(), base, { link: false });
    if (!this.ui.tokenizerUrl.value.trim()) return { problem: 'The checkpoint needs its tokenizer: give the tokenizer URL too.' };
    if (tokenizer.problem) return { problem: tokenizer.problem };
    const preset = this.presets.find((p) => p.model === model.url && p.tokenizer === tokenizer.url);
    return {
      kind: 'urls', name: preset?.name ?? urlName(model.url), model: model.url, tokenizer: tokenizer.url,
      ...(preset?.size !== undefined && { size: preset.size }), ...(preset?.sha256 && { sha256: preset.sha256 }),
      ...(preset?.chat !== undefined && { chat: preset.chat }),
    };
  }

  /** Buttons by what runs (main.js's state). */
  setControls({ loading, dead }) {
    this.ui.load.disabled = loading || dead;
    this.ui.cancel.disabled = !loading;
    this.ui.files.disabled = dead;
  }

  // -------------------------------------------------------------------------------------
  // The one-line summary and the facts
  // -------------------------------------------------------------------------------------

  /** Nothing loaded yet: what Generate will load. */
  showChosen(selection, why = 'not loaded yet: Generate loads it') {
    this.ui.summary.textContent = selection.problem ? 'none chosen' : `${selection.name} (${why})`;
    this.ui.summary.dataset.state = 'none';
    this.ui.facts.replaceChildren();
  }

  showLoading(selection) {
    this.ui.summary.textContent = `loading ${selection.name}…`;
    this.ui.summary.dataset.state = 'loading';
    this.ui.facts.replaceChildren();
  }

  showFailed(selection, cancelled) {
    this.ui.summary.textContent = `${selection.name}: ${cancelled ? 'load cancelled' : 'failed to load'}, none loaded`;
    this.ui.summary.dataset.state = 'failed';
    this.ui.facts.replaceChildren();
  }

  /**
   * The loaded model: the summary line and the facts.
   * @param {Selection} selection
   * @param {{ config: object, variant: string, wasmMemoryBytes: number }} loaded the worker's `loaded`
   */
  showLoaded(selection, { config: c, variant, wasmMemoryBytes }) {
    this.ui.summary.textContent = [selection.name, formatBytes(c.file_size), precision(c.format), workersText(c)].join(' · ');
    this.ui.summary.dataset.state = 'loaded';
    const split = c.workers > 1;
    // The model's own memory is the main figure: the engine's wasm memory only grows (wasm
    // memories cannot shrink), so after a big model it overstates a small one.
    const modelBytes = split ? c.file_size + c.kv_cache_bytes : c.memory_bytes;
    const facts = [
      ['model', 'Model', c.name, ''],
      ['format', 'Format', c.format, ''],
      ['shape', 'Shape', `dim ${c.dim}, hidden ${c.hidden_dim}, ${c.n_layers} layers, ${c.n_heads} heads (${c.n_kv_heads} kv), vocab ${c.vocab_size}, seq_len ${c.seq_len}`, ''],
      ['parameters', 'Parameters', c.params >= 1e6 ? `${(c.params / 1e6).toFixed(1)} M` : `${(c.params / 1e3).toFixed(0)} K`, c.params],
      ['context', 'Context', c.context < c.seq_len
        ? `context ${c.context} of ${c.seq_len} positions: the full KV cache does not fit`
        : `${c.context} positions (the whole seq_len)`, c.context],
      ['memory', 'Memory', `${formatBytes(modelBytes)}: weights ${formatBytes(c.file_size)} + KV cache ${formatBytes(c.kv_cache_bytes)}${split ? `, over ${c.workers} workers` : ''}`, modelBytes],
      ['workers', 'Workers', splitIsSlow(c.file_size, c.workers, c.transport)
        ? `${workersText(c)}: slower than 1 worker for a model this small (the workers meet several times per layer of every token; Auto splits only where it pays)`
        : workersText(c), c.workers],
      ['isolation', 'Shared memory', ISOLATION[this.isolation] ?? this.isolation, this.isolation],
      ['wasm-memory', 'Engine', `${variant} build; its wasm memory is ${formatBytes(wasmMemoryBytes)} (it grows for the largest model loaded so far and is reused, never returned)`, wasmMemoryBytes],
    ];
    this.ui.facts.replaceChildren(
      ...facts.flatMap(([key, label, text, value]) => {
        const dt = document.createElement('dt');
        const dd = document.createElement('dd');
        dt.textContent = label;
        dd.textContent = text;
        dd.dataset.fact = key;
        if (value !== '') dd.dataset.value = String(value);
        return [dt, dd];
      }),
    );
  }

  /** Opens the section (to show an error or a choice made elsewhere). */
  open() {
    this.ui.panel.open = true;
  }
}
