// llama-story.js: <llama-story>, a live story demo for any page, with one script tag.
//
//   <script type="module" src="https://example.org/llama2-wasm/element/llama-story.js"></script>
//   <llama-story model="stories260K.bin" tokenizer="tok512.bin" prompt="Once upon a time"
//                steps="200" temperature="1" seed="42" workers="auto"></llama-story>
//
// Every <llama-story> on a page shares one worker (worker.js, the page's own) and one copy of
// each model: the worker holds one model at a time, requests run one after another, and
// elements with the same model and tokenizer share its load. A model loads when its element
// first scrolls into view (or on Generate). The element never changes its page's headers: it
// needs no COOP/COEP, and `workers` splits a model over messages between workers unless the
// page is already cross-origin isolated (then shared memory).
// Defaults: the page's story settings (story-settings.js); otherwise the engine's (run.c's).
// If the engine's worker dies (closed, crashed), a running request ends in an error with a
// Retry button, and the next request starts a new worker.
//
// Styling: the parts `container controls prompt button generate stop retry progress status
// output` (`llama-story::part(output) { ... }`) and the custom properties --llama-story-font,
// --llama-story-background, --llama-story-color, --llama-story-accent, --llama-story-border.
// State: the host's `state` attribute (idle, loading, ready, waiting, generating, done, paused,
// error); events `llama-story-loaded` and `llama-story-done` (detail: { text, reason, tokens, seed }).
//
// `inspect`: the story token by token instead of plain text (inspect-view.js, for docs that
// teach transformers): chips tinted by probability, each token's top 10, attention and logit
// lens, branches from any alternative, and Step (one token per click; state `paused` between).
// The part `inspect` holds the view.

import { EngineClient } from '../worker/client.js';
import { LlamaError, RELOAD, RETRYABLE } from '../engine/errors.js';
import { InspectView, STYLESHEET } from '../ui/inspect-view.js';
import { STORY_DEFAULTS } from '../ui/story-settings.js';
import { StoryText } from '../ui/story-text.js';
import { formatBytes } from '../ui/wording.js';

/** One engine worker and one request queue for every element of the page. */
const shared = {
  /** @type {EngineClient | null} */
  engine: null,
  /** `model\ntokenizer` of the model the worker holds */
  current: null,
  /** key -> { listeners: Set<progress handler>, promise } of the load queued or done */
  loads: new Map(),
  /** the queue: every request waits for the previous one */
  tail: Promise.resolve(),
  /** what was asked of the worker (read by tests and curious embedders) */
  stats: { workers: 0, loads: 0, generations: 0 },
  /** the element whose story the engine holds (an inspect view branches and looks into it) */
  story: null,
};

/** Forgets a dead worker and what it held; the next `engine()` starts a new one. */
function forgetDeadEngine() {
  if (!shared.engine?.dead) return;
  shared.current = null;
  shared.loads.clear();
  shared.engine = null;
  shared.story = null;
}

/** The engine worker (worker.js next to this file), started on first use and after a death. */
function engine() {
  forgetDeadEngine();
  if (!shared.engine) {
    shared.engine = new EngineClient();
    shared.stats.workers++;
  }
  return shared.engine;
}

/** Runs `task` after every task queued before it. */
function exclusive(task) {
  const run = shared.tail.then(task, task);
  shared.tail = run.catch(() => {});
  return run;
}

/** Inside the queue: makes the worker hold `key`'s model (a no-op when it does). */
async function holdModel(key, load) {
  const client = engine(); // first: a dead worker's model is gone with it
  if (shared.current === key) return load.config;
  shared.current = null;
  shared.story = null;
  const [model, tokenizer, workers] = key.split('\n');
  shared.stats.loads++;
  // A bad value goes to the engine as it is, which names it in its error.
  const count = /^\d+$/.test(workers) ? Number(workers) : workers;
  const reply = await client.load({ model, tokenizer, workers: count }, {
    onProgress: (p) => {
      for (const listener of load.listeners) listener(p);
    },
  }).done;
  shared.current = key;
  load.config = reply.config;
  return reply.config;
}

/** The record of `key`'s model: { listeners: Set<progress handler>, config, promise }. */
function loadRecord(key) {
  let load = shared.loads.get(key);
  if (!load) {
    load = { listeners: new Set(), config: null, promise: null };
    shared.loads.set(key, load);
  }
  return load;
}

