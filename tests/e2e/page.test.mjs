// The page suite (page-suite.mjs) in headless Chromium, driven by playwright-core.
// Run from tests/e2e: `node --test page.test.mjs`.

import { pageSuite } from './page-suite.mjs';

pageSuite('chromium');
