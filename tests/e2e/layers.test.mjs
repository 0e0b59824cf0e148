// www/ is laid out by job, in layers (docs/architecture.md): a folder imports only from the
// folders below it (and its own), and no module imports itself back through others. Read from
// the sources' import statements (static and dynamic, relative specifiers).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './browser.mjs';

const WWW = join(ROOT, 'www');
/** Bottom first; `page` and `element` are siblings at the top. */
const LAYERS = { pkg: 0, engine: 1, cache: 2, worker: 3, ui: 4, page: 5, element: 5 };

const modules = readdirSync(WWW, { recursive: true })
  .filter((f) => f.endsWith('.js') && !f.startsWith('pkg') && !f.startsWith('models') && !f.startsWith('node_modules'));

/** The www-relative paths a module imports. */
function imports(file) {
  const text = readFileSync(join(WWW, file), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '');
  return [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)].map((m) => normalize(join(dirname(file), m[1])));
}

test('www/ folders import only from the layers below them', () => {
  const wrong = [];
  for (const file of modules) {
    const [folder] = file.split('/');
    if (!(folder in LAYERS)) {
      assert.ok(['sw.js'].includes(file), `${file}: a module outside the folders of docs/architecture.md`);
      continue;
    }
    for (const target of imports(file)) {
      const [theirs] = target.split('/');
      assert.ok(theirs in LAYERS, `${file} imports ${target}, outside the layers`);
      if (theirs !== folder && LAYERS[theirs] >= LAYERS[folder]) wrong.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(wrong, [], 'imports that reach sideways or up');
});

test('no import circle among www/ modules', () => {
  const graph = new Map(modules.map((m) => [m, imports(m).filter((t) => !t.startsWith('pkg'))]));
  const state = new Map(); // module -> 'open' | 'done'
  const circles = [];
  const visit = (m, path) => {
    if (state.get(m) === 'done') return;
    if (state.get(m) === 'open') return circles.push([...path.slice(path.indexOf(m)), m].join(' -> '));
    state.set(m, 'open');
    for (const t of graph.get(m) ?? []) visit(t, [...path, m]);
    state.set(m, 'done');
  };
  for (const m of modules) visit(m, []);
  assert.deepEqual(circles, []);
  assert.ok(modules.length > 30, relative(ROOT, WWW));
});
