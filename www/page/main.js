// main.js: the page. A story first: the prompt, Generate and the text; the first Generate
// loads the chosen model (the server's best story model unless the reader picks another).
// Inspect mode shows the same story token by token (inspect-view.js), with Step.
// All model work happens in the engine's worker (client.js); this file keeps the page's
// state in one place (`state`) and every control consistent with it. Model text goes into
// the page with textContent only.

import { ChatView } from './chat.js';
import { EngineClient } from '../worker/client.js'; // the engine worker's protocol
import { InspectView } from '../ui/inspect-view.js'; // the story token by token
import { RETRYABLE } from '../engine/errors.js';
import { isolate } from './isolation.js'; // shared memory on any host (may reload once)
import { ModelPanel } from './model-panel.js'; // model choice, workers, summary and facts
import { installOffline } from './offline.js'; // weight cache list + app-shell service worker
import { foreignFiles, LINK_FIELDS, readLink, remoteSize, toLink } from './permalink.js';
import { STORY_DEFAULTS } from '../ui/story-settings.js';
import { StoryText } from '../ui/story-text.js'; // the text as it streams, once per frame
import { endInWords, formatBytes, networkHint, readable } from '../ui/wording.js';

const $ = (id) => document.getElementById(id);
const ui = {
  prompt: $('prompt'), generate: $('generate'), stop: $('stop'), stats: $('stats'),
  progressRow: $('progress-row'), progress: $('progress'), progressText: $('progress-text'),
  linkCheck: $('link-check'), output: $('output'), endNote: $('end-note'), permalink: $('permalink'),
  step: $('step'), inspectView: $('inspect-view'),
  temperature: $('temperature'), topp: $('topp'), steps: $('steps'), seed: $('seed'),
  settingsSummary: $('settings-summary'), storyPanel: $('story-panel'), chatPanel: $('chat-panel'),
};
/** Where an error is shown: next to the control whose action failed. */
const errorSlots = { story: $('story-error'), chat: $('chat-error'), model: $('model-error') };

const state = {
  /** The model the worker holds: { selection, workers, config, variant, wasmMemoryBytes }. */
  loaded: null,
  /** The request running: { kind: 'load' | 'generate' | 'chat', run, origin: 'story' | 'chat' | 'model' }. */
  busy: null,
  /** Why the engine's worker is gone (a LlamaError), until Restart. */
  dead: null,
  /** Bumped by every load and story: a chat from an older epoch is no longer in the engine. */
  epoch: 0,
  /** The settings of the last story of the loaded model (for the address bar), or null. */
  story: null,
  /** Whether the engine holds the Inspect view's story (branch and lens need it): nothing
   * else ran since. */
  inspected: false,
  /** The model whose workers lost each other, until it is loaded again. */
  lost: null,
};

// Before the engine's worker starts: an isolated page gives it shared memory.
const isolation = await isolate();
const panel = new ModelPanel({ isolation });
const offline = installOffline({ into: $('cache-slot') });
let engine = startEngine();

function startEngine() {
  const client = new EngineClient();
  offline.watch(client);
  client.on('dead', (err) => client === engine && engineDied(err));
  return client;
}

// ---------------------------------------------------------------------------------------
// Errors, next to what failed
// ---------------------------------------------------------------------------------------

function clearErrors() {
  for (const slot of Object.values(errorSlots)) slot.hidden = true;
}

/**
 * Shows `err` in the slot of `origin`, with an optional action button (Retry, Restart…).
 * @param {'story' | 'chat' | 'model'} origin
 * @param {{ kind?: string, message: string }} err
 * @param {{ hint?: string, action?: { label: string, run: () => void } }} [more]
 */
function showError(origin, err, { hint = '', action = null } = {}) {
  if (err.kind === 'shards') ({ action } = workersLost(origin));
  clearErrors();
  const slot = errorSlots[origin];
  slot.dataset.kind = err.kind ?? '';
  slot.querySelector('.message').textContent = err.message;
  slot.querySelector('.hint').textContent = hint;
  slot.querySelector('.hint').hidden = !hint;
  const button = slot.querySelector('.retry');
  button.hidden = !action;
  if (action) {
    button.textContent = action.label;
    button.onclick = () => {
      clearErrors();
      action.run();
    };
  }
  slot.hidden = false;
  if (origin === 'model') panel.open();
}

