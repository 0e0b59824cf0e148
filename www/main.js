// main.js: the page. All model work happens in worker.js; this file only wires the UI to it.
// Model text goes into the page with textContent only.

import { EngineClient } from './client.js'; // the engine worker's protocol
import { RETRYABLE } from './errors.js';
import { installOffline } from './offline.js'; // weight cache panel + app-shell service worker
import { installPermalinks } from './permalink.js'; // settings <-> URL
import { isolate } from './isolation.js'; // shared memory on any host (may reload once)

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

// Before the engine's worker starts: an isolated page gives it shared memory.
await isolate();
const engine = new EngineClient();
installOffline(engine);
/** The request running now (load or generate), or null; `kind` 'dead' once the worker died. */
let current = { kind: null, run: null };
/** Text and timing of the generation being shown. */
let story = { text: '', tokens: 0, t0: 0, ttftMs: null, frame: 0 };
let ready = false;
/** The last load requested, for the Retry button after a network error. */
let lastLoad = null;

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

/** Shows a failed request's error (a load's also ends its progress line). */
function failed(kind, err) {
  if (engine.dead) return; // the dead handler says it
  if (kind === 'load') {
    ui.progressText.textContent = err.kind === 'cancelled' ? 'cancelled' : 'failed';
    ready = false;
  }
  if (err.kind !== 'cancelled') showError(err.message);
  ui.retry.hidden = !(kind === 'load' && RETRYABLE.has(err.kind));
  setBusy(null);
}

function load(model, tokenizer) {
  if (current.kind === 'dead') return;
  ready = false;
  showError('');
  ui.facts.replaceChildren();
  ui.progress.value = 0;
  ui.progressText.textContent = 'starting…';
  ui.progressRow.hidden = false;
  lastLoad = { model, tokenizer };
  current.run?.stop();
  const run = engine.load({ model, tokenizer }, { onProgress: (p) => run === current.run && showProgress(p) });
  current.run = run;
  setBusy('load');
  run.done.then(
    (data) => {
      if (run !== current.run) return;
      ready = true;
      ui.progress.value = 1;
      ui.progressText.textContent = `loaded ${data.config.name} (${mb(data.config.file_size)})`;
      showFacts(data.config, data.variant, data.wasmMemoryBytes);
      setBusy(null);
    },
    (err) => run === current.run && failed('load', err),
  );
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

// The worker died (a wasm trap such as running out of memory): say so and offer a reload
// instead of hanging.
engine.on('dead', (err) => {
  showError(err.message);
  ui.reload.hidden = false;
  ready = false;
  setBusy('dead');
});
ui.retry.onclick = () => lastLoad && load(lastLoad.model, lastLoad.tokenizer);
ui.reload.onclick = () => location.reload();

ui.generate.onclick = () => {
  if (current.kind === 'dead') return;
  showError('');
  story = { text: '', tokens: 0, t0: performance.now(), ttftMs: null, frame: 0 };
  ui.output.textContent = '';
  delete ui.output.dataset.done;
  ui.stats.textContent = '';
  const number = (input) => (input.value === '' ? undefined : Number(input.value));
  const run = engine.generate(
    {
      prompt: ui.prompt.value,
      temperature: number(ui.temperature),
      topp: number(ui.topp),
      steps: number(ui.steps),
      seed: ui.seed.value.trim(),
    },
    {
      onPiece: (text) => {
        story.ttftMs ??= performance.now() - story.t0;
        story.tokens++;
        story.text += text;
        story.frame ||= requestAnimationFrame(render);
      },
    },
  );
  current.run = run;
  setBusy('generate');
  run.done.then(
    (data) => {
      cancelAnimationFrame(story.frame);
      render();
      // The worker's own timing, without message latency.
      story.ttftMs = data.ttftMs;
      story.t0 = performance.now() - data.ms;
      showStats(data);
      ui.output.dataset.seed = data.seed; // for permalink.js, before `done`
      ui.output.dataset.done = data.reason;
      if (run === current.run) setBusy(null);
    },
    (err) => failed('generate', err),
  );
};
ui.stop.onclick = () => current.kind === 'generate' && current.run?.stop();
ui.cancel.onclick = () => current.kind === 'load' && current.run?.stop();
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
