// main.js: the page. All model work happens in worker.js; this file only wires the UI to it.
// Model text goes into the page with textContent only.

import { installOffline } from './offline.js'; // weight cache panel + app-shell service worker
import { installPermalinks } from './permalink.js'; // settings <-> URL

const HF = 'https://huggingface.co/karpathy/tinyllamas/resolve/main';
const LLAMA_TOKENIZER = 'https://raw.githubusercontent.com/karpathy/llama2.c/master/tokenizer.bin';
/** Public checkpoints, each with its tokenizer. */
const PRESETS = [
  { name: 'stories260K (1 MB)', model: `${HF}/stories260K/stories260K.bin`, tokenizer: `${HF}/stories260K/tok512.bin` },
  { name: 'stories15M (58 MB)', model: `${HF}/stories15M.bin`, tokenizer: LLAMA_TOKENIZER },
  { name: 'stories42M (167 MB)', model: `${HF}/stories42M.bin`, tokenizer: LLAMA_TOKENIZER },
  { name: 'stories110M (438 MB)', model: `${HF}/stories110M.bin`, tokenizer: LLAMA_TOKENIZER },
];

const $ = (id) => document.getElementById(id);
const ui = {
  preset: $('preset'), modelUrl: $('model-url'), tokenizerUrl: $('tokenizer-url'),
  load: $('load'), cancel: $('cancel'), files: $('files'),
  progressRow: $('progress-row'), progress: $('progress'), progressText: $('progress-text'),
  facts: $('facts'), prompt: $('prompt'), temperature: $('temperature'), topp: $('topp'),
  steps: $('steps'), seed: $('seed'), generate: $('generate'), stop: $('stop'),
  stats: $('stats'), output: $('output'), error: $('error'),
  retry: $('retry'), reload: $('reload'),
};

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
installOffline(worker);
let nextId = 1;
/** The request whose replies we are waiting for (older replies are ignored). */
let current = { id: 0, kind: null };
/** Text and timing of the generation being shown. */
let story = { text: '', tokens: 0, t0: 0, ttftMs: null, frame: 0 };
let ready = false;
/** The last load requested, for the Retry button after a network error. */
let lastLoad = null;
/** Load errors worth retrying: the network failed (cache.js resumes after the whole parts). */
const NETWORK_ERROR = /cannot download \S+: (?!HTTP 4\d\d)|download ended/;

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
  ui.retry.hidden = true;
}

function setBusy(kind) {
  current.kind = kind;
  ui.load.disabled = kind === 'load' || kind === 'dead';
  ui.cancel.disabled = kind !== 'load';
  ui.generate.disabled = !ready || kind !== null;
  ui.stop.disabled = kind !== 'generate';
}

function send(kind, message) {
  if (current.kind === 'dead') return; // the worker is gone: only a reload helps
  showError('');
  current = { id: nextId++, kind };
  worker.postMessage({ ...message, type: kind, id: current.id });
  setBusy(kind);
}

function load(model, tokenizer) {
  ready = false;
  ui.facts.replaceChildren();
  ui.progress.value = 0;
  ui.progressText.textContent = 'starting…';
  ui.progressRow.hidden = false;
  lastLoad = { model, tokenizer };
  send('load', { model, tokenizer });
}

function showProgress({ file, name, loaded, total }) {
  ui.progress.value = total ? loaded / total : 0;
  const pct = total ? ` (${Math.round((100 * loaded) / total)}%)` : '';
  ui.progressText.textContent = `${file} ${name}: ${mb(loaded)} of ${mb(total)}${pct}`;
}

function showFacts(config, variant, wasmMemoryBytes) {
  const c = config;
  const facts = [
    ['Model', c.name, ''],
    ['Format', c.format, ''],
    ['Shape', `dim ${c.dim}, hidden ${c.hidden_dim}, ${c.n_layers} layers, ${c.n_heads} heads (${c.n_kv_heads} kv), vocab ${c.vocab_size}, context ${c.seq_len}`, ''],
    ['Parameters', c.params >= 1e6 ? `${(c.params / 1e6).toFixed(1)} M` : `${(c.params / 1e3).toFixed(0)} K`, c.params],
    ['Memory', `${mb(c.memory_bytes)} (file ${mb(c.file_size)}, KV cache ${mb(c.kv_cache_bytes)})`, c.memory_bytes],
    ['Wasm memory', `${mb(wasmMemoryBytes)} (${variant} build)`, wasmMemoryBytes],
  ];
  ui.facts.replaceChildren(
    ...facts.flatMap(([label, text, value]) => {
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = label;
      dd.textContent = text;
      dd.dataset.fact = label.toLowerCase().replace(' ', '-');
      if (value !== '') dd.dataset.value = String(value);
      return [dt, dd];
    }),
  );
}

