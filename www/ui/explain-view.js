// explain-view.js: the Explain view (the page's Explain mode). Pick a token of the story the
// engine holds; the view asks the engine for the trace of that position (every vector of its
// forward pass, llama2.js `trace`) and walks it stage by stage in run.c's order
// (explain-stages.js): a sentence of what the stage does, its formula, where it is computed,
// its shape, and its vector as a heat strip with the values on hover (the attention as one
// strip per head, labelled by token; the end as the probabilities the sampler drew from).
// Keyboard: ← → the stages, ↑ ↓ the layers.
//
// Like the Inspect view it owns no engine: its host runs each request when the engine is free
// and says whether the engine still holds the story. Model text goes in with textContent only.

import { element, label, listed, percent } from './inspect-draw.js';
import { sampling, STAGES } from './explain-stages.js';

/** The view's stylesheet. */
export const STYLESHEET = new URL('./explain-view.css', import.meta.url).href;

/**
 * What the view needs from its host.
 * @typedef {{
 *   run(start: (client: import('../worker/client.js').EngineClient) => { done: Promise<any> }, what: 'lens'): Promise<any> | null,
 *   holds(): boolean,
 *   showError(err: { kind?: string, message: string }): void,
 *   sampling(): { temperature: number, topp: number },
 * }} ExplainHost
 */

export class ExplainView {
  #host;
  #ui;
  /** The story: the ids fed at each position (the last id was never fed), and the pieces. */
  #ids = [];
  #pieces = [];
  #config = null;
  /** The selected position, its trace, and where the walk is: a stage and a layer. */
  #pos = null;
  #trace = null;
  #stage = 0;
  #layer = 0;

