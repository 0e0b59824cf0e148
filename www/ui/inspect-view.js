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
// (branch and lens need it). Model text goes in with textContent only; the styles are in
// inspect-view.css (STYLESHEET), which the page links and the element's shadow root loads.

/** The view's stylesheet, for a shadow root. */
export const STYLESHEET = new URL('./inspect-view.css', import.meta.url).href;

/**
 * The most attention weights the view keeps, in bytes (all chips together). A pass's weights
 * are layers x heads x positions floats: ~75 KB for the 110M model mid-story, but ~1 MB for
 * Llama 2 7B at position 256, so a long 7B story would hold hundreds of MB. Past this, the
 * oldest chips' weights are let go (never the selected chip's); their detail says so.
 */
export const ATTENTION_BUDGET = { bytes: 64 * 2 ** 20 };
const SVG = 'http://www.w3.org/2000/svg';

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

/** A piece of the vocabulary as a reader should see it: `<s>`, a byte token as its character
 * (`<E2>` when it is part of one), a newline as ↵. */
export function label(piece) {
  const special = piece.match(/^\n*(<\/?s>|<unk>)\n*$/);
  if (special) return special[1];
  const byte = piece.match(/^<0x([0-9A-Fa-f]{2})>$/);
  if (byte) {
    const code = parseInt(byte[1], 16);
    if (code === 10) return '↵';
    return code >= 0x20 && code < 0x7f ? String.fromCharCode(code) : `<${byte[1].toUpperCase()}>`;
  }
  return piece.replaceAll('\n', '↵');
}

/** A piece in a list of alternatives: its spaces visible (" upon" and "upon" differ). */
const listed = (piece) => label(piece).replaceAll(' ', '␣');

