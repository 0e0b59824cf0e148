// inspect-draw.js: what the Inspect view (inspect-view.js) draws from a chip's numbers, as plain
// functions of what they show: pieces as a reader sees them, a chip's top tokens as bars, one
// head's attention as a heat strip, every head of a layer as a grid, the logit lens as a table.
// Model text goes in with textContent only.

const SVG = 'http://www.w3.org/2000/svg';

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
export const listed = (piece) => label(piece).replaceAll(' ', '␣');

/** 61.8%, 7.31%, 0.0521%; below 0.001%, just that. */
export const percent = (p) => (p >= 1e-5 ? `${Number((p * 100).toPrecision(3))}%` : '<0.001%');

export function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A <select> of `count` numbered options (`name n`), with `extra` [value, text] first. */
export function numberSelect(count, name, extra = []) {
  const select = element('select');
  for (const [value, text] of extra) select.append(new Option(text, value));
  for (let i = 0; i < count; i++) select.append(new Option(`${name} ${i + 1}`, String(i)));
  return select;
}

/** A chip's top tokens as bars (each a button that branches there, with `pick`), and the chosen
 * token below them when it ranked lower. */
export function bars(chip, pieces, pick = null) {
  const list = element('ol', 'inspect-bars');
  const top = chip.top;
  const scale = top[0]?.[1] || 1;
  for (const [id, p] of top) {
    const row = element('li', id === chip.id ? 'chosen' : '');
    const inner = element(pick && id !== chip.id ? 'button' : 'span', 'bar-row');
    if (inner.tagName === 'BUTTON') {
      inner.type = 'button';
      inner.onclick = () => pick(id);
      inner.title = `Branch: “${listed(pieces[id] ?? '')}” here, and the story goes on from it`;
    }
    inner.dataset.id = String(id);
    inner.dataset.prob = String(p);
    const bar = element('span', 'bar');
    bar.style.setProperty('--w', (p / scale).toFixed(4));
    inner.append(element('span', 'piece', listed(pieces[id] ?? '')), bar, element('span', 'pct', percent(p)));
    row.append(inner);
    list.append(row);
  }
  if (chip.rank >= top.length) {
    const row = element('li', 'chosen outside');
    row.append(element('span', 'bar-row', `${listed(pieces[chip.id] ?? '')}: ${percent(chip.prob)}, rank ${chip.rank + 1}`));
    list.append(row);
  }
  return list;
}

/** The weights of one head (a.weights is (layer, head, position)). */
export function headWeights(a, layer, head) {
  const at = (layer * a.heads + head) * a.positions;
  return a.weights.subarray(at, at + a.positions);
}

/** One head: the tokens before the chip, each shaded by its weight (relative to the largest).
 * `pieceAt(p)`: the piece fed at position p. */
export function heatmap(chip, layer, head, pieceAt) {
  const a = chip.attention;
  const row = headWeights(a, layer, head);
  const max = Math.max(...row) || 1;
  const map = element('div', 'inspect-heatmap');
  map.dataset.cells = String(row.length);
  row.forEach((w, p) => {
    const cell = element('span', 'cell', listed(pieceAt(p)));
    cell.style.setProperty('--w', (w / max).toFixed(4));
    cell.dataset.pos = String(p);
    cell.dataset.weight = String(w);
    cell.title = `position ${p}: ${percent(w)}`;
    map.append(cell);
  });
  const order = [...row.keys()].sort((x, y) => row[y] - row[x]).slice(0, 3);
  const most = order.map((p) => `“${listed(pieceAt(p))}” (position ${p}) ${percent(row[p])}`).join(', ');
  const wrap = element('div');
  wrap.append(map, element('p', 'inspect-hint', `Shade: weight relative to the largest. Most attended: ${most}.`));
  return wrap;
}

/** Every head of one layer: rows of heads, columns of positions (scrolls sideways when long);
 * a click on a row calls `onHead(head)`. `pieceAt(p)`: the piece fed at position p. */
export function heads(chip, layer, pieceAt, onHead) {
  const a = chip.attention;
  const cell = 12;
  const labelWidth = 28;
  const tokensHeight = 52; // the column labels: each position's token, top to bottom
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'inspect-grid');
  svg.setAttribute('width', String(labelWidth + a.positions * cell));
  svg.setAttribute('height', String(a.heads * cell + tokensHeight));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Layer ${layer + 1}: ${a.heads} heads over ${a.positions} positions`);
  for (let h = 0; h < a.heads; h++) {
    const row = headWeights(a, layer, h);
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
      tip.textContent = `head ${h + 1}, position ${p} “${listed(pieceAt(p))}”: ${percent(w)}`;
      rect.append(tip);
      svg.append(rect);
    });
  }
  for (let p = 0; p < a.positions; p++) {
    const token = document.createElementNS(SVG, 'text');
    token.setAttribute('class', 'inspect-grid-token');
    token.setAttribute('transform', `translate(${labelWidth + p * cell + 3}, ${a.heads * cell + 4}) rotate(90)`);
    token.dataset.pos = String(p);
    const piece = listed(pieceAt(p));
    token.textContent = piece.length > 8 ? `${piece.slice(0, 7)}…` : piece;
    svg.append(token);
  }
  svg.addEventListener('click', (event) => {
    const head = event.target.dataset?.head;
    if (head === undefined) return;
    onHead(Number(head));
  });
  const wrap = element('div', 'inspect-grid-wrap');
  wrap.append(svg);
  const box = element('div');
  box.append(wrap, element('p', 'inspect-hint', 'Each row a head, each column a position (shade relative to the row’s largest). Click a row to see that head.'));
  return box;
}

/** The logit lens: per layer, its top tokens and their probabilities. */
export function lensTable(layers, pieces) {
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
      td.append(element('span', 'piece', listed(pieces[id] ?? '')), element('small', 'pct', percent(p)));
      tr.append(td);
    }
    table.append(tr);
  });
  const wrap = element('div', 'inspect-lens-wrap');
  wrap.append(table, element('p', 'inspect-hint', 'The final RMSNorm and classifier applied to the residual stream after each layer; the last row is the model’s own prediction.'));
  return wrap;
}
