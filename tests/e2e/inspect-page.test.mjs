// The Inspect view in headless Chromium as a reader uses it, on the page (index.html, Inspect
// mode) and in <llama-story inspect> (embed.html, served without COOP/COEP): generate; the
// chips are the native `llama2 --inspect` file's tokens (the prompt's with their ids); a
// selected chip's top 10 and its attention heatmap (one cell per previous position, every
// weight) are the native numbers to 1e-6; its logit lens and a branch from one of its
// alternatives are what the JS API gives in Node (llama2.js `lens`, `branch`); Step writes one
// token per click; once the engine ran another story, the view says so instead of branching;
// past its memory budget the view lets the oldest tokens' attention go, and says so.
// The worker's inspect requests (tokens with take, more, branch, lens, vocab) keep their order
// and refuse bad arguments. Screenshots (desktop, 390 px, dark) go to target/e2e/inspect-*.png; with
// UPDATE_SCREENSHOT=1 the desktop one also replaces the README's docs/inspect.png.
// Run from tests/e2e: `node --test --test-concurrency=1 inspect-page.test.mjs`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, openAsBlob, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createEngine, encode } from '../../www/engine/llama2.js';
import { launchBrowser, ROOT, watchPage } from './browser.mjs';
import { MODELS, nativeTrace, OUT, startServer } from './harness.mjs';
import { loadUrls, overflowsSideways, pageReady, settings } from './page-helpers.mjs';
import { readable } from '../../www/ui/wording.js';

const MODEL = 'aidreams260K.bin';
const TOKENIZER = 'tok512-aidreams.bin';
/** The page's story: greedy, as the README's golden one but 64 positions. */
const GREEDY = { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 64 };
/** embed.html's inspect demo, greedy, and a sampled story with a seed. */
const EMBED = { prompt: 'Once upon a time', temperature: 0, topp: 0.9, seed: 1, steps: 64 };
const SAMPLED = { prompt: 'The little dog', temperature: 0.8, topp: 0.9, seed: 42, steps: 64 };
/** The chip looked into: past the prompt (12 tokens), with attention over 21 positions. */
const CHIP = 20;
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1000, height: 900 };

