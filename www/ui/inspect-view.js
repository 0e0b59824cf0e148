// inspect-view.js: the Inspect view of a story, for the page (main.js) and <llama-story
// inspect> (llama-story.js). The story as token chips tinted by the probability the model gave
// each; a chip's top alternatives as bars (on hover, and for the selected chip); the
// selected chip's attention over the tokens before it (one layer and head, or every head of a
// layer) and its logit lens (on demand); another branch of the story from any alternative
// (the continuation it replaced kept one step back); one token per Step.
//
// Chip k is the token at position k + 1, chosen by the forward pass at position k: its numbers
// (top, prob, rank, attention over positions 0..k, the lens) are that pass's, so everything
// shown for a chip is what the model saw and said when it chose it.
//
// The view owns no engine: its host runs each request when the engine is free (the page: not
// busy; the element: in its queue) and says whether the engine still holds the view's story
// (branch and lens need it). This file keeps the view's state (the story, the selection, the
// attention memory budget) and its requests; what it draws from a chip's numbers is in
// inspect-draw.js. Model text goes in with textContent only; the styles are in
// inspect-view.css (STYLESHEET), which the page links and the element's shadow root loads.

import { bars, element, heads, heatmap, label, lensTable, listed, numberSelect, percent } from './inspect-draw.js';

/** The view's stylesheet, for a shadow root. */
export const STYLESHEET = new URL('./inspect-view.css', import.meta.url).href;

/**
 * The most attention weights the view keeps, in bytes (all chips together). A pass's weights
 * are layers x heads x positions floats: ~75 KB for the 110M model mid-story, but ~1 MB for
 * Llama 2 7B at position 256, so a long 7B story would hold hundreds of MB. Past this, the
 * oldest chips' weights are let go (never the selected chip's); their detail says so.
 */
export const ATTENTION_BUDGET = { bytes: 64 * 2 ** 20 };

/**
 * What the view needs from its host.
 * @typedef {{
 *   run(start: (client: import('../worker/client.js').EngineClient) => { done: Promise<any>, stop?(): void }, what: 'story' | 'branch' | 'more' | 'lens'): Promise<any> | null,
 *   holds(): boolean,
 *   showError(err: { kind?: string, message: string }): void,
 *   ended?(done: object): void,
 * }} InspectHost
 *   `run`: runs `start(client)` when the engine is free and resolves with its `done` (null:
 *   not now, something runs); `holds`: whether the engine still holds the story this view
 *   last ran (nothing else ran since); `ended`: a story, branch or step finished (`done`).
 */

export class InspectView {
  /** @type {InspectHost} */
  #host;
  #ui;
  /** The vocabulary's pieces (index = id), asked for with every new story. */
  #pieces = [];
  /**
   * The story: chip k = { pos: k, token (fed at k), id (chosen), text, prob, rank, top,
   * attention, prompt, branched? }; `first` is the id fed at position 0 (BOS); `paused`:
   * the engine waits for Step.
   */
  #story = { first: null, chips: [], paused: false };
  /** Select the last chip when the running request ends (Step). */
  #selectNewest = false;
  /** The continuation the last branch replaced: { from, chips }, or null. */
  #previous = null;
  #selected = null;
  /** Chips drawn so far (their elements), and the frame that draws the rest. */
  #drawn = [];
  #frame = 0;
  /** Lens results of this story version: pos -> layers (or a promise). */
  #lens = new Map();
  /** Layer and head of the attention view (head -1: every head of the layer). */
  #layer = 0;
  #head = 0;

