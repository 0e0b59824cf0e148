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
//
// `explain` (without `inspect`): after each story, its tokens to pick from, and the picked
// token's forward pass walked stage by stage with the real numbers, the logit lens mapped over
// the story, and the temperature tried (explain-view.js, as the page's Explain mode). The part
// `explain` holds the view.

import { LlamaError, remedy } from '../engine/errors.js';
import { InspectView, STYLESHEET } from '../ui/inspect-view.js';
import { ExplainView, STYLESHEET as EXPLAIN_STYLESHEET } from '../ui/explain-view.js';
import { STORY_DEFAULTS } from '../ui/story-settings.js';
import { StoryText } from '../ui/story-text.js';
import { keepFocus } from '../ui/focus.js';
import { formatBytes, statsInWords } from '../ui/wording.js';
import { engine, exclusive, forgetDeadEngine, holdModel, loadRecord, modelLoad, shared } from './shared-engine.js';
import { TEMPLATE } from './template.js';

/** <llama-story model tokenizer prompt steps temperature topp seed workers inspect explain>: see the top of this file. */
export class LlamaStory extends HTMLElement {
  static observedAttributes = ['prompt', 'inspect', 'explain'];

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
  /** The explain view, made when the `explain` attribute first asks for it; the options the
   * engine used for the last story, and the pieces of the model (`key` -> pieces). */
  #explain = null;
  #used = null;
  #pieces = { key: null, pieces: null };
  /** The story's click (performance.now()), time to its first text, and whether it loaded. */
  #timing = { clicked: 0, firstMs: null, loading: false };

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    root.innerHTML = TEMPLATE; // a constant: no user or model text
    const part = (name) => root.querySelector(`[part~="${name}"]`);
    this.#ui = {
      prompt: part('prompt'), generate: part('generate'), stop: part('stop'), retry: part('retry'),
      progress: part('progress'), status: part('status'), output: part('output'), step: part('step'),
      inspect: part('inspect'), explain: part('explain'), announce: root.querySelector('.announce'),
    };
    this.#ui.generate.onclick = () => this.generate();
    // The keyboard, inside the element: Ctrl+Enter in the prompt generates, Esc stops.
    this.#ui.prompt.onkeydown = (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) this.generate();
    };
    root.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.stop();
    });
    this.#ui.stop.onclick = () => this.stop();
    this.#ui.step.onclick = () => this.step();
  }

  /** Shows the inspect or explain view (each made on first use) or the plain text, as the
   * attributes say. */
  #showViews() {
    const on = this.hasAttribute('inspect');
    // What both views ask of the element: their requests in the shared queue, on this story.
    const host = {
      run: (start, what) => this.#inspectRun(start, what),
      holds: () => shared.story === this && !shared.engine?.dead,
      showError: (err) => this.#failed(err, null),
    };
    if (on && !this.#view) {
      this.#addStylesheet(STYLESHEET);
      this.#view = new InspectView(this.#ui.inspect, { ...host, ended: (done) => this.#showDone(done) });
    }
    this.#ui.inspect.hidden = !on;
    this.#ui.step.hidden = !on;
    const explaining = this.#explaining();
    if (explaining && !this.#explain) {
      this.#addStylesheet(EXPLAIN_STYLESHEET);
      this.#explain = new ExplainView(this.#ui.explain, {
        ...host,
        sampling: () => ({ temperature: this.#used?.temperature ?? 1, topp: this.#used?.topp ?? 0.9 }),
      });
      this.#explain.clear('Generate a story: then pick any of its tokens to see how the model read it, stage by stage.');
    }
    this.#ui.explain.hidden = !explaining;
    this.#ui.output.hidden = on || explaining;
  }

  /** A view's stylesheet, in the shadow root (before the element's own style). */
  #addStylesheet(href) {
    const sheet = document.createElement('link');
    sheet.rel = 'stylesheet';
    sheet.href = href;
    this.shadowRoot.prepend(sheet);
  }

  /** Whether the explain view is asked for (and `inspect` is not: it shows its own view). */
  #explaining() {
    return this.hasAttribute('explain') && !this.hasAttribute('inspect');
  }

  /** After a story: the explain view shows its tokens (the model's pieces asked once per model). */
  async #showExplain(done, key) {
    if (!this.#explain || !this.#explaining()) return;
    try {
      if (this.#pieces.key !== key) {
        const pieces = await exclusive(() => engine().vocab());
        this.#pieces = { key, pieces };
      }
      if (shared.story !== this) return;
      this.#explain.show(done.ids, loadRecord(key).config, this.#pieces.pieces);
    } catch (err) {
      this.#failed(err, null);
    }
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

  /** The end of a story (or of a step): its figures, `done` or `paused`, said once. */
  #showDone(done) {
    const greedy = this.#options().temperature === 0; // a seed that picked nothing is not shown
    const { firstMs, loading } = this.#timing;
    const stats = statsInWords({ tokens: done.tokens, ms: done.ms, firstMs, loading, seed: greedy ? null : done.seed });
    const paused = done.reason === 'paused';
    this.#setState(paused ? 'paused' : 'done', stats);
    this.#ui.announce.textContent = `${paused ? 'Paused' : 'Story done'}: ${stats}.`;
  }

  connectedCallback() {
    this.#ui.prompt.value = this.getAttribute('prompt') ?? STORY_DEFAULTS.prompt;
    this.#showViews();
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
    if (name === 'inspect' || name === 'explain') this.#showViews();
  }

  /** `retry`: what the Retry button does in state `error` (none: no button). */
  #setState(state, status, retry = null) {
    const focused = this.shadowRoot.activeElement;
    this.setAttribute('state', state);
    if (status !== undefined) this.#ui.status.textContent = status;
    this.#ui.generate.disabled = state === 'generating' || state === 'waiting';
    this.#ui.step.disabled = state === 'generating' || state === 'waiting';
    this.#ui.stop.disabled = state !== 'generating' && state !== 'waiting';
    this.#ui.retry.hidden = !retry;
    this.#ui.retry.onclick = retry;
    keepFocus(focused, [this.#ui.generate, this.#ui.step], this.#ui.stop);
  }

  /** Shows a failed request; Retry repeats it where that can help (errors.js: a network
   * failure, or lost workers, which the repeat loads again). */
  #failed(err, retry) {
    this.#ui.progress.hidden = true;
    this.#setState('error', err?.message ?? String(err), remedy(err) ? retry : null);
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
    options.steps ??= STORY_DEFAULTS.steps;
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
    this.#timing = { clicked: performance.now(), firstMs: null, loading: false };
    this.#text = new StoryText((text, tokens) => {
      this.#ui.output.textContent = text;
      this.#ui.status.textContent = statsInWords({ tokens, ms: 0 });
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
          this.#timing.loading = true;
          this.#setState('loading', 'loading…');
          this.#ui.announce.textContent = 'Loading the model…';
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
        this.#ui.announce.textContent = 'Writing…';
        shared.stats.generations++;
        shared.story = this;
        if (this.#view && this.hasAttribute('inspect')) {
          const run = this.#view.start(client, options, { take });
          this.#run = run;
          return run.done;
        }
        const run = client.generate(options, {
          onPiece: (text) => {
            this.#timing.firstMs ??= performance.now() - this.#timing.clicked;
            this.#text.push(text);
          },
        });
        this.#run = run;
        return run.done;
      });
      this.#text.flush();
      this.#ui.progress.hidden = true;
      if (!done) return this.#setState('ready', 'stopped');
      this.#used = done.used ?? null;
      this.#showDone(done);
      await this.#showExplain(done, key);
      const text = this.#view && this.hasAttribute('inspect') ? this.#view.text : this.#text.raw;
      this.dispatchEvent(new CustomEvent('llama-story-done', {
        detail: { text, reason: done.reason, tokens: done.tokens, seed: done.seed },
      }));
    } catch (err) {
      this.#text.flush();
      if (remedy(err) === 'reload') shared.current = null; // the model's workers are gone: load again
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
