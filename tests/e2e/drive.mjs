// One small face over the three browser drivers, for the tests that run the same steps in
// every engine (conformance.mjs, the Firefox and WebKit essentials, the package test):
//   chromium  Debian's Chromium through playwright-core (browser.mjs launchBrowser)
//   firefox   Debian's Firefox ESR through puppeteer-core over WebDriver BiDi
//   webkit    WebKitGTK's MiniBrowser through WebKitWebDriver (webdriver.mjs)
// None downloads a browser. A browser that is missing or does not start throws: a test
// that needs it fails rather than skips.
//
//   const browser = await launch('firefox');
//   const page = await browser.newPage();      // a fresh visitor (no cache, no service worker)
//   await page.goto(url);
//   await page.waitFor(() => document.body.dataset.ready);
//   const text = await page.evaluate((sel) => document.querySelector(sel).textContent, '#out');
//   await browser.close();

import { launchBrowser, launchFirefox } from './browser.mjs';
import { launchWebKit } from './webdriver.mjs';

export const BROWSERS = ['chromium', 'firefox', 'webkit'];

/** How often `waitFor` asks the page. */
const POLL_MS = 100;

/** Waits until `fn(arg)` is truthy in the page (asked every POLL_MS); resolves with its value. */
async function waitFor(page, fn, arg, { timeout = 120_000 } = {}) {
  const end = Date.now() + timeout;
  let error = null;
  for (;;) {
    // A page that reloads (isolation.js) loses its context mid-call: asked again.
    try {
      const value = await page.evaluate(fn, arg);
      if (value) return value;
      error = null;
    } catch (err) {
      error = err;
    }
    if (Date.now() > end) {
      throw new Error(`${page.browser}: timed out after ${timeout / 1000} s waiting for ${String(fn).slice(0, 200)}${error ? ` (${error.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** In the page: sets a form field's value as typing would end (its `input` and `change` events). */
export function fillField([css, value]) {
  const field = document.querySelector(css);
  if (!field) throw new Error(`no ${css}`);
  field.value = value;
  field.dispatchEvent(new Event('input', { bubbles: true }));
  field.dispatchEvent(new Event('change', { bubbles: true }));
}

/** The face every driver gets: `goto`, `evaluate`, `click`, `setFiles`, plus these. */
function withHelpers(page) {
  page.waitFor = (fn, arg, options) => waitFor(page, fn, arg, options);
  page.fill = (css, value) => page.evaluate(fillField, [css, String(value)]);
  return page;
}

/** Forwards a page's errors to the test output. */
function forwardErrors(name, page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`[${name} console] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`[${name} error] ${err.message}`));
}

async function chromium() {
  const browser = await launchBrowser();
  return {
    async newPage() {
      const context = await browser.newContext();
      const page = await context.newPage();
      forwardErrors('chromium', page);
      return withHelpers({
        browser: 'chromium',
        goto: (url) => page.goto(url),
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        click: (css) => page.click(css),
        setFiles: (css, paths) => page.setInputFiles(css, paths),
        close: () => context.close(),
      });
    },
    close: () => browser.close(),
  };
}

async function firefox() {
  const browser = await launchFirefox();
  return {
    async newPage() {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      forwardErrors('firefox', page);
      return withHelpers({
        browser: 'firefox',
        goto: (url) => page.goto(url),
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        click: (css) => page.click(css),
        async setFiles(css, paths) {
          await (await page.$(css)).uploadFile(...paths);
        },
        close: () => context.close(),
      });
    },
    close: () => browser.close(),
  };
}

/** WebKit: a WebDriver session per page (its own display and driver, and fresh storage). */
async function webkit(options) {
  const sessions = new Set();
  // The first session now, so that a WebKit that cannot start fails the launch.
  let first = await launchWebKit(options);
  sessions.add(first);
  return {
    async newPage() {
      const session = first ?? (await launchWebKit(options));
      first = null;
      sessions.add(session);
      return withHelpers({
        browser: 'webkit',
        goto: (url) => session.goto(url),
        evaluate: (fn, arg) => session.evaluate(fn, arg),
        click: (css) => session.click(css),
        setFiles: (css, paths) => session.type(css, paths.join('\n')),
        async close() {
          sessions.delete(session);
          await session.close();
        },
      });
    },
    async close() {
      await Promise.all([...sessions].map((s) => s.close()));
    },
  };
}

const LAUNCHERS = { chromium, firefox, webkit };

/**
 * Starts browser `name` (one of BROWSERS). `options` (WebKit): `{ sharedArrayBuffer: true }`
 * turns SharedArrayBuffer on in cross-origin-isolated pages as Safari ships it (webdriver.mjs).
 */
export async function launch(name, options = {}) {
  const launcher = LAUNCHERS[name];
  if (!launcher) throw new Error(`unknown browser '${name}' (${BROWSERS.join(', ')})`);
  return launcher(options);
}
