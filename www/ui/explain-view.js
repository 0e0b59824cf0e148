// explain-view.js: the Explain view (the page's Explain mode). Pick a token of the story the
// engine holds; the view asks the engine for the trace of that position (every vector of its
// forward pass, llama2.js `trace`) and walks it stage by stage in run.c's order
// (explain-stages.js): a sentence of what the stage does, its formula, where it is computed,
// its shape, and its vector as a heat strip with the values on hover (the attention as one
// strip per head, labelled by token; the end as the probabilities the sampler drew from).
// Keyboard: ← → the stages, ↑ ↓ the layers.
// Over the whole story, a map (llama2.js `lensMap`): layer × position, the logit lens's
// entropy, its KL divergence to the final distribution, or the probability of a pinned token
// (pinned from the last stage's list); a cell picks that position and layer.
//
// Like the Inspect view it owns no engine: its host runs each request when the engine is free
// and says whether the engine still holds the story. Model text goes in with textContent only.

import { element, label, listed, percent } from './inspect-draw.js';
import { drawChances, sampling, STAGES } from './explain-stages.js';

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
  /** The story's lens map (llama2.d.ts `LensMap`), what it shows, and the pinned token. */
  #map = null;
  #measure = 'entropy';
  #pin = null;

  /** @param {HTMLElement} root @param {ExplainHost} host */
  constructor(root, host) {
    this.#host = host;
    root.classList.add('explain');
    const intro = element('p', 'explain-intro', 'Pick a token of the story: the view walks through the forward pass that read it, stage by stage, as run.c computes it, with the real numbers. ← → move between stages, ↑ ↓ between layers.');
    const tokens = element('div', 'explain-tokens');
    const map = this.#mapSection();
    const stage = element('section', 'explain-stage');
    stage.tabIndex = 0;
    stage.hidden = true;
    const save = element('p', 'explain-export');
    save.hidden = true;
    const json = element('a', 'explain-save-json', 'Save as JSON');
    json.download = 'llama2-explain.json';
    const png = element('a', 'explain-save-png', 'Save the map as PNG');
    png.download = 'llama2-lens-map.png';
    png.hidden = true;
    save.append(json, ' ', png);
    root.replaceChildren(intro, tokens, map.box, save, stage);
    this.#ui = { root, tokens, stage, map, save: { box: save, json, png } };
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
    this.#map = null;
    this.#ui.stage.hidden = true;
    this.#ui.map.box.hidden = false;
    this.#ui.save.box.hidden = true;
    this.#drawMap();
    this.#drawTokens();
  }

  /**
   * Points the Save links at what the view holds now: the story (ids and their pieces, the
   * sampling used), the selected position's trace and the lens map, as JSON (vectors as
   * arrays, the CLI's --trace and --lens-map names); and the map's canvas as PNG.
   */
  #offerExport() {
    const { box, json, png } = this.#ui.save;
    const record = {
      ids: this.#ids,
      pieces: this.#ids.map((id) => this.#pieces[id] ?? ''),
      sampling: this.#host.sampling(),
      trace: this.#trace,
      lensMap: this.#map,
    };
    const text = JSON.stringify(record, (_, v) => (ArrayBuffer.isView(v) ? Array.from(v) : v));
    if (json.href) URL.revokeObjectURL(json.href);
    json.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
    json.download = this.#pos === null ? 'llama2-explain.json' : `llama2-explain-pos${this.#pos}.json`;
    const canvas = this.#ui.map.canvas;
    png.hidden = canvas.hidden;
    if (!canvas.hidden) png.href = canvas.toDataURL('image/png');
    box.hidden = false;
  }

  /** No story to explain (or the engine ran something else since). */
  clear(why) {
    this.#ids = [];
    this.#trace = null;
    this.#map = null;
    this.#ui.tokens.replaceChildren(element('p', 'explain-hint', why));
    this.#ui.stage.hidden = true;
    this.#ui.map.box.hidden = true;
    this.#ui.save.box.hidden = true;
  }

  /** The map's controls, canvas and readout (drawn by `#drawMap`). */
  #mapSection() {
    const box = element('section', 'explain-map');
    const head = element('div', 'explain-map-head');
    const measure = element('select', 'explain-measure');
    measure.setAttribute('aria-label', 'What the map shows');
    for (const [value, text] of Object.entries(MEASURES)) {
      const option = element('option', '', text.label);
      option.value = value;
      measure.append(option);
    }
    measure.onchange = () => {
      this.#measure = measure.value;
      if (this.#map && this.#measure === 'pinned' && (this.#map.pin === null || this.#map.pin !== this.#pin)) return this.mapStory();
      this.#drawMap();
      if (!this.#ui.save.box.hidden) this.#offerExport(); // the PNG is of the map as drawn now
    };
    const button = element('button', 'explain-map-run', 'Map the story');
    button.type = 'button';
    button.onclick = () => this.mapStory();
    head.append(element('span', 'explain-map-title', 'Over the whole story:'), measure, button);
    const canvas = document.createElement('canvas');
    canvas.className = 'explain-map-canvas';
    canvas.hidden = true;
    const readout = element('p', 'explain-readout');
    const what = element('p', 'explain-hint');
    canvas.addEventListener('pointermove', (event) => {
      const cell = this.#cellAt(event);
      if (cell) readout.textContent = this.#describe(cell.layer, cell.pos);
    });
    canvas.addEventListener('click', (event) => {
      const cell = this.#cellAt(event);
      if (!cell) return;
      this.#layer = cell.layer;
      this.pick(cell.pos);
    });
    box.append(head, what, canvas, readout);
    return { box, measure, button, canvas, readout, what };
  }

  /** Asks the engine for the lens over the whole story (with the pinned token), then draws it. */
  async mapStory() {
    if (!this.#host.holds()) return this.clear('The engine has run something else since: generate a story again to explain it.');
    if (this.#measure === 'pinned' && this.#pin === null) this.#pin = this.#ids[(this.#pos ?? 0) + 1] ?? null;
    const pin = this.#pin ?? undefined;
    const done = this.#host.run((client) => ({ done: client.lensMap(pin) }), 'lens');
    if (!done) return;
    this.#ui.root.dataset.map = 'mapping';
    const { button } = this.#ui.map;
    button.disabled = true;
    button.textContent = 'Mapping… (one pass per position)';
    try {
      this.#map = await done;
    } catch (err) {
      this.#ui.root.dataset.map = 'error';
      return this.#host.showError(err);
    } finally {
      button.disabled = false;
      button.textContent = this.#map ? 'Map again' : 'Map the story';
    }
    this.#drawMap();
    this.#offerExport();
    this.#ui.root.dataset.map = 'ready';
  }

  /** Pins token `id`: the map's third measure is its probability, layer by layer. */
  pin(id) {
    this.#pin = id;
    this.#measure = 'pinned';
    this.#ui.map.measure.value = 'pinned';
    if (this.#map) this.mapStory();
    else this.#drawMap();
  }

  /** The map's cell under a pointer event: { layer, pos } or null. */
  #cellAt(event) {
    const m = this.#map;
    if (!m) return null;
    const rect = this.#ui.map.canvas.getBoundingClientRect();
    const pos = Math.floor(((event.clientX - rect.left) / rect.width) * m.positions);
    const layer = Math.floor(((event.clientY - rect.top) / rect.height) * m.layers);
    return pos >= 0 && pos < m.positions && layer >= 0 && layer < m.layers ? { layer, pos } : null;
  }

  /** One cell in words: where, which token, and the value. */
  #describe(layer, pos) {
    const m = this.#map;
    const value = m[this.#measure][layer * m.positions + pos];
    const piece = listed(this.#pieces[this.#ids[pos]] ?? '');
    return `Layer ${layer + 1}, position ${pos} “${piece}”: ${MEASURES[this.#measure].value(value)}`;
  }

  /** Draws the map: one row per layer (layer 1 on top), one column per position. */
  #drawMap() {
    const { canvas, readout, what, button } = this.#ui.map;
    const m = this.#map;
    const spec = MEASURES[this.#measure];
    const pinned = this.#pin === null ? '' : ` “${listed(this.#pieces[this.#pin] ?? '')}” (${this.#pin})`;
    what.textContent = this.#measure === 'pinned' && this.#pin === null
      ? 'Pick a token in the last stage’s list (the probabilities) to pin it, or map the story: the token the story took after the selected position is pinned.'
      : `${spec.what}${this.#measure === 'pinned' ? pinned : ''}. Point at a cell to read it; click it to walk that position's pass at that layer.`;
    button.textContent = m ? 'Map again' : 'Map the story';
    const shown = m && (this.#measure !== 'pinned' || (m.pin !== null && m.pin === this.#pin));
    canvas.hidden = !shown;
    if (!shown) return (readout.textContent = '');
    const values = m[this.#measure];
    const cell = Math.max(2, Math.min(12, Math.floor(720 / m.positions)));
    canvas.width = m.positions * cell;
    canvas.height = m.layers * 14;
    canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
    const max = spec.max(values);
    const g = canvas.getContext('2d');
    g.clearRect(0, 0, canvas.width, canvas.height);
    for (let l = 0; l < m.layers; l++) {
      for (let p = 0; p < m.positions; p++) {
        g.fillStyle = `rgba(235, 115, 20, ${Math.min(1, values[l * m.positions + p] / max)})`;
        g.fillRect(p * cell, l * 14, cell - (cell > 3 ? 1 : 0), 13);
      }
    }
    if (this.#pos !== null && this.#pos < m.positions) {
      // The selected position: its column outlined.
      g.strokeStyle = 'rgb(47, 95, 206)';
      g.lineWidth = 1;
      g.strokeRect(this.#pos * cell + 0.5, 0.5, Math.max(cell - 1, 1), canvas.height - 1);
    }
    canvas.dataset.measure = this.#measure;
    canvas.dataset.values = Array.from(values.subarray(0, Math.min(values.length, 8)), (v) => v.toPrecision(6)).join(' ');
    readout.textContent = `${m.layers} layers (layer 1 on top) × ${m.positions} positions (left to right; the selected one outlined); the darkest cell ${spec.value(max)}.`;
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
    if (this.#map) this.#drawMap();
    this.#draw();
    this.#offerExport();
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
    // The engine's f32 values, as typed (0.9, not 0.8999999761581421).
    const used = this.#host.sampling();
    const [temperature, topp] = [used.temperature, used.topp].map((x) => Number(x.toPrecision(6)));
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
      li.title = 'Click to pin this token: the map above then shows its probability, layer by layer';
      li.onclick = () => this.pin(id);
      li.append(element('span', 'piece', label(this.#pieces[id] ?? '')), element('span', 'bar'), element('span', 'pct', percent(probs[id])));
      li.style.setProperty('--w', probs[id].toFixed(4));
      list.append(li);
    }
    const box = element('div');
    const took = `“${listed(this.#pieces[next] ?? '')}” (${next})`;
    const where = t.prompt
      ? `This position is in the prompt: the next token, ${took}, was the prompt's, not drawn. What the sampler would have drawn from, at temperature ${temperature} and top-p ${topp}:`
      : `${greedy ? 'Temperature 0 takes the most probable token (the bars: the model\u2019s own probabilities, at temperature 1)' : `Temperature ${temperature}, top-p ${topp}: ${kept.size} token${kept.size === 1 ? '' : 's'} kept`}; the story took ${took}.`;
    box.append(element('p', 'explain-hint', where), list, this.#tryTemperature(t, temperature, topp));
    return box;
  }

  /** The temperature experiment: the chances of the next token at another temperature, beside
   * the story's (top-p as the story's), and which tokens gained or lost. */
  #tryTemperature(t, temperature, topp) {
    const box = element('div', 'explain-try');
    const field = element('label', 'explain-try-field', 'Try another temperature: ');
    const input = element('input', 'explain-try-temperature');
    Object.assign(input, { type: 'number', min: '0', max: '5', step: '0.1', value: String(Math.min(2, (temperature > 0 ? temperature : 0) + 0.5)) });
    field.append(input);
    const table = element('table', 'explain-compare');
    const note = element('p', 'explain-hint');
    const draw = () => {
      const tried = Math.max(0, Number(input.value) || 0);
      const before = drawChances(t.logits, temperature, topp);
      const after = drawChances(t.logits, tried, topp);
      const top = (p) => [...p.keys()].filter((id) => p[id] > 0).sort((a, b) => p[b] - p[a] || a - b).slice(0, 8);
      const ids = [...new Set([...top(after), ...top(before)])].sort((a, b) => after[b] - after[a] || before[b] - before[a] || a - b);
      const head = element('tr');
      for (const text of ['token', `story (T ${temperature})`, `T ${tried}`, 'change']) head.append(element('th', '', text));
      table.replaceChildren(head);
      for (const id of ids) {
        const change = after[id] - before[id];
        const row = element('tr', change > 0.0005 ? 'gained' : change < -0.0005 ? 'lost' : '');
        row.dataset.id = String(id);
        row.dataset.before = String(before[id]);
        row.dataset.after = String(after[id]);
        const sign = change > 0 ? '+' : change < 0 ? '−' : '';
        const chance = (p) => (p === 0 ? '0' : percent(p));
        row.append(element('td', 'piece', label(this.#pieces[id] ?? '')), element('td', '', chance(before[id])),
          element('td', '', chance(after[id])), element('td', 'change', `${sign}${(Math.abs(change) * 100).toFixed(1)} pts`));
        table.append(row);
      }
      const kept = after.reduce((n, p) => n + (p > 0 ? 1 : 0), 0);
      note.textContent = tried > 0
        ? `At temperature ${tried} (top-p ${topp}), ${kept} token${kept === 1 ? '' : 's'} could be drawn here. Higher temperatures flatten the distribution (more surprising tokens); lower ones sharpen it; 0 takes the most probable.`
        : 'At temperature 0 the most probable token is taken, always.';
    };
    input.addEventListener('input', draw);
    draw();
    box.append(field, table, note);
    return box;
  }
}

/** What the map can show: its name, a sentence, a value in words, and the top of its scale. */
const MEASURES = {
  entropy: {
    label: 'How unsure each layer is (entropy)',
    what: 'Each cell: the entropy, in bits, of the next-token distribution the logit lens reads from that layer at that position (the classifier applied to the residual stream after the layer). Strong colour: unsure; faint: sure',
    value: (v) => `${v.toFixed(2)} bits`,
    max: (values) => values.reduce((m, v) => Math.max(m, v), 0) || 1,
  },
  kl: {
    label: 'How far from the final answer (KL)',
    what: 'Each cell: the KL divergence, in bits, from the model’s final distribution to the lens’s at that layer: how much the layer still has to change. The last layer is the final answer (0)',
    value: (v) => `${v.toFixed(2)} bits`,
    max: (values) => values.reduce((m, v) => Math.max(m, v), 0) || 1,
  },
  pinned: {
    label: 'Probability of a pinned token',
    what: 'Each cell: the probability the lens gives the pinned token at that layer and position: where in the stack the model comes to expect it. Pinned:',
    value: (v) => percent(v),
    max: () => 1,
  },
};

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