/** The shared load of a model: queued once per key, followed by every element that needs it. */
function modelLoad(key, onProgress) {
  forgetDeadEngine();
  const load = loadRecord(key);
  if (!load.promise) {
    load.promise = exclusive(() => holdModel(key, load));
    load.promise.catch(() => shared.loads.delete(key)); // a failed load is tried again next time
  }
  load.listeners.add(onProgress);
  return load;
}

const TEMPLATE = `
<style>
  :host {
    display: block;
    font: var(--llama-story-font, 1rem/1.5 system-ui, sans-serif);
    color: var(--llama-story-color, inherit);
    background: var(--llama-story-background, transparent);
    border: var(--llama-story-border, 1px solid #8886);
    border-radius: 8px;
    padding: 0.75rem 1rem;
    margin: 1rem 0;
  }
  :host([hidden]) { display: none; }
  [part~="controls"] { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
  [part~="prompt"] { flex: 1 1 12rem; min-width: 0; font: inherit; padding: 0.2rem 0.4rem; }
  [part~="button"] { font: inherit; padding: 0.2rem 0.9rem; border: 1px solid var(--llama-story-accent, #2f6fde);
    background: var(--llama-story-accent, #2f6fde); color: white; border-radius: 4px; cursor: pointer; }
  [part~="button"]:disabled { opacity: 0.5; cursor: default; }
  [part~="stop"] { background: transparent; color: var(--llama-story-accent, #2f6fde); }
  [part~="progress"] { width: 8rem; accent-color: var(--llama-story-accent, #2f6fde); }
  [part~="status"] { font-size: 0.85em; opacity: 0.75; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; min-width: 0; }
  [part~="output"] { white-space: pre-wrap; overflow-wrap: anywhere; font: var(--llama-story-output-font, 1.05rem/1.5 Georgia, serif);
    margin: 0.5rem 0 0; min-height: 3em; }
  [part~="inspect"] { --inspect-accent: var(--llama-story-accent, #2f6fde); margin-top: 0.5rem; }
  [hidden] { display: none !important; }
</style>
<div part="container">
  <div part="controls">
    <input part="prompt" aria-label="Prompt">
    <button part="button generate" type="button">Generate</button>
    <button part="button stop" type="button" disabled>Stop</button>
    <button part="button step" type="button" title="One token per click" hidden>Step</button>
    <button part="button retry" type="button" hidden>Retry</button>
    <progress part="progress" max="1" value="0" hidden></progress>
    <span part="status" aria-live="polite"></span>
  </div>
  <pre part="output"></pre>
  <div part="inspect" hidden></div>
</div>`;

/** <llama-story model tokenizer prompt steps temperature topp seed workers inspect>: see the top of this file. */
export class LlamaStory extends HTMLElement {
  static observedAttributes = ['prompt', 'inspect'];

  /** What the elements of this page asked of their shared worker: { workers, loads, generations }. */
  static get stats() {
    return { ...shared.stats };
  }

