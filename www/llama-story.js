// llama-story.js: <llama-story>, a live story demo for any page, with one script tag.
//
//   <script type="module" src="https://example.org/llama2-wasm/llama-story.js"></script>
//   <llama-story model="stories260K.bin" tokenizer="tok512.bin" prompt="Once upon a time"
//                steps="200" temperature="0.8" topp="0.9" seed="42"></llama-story>
//
// Every <llama-story> on a page shares one worker (worker.js, the page's own) and one copy of
// each model: the worker holds one model at a time, requests run one after another, and
// elements with the same model and tokenizer share its load. A model loads when its element
// first scrolls into view (or on Generate). No SharedArrayBuffer, so no COOP/COEP needed.
//
// Styling: the parts `container controls prompt button generate stop progress status output`
// (`llama-story::part(output) { ... }`) and the custom properties --llama-story-font,
// --llama-story-background, --llama-story-color, --llama-story-accent, --llama-story-border.
// State: the host's `state` attribute (idle, loading, ready, waiting, generating, done, error);
// events `llama-story-loaded` and `llama-story-done` (detail: { text, reason, tokens, seed }).

import { EngineClient } from './client.js';

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
};

/** The engine worker (worker.js next to this file), started on first use. */
function engine() {
  if (shared.engine?.dead) {
    // The worker died: a new one holds no model.
    shared.current = null;
    shared.loads.clear();
    shared.engine = null;
  }
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
  if (shared.current === key) return load.config;
  shared.current = null;
  const [model, tokenizer] = key.split('\n');
  shared.stats.loads++;
  const reply = await engine().load({ model, tokenizer }, {
    onProgress: (p) => {
      for (const listener of load.listeners) listener(p);
    },
  }).done;
  shared.current = key;
  load.config = reply.config;
  return reply.config;
}