/** The native `--inspect` lines of story `c`: one per forward pass, chip k = line k. */
function nativeInspect(c) {
  mkdirSync(join(OUT, 'inspect'), { recursive: true });
  const file = join(OUT, 'inspect', `page-${c.temperature}-${c.seed}-${c.steps}.jsonl`);
  execFileSync(join(ROOT, 'target/release/llama2'), [join(MODELS, MODEL), '-z', join(MODELS, TOKENIZER),
    '-t', String(c.temperature), '-p', String(c.topp), '-s', String(c.seed), '-n', String(c.steps), '-i', c.prompt, '--inspect', file]);
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

/** The prompt's ids (BOS first), by the engine's encoder in Node. */
const promptIds = (c) => encode(readFileSync(join(MODELS, TOKENIZER)), 512, c.prompt);

/**
 * The JS API in Node (one worker): story `c`'s ids, then the lens at `lens` and a branch
 * `{ pos, id }` of it, as the view asks for them.
 */
async function reference(c, { lens, branch }) {
  const wasm = readFileSync(join(ROOT, 'www/pkg/simd/llama2_wasm_bg.wasm'));
  const llama = await createEngine({ variant: 'simd', wasm, workers: 1 });
  await llama.loadCheckpoint(await openAsBlob(join(MODELS, MODEL)), { name: MODEL });
  await llama.loadTokenizer(readFileSync(join(MODELS, TOKENIZER)));
  const options = { temperature: c.temperature, topp: c.topp, seed: BigInt(c.seed), steps: c.steps };
  const ids = [];
  let text = '';
  for await (const t of llama.tokens(c.prompt, options)) {
    ids.push(t.id);
    text += t.text;
  }
  const out = { ids, text, lens: await llama.lens(lens, 5), branch: [] };
  for await (const t of llama.branch(branch.pos, branch.id)) if (t.pos !== undefined) out.branch.push(t.id);
  llama.free();
  return out;
}

const near = (a, b, what) => assert.ok(Math.abs(a - b) <= 1e-6, `${what}: ${a} vs ${b}`);

/**
 * An inspect view as tests read it: `scope` is the page's #inspect-view or the element's host
 * (Playwright's CSS locators go through open shadow roots).
 */
function viewOf(page, scope) {
  const $$ = (selector, map) => page.locator(`${scope} ${selector}`).evaluateAll(map);
  return {
    scope,
    chips: () => $$('.inspect-story:not(.old) .chip[data-index]', (els) => els.map((e) => ({
      id: Number(e.dataset.id), prob: Number(e.dataset.prob), prompt: e.classList.contains('prompt'),
      shownId: e.querySelector('.id')?.textContent ?? null,
    }))),
    bos: () => page.locator(`${scope} .chip.bos .id`).textContent(),
    bars: (where) => $$(`${where} .bar-row`, (els) => els.map((e) => ({
      id: Number(e.dataset.id), prob: Number(e.dataset.prob), pct: e.querySelector('.pct').textContent,
      chosen: e.parentElement.classList.contains('chosen'), button: e.tagName === 'BUTTON',
    }))),
    cells: () => $$('.inspect-heatmap .cell', (els) => els.map((e) => Number(e.dataset.weight))),
    rects: () => $$('.inspect-grid rect', (els) => els.length),
    lens: () => $$('.inspect-lens-table tr', (rows) => rows.slice(1).map((tr) =>
      [...tr.querySelectorAll('td')].map((td) => [Number(td.dataset.id), Number(td.dataset.prob)]))),
    previous: () => $$('.inspect-previous .chip', (els) => els.map((e) => Number(e.dataset.id))),
    click: (selector) => page.click(`${scope} ${selector}`),
    select: (selector, value) => page.selectOption(`${scope} ${selector}`, value),
  };
}

/** The chips are the native tokens; the prompt's carry their ids, BOS first. */
async function checkChips(view, lines, c) {
  const chips = await view.chips();
  assert.deepEqual(chips.map((ch) => ch.id), lines.map((l) => l.id), 'one chip per forward pass, the native tokens');
  chips.forEach((ch, k) => near(ch.prob, lines[k].prob, `chip ${k}'s probability (its tint)`));
  const prompt = await promptIds(c);
  const shown = chips.filter((ch) => ch.prompt);
  assert.deepEqual(shown.map((ch) => ch.id), prompt.slice(1), "the prompt's tokens are the first chips");
  assert.deepEqual(shown.map((ch) => Number(ch.shownId)), prompt.slice(1), 'each shows its id');
  assert.equal(Number(await view.bos()), prompt[0], 'BOS, with its id');
  assert.ok(chips.slice(shown.length).every((ch) => !ch.prompt && ch.shownId === null));
  return prompt;
}

/** Bars are a pass's top 10 (ids, probabilities, their percentages), the chosen token marked. */
function checkBars(bars, line, label) {
  assert.deepEqual(bars.map((b) => b.id), line.top.map(([id]) => id), `${label}: the native top 10`);
  bars.forEach((b, i) => {
    near(b.prob, line.top[i][1], `${label}: probability ${i}`);
    const shown = parseFloat(b.pct);
    assert.ok(Math.abs(shown - 100 * b.prob) <= 0.005 * 100 * b.prob + 1e-9, `${label}: ${b.pct} for ${b.prob}`);
  });
  assert.deepEqual(bars.filter((b) => b.chosen).map((b) => b.id), line.rank < 10 ? [line.id] : [], `${label}: the chosen token`);
}

/** Chip CHIP selected: its top 10, the heatmap of two heads and every head of a layer. */
async function checkChip(view, line) {
  await view.click(`.chip[data-index="${CHIP}"]`);
  checkBars(await view.bars('.inspect-alternatives'), line, `chip ${CHIP}`);
  const heads = line.attention[0].length;
  for (const [layer, head] of [[0, 0], [line.attention.length - 1, heads - 1]]) {
    await view.select('.inspect-layer', String(layer));
    await view.select('.inspect-head', String(head));
    const cells = await view.cells();
    assert.equal(cells.length, CHIP + 1, 'one cell per previous position');
    cells.forEach((w, p) => near(w, line.attention[layer][head][p], `attention ${layer}/${head}/${p}`));
  }
  await view.select('.inspect-head', '-1');
  assert.equal(await view.rects(), heads * (CHIP + 1), 'all heads: a cell per head and position');
  await view.select('.inspect-head', '0');
}

/** The lens of chip CHIP (opened on demand) is the JS API's; its last layer is the pass's top 5. */
async function checkLens(page, view, ref, line) {
  await view.click('.inspect-lens > summary');
  await page.locator(`${view.scope} .inspect-lens-table`).waitFor({ timeout: 60_000 });
  const lens = await view.lens();
  assert.equal(lens.length, ref.lens.length, 'a row per layer');
  lens.forEach((row, l) => {
    assert.deepEqual(row.map(([id]) => id), ref.lens[l].map(([id]) => id), `lens layer ${l}`);
    row.forEach(([, p], i) => near(p, ref.lens[l][i][1], `lens ${l}/${i}`));
  });
  assert.deepEqual(lens.at(-1).map(([id]) => id), line.top.slice(0, 5).map(([id]) => id), "the last layer's lens is the model's prediction");
}

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** The page, the model loaded, the story's settings, in Inspect mode. */
async function inspectPage({ viewport = DESKTOP, scheme = 'light' } = {}, c = GREEDY) {
  const context = await browser.newContext({ viewport, colorScheme: scheme });
  const page = await context.newPage();
  watchPage(page, `${viewport.width}px ${scheme}`);
  await page.goto(`${server.url}index.html`);
  await pageReady(page);
  assert.equal(await loadUrls(page, `models/${MODEL}`, `models/${TOKENIZER}`), null);
  await page.click('#model-panel > summary'); // closed again: the story first
  await page.fill('#prompt', c.prompt);
  await settings(page, { temperature: c.temperature, topp: c.topp, steps: c.steps, seed: c.seed });
  await page.click('#settings > summary');
  await page.check('input[name="mode"][value="inspect"]');
  assert.equal(await page.isHidden('#output'), true, 'the view replaces the text');
  return page;
}

/** Clicks `button` and waits for the view's run to end with `chips` chips. */
async function pageRun(page, button, chips) {
  await page.click(button);
  await page.waitForFunction((n) => ['done', 'paused'].includes(document.querySelector('#inspect-view').dataset.state)
    && document.querySelector('#inspect-view').dataset.chips === String(n) && document.body.dataset.busy === 'idle', chips, { timeout: 120_000 });
}

const shot = (page, name) => page.screenshot({ path: join(OUT, `inspect-${name}.png`), fullPage: true });

test('page: the Inspect view of a greedy story is the native --inspect file; the lens is the JS API\'s', async () => {
  const lines = nativeInspect(GREEDY);
  const alt = lines[CHIP].top.find(([id]) => id !== lines[CHIP].id)[0];
  const ref = await reference(GREEDY, { lens: CHIP, branch: { pos: CHIP + 1, id: alt } });
  assert.deepEqual(ref.ids, lines.map((l) => l.id), 'the JS API in Node agrees with the native file');

  const page = await inspectPage();
  const view = viewOf(page, '#inspect-view');
  await pageRun(page, '#generate', lines.length);
  assert.equal(await page.getAttribute('#end-note', 'data-reason'), 'steps');
  await checkChips(view, lines, GREEDY);
  await checkChip(view, lines[CHIP]);

  // Hovering a chip shows its top 10 at once.
  await page.hover(`#inspect-view .chip[data-index="${CHIP + 3}"]`);
  await page.waitForSelector('.inspect-popover:not([hidden])');
  checkBars(await view.bars('.inspect-popover'), lines[CHIP + 3], `hovered chip ${CHIP + 3}`);
  await page.mouse.move(0, 0);
  await page.waitForSelector('.inspect-popover', { state: 'hidden' });

  await checkLens(page, view, ref, lines[CHIP]);
  await page.click(`#inspect-view .chip[data-index="${CHIP}"]`);
  await shot(page, 'desktop');
  if (process.env.UPDATE_SCREENSHOT) copyFileSync(join(OUT, 'inspect-desktop.png'), join(ROOT, 'docs/inspect.png'));
  // Story mode shows the same story, as text.
  assert.equal(await page.textContent('#output'), readable(ref.text));

  // A branch: the second most probable token at chip CHIP; the story goes on as the JS API's
  // branch does, and the old continuation stays below.
  await pageRun(page, `#inspect-view .inspect-alternatives button.bar-row[data-id="${alt}"]`, CHIP + 1 + ref.branch.length);
  const chips = await view.chips();
  assert.deepEqual(chips.map((ch) => ch.id), [...ref.ids.slice(0, CHIP), alt, ...ref.branch], 'the branch is the JS API\'s');
  assert.deepEqual(await view.previous(), ref.ids.slice(CHIP), 'the replaced continuation, one step back');
  near(chips[CHIP].prob, lines[CHIP].top.find(([id]) => id === alt)[1], 'the chosen alternative keeps its probability');
  assert.equal(await page.getAttribute(`#inspect-view .chip[data-index="${CHIP}"]`, 'class'), 'chip branched selected');
  await shot(page, 'desktop-branch');
  await page.context().close();
});

test('page: Step writes one token per click, the native ones', async () => {
  const lines = nativeInspect(GREEDY);
  const prompt = await promptIds(GREEDY);
  const page = await inspectPage();
  const view = viewOf(page, '#inspect-view');
  // The first Step runs the prompt and one new token; each next Step one more.
  for (let n = prompt.length; n < prompt.length + 3; n++) {
    await pageRun(page, '#step', n);
    assert.equal(await page.getAttribute('#inspect-view', 'data-state'), 'paused');
    assert.deepEqual((await view.chips()).map((ch) => ch.id), lines.slice(0, n).map((l) => l.id), `after the Step to ${n} chips`);
    assert.match(await page.textContent('.inspect-status'), new RegExp(`^Paused after ${n} tokens`));
  }
  // Generate starts again, and writes the whole story.
  await pageRun(page, '#generate', lines.length);
  assert.deepEqual((await view.chips()).map((ch) => ch.id), lines.map((l) => l.id));
  await page.context().close();
});

test('page: a story read in Story mode is the one Inspect shows (same ids); Step selects its new token; the head grid names its tokens; the jargon is explained where it appears', async () => {
  const lines = nativeInspect(SAMPLED);
  const page = await inspectPage({}, SAMPLED);
  await page.check('input[name="mode"][value="story"]');
  await page.click('#generate');
  await page.waitForSelector('#output[data-done]', { timeout: 60_000 });
  await page.waitForFunction(() => document.body.dataset.busy === 'idle');
  const read = await page.textContent('#output');
  // Inspect: the story just read, run again token by token with its seed, not an empty view.
  await page.check('input[name="mode"][value="inspect"]');
  await page.waitForFunction((n) => document.querySelector('#inspect-view').dataset.state === 'done'
    && document.querySelector('#inspect-view').dataset.chips === String(n) && document.body.dataset.busy === 'idle', lines.length, { timeout: 60_000 });
  const view = viewOf(page, '#inspect-view');
  assert.deepEqual((await view.chips()).map((ch) => ch.id), lines.map((l) => l.id), 'the ids of the story read');
  assert.equal(await page.textContent('#output'), read, 'the same text');
  // The jargon, where it appears.
  assert.match(await page.textContent('.inspect-alternatives .inspect-explain'), /softmax turns the scores into probabilities.*temperature/);
  assert.match(await page.textContent('.inspect-attention .inspect-explain'), /query.*key.*value/);
  assert.match(await page.textContent('.inspect-lens .inspect-explain'), /final norm and the classifier/);
  // Every head of a layer: its columns are named by their tokens.
  await page.selectOption('#inspect-view .inspect-head', '-1');
  const tokens = await page.locator('#inspect-view .inspect-grid-token').allTextContents();
  const selected = Number(await page.getAttribute('#inspect-view .chip.selected', 'data-index'));
  assert.equal(tokens.length, selected + 1, 'one label per position attended to');
  assert.equal(tokens[0], '<s>');
  // Step after a paused story selects the token it wrote.
  await pageRun(page, '#generate', lines.length); // (written whole; then Step starts anew)
  const prompt = await promptIds(SAMPLED);
  await pageRun(page, '#step', prompt.length);
  await pageRun(page, '#step', prompt.length + 1);
  assert.equal(await page.getAttribute('#inspect-view .chip.selected', 'data-index'), String(prompt.length), 'Step selects the new token');
  await shot(page, 'desktop-review');
  await page.context().close();
});

test('page: the view on a 390 px phone and in dark mode: no sideways scrolling', async () => {
  const lines = nativeInspect(GREEDY);
  for (const [viewport, scheme, name] of [[PHONE, 'light', 'phone'], [PHONE, 'dark', 'phone-dark'], [DESKTOP, 'dark', 'desktop-dark']]) {
    const page = await inspectPage({ viewport, scheme });
    const view = viewOf(page, '#inspect-view');
    await pageRun(page, '#generate', lines.length);
    await view.click(`.chip[data-index="${CHIP}"]`); // a tap
    checkBars(await view.bars('.inspect-alternatives'), lines[CHIP], `${name}: chip ${CHIP}`);
    await view.click('.inspect-lens > summary');
    await page.locator('.inspect-lens-table').waitFor();
    await view.select('.inspect-head', '-1');
    assert.equal(await overflowsSideways(page), false, `${name}: the page scrolls sideways`);
    await shot(page, name);
    await page.context().close();
  }
});

test('<llama-story inspect> on embed.html: the native tokens and top 10, the heatmap, a branch, Step', async () => {
  const lines = nativeInspect(EMBED);
  const alt = lines[CHIP].top.find(([id]) => id !== lines[CHIP].id)[0];
  const ref = await reference(EMBED, { lens: CHIP, branch: { pos: CHIP + 1, id: alt } });
  const plain = await startServer({ isolation: false }); // as an ordinary static host serves it
  const page = await browser.newPage({ viewport: PHONE, colorScheme: 'dark' });
  watchPage(page, 'embed');
  try {
    await page.goto(`${plain.url}embed.html`);
    const host = page.locator('#inspect');
    await host.scrollIntoViewIfNeeded();
    await page.waitForSelector('#inspect[state="ready"]', { timeout: 60_000 });
    const view = viewOf(page, '#inspect');
    const run = async (part, chips, state = 'done') => {
      await page.click(`#inspect ${part}`);
      await page.waitForFunction(({ n, state }) => {
        const el = document.querySelector('#inspect');
        return el.getAttribute('state') === state && el.shadowRoot.querySelector('[part~="inspect"]').dataset.chips === String(n);
      }, { n: chips, state }, { timeout: 120_000 });
    };
    const done = page.evaluate(() => new Promise((resolve) => {
      document.querySelector('#inspect').addEventListener('llama-story-done', (e) => resolve(e.detail), { once: true });
    }));
    await run('[part~="generate"]', lines.length);
    assert.equal((await done).reason, 'steps');
    assert.equal(await page.isHidden('#inspect [part~="output"]'), true);
    await checkChips(view, lines, EMBED);
    await checkChip(view, lines[CHIP]);
    await checkLens(page, view, ref, lines[CHIP]);
    assert.equal(await overflowsSideways(page), false, 'the element scrolls the page sideways on a phone');
    await host.screenshot({ path: join(OUT, 'inspect-element-phone-dark.png') });

    await run(`.inspect-alternatives button.bar-row[data-id="${alt}"]`, CHIP + 1 + ref.branch.length);
    assert.deepEqual((await view.chips()).map((ch) => ch.id), [...ref.ids.slice(0, CHIP), alt, ...ref.branch], 'the branch is the JS API\'s');
    assert.deepEqual(await view.previous(), ref.ids.slice(CHIP));

    const prompt = await promptIds(EMBED);
    for (let n = prompt.length; n < prompt.length + 2; n++) {
      await run('[part~="step"]', n, 'paused');
      assert.deepEqual((await view.chips()).map((ch) => ch.id), lines.slice(0, n).map((l) => l.id), `Step to ${n} chips`);
    }
    // A branch while paused writes one token, and stays paused.
    const last = prompt.length - 1;
    const other = lines[last].top.find(([id]) => id !== lines[last].id)[0];
    await view.click(`.chip[data-index="${last}"]`);
    await run(`.inspect-alternatives button.bar-row[data-id="${other}"]`, last + 2, 'paused');
    assert.equal((await view.chips())[last].id, other);
  } finally {
    await page.close();
    await plain.close();
  }
});

test('<llama-story inspect>: a sampled story with a seed is the native one, pass by pass', async () => {
  const lines = nativeInspect(SAMPLED);
  const plain = await startServer({ isolation: false });
  const page = await browser.newPage({ viewport: DESKTOP });
  watchPage(page, 'embed sampled');
  try {
    await page.goto(`${plain.url}embed.html`);
    await page.evaluate((c) => {
      const story = document.createElement('llama-story');
      story.id = 'sampled';
      for (const [name, value] of Object.entries({ inspect: '', model: 'models/aidreams260K.bin', tokenizer: 'models/tok512-aidreams.bin',
        prompt: c.prompt, temperature: String(c.temperature), topp: String(c.topp), seed: String(c.seed), steps: String(c.steps) })) {
        story.setAttribute(name, value);
      }
      document.body.prepend(story);
      window.scrollTo(0, 0);
    }, SAMPLED);
    await page.waitForSelector('#sampled[state="ready"]', { timeout: 60_000 });
    await page.click('#sampled [part~="generate"]');
    await page.waitForSelector('#sampled[state="done"]', { timeout: 120_000 });
    const view = viewOf(page, '#sampled');
    await checkChips(view, lines, SAMPLED);
    await view.click(`.chip[data-index="${CHIP}"]`);
    checkBars(await view.bars('.inspect-alternatives'), lines[CHIP], `sampled chip ${CHIP}`);
    await page.locator('#sampled').screenshot({ path: join(OUT, 'inspect-element-desktop.png') });
  } finally {
    await page.close();
    await plain.close();
  }
});

test('page: past its memory budget the view lets the oldest tokens\' attention go and says so; the latest keep theirs', async () => {
  const lines = nativeInspect(GREEDY);
  const n = lines.length;
  const bytes = (k) => lines[k].attention.length * lines[k].attention[0].length * (k + 1) * 4; // layers x heads x positions f32
  const KEEP = 5;
  const budget = lines.slice(n - KEEP).reduce((sum, _, i) => sum + bytes(n - KEEP + i), 0);
  const page = await inspectPage();
  // A budget the 260K model reaches, as Llama 2 7B reaches the real one: set on the page's own
  // instance of the module.
  await page.evaluate(async (b) => {
    (await import(new URL('ui/inspect-view.js', location.href).href)).ATTENTION_BUDGET.bytes = b;
  }, budget);
  const view = viewOf(page, '#inspect-view');
  await pageRun(page, '#generate', n);
  for (const k of [13, CHIP, n - KEEP - 1]) { // past the prompt (12 tokens)
    await view.click(`.chip[data-index="${k}"]`);
    assert.match(await page.textContent('#inspect-view .inspect-attention .inspect-hint'), /^Let go to keep memory in bounds/, `chip ${k}`);
    assert.equal((await view.cells()).length, 0);
    checkBars(await view.bars('.inspect-alternatives'), lines[k], `chip ${k}: its top 10 stay`);
  }
  for (const k of [n - KEEP, n - 1]) {
    await view.click(`.chip[data-index="${k}"]`);
    const cells = await view.cells();
    assert.equal(cells.length, k + 1, `chip ${k} keeps its attention`);
    cells.forEach((w, p) => near(w, lines[k].attention[0][0][p], `chip ${k}: attention 0/0/${p}`));
  }
  await page.context().close();
});

test('<llama-story explain> on embed.html: pick a token, walk its pass (the native --trace\'s numbers), map the story, try a temperature', async () => {
  const POS = 20;
  const native = nativeTrace(POS);
  const plain = await startServer({ isolation: false });
  const page = await browser.newPage({ viewport: PHONE, colorScheme: 'dark' });
  watchPage(page, 'embed');
  try {
    await page.goto(`${plain.url}embed.html`);
    const host = page.locator('#explain');
    await host.scrollIntoViewIfNeeded();
    await page.waitForSelector('#explain[state="ready"]', { timeout: 60_000 });
    assert.equal(await page.isHidden('#explain [part~="output"]'), true, 'the tokens are the story');
    assert.match(await page.textContent('#explain .explain-hint'), /^Generate a story/);
    await page.click('#explain [part~="generate"]');
    await page.waitForSelector(`#explain .explain-token[data-pos="${POS}"]`, { timeout: 60_000 });
    assert.equal(await page.locator('#explain .explain-token').count(), native.ids.length - 1, 'one token per position run');
    await page.click(`#explain .explain-token[data-pos="${POS}"]`);
    await page.waitForFunction(() => document.querySelector('#explain').shadowRoot.querySelector('[part~="explain"]').dataset.state === 'ready');
    const first = async () => (await page.getAttribute('#explain .explain-strip', 'data-first')).split(' ').map(Number);
    const near = (got, want, what) => got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-5 * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${v} vs ${want[i]}`));
    near(await first(), native.trace.embedding, 'embedding');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.getAttribute('#explain .explain-stage', 'data-stage'), 'attn_norm');
    near(await first(), native.trace.layers[1].attn_norm, 'layer 1 attn_norm');
    await page.click('#explain .explain-map-run');
    await page.waitForFunction(() => document.querySelector('#explain').shadowRoot.querySelector('[part~="explain"]').dataset.map === 'ready');
    assert.equal(await page.isVisible('#explain .explain-map-canvas'), true);
    await page.focus('#explain .explain-stage'); // back from the map's button to the walk
    for (let i = 0; i < 60; i++) await page.keyboard.press('ArrowRight');
    assert.equal(await page.getAttribute('#explain .explain-stage', 'data-stage'), 'sample');
    assert.equal(Number(await page.getAttribute('#explain .explain-probs li.chosen', 'data-id')), native.ids[POS + 1]);
    await page.fill('#explain .explain-try-temperature', '2');
    assert.ok(await page.locator('#explain .explain-compare tr.gained').count() >= 5);
    assert.equal(await overflowsSideways(page), false, 'the element scrolls the page sideways on a phone');
    await host.screenshot({ path: join(OUT, 'explain-element-phone-dark.png') });
  } finally {
    await page.close();
    await plain.close();
  }
});

test('<llama-story inspect>: once another element has run a story, the view says so instead of branching', async () => {
  // (On the page, Inspect runs the story the engine holds again when it opens: its view is
  // never behind the engine there. Elements share one engine, so one can be.)
  const lines = nativeInspect(EMBED);
  const page = await browser.newPage({ viewport: DESKTOP });
  watchPage(page, 'embed stale');
  await page.goto(`${server.url}embed.html`);
  await page.locator('#inspect').scrollIntoViewIfNeeded();
  await page.waitForSelector('#inspect[state="ready"]', { timeout: 60_000 });
  const view = viewOf(page, '#inspect');
  await page.click('#inspect [part~="generate"]');
  await page.waitForSelector('#inspect[state="done"]', { timeout: 120_000 });
  // Another element's story takes the shared engine.
  await page.locator('#first').scrollIntoViewIfNeeded();
  await page.waitForSelector('#first[state="ready"]', { timeout: 60_000 });
  await page.click('#first [part~="generate"]');
  await page.waitForSelector('#first[state="done"]', { timeout: 120_000 });
  await page.locator('#inspect').scrollIntoViewIfNeeded();
  await view.click(`.chip[data-index="${CHIP}"]`);
  assert.deepEqual((await view.bars('.inspect-alternatives')).filter((b) => b.button), [], 'no alternative is a button');
  assert.match(await page.textContent('#inspect .inspect-alternatives .inspect-hint'), /run something else since/);
  await view.click('.inspect-lens > summary');
  await page.locator('#inspect .inspect-lens-body .inspect-hint').waitFor(); // the toggle event comes a task later
  assert.match(await page.textContent('#inspect .inspect-lens-body'), /run something else since/);
  assert.deepEqual((await view.chips()).map((ch) => ch.id), lines.map((l) => l.id), 'the view keeps its story');
  await page.close();
});

test('worker requests: tokens with take, more, branch, lens and trace in order; bad arguments and a missing story are errors', async () => {
  const page = await browser.newPage();
  watchPage(page, 'requests');
  await page.goto(`${server.url}embed.html`);
  const r = await page.evaluate(async () => {
    const { EngineClient } = await import('/worker/client.js');
    const engine = new EngineClient();
    const kind = (promise) => promise.then(() => 'ok', (err) => err.kind);
    const out = { before: await kind(engine.vocab()) };
    await engine.load({ model: '/models/aidreams260K.bin', tokenizer: '/models/tok512-aidreams.bin' }).done;
    const pieces = await engine.vocab();
    const seen = [];
    const onToken = (t) => seen.push(t);
    const paused = await engine.tokens({ prompt: 'Once upon a time', temperature: 0, steps: 64, take: 2 }, { onToken }).done;
    const more = await engine.more({ take: 1 }, { onToken }).done;
    const lens = await engine.lens(5, 3);
    // A trace between two steps, too (the story stays paused); its vectors arrive as Float32Arrays.
    const trace = await engine.trace(4);
    out.trace = { pos: trace.pos, layers: trace.layers.length, fields: Object.keys(trace.layers[0]).sort(), q: trace.layers[0].q.constructor.name, logits: trace.logits.length };
    out.badTrace = await kind(engine.trace('x'));
    out.farTrace = await kind(engine.trace(9999));
    const rest = await engine.more({}, { onToken }).done;
    out.noStory = await kind(engine.more({}).done);
    out.badTake = await kind(engine.tokens({ prompt: '', take: 0 }).done);
    out.badPos = await kind(engine.branch({ pos: 'x', token: 3 }).done);
    out.farPos = await kind(engine.branch({ pos: 9999, token: 3 }).done);
    out.badLens = await kind(engine.lens(-1));
    // A paused story ends when another request takes the engine.
    await engine.tokens({ prompt: 'Once upon a time', temperature: 0, steps: 64, take: 1 }).done;
    await engine.generate({ prompt: 'x', steps: 4 }).done;
    out.afterGenerate = await kind(engine.more({}).done);
    // A lens queued behind a plain story looks into that story.
    const plain = engine.generate({ prompt: 'Once upon a time', temperature: 0, steps: 64 });
    const queued = engine.lens(3, 2);
    out.ids = (await plain.done).ids.length;
    out.plainLens = (await queued).map((l) => l.length);
    engine.terminate();
    return {
      ...out, vocab: pieces.length, paused: paused.reason, more: more.reason, rest: rest.reason,
      tokens: seen.filter((t) => t.pos !== undefined).map((t) => [t.pos, t.prompt]), lens: lens.map((l) => l.length),
    };
  });
  assert.equal(r.before, 'state', 'vocab before a load');
  assert.equal(r.vocab, 512);
  assert.deepEqual([r.paused, r.more, r.rest], ['paused', 'paused', 'steps']);
  assert.deepEqual(r.tokens.map(([pos]) => pos), [...Array(64).keys()], 'each position once, in order, over the pauses');
  assert.deepEqual(r.tokens.filter(([, prompt]) => prompt).length, 12, "the prompt's positions are marked");
  assert.deepEqual(r.lens, [3, 3, 3, 3], 'a lens between two steps');
  assert.deepEqual(r.trace, {
    pos: 4, layers: 4, q: 'Float32Array', logits: 512,
    fields: ['attention', 'attn_norm', 'attn_out', 'ffn_norm', 'ffn_out', 'gate', 'heads_out', 'k', 'q', 'residual_attn', 'residual_ffn', 'v'],
  });
  assert.deepEqual([r.badTrace, r.farTrace], ['type', 'options']);
  // A position that is not a whole number is the engine's TypeError (kind `type`, as for every
  // argument: docs/inspect.md); `take`, the worker's own, and a position past the story are `options`.
  assert.deepEqual([r.noStory, r.badTake, r.badPos, r.farPos, r.badLens], ['state', 'options', 'type', 'options', 'type']);
  assert.equal(r.afterGenerate, 'state');
  assert.equal(r.ids, 65, 'BOS and 64 tokens');
  assert.deepEqual(r.plainLens, [2, 2, 2, 2]);
  await page.close();
});
