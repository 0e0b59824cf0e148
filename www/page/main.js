// main.js: the page. A story first: the prompt, Generate and the text; the first Generate
// loads the chosen model (the server's best story model unless the reader picks another).
// Inspect mode shows the same story token by token (inspect-view.js), with Step; Explain mode
// walks one token's forward pass stage by stage (explain-view.js).
// All model work happens in the engine's worker (client.js); this file keeps the page's
// state in one place (`state`) and every control consistent with it. Model text goes into
// the page with textContent only.

import { ChatView } from './chat.js';
import { EngineClient } from '../worker/client.js'; // the engine worker's protocol
import { InspectView } from '../ui/inspect-view.js'; // the story token by token
import { ExplainView } from '../ui/explain-view.js'; // one token's forward pass, stage by stage
import { remedy } from '../engine/errors.js';
import { isolate } from './isolation.js'; // shared memory on any host (may reload once)
import { isChatModel, ModelPanel } from './model-panel.js'; // model choice, workers, summary and facts
import { installOffline } from './offline.js'; // weight cache list + app-shell service worker
import { LinkView } from './link-view.js'; // the address bar, and links to other sites' files
import { STORY_DEFAULTS } from '../ui/story-settings.js';
import { StoryText } from '../ui/story-text.js'; // the text as it streams, once per frame
import { keepFocus } from '../ui/focus.js';
import { endInWords, formatBytes, networkHint, readable, statsInWords } from '../ui/wording.js';

const $ = (id) => document.getElementById(id);
const ui = {
  prompt: $('prompt'), generate: $('generate'), stop: $('stop'), stats: $('stats'),
  progressRow: $('progress-row'), progress: $('progress'), progressText: $('progress-text'),
  output: $('output'), endNote: $('end-note'),
  step: $('step'), inspectView: $('inspect-view'), explainView: $('explain-view'), announce: $('announce'),
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
  /** The ids of the story the engine holds (a story's or the Inspect view's `done.ids`), for
   * the Explain view; null once something else ran (a chat, a load). */
  held: null,
  /** The loaded model's pieces (index = id), asked for once per model by the Explain view. */
  pieces: null,
  /** The options the engine applied to the story it holds (a `done` reply's `used`). */
  used: null,
};

// Before the engine's worker starts: an isolated page gives it shared memory.
const isolation = await isolate();
const panel = new ModelPanel({ isolation });
const offline = installOffline({ into: $('cache-slot') });
let engine = startEngine();
const link = new LinkView({
  linkCheck: $('link-check'), permalink: $('permalink'), prompt: $('prompt'),
  fields: { temperature: $('temperature'), topp: $('topp'), steps: $('steps'), seed: $('seed') },
}, panel, {
  generate: () => generate(),
  showError: (err, hint) => showError('story', err, { hint }),
  settingsChanged: () => showSettings(),
});

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
  if (remedy(err) === 'reload' && !state.dead) ({ action } = workersLost(origin));
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
  const focused = document.activeElement;
  const busy = state.busy?.kind ?? null;
  const origin = state.busy?.origin ?? null;
  const dead = state.dead !== null;
  ui.generate.disabled = dead || busy !== null;
  ui.step.disabled = dead || busy !== null;
  ui.stop.disabled = !(busy === 'generate' || (busy === 'load' && origin === 'story'));
  panel.setControls({ loading: busy === 'load', dead });
  chat.setControls({ busy, origin, dead }, focused);
  document.body.dataset.busy = dead ? 'dead' : (busy ?? 'idle');
  keepFocus(focused, [ui.generate, ui.step], ui.stop);
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
  link.hideCheck();
  state.loaded = null;
  state.story = null;
  state.inspected = false;
  state.held = null;
  state.pieces = null;
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
      chat.showModel();
      link.sync(state.loaded, state.story);
      return true;
    },
    (err) => {
      if (!endRun(run) || state.dead) return false;
      const cancelled = err.kind === 'cancelled';
      showProgress(cancelled ? 'cancelled' : 'failed');
      panel.showFailed(selection, cancelled);
      link.sync(state.loaded, state.story);
      if (!cancelled) {
        const staged = err.kind === 'network' ? stagedInstead(selection) : null;
        showError(origin, err, {
          hint: err.kind === 'network' ? `${networkHint(suspectUrl(selection))}${staged ? ` ${staged.name} is on this server and works offline.` : ''}` : '',
          // Offline, the model that works is the better offer than a Retry that cannot.
          action: staged && navigator.onLine === false
            ? { label: `Use ${staged.name}`, run: () => useStaged(staged, origin) }
            : remedy(err) === 'retry' ? { label: 'Retry', run: retry } : null,
        });
      }
      return false;
    },
  );
}

