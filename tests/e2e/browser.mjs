// Shared by the browser tests and the chrome conformance runner: the server and headless
// Debian Chromium driven by playwright-core (no downloaded browsers).

import { chromium } from 'playwright-core';
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

/** Forwards the page's console errors and crashes to the test output. */
export function watchPage(page, label = 'page') {
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error(`[${label} console] ${msg.text()}`);
  });
  page.on('pageerror', (err) => console.error(`[${label} error] ${err.message}`));
}
