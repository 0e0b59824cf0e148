// Shared by the tests that drive index.html (page, permalink, offline, hardening): how a
// person uses it, written once. Settings and Model are <details> sections: these helpers open
// them before touching their fields, as a person would.

/** Opens a <details> section (`#settings`, `#model-panel`) if it is closed. */
export async function openSection(page, id) {
  if (!(await page.evaluate((id) => document.getElementById(id).open, id))) await page.click(`#${id} > summary`);
}

/** Waits until the page has started (presets filled, the engine's defaults in the fields). */
export async function pageReady(page) {
  await page.waitForSelector('body[data-ready]');
  await page.waitForFunction(() => document.querySelector('#topp').value !== '' && document.querySelector('#preset').options.length > 0);
}

/** Fills the Settings fields (strings as typed; `undefined` leaves a field as it is). */
export async function settings(page, values) {
  await openSection(page, 'settings');
  for (const [field, value] of Object.entries(values)) if (value !== undefined) await page.fill(`#${field}`, String(value));
}

/** The error shown next to any control, as { where, message, hint, action } or null. */
export function shownError(page) {
  return page.evaluate(() => {
    const slot = [...document.querySelectorAll('.error')].find((e) => !e.hidden);
    if (!slot) return null;
    const button = slot.querySelector('.retry');
    return {
      where: slot.id, kind: slot.dataset.kind, message: slot.querySelector('.message').textContent,
      hint: slot.querySelector('.hint').hidden ? '' : slot.querySelector('.hint').textContent,
      action: button.hidden ? null : button.textContent,
    };
  });
}

/** The message of the error shown, or null. */
export async function errorMessage(page) {
  return (await shownError(page))?.message ?? null;
}

/** Waits until nothing runs (no load, no generation); the engine may be dead. A timeout says
 * what the page showed then (what runs, the status and progress lines), to tell a page that
 * hangs from a wait that missed its change. */
export async function idle(page, timeout = 120_000) {
  try {
    await page.waitForFunction(() => ['idle', 'dead'].includes(document.body.dataset.busy), null, { timeout });
  } catch (err) {
    const seen = await page.evaluate(() => ({
      busy: document.body.dataset.busy,
      texts: [...document.querySelectorAll('[id$="status"], [id$="progress-text"], [id$="-error"]:not([hidden])')]
        .map((e) => `${e.id}: ${e.textContent.trim().slice(0, 160)}`),
    })).catch((why) => `(the page could not be read: ${why.message})`);
    err.message += `; the page then: ${JSON.stringify(seen)}`;
    throw err;
  }
}

/** Loads checkpoint and tokenizer URLs through the Model section; resolves with the error message or null. */
export async function loadUrls(page, model, tokenizer) {
  await openSection(page, 'model-panel');
  await page.fill('#model-url', new URL(model, page.url()).href);
  await page.fill('#tokenizer-url', new URL(tokenizer, page.url()).href);
  await page.click('#load');
  await idle(page);
  return errorMessage(page);
}

/** Opens local files through the Model section's file input; resolves with the error message or null. */
export async function openFiles(page, files) {
  await page.setInputFiles('#files', files);
  await idle(page);
  return errorMessage(page);
}

/**
 * Clicks Generate (loading the chosen model first when needed) and waits for the story or an
 * error; resolves with { error, text, done, note }.
 */
export async function generate(page, values = {}) {
  const { prompt, ...rest } = values;
  if (prompt !== undefined) await page.fill('#prompt', prompt);
  if (Object.keys(rest).length) await settings(page, rest);
  await page.evaluate(() => delete document.querySelector('#output').dataset.done);
  await page.click('#generate');
  await page.waitForFunction(
    () => document.querySelector('#output').dataset.done || [...document.querySelectorAll('.error')].some((e) => !e.hidden),
    null, { timeout: 120_000 },
  );
  await idle(page);
  return {
    error: await errorMessage(page),
    text: await page.textContent('#output'),
    done: await page.getAttribute('#output', 'data-done'),
    note: (await page.isHidden('#end-note')) ? null : await page.textContent('#end-note'),
  };
}

/** The fact `name` of the loaded model (#facts [data-fact]): { text, value }. */
export async function fact(page, name) {
  const dd = `#facts [data-fact="${name}"]`;
  return { text: await page.textContent(dd), value: Number(await page.getAttribute(dd, 'data-value')) };
}

/** The Model section's one-line summary. */
export const modelSummary = (page) => page.textContent('#model-summary');

/** Whether the page scrolls sideways (something wider than the viewport). */
export const overflowsSideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > innerWidth + 1);