/** A model this page's server has (a preset on its origin) other than `selection`, or null. */
function stagedInstead(selection) {
  if (selection.kind !== 'urls' || new URL(selection.model).origin === location.origin) return null;
  return panel.presets.find((p) => new URL(p.model).origin === location.origin) ?? null;
}

/** Chooses the staged model `preset` and loads it (then the story, if a story asked). */
function useStaged(preset, origin) {
  panel.showUrls(preset.model, preset.tokenizer);
  load(panel.selection(), origin, origin === 'story' ? () => generate() : undefined).then((ok) => ok && origin === 'story' && generate());
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

/**
 * The story shown: its text as it streams; when its Generate was clicked (`clicked`, from
 * performance.now()), how long until its first text (`firstMs`), and whether that click
 * loaded the model first (`loading`): the stats line counts from the click, as a reader does.
 */
let story = { text: new StoryText(render), clicked: 0, firstMs: null, loading: false };

/** A number field as the engine gets it: undefined when empty (the default applies). The
 * engine applies run.c's rules to what is out of range (`showUsed` then shows the result). */
function number(input) {
  return input.value.trim() === '' ? undefined : Number(input.value);
}

/** The temperature field: the page's own range stops at its max (STORY_DEFAULTS.maxTemperature:
 * above it a TinyStories model writes noise); with `show`, a higher value typed is shown as
 * the one used. */
function temperature(show) {
  const t = number(ui.temperature);
  if (!(t > STORY_DEFAULTS.maxTemperature)) return t;
  if (show) ui.temperature.value = String(STORY_DEFAULTS.maxTemperature);
  return STORY_DEFAULTS.maxTemperature;
}

/** The sampling settings of the Settings section (empty Steps: the page's default, the
 * model's context); `show`: the fields show the values used. */
function sampling({ show = false } = {}) {
  return {
    temperature: temperature(show), topp: number(ui.topp),
    steps: number(ui.steps) ?? STORY_DEFAULTS.steps, seed: ui.seed.value.trim(),
  };
}

/**
 * After a story, the Settings show what the engine used where it replaced what was typed
 * (run.c's rules: temperature -1 is 0, top-p 1.5 is 0.9, steps -5 are the model's length):
 * never a value that was quietly replaced. Empty fields (the defaults) stay empty; Steps past
 * the model's length stay as typed (a limit the story did not reach: the end note says so).
 * @param {{ temperature: number, topp: number, steps: number } | undefined} used
 */
function showUsed(used) {
  if (!used) return;
  const short = (x) => Number(x.toPrecision(6)); // f32: 0.9 arrives as 0.8999999761581421
  for (const [input, value] of [[ui.temperature, used.temperature], [ui.topp, used.topp], [ui.steps, used.steps]]) {
    const typed = number(input);
    if (typed === undefined) continue; // the default, as chosen
    if (input === ui.steps && Number.isInteger(typed) && typed >= 0) continue; // a limit, as typed
    if (short(typed) !== short(value)) input.value = String(short(value));
  }
  showSettings();
}

/** The stats line: live while the story streams, the worker's own figures at its end. */
function showStats(done, options) {
  if (!done) {
    const since = story.firstMs === null ? 0 : performance.now() - story.clicked - story.firstMs;
    ui.stats.textContent = statsInWords({ tokens: story.text.tokens, ms: since, firstMs: story.firstMs, loading: story.loading });
    return;
  }
  const greedy = (done.used?.temperature ?? options.temperature) === 0; // uses no seed
  ui.stats.textContent = statsInWords({ tokens: done.tokens, ms: done.ms, firstMs: story.firstMs, loading: story.loading, seed: greedy ? null : done.seed });
}

/** Says `text` to a screen reader once (the stats line and the story are not live regions:
 * they would be read out at every token). */
function announce(text) {
  ui.announce.textContent = text;
}

/** Draws the story's text (at most once per frame: `StoryText`). */
function render(text) {
  ui.output.textContent = text;
  showStats(null);
}

/** The end of a story (or of a step): why it ended, in words, shown and said. */
function showEnd(done, steps) {
  const config = state.loaded?.config;
  ui.endNote.hidden = done.reason === 'paused' || !config; // the Inspect view says it is paused
  if (ui.endNote.hidden) return announce(`Paused: ${statsInWords({ tokens: done.tokens, ms: 0 })}.`);
  ui.endNote.textContent = endInWords(done, { context: config.context, seqLen: config.seq_len, steps });
  ui.endNote.dataset.reason = done.reason;
  announce(`Story done. ${ui.endNote.textContent}`);
}

/** Whether Generate would load a model first (for the stats line's "loading included"). */
function needsLoad() {
  const selection = panel.selection();
  return !selection.problem && !holds(selection);
}

/**
 * Generate: loads the chosen model if the worker does not hold it, then writes a story (in
 * Inspect mode, token by token; with `take`, only that many new tokens, for Step).
 */
async function generate({ take } = {}) {
  if (state.busy || state.dead) return;
  const clicked = performance.now();
  const loading = needsLoad();
  clearErrors();
  link.hideCheck();
  if (loading) announce('Loading the model…');
  if (!(await ensureModel('story'))) return;
  const options = { prompt: ui.prompt.value, ...sampling({ show: true }) };
  showSettings();
  if (mode() === 'inspect') return inspectStory(options, take);
  const { config } = state.loaded;
  state.epoch++;
  state.inspected = false;
  ui.progressRow.hidden = true;
  story = { text: new StoryText(render), clicked, firstMs: null, loading };
  ui.output.textContent = '';
  ui.output.classList.remove('stale');
  delete ui.output.dataset.done;
  ui.endNote.hidden = true;
  ui.stats.textContent = '';
  announce('Writing…');
  const run = engine.generate(options, {
    onPiece: (text) => {
      story.firstMs ??= performance.now() - story.clicked;
      story.text.push(text);
    },
  });
  setBusy({ kind: 'generate', run, origin: 'story' });
  run.done.then(
    (done) => {
      story.text.flush();
      showStats(done, options);
      showEnd(done, options.steps);
      state.used = done.used ?? null;
      showUsed(done.used);
      if (state.loaded?.config === config) {
        state.story = { ...options, seed: done.seed };
        link.sync(state.loaded, state.story);
      }
      endRun(run);
      state.held = done.ids;
      if (mode() === 'explain') showExplain();
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
  state.held = done.ids;
  // The Story mode shows the same story as text.
  ui.output.textContent = readable(inspect.text);
  ui.output.classList.remove('stale');
  const options = sampling();
  const greedy = (done.used?.temperature ?? options.temperature) === 0;
  ui.stats.textContent = statsInWords({ tokens: done.tokens, ms: done.ms, seed: greedy ? null : done.seed });
  showEnd(done, options.steps);
  state.used = done.used ?? null;
  showUsed(done.used);
}

const explain = new ExplainView(ui.explainView, {
  run: inspectRun,
  holds: () => state.held !== null,
  showError: (err) => state.dead || showError('story', err),
  sampling: () => ({ temperature: state.used?.temperature ?? 1, topp: state.used?.topp ?? 0.9 }),
});

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
      link.sync(state.loaded, state.story);
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
  const explaining = mode() === 'explain';
  ui.storyPanel.hidden = isChat;
  ui.chatPanel.hidden = !isChat;
  // Inspect and Explain are the story panel with their view in place of the text.
  ui.output.hidden = inspecting || explaining;
  ui.inspectView.hidden = !inspecting;
  ui.explainView.hidden = !explaining;
  ui.step.hidden = !inspecting;
  // The progress bar stays where the reader acts.
  (isChat ? ui.chatPanel : ui.storyPanel).querySelector('.status').prepend(ui.progressRow);
  document.body.dataset.mode = mode();
  if (isChat) preferChatModel();
  if (inspecting) inspectTheStoryRead();
  if (explaining) showExplain();
  chat.showModel();
}

/** The Explain view of the story the engine holds (or what to do first). */
async function showExplain() {
  if (!state.loaded || !state.held) {
    return explain.clear('Write a story first (Generate): then pick any of its tokens to see how the model read it, stage by stage.');
  }
  const { config } = state.loaded;
  try {
    state.pieces ??= await engine.vocab();
  } catch (err) {
    return state.dead || showError('story', err);
  }
  if (state.held && state.loaded?.config === config) explain.show(state.held, config, state.pieces);
}

/** Inspect opened after a story written in Story mode: the view shows that story (its
 * settings and the seed it used: the same ids), run again token by token, not an empty view
 * or an older one. */
function inspectTheStoryRead() {
  if (!state.story || state.inspected || state.busy || state.dead || !state.loaded) return;
  inspectStory({ ...state.story }, undefined);
}

/** Chat mode with nothing loaded and the page's default chosen: a staged chat model instead. */
function preferChatModel() {
  const chatPreset = panel.chatPreset();
  const selection = panel.selection();
  if (state.loaded || state.busy || !chatPreset || isChatModel(selection)) return;
  if (selection.kind === 'urls' && selection.model !== panel.defaultPreset?.model) return; // the reader's choice
  panel.showUrls(chatPreset.model, chatPreset.tokenizer);
  panel.showChosen(panel.selection(), 'a chat model, for Chat: Send loads it');
}

function showSettings() {
  const { temperature, topp, steps, seed } = sampling();
  const parts = [
    `temperature ${temperature ?? '–'}`, `top-p ${topp ?? '–'}`,
    steps === 0 ? "steps: the model's length" : `${steps ?? '–'} steps`,
    temperature === 0 ? 'no seed (greedy)' : `seed ${seed || 'from the time'}`,
  ];
  ui.settingsSummary.textContent = parts.join(' · ');
}

/** A checkpoint opened alone, waiting for its tokenizer (the next file opened). */
let waitingForTokenizer = null;

/**
 * Local files: a checkpoint and its tokenizer (the one named like a tokenizer, or the smaller
 * of two). A checkpoint alone asks for its own tokenizer: one opened before is another
 * model's as often as not, and a mismatched pair fails.
 */
function loadFiles(files) {
  const bins = [...files];
  if (bins.length === 0) return;
  if (bins.length > 2) return showError('model', { kind: 'options', message: 'Choose one checkpoint, optionally with its tokenizer.' });
  if (bins.length === 1 && waitingForTokenizer) return openFiles(waitingForTokenizer, bins[0]);
  bins.sort((a, b) => /tok/i.test(b.name) - /tok/i.test(a.name) || a.size - b.size);
  if (bins.length === 2) return openFiles(bins[1], bins[0]);
  waitingForTokenizer = bins[0];
  showError('model', { kind: 'options', message: `${bins[0].name} needs its tokenizer: choose it now (or open both files together).` }, {
    hint: "The TinyStories models 15M, 42M and 110M use llama2.c's tokenizer.bin; stories260K uses tok512.bin.",
    action: { label: 'Choose its tokenizer…', run: chooseTokenizer },
  });
}

/** The file picker for the waiting checkpoint's tokenizer. */
function chooseTokenizer() {
  const input = Object.assign(document.createElement('input'), { type: 'file', accept: '.bin', id: 'tokenizer-file' });
  input.onchange = () => loadFiles(input.files);
  input.click();
}

function openFiles(model, tokenizer) {
  waitingForTokenizer = null;
  panel.showFiles(model, tokenizer);
  load(panel.selection(), 'model');
}

const chat = new ChatView({
  engine: () => engine,
  ensureModel,
  options: sampling,
  limits: () => ({ context: state.loaded?.config.context ?? 0, seqLen: state.loaded?.config.seq_len ?? 0 }),
  model: () => {
    const selection = state.loaded?.selection ?? panel.selection();
    return selection.problem ? null : { name: selection.name, chat: isChatModel(selection) };
  },
  epoch: () => state.epoch,
  begin: (run, kind) => {
    ui.progressRow.hidden = true;
    state.inspected = false;
    state.held = null; // the engine's story is now the chat
    setBusy({ kind, run, origin: 'chat' });
  },
  end: endRun,
  busy: () => state.busy,
  showError: (origin, err, retry) => state.dead || showError(origin, err, {
    hint: err.kind === 'network' ? networkHint(undefined) : '',
    action: retry && remedy(err) === 'retry' ? { label: 'Retry', run: retry } : null,
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
// Esc stops what runs (a story, a load, a chat reply), wherever the focus is.
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') state.busy?.run.stop?.();
});
panel.ui.load.onclick = () => {
  const selection = panel.selection();
  if (selection.problem) return showError('model', { kind: 'options', message: selection.problem });
  load(selection, 'model');
};
panel.ui.cancel.onclick = () => state.busy?.kind === 'load' && state.busy.run.stop();
panel.onFiles = loadFiles;
panel.ui.preset.addEventListener('change', () => {
  if (!state.loaded) panel.showChosen(panel.selection());
  chat.showModel();
});
for (const input of [ui.temperature, ui.topp, ui.steps, ui.seed]) input.addEventListener('input', showSettings);
ui.temperature.addEventListener('change', () => {
  sampling({ show: true });
  showSettings();
});
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

// Start: the story defaults here (Steps left empty: the model's length), the engine's own for
// the rest, then a link's settings.
ui.prompt.value = STORY_DEFAULTS.prompt;
ui.temperature.value = String(STORY_DEFAULTS.temperature);
showMode();
updateControls();
showSettings();
engine.defaults().then((defaults) => {
  // The engine's numbers are f32: 0.9 arrives as 0.8999999761581421.
  const short = (x) => String(Number(x.toPrecision(6)));
  if (ui.topp.value === '') ui.topp.value = short(defaults.topp);
  showSettings();
}, () => {}); // a dead engine is said by its handler
await panel.fillPresets();
panel.showChosen(panel.selection());
link.open();
document.body.dataset.ready = 'true';