/**
 * The model's workers lost each other (a story, a chat, the Inspect view: wherever it showed):
 * the model is gone and must be loaded again, on new workers. A Retry could not work; the
 * action offered is "Load the model again", back in the mode the reader was in.
 */
function workersLost(origin) {
  const selection = state.loaded?.selection ?? state.lost;
  state.lost = selection;
  state.loaded = null;
  state.inspected = false;
  if (!selection) return { action: null };
  panel.showFailed(selection, false);
  const reload = () => {
    replaceEngine();
    load(selection, origin);
  };
  return { action: { label: 'Load the model again', run: reload } };
}

// ---------------------------------------------------------------------------------------
// Controls
// ---------------------------------------------------------------------------------------

function updateControls() {
  const busy = state.busy?.kind ?? null;
  const origin = state.busy?.origin ?? null;
  const dead = state.dead !== null;
  ui.generate.disabled = dead || busy !== null;
  ui.step.disabled = dead || busy !== null;
  ui.stop.disabled = !(busy === 'generate' || (busy === 'load' && origin === 'story'));
  panel.setControls({ loading: busy === 'load', dead });
  chat.setControls({ busy, origin, dead });
  document.body.dataset.busy = dead ? 'dead' : (busy ?? 'idle');
}

function setBusy(busy) {
  state.busy = busy;
  updateControls();
}

