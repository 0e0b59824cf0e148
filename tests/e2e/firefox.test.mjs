// The page's essentials (essentials.mjs) in headless Firefox ESR, driven by puppeteer-core
// over WebDriver BiDi. Firefox gives cross-origin-isolated pages shared memory, and honours
// COEP `credentialless`: on a host without headers the service worker isolates the page.
// Run from tests/e2e: `node --test firefox.test.mjs`.

import { essentials } from './essentials.mjs';

essentials('firefox', {
  parallel: [{ label: 'as shipped', transport: 'shared memory' }],
  plainHost: { coep: 'credentialless', transport: 'shared memory' },
});
