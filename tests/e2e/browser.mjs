// Shared by the browser tests and the conformance runner: the server, headless Debian
// Chromium driven by playwright-core and headless Debian Firefox ESR driven by puppeteer-core
// over WebDriver BiDi (no downloaded browsers). WebKit is webdriver.mjs; drive.mjs puts one
// face over the three.

import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { serve } from '../../tools/serve.mjs';

export const ROOT = new URL('../../', import.meta.url).pathname;

/** Serves www/ (plus optional mounts) on a free port; returns `{ url, close() }`. */
export async function startServer(mounts = []) {
  const { server, url } = await serve({ root: `${ROOT}www`, port: 0, mounts });
  return { url, close: () => new Promise((done) => server.close(done)) };
}

/** Headless Chromium from /usr/bin (CHROMIUM to override). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}

/**
 * Headless Firefox ESR from /usr/bin (FIREFOX to override), a puppeteer-core Browser;
 * `prefs`: more Firefox preferences.
 */
export function launchFirefox(prefs = {}) {
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
    // LLAMA2_FIREFOX_CONSOLE=1: the console of pages and workers on this process's output.
    dumpio: Boolean(process.env.LLAMA2_FIREFOX_CONSOLE),
    // No updates, telemetry or other background connections (the network is closed here).
    extraPrefsFirefox: {
      'app.update.enabled': false,
      'browser.shell.checkDefaultBrowser': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
      'network.captive-portal-service.enabled': false,
      'network.connectivity-service.enabled': false,
      ...(process.env.LLAMA2_FIREFOX_CONSOLE ? { 'devtools.console.stdout.content': true } : {}),
      ...prefs,
    },
  });
}

/** Forwards the page's console errors and crashes to the test output. */
export function watchPage(page, label = 'page') {
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`[${label} console] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`[${label} error] ${err.message}`));
}