  #ui;
  #observer = null;
  /** whether this element's generation is queued or running */
  #generating = false;
  #cancelled = false;
  /** this element's generation request, once sent */
  #run = null;
  /** The plain story's text as it streams (`StoryText`). */
  #text = new StoryText(() => {});
  /** The inspect view, made when the `inspect` attribute first asks for it. */
  #view = null;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE; // a constant: no user or model text
    const part = (name) => root.querySelector(`[part~="${name}"]`);
    this.#ui = {
      prompt: part('prompt'), generate: part('generate'), stop: part('stop'), retry: part('retry'),
      progress: part('progress'), status: part('status'), output: part('output'), step: part('step'),
      inspect: part('inspect'),
    };
    this.#ui.generate.onclick = () => this.generate();
    this.#ui.stop.onclick = () => this.stop();
    this.#ui.step.onclick = () => this.step();
  }

  /** Shows the inspect view (made on first use) or the plain text, as the attribute says. */
  #showInspect() {
    const on = this.hasAttribute('inspect');
    if (on && !this.#view) {
      const sheet = document.createElement('link');
      sheet.rel = 'stylesheet';
      sheet.href = STYLESHEET;
      this.shadowRoot.prepend(sheet);
      this.#view = new InspectView(this.#ui.inspect, {
        run: (start, what) => this.#inspectRun(start, what),
        holds: () => shared.story === this && !shared.engine?.dead,
        showError: (err) => this.#failed(err, null),
        ended: (done) => this.#showDone(done),
      });
    }
    this.#ui.inspect.hidden = !on;
    this.#ui.output.hidden = on;
    this.#ui.step.hidden = !on;
  }

  /** Runs an inspect view's branch, step or lens in the queue, on this element's story. */
  #inspectRun(start, what) {
    if (this.#generating) return null;
    const story = what !== 'lens';
    if (story) {
      this.#generating = true;
      this.#setState('generating', '');
    }
    const done = exclusive(() => {
      if (shared.story !== this || shared.engine?.dead) {
        throw new LlamaError('state', 'Another story ran since: Generate this one again to look into it.');
      }
      const run = start(engine());
      if (story) this.#run = run;
      return run.done;
    });
    if (!story) return done;
    return done.finally(() => {
      this.#generating = false;
      if (this.getAttribute('state') === 'generating') this.#setState('ready', '');
    });
  }

  /** Step: the paused story's next token, or a new story's first one. */
  async step() {
    if (!this.#view?.paused) return this.generate({ take: 1 });
    try {
      await this.#inspectRun((client) => this.#view.more(client, 1), 'more');
    } catch (err) {
      this.#failed(err, null);
    }
  }

  /** The end of a story (or of a step): its figures, `done` or `paused`. */
  #showDone(done) {
    const seconds = done.ms / 1000;
    const rate = `${done.tokens} tokens · ${(done.tokens / Math.max(seconds, 1e-3)).toFixed(0)} tok/s · seed ${done.seed}`;
    this.#setState(done.reason === 'paused' ? 'paused' : 'done', rate);
  }

  connectedCallback() {
    this.#ui.prompt.value = this.getAttribute('prompt') ?? STORY_DEFAULTS.prompt;
    this.#showInspect();
    if (!this.hasAttribute('state')) this.#setState('idle');
    // Lazy: the model loads when the element first comes near the viewport.
    this.#observer = new IntersectionObserver((entries) => {
      if (!entries.some((e) => e.isIntersecting)) return;
      this.#observer?.disconnect();
      this.#observer = null;
      this.load().catch(() => {}); // shown in the element
    }, { rootMargin: '200px' });
    this.#observer.observe(this);
  }

  disconnectedCallback() {
    this.#observer?.disconnect();
    this.#observer = null;
    this.stop();
  }

  attributeChangedCallback(name, _old, value) {
    if (name === 'prompt') this.#ui.prompt.value = value ?? '';
    if (name === 'inspect') this.#showInspect();
  }

  /** `retry`: what the Retry button does in state `error` (none: no button). */
  #setState(state, status, retry = null) {
    this.setAttribute('state', state);
    if (status !== undefined) this.#ui.status.textContent = status;
    this.#ui.generate.disabled = state === 'generating' || state === 'waiting';
    this.#ui.step.disabled = state === 'generating' || state === 'waiting';
    this.#ui.stop.disabled = state !== 'generating' && state !== 'waiting';
    this.#ui.retry.hidden = !retry;
    this.#ui.retry.onclick = retry;
  }

  /** Shows a failed request; Retry repeats it where that can help (errors.js: a network
   * failure, or lost workers, which the repeat loads again). */
  #failed(err, retry) {
    this.#ui.progress.hidden = true;
    const fixable = RETRYABLE.has(err?.kind) || RELOAD.has(err?.kind);
    this.#setState('error', err?.message ?? String(err), fixable ? retry : null);
  }

  /** `model\ntokenizer\nworkers`, URLs absolute (the worker resolves URLs against its own location). */
  #key() {
    const model = this.getAttribute('model');
    const tokenizer = this.getAttribute('tokenizer');
    if (!model || !tokenizer) throw new Error('<llama-story> needs model and tokenizer attributes');
    const workers = this.getAttribute('workers')?.trim() || 'auto';
    return `${new URL(model, document.baseURI).href}\n${new URL(tokenizer, document.baseURI).href}\n${workers}`;
  }

  #onProgress = (p) => {
    if (this.getAttribute('state') !== 'loading') return;
    this.#ui.progress.hidden = false;
    this.#ui.progress.value = p.total ? p.loaded / p.total : 0;
    this.#ui.status.textContent = `${p.file} ${formatBytes(p.loaded)} of ${formatBytes(p.total)}`;
  };

  /** Loads the element's model (shared with the other elements); resolves with its config. */
  async load() {
    let key;
    try {
      key = this.#key();
    } catch (err) {
      this.#setState('error', err.message);
      throw err;
    }
    const load = modelLoad(key, this.#onProgress);
    const state = this.getAttribute('state');
    if (!load.config && (state === 'idle' || state === 'error')) this.#setState('loading', 'loading…');
    try {
      const config = await load.promise;
      this.#ui.progress.hidden = true;
      if (['loading', 'idle', 'error'].includes(this.getAttribute('state'))) {
        this.#setState('ready', `${config.name}: ${formatBytes(config.file_size)}, ready`);
      }
      this.dispatchEvent(new CustomEvent('llama-story-loaded', { detail: config }));
      return config;
    } catch (err) {
      if (!this.#generating) this.#failed(err, () => this.load().catch(() => {}));
      throw err;
    } finally {
      load.listeners.delete(this.#onProgress);
    }
  }

  /** The generation options: the element's attributes, else the page's story defaults, else
   * the engine's (an option left out is the engine's default). */
  #options() {
    const options = { prompt: this.#ui.prompt.value, seed: this.getAttribute('seed') ?? '' };
    const temperature = this.getAttribute('temperature');
    options.temperature = temperature === null ? STORY_DEFAULTS.temperature : Number(temperature);
    for (const name of ['topp', 'steps']) if (this.hasAttribute(name)) options[name] = Number(this.getAttribute(name));
    return options;
  }

  /**
   * Generates a story with the element's attributes (the prompt from its input); with
   * `inspect`, token by token, and with `take` only that many new tokens (Step goes on).
   */
  async generate({ take } = {}) {
    if (this.#generating) return;
    this.#generating = true;
    this.#cancelled = false;
    this.#text = new StoryText((text, tokens) => {
      this.#ui.output.textContent = text;
      this.#ui.status.textContent = `${tokens} tokens`;
    });
    this.#ui.output.textContent = '';
    let key;
    try {
      key = this.#key();
    } catch (err) {
      this.#generating = false;
      return this.#setState('error', err.message);
    }
    const options = this.#options();
    forgetDeadEngine();
    this.#setState('waiting', shared.current === key ? '' : 'waiting for the engine…');
    try {
      const done = await exclusive(async () => {
        if (this.#cancelled) return null;
        const client = engine(); // a dead worker is replaced here, before the check below
        if (shared.current !== key) {
          this.#setState('loading', 'loading…');
          const load = loadRecord(key);
          load.listeners.add(this.#onProgress);
          try {
            await holdModel(key, load);
          } finally {
            load.listeners.delete(this.#onProgress);
          }
          // Stopped, or taken off the page, while its model loaded: the model stays, no story.
          if (this.#cancelled) return null;
        }
        this.#setState('generating', '');
        shared.stats.generations++;
        shared.story = this;
        if (this.#view && this.hasAttribute('inspect')) {
          const run = this.#view.start(client, options, { take });
          this.#run = run;
          return run.done;
        }
        const run = client.generate(options, { onPiece: (text) => this.#text.push(text) });
        this.#run = run;
        return run.done;
      });
      this.#text.flush();
      this.#ui.progress.hidden = true;
      if (!done) return this.#setState('ready', 'stopped');
      this.#showDone(done);
      const text = this.#view && this.hasAttribute('inspect') ? this.#view.text : this.#text.raw;
      this.dispatchEvent(new CustomEvent('llama-story-done', {
        detail: { text, reason: done.reason, tokens: done.tokens, seed: done.seed },
      }));
    } catch (err) {
      this.#text.flush();
      if (err?.kind === 'shards') shared.current = null; // the model's workers are gone: load again
      this.#failed(err, () => this.generate());
    } finally {
      this.#generating = false;
    }
  }

  /** Stops this element's generation (or drops it from the queue). */
  stop() {
    if (!this.#generating) return;
    this.#cancelled = true;
    if (this.getAttribute('state') === 'generating') this.#run?.stop();
  }
}

if (!customElements.get('llama-story')) customElements.define('llama-story', LlamaStory);