function showStats(final) {
  const seconds = (performance.now() - story.t0) / 1000;
  const parts = [`${story.tokens} tokens`, `${(story.tokens / Math.max(seconds, 1e-3)).toFixed(1)} tok/s`];
  if (story.ttftMs !== null) parts.push(`first token ${story.ttftMs.toFixed(0)} ms`);
  if (final) parts.push(`seed ${final.seed}`, `end: ${final.reason}`);
  ui.stats.textContent = parts.join(' · ');
}

/** Renders at most once per frame: a fast model makes far more tokens than frames. */
function render() {
  story.frame = 0;
  ui.output.textContent = story.text;
  showStats(null);
}

worker.onmessage = ({ data }) => {
  if (data.id !== current.id) return;
  switch (data.type) {
    case 'progress':
      return showProgress(data);
    case 'loaded':
      ready = true;
      ui.progress.value = 1;
      ui.progressText.textContent = `loaded ${data.config.name} (${mb(data.config.file_size)})`;
      showFacts(data.config, data.variant, data.wasmMemoryBytes);
      return setBusy(null);
    case 'piece':
      story.ttftMs ??= performance.now() - story.t0;
      story.tokens++;
      story.text += data.text;
      story.frame ||= requestAnimationFrame(render);
      return;
    case 'done':
      cancelAnimationFrame(story.frame);
      render();
      // The worker's own timing, without message latency.
      story.ttftMs = data.ttftMs;
      story.t0 = performance.now() - data.ms;
      showStats(data);
      ui.output.dataset.seed = data.seed; // for permalink.js, before `done`
      ui.output.dataset.done = data.reason;
      return setBusy(null);
    case 'error':
      if (current.kind === 'load') {
        ui.progressText.textContent = data.cancelled ? 'cancelled' : 'failed';
        ready = false;
      }
      if (!data.cancelled) showError(data.message);
      ui.retry.hidden = !(current.kind === 'load' && NETWORK_ERROR.test(data.message));
      return setBusy(null);
  }
};

// An uncaught error in the worker (a wasm trap such as running out of memory, see worker.js)
// leaves the engine unusable: end the worker and offer a reload instead of hanging.
worker.onerror = (event) => {
  worker.terminate();
  showError(`The engine stopped: ${event.message ?? 'worker error'}. Reload the page to continue.`);
  ui.reload.hidden = false;
  ready = false;
  setBusy('dead');
};
ui.retry.onclick = () => lastLoad && load(lastLoad.model, lastLoad.tokenizer);
ui.reload.onclick = () => location.reload();

ui.generate.onclick = () => {
  story = { text: '', tokens: 0, t0: performance.now(), ttftMs: null, frame: 0 };
  ui.output.textContent = '';
  delete ui.output.dataset.done;
  ui.stats.textContent = '';
  const number = (input, fallback) => (input.value === '' ? fallback : Number(input.value));
  send('generate', {
    prompt: ui.prompt.value,
    temperature: number(ui.temperature, 1),
    topp: number(ui.topp, 0.9),
    steps: number(ui.steps, 256),
    seed: ui.seed.value.trim(),
  });
};
ui.stop.onclick = () => worker.postMessage({ type: 'stop' });
ui.cancel.onclick = () => worker.postMessage({ type: 'cancel' });
ui.load.onclick = () => load(ui.modelUrl.value, ui.tokenizerUrl.value);

ui.preset.onchange = () => {
  const preset = ui.preset.selectedOptions[0]?.preset;
  if (!preset) return;
  ui.modelUrl.value = new URL(preset.model, location.href).href;
  ui.tokenizerUrl.value = new URL(preset.tokenizer, location.href).href;
};

/** Local files: the one named like a tokenizer (or the smaller of two) is the tokenizer. */
function loadFiles(files) {
  const bins = [...files];
  if (bins.length === 0) return;
  if (bins.length > 2) return showError('Choose one checkpoint, optionally with its tokenizer.');
  bins.sort((a, b) => /tok/i.test(b.name) - /tok/i.test(a.name) || a.size - b.size);
  const [tokenizer, model] = bins.length === 2 ? bins : [ui.tokenizerUrl.value, bins[0]];
  load(model, tokenizer);
}
ui.files.onchange = () => {
  loadFiles(ui.files.files);
  ui.files.value = '';
};
document.addEventListener('dragover', (event) => {
  event.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (event) => {
  event.preventDefault();
  document.body.classList.remove('dragging');
  loadFiles(event.dataTransfer.files);
});

/** Fills the picker: models served from www/models (models.json, by build.sh serve), then presets. */
async function fillPresets() {
  let local = { default: null, models: [] };
  try {
    const response = await fetch('models/models.json');
    if (response.ok) local = await response.json();
  } catch {
    // No local models: the presets are enough.
  }
  const options = [...local.models.map((m) => ({ ...m, name: `${m.name} (local)` })), ...PRESETS].map((preset) => {
    const option = new Option(preset.name);
    option.preset = preset;
    option.selected = preset.model === local.default;
    return option;
  });
  ui.preset.replaceChildren(...options);
  ui.preset.onchange();
  installPermalinks(); // a permalink's model and settings override the preset
}

setBusy(null);
fillPresets();