/** Ends `run`'s hold on the page; false when a newer request took over already. */
function endRun(run) {
  if (state.busy?.run !== run) return false;
  setBusy(null);
  return true;
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

function showProgress(text, value = 0) {
  ui.progressRow.hidden = false;
  ui.progress.value = value;
  ui.progressText.textContent = text;
}

function onProgress({ file, name, loaded, total }) {
  const pct = total ? ` (${Math.round((100 * loaded) / total)}%)` : '';
  showProgress(`${file} ${name}: ${formatBytes(loaded)} of ${formatBytes(total)}${pct}`, total ? loaded / total : 0);
}

/** Whether the worker holds `selection` with the workers chosen now. */
function holds(selection) {
  const l = state.loaded;
  if (!l || l.workers !== panel.workers() || l.selection.kind !== selection.kind) return false;
  return l.selection.model === selection.model && l.selection.tokenizer === selection.tokenizer;
}

/** The URL a network error most likely concerns: a file on another site, else the model. */
function suspectUrl(selection) {
  if (selection.kind !== 'urls') return undefined;
  return [selection.model, selection.tokenizer].find((u) => new URL(u).origin !== location.origin) ?? selection.model;
}

/**
 * Loads `selection` into the worker. Progress shows under the button that asked; errors next
 * to it (`origin`). Resolves true once loaded.
 * @param {import('./model-panel.js').Selection} selection
 * @param {'story' | 'chat' | 'model'} origin
 * @param {() => void} [retry] what Retry does after a network error (default: this load again)
 */
function load(selection, origin, retry = () => load(selection, origin)) {
  if (state.dead) return Promise.resolve(false);
  clearErrors();
  hideLinkCheck();
  state.loaded = null;
  state.story = null;
  state.inspected = false;
  state.epoch++;
  const workers = panel.workers();
  panel.showLoading(selection);
  ui.output.classList.add('stale'); // the story shown is no longer the loaded model's
  showProgress('starting…');
  const files = selection.kind === 'urls'
    ? { model: selection.model, tokenizer: selection.tokenizer, size: selection.size, sha256: selection.sha256 }
    : { model: selection.model, tokenizer: selection.tokenizer };
  const run = engine.load({ ...files, workers }, { onProgress: (p) => state.busy?.run === run && onProgress(p) });
  setBusy({ kind: 'load', run, origin });
  return run.done.then(
    (data) => {
      if (!endRun(run)) return false;
      state.loaded = { selection, workers, ...data };
      state.lost = null;
      showProgress(`loaded ${selection.name} (${formatBytes(data.config.file_size)})`, 1);
      panel.showLoaded(selection, data);
      syncAddress();
      return true;
    },
    (err) => {
      if (!endRun(run) || state.dead) return false;
      const cancelled = err.kind === 'cancelled';
      showProgress(cancelled ? 'cancelled' : 'failed');
      panel.showFailed(selection, cancelled);
      syncAddress();
      if (!cancelled) {
        showError(origin, err, {
          hint: err.kind === 'network' ? networkHint(suspectUrl(selection)) : '',
          action: RETRYABLE.has(err.kind) ? { label: 'Retry', run: retry } : null,
        });
      }
      return false;
    },
  );
}

/** Makes sure the chosen model is loaded (loading it if not); resolves false if it is not. */
async function ensureModel(origin) {
  const selection = panel.selection();
  if (selection.problem) {
    showError('model', { kind: 'options', message: selection.problem });
    return false;
  }
  if (holds(selection)) return true;
  return load(selection, origin, origin === 'story' ? () => generate() : undefined);
}

// ---------------------------------------------------------------------------------------
// Stories
// ---------------------------------------------------------------------------------------

/** The text and timing of the story shown. */
let story = { text: new StoryText(render), t0: 0, ttftMs: null };

/** A number field: undefined when empty (the engine's default applies). */
const number = (input) => (input.value.trim() === '' ? undefined : Number(input.value));

/** The sampling settings of the Settings section. */
function sampling() {
  return { temperature: number(ui.temperature), topp: number(ui.topp), steps: number(ui.steps), seed: ui.seed.value.trim() };
}

function showStats(done) {
  const seconds = (performance.now() - story.t0) / 1000;
  const { tokens } = story.text;
  const parts = [`${tokens} tokens`, `${(tokens / Math.max(seconds, 1e-3)).toFixed(1)} tok/s`];
  if (story.ttftMs !== null) parts.push(`first token ${story.ttftMs.toFixed(0)} ms`);
  if (done) parts.push(`seed ${done.seed}`);
  ui.stats.textContent = parts.join(' · ');
}

/** Draws the story's text (at most once per frame: `StoryText`). */
function render(text) {
  ui.output.textContent = text;
  showStats(null);
}

/**
 * Generate: loads the chosen model if the worker does not hold it, then writes a story (in
 * Inspect mode, token by token; with `take`, only that many new tokens, for Step).
 */
async function generate({ take } = {}) {
  if (state.busy || state.dead) return;
  clearErrors();
  hideLinkCheck();
  if (!(await ensureModel('story'))) return;
  const options = { prompt: ui.prompt.value, ...sampling() };
  if (mode() === 'inspect') return inspectStory(options, take);
  const { config } = state.loaded;
  state.epoch++;
  state.inspected = false;
  ui.progressRow.hidden = true;
  story = { text: new StoryText(render), t0: performance.now(), ttftMs: null };
  ui.output.textContent = '';
  ui.output.classList.remove('stale');
  delete ui.output.dataset.done;
  ui.endNote.hidden = true;
  ui.stats.textContent = '';
  const run = engine.generate(options, {
    onPiece: (text) => {
      story.ttftMs ??= performance.now() - story.t0;
      story.text.push(text);
    },
  });
  setBusy({ kind: 'generate', run, origin: 'story' });
  run.done.then(
    (done) => {
      story.text.flush();
      // The worker's own timing, without message latency.
      story.ttftMs = done.ttftMs;
      story.t0 = performance.now() - done.ms;
      showStats(done);
      ui.endNote.textContent = endInWords(done, { context: config.context, seqLen: config.seq_len, steps: options.steps ?? 0 });
      ui.endNote.dataset.reason = done.reason;
      ui.endNote.hidden = false;
      if (state.loaded?.config === config) {
        state.story = { ...options, seed: done.seed };
        syncAddress();
      }
      endRun(run);
      ui.output.dataset.seed = done.seed;
      ui.output.dataset.done = done.reason; // last: tests wait for it
    },
    (err) => {
      story.text.flush();
      if (!endRun(run) || state.dead) return;
      showError('story', err); // (workers lost: it offers to load the model again)
    },
  );
}

function stop() {
  const busy = state.busy;
  if (busy?.kind === 'generate' || (busy?.kind === 'load' && busy.origin === 'story')) busy.run.stop();
}

// ---------------------------------------------------------------------------------------
// Inspect: the story token by token (inspect-view.js runs its requests through `inspectRun`)
// ---------------------------------------------------------------------------------------

/** Runs one of the view's requests when the engine is free; resolves with its reply. */
function inspectRun(start, what) {
  if (state.busy || state.dead || !state.loaded) return null;
  clearErrors();
  const run = start(engine);
  if (what !== 'lens') {
    // The engine's story is now the view's (a chat in the engine is over).
    state.epoch++;
    state.inspected = true;
    ui.progressRow.hidden = true;
    ui.endNote.hidden = true;
    ui.stats.textContent = '';
  }
  setBusy({ kind: what === 'lens' ? 'lens' : 'generate', run, origin: 'story' });
  return run.done.finally(() => endRun(run));
}

/** A story, a branch or a step has ended: its figures, and why it ended. */
function inspectEnded(done) {
  // The Story mode shows the same story as text.
  ui.output.textContent = readable(inspect.text);
  ui.output.classList.remove('stale');
  ui.stats.textContent = `${done.tokens} tokens · ${(done.tokens / Math.max(done.ms / 1000, 1e-3)).toFixed(1)} tok/s · seed ${done.seed}`;
  const config = state.loaded?.config;
  ui.endNote.hidden = done.reason === 'paused' || !config; // the view says it is paused
  if (!ui.endNote.hidden) {
    ui.endNote.textContent = endInWords(done, { context: config.context, seqLen: config.seq_len, steps: number(ui.steps) ?? 0 });
    ui.endNote.dataset.reason = done.reason;
  }
}

const inspect = new InspectView(ui.inspectView, {
  run: inspectRun,
  holds: () => state.inspected && state.loaded !== null,
  showError: (err) => state.dead || showError('story', err),
  ended: inspectEnded,
});

/** A new story in the Inspect view (`take`: paused after that many new tokens). */
async function inspectStory(options, take) {
  const config = state.loaded.config;
  try {
    const done = await inspectRun((client) => inspect.start(client, options, { take }), 'story');
    if (done && state.loaded?.config === config) {
      state.story = { ...options, seed: done.seed };
      syncAddress();
    }
  } catch (err) {
    if (!state.dead) showError('story', err);
  }
}

/** Step: the paused story's next token, or a new story's first one. */
async function step() {
  if (!inspect.paused) return generate({ take: 1 });
  try {
    await inspectRun((client) => inspect.more(client, 1), 'more');
  } catch (err) {
    if (!state.dead) showError('story', err);
  }
}

// ---------------------------------------------------------------------------------------
// The address bar and the story's link
// ---------------------------------------------------------------------------------------

/** The address bar says what is loaded (and the last story): nothing for local files or none. */
function syncAddress() {
  const l = state.loaded;
  const base = location.pathname;
  if (!l || l.selection.kind !== 'urls') {
    history.replaceState(null, '', base);
    ui.permalink.hidden = true;
    return;
  }
  const settings = { model: l.selection.model, tokenizer: l.selection.tokenizer };
  if (state.story) {
    Object.assign(settings, { prompt: state.story.prompt, seed: state.story.seed });
    for (const key of ['temperature', 'topp', 'steps']) settings[key] = state.story[key];
  }
  const link = toLink(settings, location.href);
  history.replaceState(null, '', `${base}${link}`);
  ui.permalink.href = link;
  ui.permalink.hidden = state.story === null;
}

function hideLinkCheck() {
  ui.linkCheck.hidden = true;
  ui.linkCheck.replaceChildren();
}

/**
 * A link to files on other sites: says what it would load (host, size when the server says)
 * and waits for a click.
 */
function askBeforeLoading(foreign, settings) {
  const title = document.createElement('p');
  title.textContent = 'This link loads files from another site. Nothing is downloaded until you agree:';
  const list = document.createElement('ul');
  const controller = new AbortController();
  for (const file of foreign) {
    const li = document.createElement('li');
    li.dataset.what = file.what;
    li.dataset.host = file.host;
    const name = new URL(file.url).pathname.split('/').pop();
    const say = (size) => (li.textContent = `${file.what}: ${name} from ${file.host} (${size})`);
    say('size: asking the server…');
    remoteSize(file.url, controller.signal).then((size) => {
      li.dataset.size = size === null ? 'unknown' : String(size);
      say(size === null ? 'size unknown' : formatBytes(size));
    });
    list.append(li);
  }
  const go = document.createElement('button');
  go.type = 'button';
  go.className = 'primary';
  go.id = 'link-load';
  go.textContent = 'Load and generate';
  go.onclick = () => {
    controller.abort();
    generate();
  };
  const no = document.createElement('button');
  no.type = 'button';
  no.id = 'link-cancel';
  no.textContent = 'Not now';
  no.onclick = () => {
    controller.abort();
    hideLinkCheck();
    panel.showUrls(panel.defaultPreset.model, panel.defaultPreset.tokenizer);
    panel.showChosen(panel.selection());
    history.replaceState(null, '', location.pathname);
  };
  const row = document.createElement('div');
  row.className = 'actions';
  row.append(go, no);
  ui.linkCheck.replaceChildren(title, list, row);
  ui.linkCheck.hidden = false;
  panel.showChosen(panel.selection(), `from the link, waiting for your click`);
  void settings;
}

/** A link's model and settings: fills the page, then generates (or first asks, see above). */
function openLink() {
  const { settings, problem } = readLink(location.href);
  if (problem) {
    history.replaceState(null, '', location.pathname); // the address no longer claims the link's model
    showError('story', { kind: 'options', message: problem }, {
      hint: `The page stays on ${panel.defaultPreset?.name ?? 'its default model'}; nothing was loaded from the link.`,
    });
    return;
  }
  if (!settings) return;
  panel.showUrls(settings.model, settings.tokenizer);
  if (settings.prompt !== undefined) ui.prompt.value = settings.prompt;
  for (const key of LINK_FIELDS) if (settings[key] !== undefined) ui[key].value = settings[key];
  showSettings();
  const foreign = foreignFiles(settings, location.href, panel.knownUrls());
  if (foreign.length) askBeforeLoading(foreign, settings);
  else generate();
}

// ---------------------------------------------------------------------------------------
// The engine's end, and a new one
// ---------------------------------------------------------------------------------------

function engineDied(err) {
  const origin = state.busy?.origin ?? (chatMode() ? 'chat' : 'story');
  const selection = state.loaded?.selection;
  state.dead = err;
  state.loaded = null;
  state.busy = null;
  ui.progressRow.hidden = true;
  if (selection) panel.showChosen(selection, 'the engine stopped');
  showError(origin, err, {
    hint: 'The engine runs in a worker of this page; a new one starts with no model loaded.',
    action: { label: 'Restart the engine', run: restart },
  });
  updateControls();
}

/** Ends the engine's worker (and its model's other workers) for a new one. */
function replaceEngine() {
  const old = engine;
  engine = startEngine(); // first: the old one's end is then not taken for a death
  old.terminate();
  state.loaded = null;
}

/** A new engine worker; the next Generate (or Load) loads the model again. */
function restart() {
  replaceEngine();
  state.dead = null;
  state.inspected = false;
  state.epoch++;
  clearErrors();
  panel.showChosen(panel.selection());
  updateControls();
}

// ---------------------------------------------------------------------------------------
// Modes, settings, files
// ---------------------------------------------------------------------------------------

/** @returns {'story' | 'chat' | 'inspect'} */
const mode = () => document.querySelector('input[name="mode"]:checked')?.value ?? 'story';
const chatMode = () => mode() === 'chat';

function showMode() {
  const isChat = chatMode();
  const inspecting = mode() === 'inspect';
  ui.storyPanel.hidden = isChat;
  ui.chatPanel.hidden = !isChat;
  // Inspect is the story panel with the view in place of the text.
  ui.output.hidden = inspecting;
  ui.inspectView.hidden = !inspecting;
  ui.step.hidden = !inspecting;
  // The progress bar stays where the reader acts.
  (isChat ? ui.chatPanel : ui.storyPanel).querySelector('.status').prepend(ui.progressRow);
  document.body.dataset.mode = mode();
}

function showSettings() {
  const { temperature, topp, steps, seed } = sampling();
  const parts = [
    `temperature ${temperature ?? '–'}`, `top-p ${topp ?? '–'}`,
    steps === 0 ? 'steps: the whole context' : `${steps ?? '–'} steps`, `seed ${seed || 'from the time'}`,
  ];
  ui.settingsSummary.textContent = parts.join(' · ');
}

/** Local files: the one named like a tokenizer (or the smaller of two) is the tokenizer. */
function loadFiles(files) {
  const bins = [...files];
  if (bins.length === 0) return;
  if (bins.length > 2) return showError('model', { kind: 'options', message: 'Choose one checkpoint, optionally with its tokenizer.' });
  bins.sort((a, b) => /tok/i.test(b.name) - /tok/i.test(a.name) || a.size - b.size);
  let model = bins[0];
  let tokenizer;
  if (bins.length === 2) [tokenizer, model] = bins;
  else {
    // One file: the tokenizer chosen so far (a URL, or an earlier local file).
    const chosen = panel.selection();
    tokenizer = chosen.tokenizer;
    if (!tokenizer) return showError('model', { kind: 'options', message: `${model.name} needs its tokenizer: open both files together.` });
  }
  panel.showFiles(model, tokenizer);
  load(panel.selection(), 'model');
}

const chat = new ChatView({
  engine: () => engine,
  ensureModel,
  options: sampling,
  limits: () => ({ context: state.loaded?.config.context ?? 0, seqLen: state.loaded?.config.seq_len ?? 0 }),
  epoch: () => state.epoch,
  begin: (run, kind) => {
    ui.progressRow.hidden = true;
    state.inspected = false;
    setBusy({ kind, run, origin: 'chat' });
  },
  end: endRun,
  busy: () => state.busy,
  showError: (origin, err, retry) => state.dead || showError(origin, err, {
    hint: err.kind === 'network' ? networkHint(undefined) : '',
    action: retry && RETRYABLE.has(err.kind) ? { label: 'Retry', run: retry } : null,
  }),
  clearErrors,
  dead: () => state.dead !== null,
});

ui.generate.onclick = () => generate();
ui.stop.onclick = stop;
ui.step.onclick = step;
ui.prompt.onkeydown = (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) generate();
};
panel.ui.load.onclick = () => {
  const selection = panel.selection();
  if (selection.problem) return showError('model', { kind: 'options', message: selection.problem });
  load(selection, 'model');
};
panel.ui.cancel.onclick = () => state.busy?.kind === 'load' && state.busy.run.stop();
panel.onFiles = loadFiles;
panel.ui.preset.addEventListener('change', () => state.loaded || panel.showChosen(panel.selection()));
for (const input of [ui.temperature, ui.topp, ui.steps, ui.seed]) input.addEventListener('input', showSettings);
for (const radio of document.querySelectorAll('input[name="mode"]')) radio.onchange = showMode;
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

// Start: the story defaults here, the engine's own for the rest, then a link's settings.
ui.prompt.value = STORY_DEFAULTS.prompt;
ui.temperature.value = String(STORY_DEFAULTS.temperature);
showMode();
updateControls();
showSettings();
engine.defaults().then((defaults) => {
  // The engine's numbers are f32: 0.9 arrives as 0.8999999761581421.
  const short = (x) => String(Number(x.toPrecision(6)));
  if (ui.topp.value === '') ui.topp.value = short(defaults.topp);
  if (ui.steps.value === '') ui.steps.value = short(defaults.steps);
  showSettings();
}, () => {}); // a dead engine is said by its handler
await panel.fillPresets();
panel.showChosen(panel.selection());
openLink();
document.body.dataset.ready = 'true';