  /**
   * @param {HTMLElement} root an empty element to fill
   * @param {InspectHost} host
   */
  constructor(root, host) {
    this.#host = host;
    root.classList.add('inspect');
    const legend = element('p', 'inspect-legend');
    const scale = element('span', 'inspect-scale');
    scale.append(element('span', 'low', 'unlikely'), element('span', 'high', 'likely'));
    legend.append(element('span', '', 'Each token is tinted by the probability the model gave it: '), scale,
      element('span', '', '. Prompt tokens carry their ids. Select a token to look inside.'));
    const story = element('div', 'inspect-story');
    story.setAttribute('role', 'group');
    story.setAttribute('aria-label', 'The story, token by token');
    const status = element('p', 'inspect-status');
    status.setAttribute('aria-live', 'polite');
    const previous = element('div', 'inspect-previous');
    previous.hidden = true;
    const detail = element('div', 'inspect-detail');
    detail.hidden = true;
    const popover = element('div', 'inspect-popover');
    popover.hidden = true;
    popover.setAttribute('aria-hidden', 'true');
    root.replaceChildren(legend, story, status, previous, detail, popover);
    this.#ui = { root, legend, story, status, previous, detail, popover };
    this.#status('Generate writes the story here token by token; Step writes one token per click.');

    story.addEventListener('click', (event) => {
      const chip = event.target.closest('.chip[data-index]');
      if (chip) this.select(Number(chip.dataset.index));
    });
    story.addEventListener('keydown', (event) => {
      const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (step === undefined || this.#selected === null) return;
      event.preventDefault();
      const next = Math.min(Math.max(this.#selected + step, 0), this.#story.chips.length - 1);
      this.select(next);
      this.#drawn[next]?.button.focus();
    });
    // A mouse over a chip shows its alternatives at once; a tap (or click) selects it.
    story.addEventListener('pointerover', (event) => {
      if (event.pointerType !== 'mouse') return;
      const chip = event.target.closest('.chip[data-index]');
      if (chip) this.#preview(chip);
    });
    story.addEventListener('pointerleave', () => (popover.hidden = true));
  }

  /** The story's text, as `generate` writes it. */
  get text() {
    return this.#story.chips.map((c) => c.text).join('');
  }

  /** Whether a story of this view waits for Step (and the engine still holds it). */
  get paused() {
    return this.#story.paused && this.#host.holds();
  }

  // ---------------------------------------------------------------------------------------
  // Engine requests: each returns the client's Run; the view keeps its story in step
  // ---------------------------------------------------------------------------------------

  /**
   * A new story (`tokens`): `options` = { prompt, temperature?, topp?, seed?, steps? }; with
   * `take`, it pauses after that many new tokens (Step goes on).
   */
  start(client, options, { take } = {}) {
    const pieces = client.vocab();
    pieces.then((p) => (this.#pieces = p), () => {}); // replied before the first token
    this.#story = { first: null, chips: [], paused: false };
    this.#previous = null;
    this.#selected = null;
    this.#lens.clear();
    this.#clear();
    // How many alternatives a chip lists, and the lens per layer: the engine's defaults.
    const run = client.tokens({ ...options, attention: true, take }, { onToken: (t) => this.#add(t) });
    return this.#follow(run, pieces);
  }

  /** One more token (or `take`) of the paused story. */
  more(client, take = 1) {
    this.#story.paused = false;
    this.#selectNewest = true; // Step shows the token it wrote
    return this.#follow(client.more({ take }, { onToken: (t) => this.#add(t) }));
  }

  /** Chip `index` becomes `id` (one of its alternatives) and the story goes on from there. */
  branch(client, index, id, { take } = {}) {
    const { chips } = this.#story;
    const chip = chips[index];
    const at = chip.top.findIndex(([alt]) => alt === id);
    // The replaced continuation is only shown as text: its attention is let go.
    this.#previous = { from: index, chips: chips.slice(index).map(({ attention, ...rest }) => rest) };
    chips.length = index;
    // Its text comes from the engine first (`{ text }`: #add), as the story decodes it.
    chips.push({ ...chip, id, text: '', prob: chip.top[at]?.[1] ?? NaN, rank: at, prompt: false, branched: true });
    this.#story.paused = false;
    this.#lens.clear();
    this.#truncate(index);
    this.#schedule();
    this.#drawPrevious();
    // The engine feeds `id` at position index + 1 (chip k is the token at k + 1).
    const run = this.#follow(client.branch({ pos: index + 1, token: id, take }, { onToken: (t) => this.#add(t) }));
    this.select(index);
    return run;
  }

  /** Keeps the view's story in step with `run`; the host gets `done` (or the error). */
  #follow(run, before = Promise.resolve()) {
    this.#ui.root.dataset.state = 'running';
    this.#status('');
    const done = Promise.all([before, run.done]).then(([, done]) => {
      this.#story.paused = done.reason === 'paused';
      this.#finish(done);
      return done;
    }, (err) => {
      this.#finish(null);
      throw err;
    });
    return { ...run, done };
  }

  #finish(done) {
    cancelAnimationFrame(this.#frame);
    this.#draw();
    const { chips } = this.#story;
    this.#status(done?.reason === 'paused' ? `Paused after ${chips.length} tokens: Step writes the next one.` : '');
    const state = done ? (done.reason === 'paused' ? 'paused' : 'done') : 'error';
    this.#ui.root.dataset.state = state;
    if (this.#selectNewest && chips.length) this.select(chips.length - 1);
    else if (this.#selected !== null) this.#drawDetail();
    else if (chips.length) {
      // The first token the model wrote (past the prompt), else the last one.
      const first = chips.findIndex((c) => !c.prompt);
      this.select(first >= 0 ? first : chips.length - 1);
    }
    this.#selectNewest = false;
    if (done) this.#host.ended?.(done);
  }

  /** A token from the engine: a chip (or text completed at the end, for the last chip). */
  #add(token) {
    const { chips } = this.#story;
    if (token.pos === undefined) {
      if (chips.length) chips.at(-1).text += token.text;
      return;
    }
    this.#story.first ??= token.token;
    chips[token.pos] = { ...token };
    this.#keepAttentionInBudget();
    this.#schedule();
  }

  /** Lets the oldest chips' attention go while the chips hold more than ATTENTION_BUDGET. */
  #keepAttentionInBudget() {
    const { chips } = this.#story;
    const held = chips.filter((c) => c.attention);
    let bytes = held.reduce((sum, c) => sum + c.attention.weights.byteLength, 0);
    for (const chip of held) {
      if (bytes <= ATTENTION_BUDGET.bytes) break;
      if (chip === chips[this.#selected]) continue;
      bytes -= chip.attention.weights.byteLength;
      chip.attention = null;
      chip.attentionDropped = true;
    }
  }

  // ---------------------------------------------------------------------------------------
  // The chips
  // ---------------------------------------------------------------------------------------

  #clear() {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#drawn = [];
    this.#ui.story.replaceChildren();
    this.#ui.previous.hidden = true;
    this.#ui.detail.hidden = true;
    this.#ui.popover.hidden = true;
  }

  /** Draws the new chips at the next frame: a fast model makes more tokens than frames. */
  #schedule() {
    this.#frame ||= requestAnimationFrame(() => this.#draw());
  }

  #draw() {
    this.#frame = 0;
    const { chips, first } = this.#story;
    if (!this.#ui.story.firstChild && first !== null) this.#ui.story.append(this.#bosChip(first));
    for (let k = this.#drawn.length; k < chips.length; k++) {
      const drawn = this.#chip(chips[k], k);
      this.#drawn.push(drawn);
      this.#ui.story.append(drawn.item);
    }
    this.#ui.root.dataset.chips = String(chips.length);
  }

  /** Removes the chips from `index` on. */
  #truncate(index) {
    for (const { item } of this.#drawn.splice(index)) item.remove();
  }

  /** The token fed at position 0 (BOS), with its id: where every story starts. */
  #bosChip(id) {
    const chip = element('span', 'chip prompt bos');
    chip.title = 'BOS: every story starts with it';
    chip.append(element('span', 'piece', label(this.#pieces[id] ?? '<s>')), element('small', 'id', String(id)));
    return chip;
  }

  /** The text a chip shows: the engine's, or the piece when that is blank or part of a character. */
  #chipText(chip) {
    return chip.text.trim() ? chip.text.replaceAll('\n', '↵') : listed(this.#pieces[chip.id] ?? '');
  }

  /** Chip `k`: a button tinted by its probability; prompt chips show their id. */
  #chip(chip, k) {
    const item = element('span', 'tok');
    const button = element('button', `chip${chip.prompt ? ' prompt' : ''}${chip.branched ? ' branched' : ''}`);
    button.type = 'button';
    button.dataset.index = String(k);
    button.dataset.id = String(chip.id);
    button.dataset.prob = String(chip.prob);
    button.style.setProperty('--p', chip.prob.toFixed(4));
    if (k === this.#selected) button.classList.add('selected');
    // One tab stop for the whole story (the selected chip); arrow keys move between chips.
    button.tabIndex = k === (this.#selected ?? 0) ? 0 : -1;
    button.append(element('span', 'piece', this.#chipText(chip)));
    if (chip.prompt) button.append(element('small', 'id', String(chip.id)));
    button.setAttribute('aria-label', `${this.#chipText(chip)}, ${percent(chip.prob)}`);
    item.append(button);
    if (chip.text.includes('\n')) item.append(element('br'));
    return { item, button };
  }

  /** The top-10 of a chip under the mouse, next to it. */
  #preview(button) {
    const chip = this.#story.chips[Number(button.dataset.index)];
    if (!chip) return;
    const { popover, root } = this.#ui;
    popover.replaceChildren(element('p', 'inspect-caption', 'What the model expected here:'), bars(chip, this.#pieces));
    popover.hidden = false;
    const box = root.getBoundingClientRect();
    const at = button.getBoundingClientRect();
    const left = Math.max(0, Math.min(at.left - box.left, box.width - popover.offsetWidth));
    popover.style.left = `${left}px`;
    popover.style.top = `${at.bottom - box.top + 4}px`;
  }

  // ---------------------------------------------------------------------------------------
  // The selected chip
  // ---------------------------------------------------------------------------------------

  /** Selects chip `index`: its alternatives, attention and lens below the story. */
  select(index) {
    if (!this.#story.chips[index]) return;
    const old = this.#drawn[this.#selected ?? 0]?.button;
    old?.classList.remove('selected');
    if (old) old.tabIndex = -1;
    this.#selected = index;
    const button = this.#drawn[index]?.button;
    button?.classList.add('selected');
    if (button) button.tabIndex = 0;
    this.#ui.popover.hidden = true;
    this.#drawDetail();
  }

  #drawDetail() {
    const chip = this.#story.chips[this.#selected];
    const { detail } = this.#ui;
    if (!chip) {
      detail.hidden = true;
      return;
    }
    const title = element('h3', 'inspect-title');
    const how = chip.prompt ? 'from the prompt' : chip.branched ? 'your choice' : 'the model’s choice';
    const rank = chip.rank >= 0 ? `, rank ${chip.rank + 1}` : '';
    title.append(element('span', 'piece', listed(this.#pieces[chip.id] ?? '')),
      element('span', '', ` · id ${chip.id} · position ${chip.pos + 1} · ${how} · ${percent(chip.prob)}${rank}`));
    detail.replaceChildren(title, this.#alternatives(chip), this.#attention(chip), this.#lensSection(chip));
    detail.hidden = false;
    detail.dataset.index = String(this.#selected);
  }

  /** Bars of a chip's top list; `pick(id)` makes each a button (branch). */
  #alternatives(chip) {
    const section = element('section', 'inspect-alternatives');
    section.append(element('h4', '', `What the model expected here (top ${chip.top.length}, temperature 1)`));
    section.append(element('p', 'inspect-explain', 'The model scores every token of its vocabulary; a softmax turns the scores into probabilities. These are at temperature 1, the model\u2019s own; the story samples at the Settings\u2019 temperature, which sharpens (below 1) or flattens (above 1) them, and top-p keeps only the most probable tokens that add up to p.'));
    const live = this.#host.holds() && this.#ui.root.dataset.state !== 'running';
    section.append(bars(chip, this.#pieces, live ? (id) => this.#branchFrom(chip.pos, id) : null));
    section.append(element('p', 'inspect-hint', live
      ? 'Pick another token to branch: the story goes on from it (the old continuation stays below to compare).'
      : this.#ui.root.dataset.state === 'running' ? 'Branching works once the story is written.' : 'The engine has run something else since: generate this story again to branch from it.'));
    return section;
  }

  async #branchFrom(index, id) {
    if (!this.#host.holds()) return this.#drawDetail(); // which says why it cannot
    const step = this.#story.paused;
    const done = this.#host.run((client) => this.branch(client, index, id, { take: step ? 1 : undefined }), 'branch');
    if (!done) return;
    try {
      await done;
    } catch (err) {
      this.#host.showError(err);
    }
  }

  /** The attention of the pass that chose the chip, over the tokens before it. */
  #attention(chip) {
    const section = element('section', 'inspect-attention');
    const a = chip.attention;
    section.append(element('h4', '', `Attention while choosing it, over the ${chip.pos + 1} tokens before it`));
    section.append(element('p', 'inspect-explain', 'Attention: in each layer, each head compares this position\u2019s query with every earlier position\u2019s key, and a softmax of those scores says how much of each earlier token\u2019s value it takes in. The shades are those weights (each row sums to 1).'));
    if (!a) {
      const why = chip.attentionDropped
        ? `Let go to keep memory in bounds: the view keeps the attention of its latest tokens, ${ATTENTION_BUDGET.bytes / 2 ** 20} MB in all.`
        : 'Not captured for this token.';
      section.append(element('p', 'inspect-hint', why));
      return section;
    }
    this.#layer = Math.min(this.#layer, a.layers - 1);
    this.#head = Math.min(this.#head, a.heads - 1);
    const layer = numberSelect(a.layers, 'layer');
    const head = numberSelect(a.heads, 'head', [['-1', 'all heads']]);
    layer.value = String(this.#layer);
    head.value = String(this.#head);
    layer.className = 'inspect-layer';
    head.className = 'inspect-head';
    const controls = element('div', 'inspect-controls');
    const l1 = element('label', '', 'Layer ');
    l1.append(layer);
    const l2 = element('label', '', 'Head ');
    l2.append(head);
    controls.append(l1, l2);
    const view = element('div', 'inspect-attention-view');
    const draw = () => {
      this.#layer = Number(layer.value);
      this.#head = Number(head.value);
      view.replaceChildren(this.#head < 0 ? heads(chip, this.#layer, this.#pieceAt, (h) => ((this.#head = h), this.#drawDetail())) : heatmap(chip, this.#layer, this.#head, this.#pieceAt));
    };
    layer.onchange = draw;
    head.onchange = draw;
    draw();
    section.append(controls, view);
    return section;
  }

  /** The piece fed at position `p` of the story (the chips' ids shifted by one; BOS at 0). */
  #fed(p) {
    return p === 0 ? this.#story.first : this.#story.chips[p - 1]?.id;
  }

  /** The piece fed at position `p`, for the attention views. */
  #pieceAt = (p) => this.#pieces[this.#fed(p)] ?? '';

  /** The logit lens of the chip's pass, asked of the engine when opened. */
  #lensSection(chip) {
    const details = element('details', 'inspect-lens');
    details.open = this.#ui.root.dataset.lensOpen === 'true';
    details.append(element('summary', '', 'Logit lens: what the model would have said after each layer'));
    details.append(element('p', 'inspect-explain', 'The logit lens applies the final norm and the classifier to the residual stream after each layer, as if the model stopped there: how the prediction forms, layer by layer.'));
    const body = element('div', 'inspect-lens-body');
    details.append(body);
    const show = () => {
      this.#ui.root.dataset.lensOpen = String(details.open);
      if (details.open) this.#fillLens(chip, body);
    };
    details.addEventListener('toggle', show);
    if (details.open) show();
    return details;
  }

  async #fillLens(chip, body) {
    const cached = this.#lens.get(chip.pos);
    if (cached) return body.replaceChildren(lensTable(cached, this.#pieces));
    if (!this.#host.holds() || this.#ui.root.dataset.state === 'running') {
      body.replaceChildren(element('p', 'inspect-hint', this.#ui.root.dataset.state === 'running'
        ? 'The lens is computed once the story is written.'
        : 'The engine has run something else since: generate this story again to see its lens.'));
      return;
    }
    body.replaceChildren(element('p', 'inspect-hint', 'computing…'));
    const done = this.#host.run((client) => ({ done: client.lens(chip.pos) }), 'lens');
    if (!done) return body.replaceChildren(element('p', 'inspect-hint', 'The engine is busy: open this again in a moment.'));
    try {
      const layers = await done;
      this.#lens.set(chip.pos, layers);
      if (this.#story.chips[this.#selected] === chip) body.replaceChildren(lensTable(layers, this.#pieces));
    } catch (err) {
      body.replaceChildren(element('p', 'inspect-hint', `The lens failed: ${err.message}`));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Status and the replaced continuation
  // ---------------------------------------------------------------------------------------

  #status(text) {
    this.#ui.status.textContent = text;
    this.#ui.status.hidden = !text;
  }

  /** The continuation the last branch replaced, from the branch point on, to compare. */
  #drawPrevious() {
    const { previous } = this.#ui;
    if (!this.#previous) {
      previous.hidden = true;
      return;
    }
    const { from, chips } = this.#previous;
    const row = element('div', 'inspect-story old');
    for (const chip of chips) {
      const span = element('span', `chip${chip.branched ? ' branched' : ''}`);
      span.style.setProperty('--p', chip.prob.toFixed(4));
      span.append(element('span', 'piece', this.#chipText(chip)));
      span.dataset.id = String(chip.id);
      row.append(span);
      if (chip.text.includes('\n')) row.append(element('br'));
    }
    previous.replaceChildren(element('p', 'inspect-caption', `Before the branch at position ${from + 1}, the story went on:`), row);
    previous.hidden = false;
  }
}
