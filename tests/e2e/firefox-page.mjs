// Headless Firefox ESR with the part of Playwright's Browser / BrowserContext / Page API that
// the page suite (page-suite.mjs) uses, over puppeteer-core and WebDriver BiDi: so that the
// suite written once against Playwright runs in Firefox too. Playwright itself cannot drive
// Debian's Firefox (it needs its own patched build, a download).
//
// What differs from Playwright, and how it is met here:
// - colour scheme: BiDi has no media emulation, so each context is a Firefox of its own, started
//   with the preference that sets `prefers-color-scheme` for content;
// - waits: Playwright's `click` waits for the element to be there; `waitForSelector` waits for
//   it to be visible. Both do the same here (puppeteer's `visible` option);
// - form fields: `fill` and `selectOption` set the value and send the events a person's typing
//   or choice would (`input`, `change`), as Playwright does; `check` clicks a box not yet checked.

import { launchFirefox } from './browser.mjs';
import { fillField } from './drive.mjs';

/** Firefox's override of `prefers-color-scheme` for web content: 0 dark, 1 light. */
const SCHEME_PREF = 'layout.css.prefers-color-scheme.content-override';
const SCHEMES = { dark: 0, light: 1 };

/** Playwright's default time limit for a wait, in ms. */
const TIMEOUT = 30_000;

/** In the page: chooses an option of a <select> by value or `{ index }`. */
function selectOption([css, choice]) {
  const select = document.querySelector(css);
  if (!select) throw new Error(`no ${css}`);
  const index = typeof choice === 'object' ? choice.index : [...select.options].findIndex((o) => o.value === choice);
  if (!(index >= 0 && index < select.options.length)) throw new Error(`${css} has no option ${JSON.stringify(choice)}`);
  select.selectedIndex = index;
  select.dispatchEvent(new Event('input', { bubbles: true }));
  select.dispatchEvent(new Event('change', { bubbles: true }));
}

/** In the page: whether an element is rendered (Playwright's "visible": a non-empty box). */
function isVisible(css) {
  const element = document.querySelector(css);
  if (!element) return false;
  const box = element.getBoundingClientRect();
  return box.width > 0 && box.height > 0 && getComputedStyle(element).visibility !== 'hidden';
}

/** A Playwright-shaped page over a puppeteer page. */
function playwrightPage(page, context) {
  const visible = async (css, timeout = TIMEOUT) => page.waitForSelector(css, { visible: true, timeout });
  return {
    goto: (url) => page.goto(url),
    url: () => page.url(),
    context: () => context,
    on: (event, handler) => page.on(event, handler),
    evaluate: (fn, arg) => page.evaluate(fn, arg),
    waitForFunction: (fn, arg, { timeout = TIMEOUT } = {}) => page.waitForFunction(fn, { timeout, polling: 100 }, arg),
    waitForSelector: (css, { timeout = TIMEOUT } = {}) => visible(css, timeout),
    async click(css) {
      await visible(css);
      await page.click(css);
    },
    async check(css) {
      if (!(await page.$eval(css, (input) => input.checked))) await this.click(css);
    },
    fill: (css, value) => page.evaluate(fillField, [css, String(value)]),
    selectOption: (css, choice) => page.evaluate(selectOption, [css, choice]),
    async setInputFiles(css, paths) {
      await (await page.$(css)).uploadFile(...paths);
    },
    inputValue: (css) => page.$eval(css, (field) => field.value),
    textContent: (css) => page.$eval(css, (element) => element.textContent),
    getAttribute: (css, name) => page.$eval(css, (element, name) => element.getAttribute(name), name),
    isEnabled: (css) => page.$eval(css, (element) => !element.disabled),
    focus: (css) => page.focus(css),
    keyboard: { press: (key) => page.keyboard.press(key) },
    isVisible: (css) => page.evaluate(isVisible, css),
    isHidden: async (css) => !(await page.evaluate(isVisible, css)),
    $$eval: (css, fn) => page.$$eval(css, fn),
    screenshot: ({ path, fullPage = false }) => page.screenshot({ path, fullPage }),
    /** Runs `fn` in every document of the page before its own scripts. */
    addInitScript: (fn) => page.evaluateOnNewDocument(fn),
  };
}

/**
 * Starts headless Firefox; resolves with `{ newContext({ viewport, colorScheme }), close() }`,
 * whose contexts have `newPage()` and `close()`, as Playwright's do. Each context is a Firefox
 * of its own, closed with it: a test never inherits another's connections, downloads or
 * workers (with one Firefox for the whole suite, a load sometimes stalled at 0 bytes late in a
 * full run and never alone; a fresh Firefox costs about two seconds).
 */
export async function launchFirefoxAsPlaywright() {
  const open = new Set();
  return {
    async newContext({ viewport, colorScheme = 'light' } = {}) {
      if (!(colorScheme in SCHEMES)) throw new Error(`unknown colour scheme '${colorScheme}'`);
      const firefox = await launchFirefox({ [SCHEME_PREF]: SCHEMES[colorScheme] });
      open.add(firefox);
      const own = await firefox.createBrowserContext();
      const context = {
        async newPage() {
          const page = await own.newPage();
          if (viewport) await page.setViewport(viewport);
          return playwrightPage(page, context);
        },
        async close() {
          open.delete(firefox);
          await firefox.close();
        },
      };
      return context;
    },
    async close() {
      await Promise.all([...open].map((firefox) => firefox.close()));
    },
  };
}