/** 61.8%, 7.31%, 0.0521%; below 0.001%, just that. */
const percent = (p) => (p >= 1e-5 ? `${Number((p * 100).toPrecision(3))}%` : '<0.001%');

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A <select> of `count` numbered options (`name n`), with `extra` [value, text] first. */
function numberSelect(count, name, extra = []) {
  const select = element('select');
  for (const [value, text] of extra) select.append(new Option(text, value));
  for (let i = 0; i < count; i++) select.append(new Option(`${name} ${i + 1}`, String(i)));
  return select;
}

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
    return this.#follow(client.more({ take }, { onToken: (t) => this.#add(t) }));
  }

  /** Chip `index` becomes `id` (one of its alternatives) and the story goes on from there. */
  branch(client, index, id, { take } = {}) {
    const { chips } = this.#story;
    const chip = chips[index];
    const at = chip.top.findIndex(([alt]) => alt === id);
    // The replaced continuation is only shown as text: its attention is let go.
    this.#previous = { from: index, chips: chips.slice(index).map(({ attention, ...rest }) => rest) };
    const text = this.#decode(chip.token, id);
    chips.length = index;
    chips.push({ ...chip, id, text, prob: chip.top[at]?.[1] ?? NaN, rank: at, prompt: false, branched: true });
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
    if (this.#selected !== null) this.#drawDetail();
    else if (chips.length) {
      // The first token the model wrote (past the prompt), else the last one.
      const first = chips.findIndex((c) => !c.prompt);
      this.select(first >= 0 ? first : chips.length - 1);
    }
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

  /** The text of `id` after `prev`, as the engine decodes it: no leading space after BOS (the
   * first token), a byte token as its character ('' when it is part of one). */
  #decode(prev, id) {
    const piece = this.#pieces[id] ?? '';
    const byte = piece.match(/^<0x([0-9A-Fa-f]{2})>$/);
    if (byte) {
      const code = parseInt(byte[1], 16);
      return code < 0x80 ? String.fromCharCode(code) : '';
    }
    return prev === this.#story.first && piece.startsWith(' ') ? piece.slice(1) : piece;
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
    popover.replaceChildren(element('p', 'inspect-caption', 'What the model expected here:'), this.#bars(chip));
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
  #bars(chip, pick = null) {
    const list = element('ol', 'inspect-bars');
    const top = chip.top;
    const scale = top[0]?.[1] || 1;
    for (const [id, p] of top) {
      const row = element('li', id === chip.id ? 'chosen' : '');
      const inner = element(pick && id !== chip.id ? 'button' : 'span', 'bar-row');
      if (inner.tagName === 'BUTTON') {
        inner.type = 'button';
        inner.onclick = () => pick(id);
        inner.title = `Branch: “${listed(this.#pieces[id] ?? '')}” here, and the story goes on from it`;
      }
      inner.dataset.id = String(id);
      inner.dataset.prob = String(p);
      const bar = element('span', 'bar');
      bar.style.setProperty('--w', (p / scale).toFixed(4));
      inner.append(element('span', 'piece', listed(this.#pieces[id] ?? '')), bar, element('span', 'pct', percent(p)));
      row.append(inner);
      list.append(row);
    }
    if (chip.rank >= top.length) {
      const row = element('li', 'chosen outside');
      row.append(element('span', 'bar-row', `${listed(this.#pieces[chip.id] ?? '')}: ${percent(chip.prob)}, rank ${chip.rank + 1}`));
      list.append(row);
    }
    return list;
  }

  #alternatives(chip) {
    const section = element('section', 'inspect-alternatives');
    section.append(element('h4', '', `What the model expected here (top ${chip.top.length}, temperature 1)`));
    const live = this.#host.holds() && this.#ui.root.dataset.state !== 'running';
    section.append(this.#bars(chip, live ? (id) => this.#branchFrom(chip.pos, id) : null));
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
      view.replaceChildren(this.#head < 0 ? this.#heads(chip) : this.#heatmap(chip));
    };
    layer.onchange = draw;
    head.onchange = draw;
    draw();
    section.append(controls, view);
    return section;
  }

  /** The weights of one head (a.weights is (layer, head, position)). */
  #row(a, layer, head) {
    const at = (layer * a.heads + head) * a.positions;
    return a.weights.subarray(at, at + a.positions);
  }

  /** The piece fed at position `p` of the story (the chips' ids shifted by one; BOS at 0). */
  #fed(p) {
    return p === 0 ? this.#story.first : this.#story.chips[p - 1]?.id;
  }

  /** One head: the tokens before the chip, each shaded by its weight (relative to the largest). */
  #heatmap(chip) {
    const a = chip.attention;
    const row = this.#row(a, this.#layer, this.#head);
    const max = Math.max(...row) || 1;
    const map = element('div', 'inspect-heatmap');
    map.dataset.cells = String(row.length);
    row.forEach((w, p) => {
      const cell = element('span', 'cell', listed(this.#pieces[this.#fed(p)] ?? ''));
      cell.style.setProperty('--w', (w / max).toFixed(4));
      cell.dataset.pos = String(p);
      cell.dataset.weight = String(w);
      cell.title = `position ${p}: ${percent(w)}`;
      map.append(cell);
    });
    const order = [...row.keys()].sort((x, y) => row[y] - row[x]).slice(0, 3);
    const most = order.map((p) => `“${listed(this.#pieces[this.#fed(p)] ?? '')}” (position ${p}) ${percent(row[p])}`).join(', ');
    const wrap = element('div');
    wrap.append(map, element('p', 'inspect-hint', `Shade: weight relative to the largest. Most attended: ${most}.`));
    return wrap;
  }

  /** Every head of one layer: rows of heads, columns of positions (scrolls sideways when long). */
  #heads(chip) {
    const a = chip.attention;
    const cell = 12;
    const labelWidth = 28;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'inspect-grid');
    svg.setAttribute('width', String(labelWidth + a.positions * cell));
    svg.setAttribute('height', String(a.heads * cell));
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `Layer ${this.#layer + 1}: ${a.heads} heads over ${a.positions} positions`);
    for (let h = 0; h < a.heads; h++) {
      const row = this.#row(a, this.#layer, h);
      const max = Math.max(...row) || 1;
      const name = document.createElementNS(SVG, 'text');
      name.setAttribute('x', '0');
      name.setAttribute('y', String(h * cell + cell - 2));
      name.textContent = `h${h + 1}`;
      svg.append(name);
      row.forEach((w, p) => {
        const rect = document.createElementNS(SVG, 'rect');
        rect.setAttribute('x', String(labelWidth + p * cell));
        rect.setAttribute('y', String(h * cell));
        rect.setAttribute('width', String(cell - 1));
        rect.setAttribute('height', String(cell - 1));
        rect.setAttribute('fill-opacity', (0.04 + 0.96 * (w / max)).toFixed(3));
        rect.dataset.head = String(h);
        rect.dataset.pos = String(p);
        const tip = document.createElementNS(SVG, 'title');
        tip.textContent = `head ${h + 1}, position ${p} “${listed(this.#pieces[this.#fed(p)] ?? '')}”: ${percent(w)}`;
        rect.append(tip);
        svg.append(rect);
      });
    }
    svg.addEventListener('click', (event) => {
      const head = event.target.dataset?.head;
      if (head === undefined) return;
      this.#head = Number(head);
      this.#drawDetail();
    });
    const wrap = element('div', 'inspect-grid-wrap');
    wrap.append(svg);
    const box = element('div');
    box.append(wrap, element('p', 'inspect-hint', 'Each row a head, each column a position (shade relative to the row’s largest). Click a row to see that head.'));
    return box;
  }

  /** The logit lens of the chip's pass, asked of the engine when opened. */
  #lensSection(chip) {
    const details = element('details', 'inspect-lens');
    details.open = this.#ui.root.dataset.lensOpen === 'true';
    details.append(element('summary', '', 'Logit lens: what the model would have said after each layer'));
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
    if (cached) return body.replaceChildren(this.#lensTable(cached));
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
      if (this.#story.chips[this.#selected] === chip) body.replaceChildren(this.#lensTable(layers));
    } catch (err) {
      body.replaceChildren(element('p', 'inspect-hint', `The lens failed: ${err.message}`));
    }
  }

  #lensTable(layers) {
    const table = element('table', 'inspect-lens-table');
    const head = element('tr');
    head.append(element('th', '', 'after'));
    for (let i = 0; i < (layers[0]?.length ?? 0); i++) head.append(element('th', '', `#${i + 1}`));
    table.append(head);
    layers.forEach((top, l) => {
      const tr = element('tr');
      tr.append(element('th', '', `layer ${l + 1}`));
      for (const [id, p] of top) {
        const td = element('td');
        td.style.setProperty('--p', p.toFixed(4));
        td.dataset.id = String(id);
        td.dataset.prob = String(p);
        td.append(element('span', 'piece', listed(this.#pieces[id] ?? '')), element('small', 'pct', percent(p)));
        tr.append(td);
      }
      table.append(tr);
    });
    const wrap = element('div', 'inspect-lens-wrap');
    wrap.append(table, element('p', 'inspect-hint', 'The final RMSNorm and classifier applied to the residual stream after each layer; the last row is the model’s own prediction.'));
    return wrap;
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