/** The shared load of a model: queued once per key, followed by every element that needs it. */
function modelLoad(key, onProgress) {
  let load = shared.loads.get(key);
  if (!load) {
    load = { listeners: new Set(), config: null, promise: null };
    shared.loads.set(key, load);
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
  [part~="prompt"] { flex: 1 1 14rem; font: inherit; padding: 0.2rem 0.4rem; }
  [part~="button"] { font: inherit; padding: 0.2rem 0.9rem; border: 1px solid var(--llama-story-accent, #2f6fde);
    background: var(--llama-story-accent, #2f6fde); color: white; border-radius: 4px; cursor: pointer; }
  [part~="button"]:disabled { opacity: 0.5; cursor: default; }
  [part~="stop"] { background: transparent; color: var(--llama-story-accent, #2f6fde); }
  [part~="progress"] { width: 8rem; accent-color: var(--llama-story-accent, #2f6fde); }
  [part~="status"] { font-size: 0.85em; opacity: 0.75; font-variant-numeric: tabular-nums; }
  [part~="output"] { white-space: pre-wrap; font: var(--llama-story-output-font, 1.05rem/1.5 Georgia, serif);
    margin: 0.5rem 0 0; min-height: 3em; }
</style>
<div part="container">
  <div part="controls">
    <input part="prompt" aria-label="Prompt">
    <button part="button generate" type="button">Generate</button>
    <button part="button stop" type="button" disabled>Stop</button>
    <progress part="progress" max="1" value="0" hidden></progress>
    <span part="status" aria-live="polite"></span>
  </div>
  <pre part="output"></pre>
</div>`;

const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

/** <llama-story model tokenizer prompt steps temperature topp seed>: see the top of this file. */
export class LlamaStory extends HTMLElement {
  static observedAttributes = ['prompt'];

  /** What the elements of this page asked of their shared worker: { workers, loads, generations }. */
  static get stats() {
    return { ...shared.stats };
  }

  #ui;
  #observer = null;
  /** the id of this element's running generation, or 0 */
  #generating = false;
  #cancelled = false;
  /** this element's generation request, once sent */
  #run = null;
  #text = '';
  #frame = 0;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE; // a constant: no user or model text
    const part = (name) => root.querySelector(`[part~="${name}"]`);
    this.#ui = {
      prompt: part('prompt'), generate: part('generate'), stop: part('stop'),
      progress: part('progress'), status: part('status'), output: part('output'),
    };
    this.#ui.generate.onclick = () => this.generate();
    this.#ui.stop.onclick = () => this.stop();
  }

  connectedCallback() {
    this.#ui.prompt.value = this.getAttribute('prompt') ?? 'Once upon a time';
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
  }

  #setState(state, status) {
    this.setAttribute('state', state);
    if (status !== undefined) this.#ui.status.textContent = status;
    this.#ui.generate.disabled = state === 'generating' || state === 'waiting';
    this.#ui.stop.disabled = state !== 'generating' && state !== 'waiting';
  }

  /** `model\ntokenizer`, absolute (the worker resolves URLs against its own location). */
  #key() {
    const model = this.getAttribute('model');
    const tokenizer = this.getAttribute('tokenizer');
    if (!model || !tokenizer) throw new Error('<llama-story> needs model and tokenizer attributes');
    return `${new URL(model, document.baseURI).href}\n${new URL(tokenizer, document.baseURI).href}`;
  }

  #onProgress = (p) => {
    if (this.getAttribute('state') !== 'loading') return;
    this.#ui.progress.hidden = false;
    this.#ui.progress.value = p.total ? p.loaded / p.total : 0;
    this.#ui.status.textContent = `${p.file} ${mb(p.loaded)} of ${mb(p.total)}`;
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
    if (!load.config && this.getAttribute('state') === 'idle') this.#setState('loading', 'loading…');
    try {
      const config = await load.promise;
      this.#ui.progress.hidden = true;
      if (this.getAttribute('state') === 'loading' || this.getAttribute('state') === 'idle') {
        this.#setState('ready', `${config.name}: ${mb(config.file_size)}, ready`);
      }
      this.dispatchEvent(new CustomEvent('llama-story-loaded', { detail: config }));
      return config;
    } catch (err) {
      this.#ui.progress.hidden = true;
      this.#setState('error', err.message);
      throw err;
    } finally {
      load.listeners.delete(this.#onProgress);
    }
  }

  /** Generates a story with the element's attributes (the prompt from its input). */
  async generate() {
    if (this.#generating) return;
    this.#generating = true;
    this.#cancelled = false;
    this.#text = '';
    this.#ui.output.textContent = '';
    let key;
    try {
      key = this.#key();
    } catch (err) {
      this.#generating = false;
      return this.#setState('error', err.message);
    }
    const number = (name, fallback) => (this.hasAttribute(name) ? Number(this.getAttribute(name)) : fallback);
    const options = {
      prompt: this.#ui.prompt.value,
      temperature: number('temperature', 0.8),
      topp: number('topp', 0.9),
      steps: number('steps', 256),
      seed: this.getAttribute('seed') ?? '',
    };
    const load = modelLoad(key, this.#onProgress);
    this.#setState('waiting', load.config && shared.current === key ? '' : 'waiting for the engine…');
    try {
      const done = await exclusive(async () => {
        if (this.#cancelled) return null;
        if (shared.current !== key) {
          this.#setState('loading', 'loading…');
          await holdModel(key, load);
        }
        this.#setState('generating', '');
        shared.stats.generations++;
        let tokens = 0;
        const run = engine().generate(options, {
          onPiece: (text) => {
            tokens++;
            this.#text += text;
            this.#frame ||= requestAnimationFrame(() => {
              this.#frame = 0;
              this.#ui.output.textContent = this.#text;
              this.#ui.status.textContent = `${tokens} tokens`;
            });
          },
        });
        this.#run = run;
        return run.done;
      });
      cancelAnimationFrame(this.#frame);
      this.#frame = 0;
      this.#ui.output.textContent = this.#text;
      this.#ui.progress.hidden = true;
      if (!done) return this.#setState('ready', 'stopped');
      const seconds = done.ms / 1000;
      this.#setState('done', `${done.tokens} tokens · ${(done.tokens / Math.max(seconds, 1e-3)).toFixed(0)} tok/s · seed ${done.seed}`);
      this.dispatchEvent(new CustomEvent('llama-story-done', {
        detail: { text: this.#text, reason: done.reason, tokens: done.tokens, seed: done.seed },
      }));
    } catch (err) {
      this.#ui.progress.hidden = true;
      this.#setState('error', err.message);
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