  /** @param {HTMLElement} root @param {ExplainHost} host */
  constructor(root, host) {
    this.#host = host;
    root.classList.add('explain');
    const intro = element('p', 'explain-intro', 'Pick a token of the story: the view walks through the forward pass that read it, stage by stage, as run.c computes it, with the real numbers. ← → move between stages, ↑ ↓ between layers.');
    const tokens = element('div', 'explain-tokens');
    const stage = element('section', 'explain-stage');
    stage.tabIndex = 0;
    stage.hidden = true;
    root.replaceChildren(intro, tokens, stage);
    this.#ui = { root, tokens, stage };
    stage.addEventListener('keydown', (event) => {
      const moves = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] };
      const move = moves[event.key];
      if (!move || !this.#trace) return;
      event.preventDefault();
      this.#go(move[0], move[1]);
    });
  }

  /** The story the engine holds (`ids` as in a `done` reply), its model and its pieces. */
  show(ids, config, pieces) {
    this.#ids = ids;
    this.#config = config;
    this.#pieces = pieces;
    this.#pos = null;
    this.#trace = null;
    this.#ui.stage.hidden = true;
    this.#drawTokens();
  }

  /** No story to explain (or the engine ran something else since). */
  clear(why) {
    this.#ids = [];
    this.#trace = null;
    this.#ui.tokens.replaceChildren(element('p', 'explain-hint', why));
    this.#ui.stage.hidden = true;
  }

  #drawTokens() {
    const positions = this.#ids.length - 1; // the last id was never fed
    const buttons = [];
    for (let p = 0; p < positions; p++) {
      const b = element('button', 'explain-token', label(this.#pieces[this.#ids[p]] ?? String(this.#ids[p])));
      b.type = 'button';
      b.dataset.pos = String(p);
      b.title = `position ${p}: token ${this.#ids[p]}`;
      b.setAttribute('aria-pressed', String(p === this.#pos));
      b.onclick = () => this.pick(p);
      buttons.push(b);
    }
    this.#ui.tokens.replaceChildren(...buttons);
  }

  /** Asks the engine for the trace of position `pos`, then shows its first stage. */
  async pick(pos) {
    if (!this.#host.holds()) return this.clear('The engine has run something else since: generate a story again to explain it.');
    const done = this.#host.run((client) => ({ done: client.trace(pos) }), 'lens');
    if (!done) return;
    this.#ui.root.dataset.state = 'tracing';
    try {
      this.#trace = await done;
    } catch (err) {
      this.#ui.root.dataset.state = 'error';
      return this.#host.showError(err);
    }
    this.#pos = pos;
    for (const b of this.#ui.tokens.children) b.setAttribute('aria-pressed', String(Number(b.dataset.pos) === pos));
    this.#ui.stage.hidden = false;
    this.#draw();
    this.#ui.root.dataset.state = 'ready';
    this.#ui.stage.focus({ preventScroll: true });
  }

  /** Moves `stages` stages on (across layers in run.c's order) and `layers` layers. */
  #go(stages, layers) {
    const n = this.#trace.layers.length;
    if (layers) {
      this.#layer = Math.max(0, Math.min(n - 1, this.#layer + layers));
    } else {
      // The walk: embedding, every layer's stages in turn, then the end.
      const walk = [];
      STAGES.forEach((s, i) => {
        if (!s.layer) walk.push([i, 0]);
        else if (i === STAGES.findIndex((t) => t.layer)) {
          for (let l = 0; l < n; l++) STAGES.forEach((t, j) => t.layer && walk.push([j, l]));
        }
      });
      const at = walk.findIndex(([i, l]) => i === this.#stage && (!STAGES[i].layer || l === this.#layer));
      const next = walk[Math.max(0, Math.min(walk.length - 1, at + stages))];
      [this.#stage, this.#layer] = [next[0], STAGES[next[0]].layer ? next[1] : this.#layer];
    }
    this.#draw();
  }

  /** Draws the current stage of the selected position. */
  #draw() {
    const stage = STAGES[this.#stage];
    const t = this.#trace;
    const c = this.#config;
    const where = stage.layer ? ` · layer ${this.#layer + 1} of ${t.layers.length}` : '';
    const nav = element('div', 'explain-nav');
    const prev = element('button', 'explain-prev', '◀ Previous');
    const next = element('button', 'explain-next', 'Next ▶');
    for (const b of [prev, next]) b.type = 'button';
    prev.onclick = () => this.#go(-1, 0);
    next.onclick = () => this.#go(1, 0);
    const count = element('span', 'explain-count', `Stage ${this.#stage + 1} of ${STAGES.length}${where}`);
    nav.append(prev, count, next);
    const piece = listed(this.#pieces[t.token] ?? '');
    const title = element('h3', 'explain-title', `${stage.title}`);
    const context = element('p', 'explain-context', `Position ${t.pos}, token “${piece}” (${t.token})`);
    const what = element('p', 'explain-what', stage.what);
    const formula = element('p', 'explain-formula');
    formula.append(element('code', '', stage.formula));
    const code = element('p', 'explain-code', `Computed in ${stage.code} · shape ${stage.shape(c, t.pos)}`);
    const body = element('div', 'explain-body');
    if (stage.key === 'attention') body.append(this.#attention(t.layers[this.#layer].attention, t.pos));
    else if (stage.key === 'sample') body.append(this.#sample(t));
    else body.append(strip(stage.layer ? t.layers[this.#layer][stage.key] : t[stage.key], stage.key));
    this.#ui.stage.dataset.stage = stage.key;
    this.#ui.stage.dataset.layer = String(this.#layer);
    this.#ui.stage.replaceChildren(nav, title, context, what, formula, code, body);
  }

  /** One strip per head over the positions, each labelled by its token. */
  #attention(weights, pos) {
    const heads = weights.length / (pos + 1);
    const box = element('div', 'explain-heads');
    for (let h = 0; h < heads; h++) {
      const row = weights.subarray(h * (pos + 1), (h + 1) * (pos + 1));
      const line = element('div', 'explain-head');
      line.append(element('span', 'explain-head-name', `head ${h + 1}`));
      const cells = element('div', 'explain-cells');
      row.forEach((w, p) => {
        const cell = element('span', 'explain-cell', label(this.#pieces[this.#ids[p]] ?? ''));
        cell.style.setProperty('--w', w.toFixed(4));
        cell.dataset.weight = String(w);
        cell.title = `position ${p} “${listed(this.#pieces[this.#ids[p]] ?? '')}”: ${percent(w)}`;
        cells.append(cell);
      });
      line.append(cells);
      box.append(line);
    }
    return box;
  }

  /** The probabilities the sampler drew from (the story's temperature and top-p), the
   * tokens top-p kept, and the token that came next. */
  #sample(t) {
    const { temperature, topp } = this.#host.sampling();
    const greedy = !(temperature > 0);
    const { kept } = sampling(t.logits, temperature, topp);
    // Greedy takes the most probable: the bars show the model's own probabilities (T = 1).
    const { probs } = greedy ? sampling(t.logits, 1, 1) : sampling(t.logits, temperature, topp);
    const next = this.#ids[t.pos + 1];
    const order = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b).slice(0, 10);
    const list = element('ol', 'explain-probs');
    for (const id of order) {
      const li = element('li', kept.has(id) ? 'kept' : 'cut');
      if (id === next) li.classList.add('chosen');
      li.dataset.id = String(id);
      li.append(element('span', 'piece', label(this.#pieces[id] ?? '')), element('span', 'bar'), element('span', 'pct', percent(probs[id])));
      li.style.setProperty('--w', probs[id].toFixed(4));
      list.append(li);
    }
    const box = element('div');
    const took = `“${listed(this.#pieces[next] ?? '')}” (${next})`;
    const where = t.prompt
      ? `This position is in the prompt: the next token, ${took}, was the prompt's, not drawn. What the sampler would have drawn from, at temperature ${temperature} and top-p ${topp}:`
      : `${greedy ? 'Temperature 0 takes the most probable token (the bars: the model\u2019s own probabilities, at temperature 1)' : `Temperature ${temperature}, top-p ${topp}: ${kept.size} token${kept.size === 1 ? '' : 's'} kept`}; the story took ${took}.`;
    box.append(element('p', 'explain-hint', where), list);
    return box;
  }
}

/** A vector as a heat strip (negative blue, positive orange, by magnitude) with the value
 * under the pointer; long vectors are drawn a bucket of values per pixel column. */
function strip(values, key) {
  const box = element('div', 'explain-strip');
  const width = Math.min(720, Math.max(values.length, 64));
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = 28;
  canvas.className = 'explain-canvas';
  const max = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  const g = canvas.getContext('2d');
  const per = values.length / width;
  for (let x = 0; x < width; x++) {
    const from = Math.floor(x * per);
    const to = Math.max(from + 1, Math.floor((x + 1) * per));
    let v = 0;
    for (let i = from; i < to && i < values.length; i++) if (Math.abs(values[i]) > Math.abs(v)) v = values[i];
    const a = Math.abs(v) / max;
    g.fillStyle = v < 0 ? `rgba(40, 110, 230, ${a})` : `rgba(235, 115, 20, ${a})`;
    g.fillRect(x, 0, 1, canvas.height);
  }
  const readout = element('p', 'explain-readout', `${values.length} values, largest |value| ${max.toPrecision(4)}. Point at the strip to read one.`);
  canvas.addEventListener('pointermove', (event) => {
    const rect = canvas.getBoundingClientRect();
    const i = Math.min(values.length - 1, Math.floor(((event.clientX - rect.left) / rect.width) * values.length));
    readout.textContent = `${key}[${i}] = ${values[i].toPrecision(6)}`;
  });
  box.dataset.count = String(values.length);
  box.dataset.first = Array.from(values.subarray(0, 4), (v) => v.toPrecision(6)).join(' ');
  box.append(canvas, readout);
  return box;
}
