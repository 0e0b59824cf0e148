// The page suite (page-suite.mjs) in headless Firefox ESR, driven by puppeteer-core over
// WebDriver BiDi through firefox-page.mjs. Run from tests/e2e: `node --test page-firefox.test.mjs`.

import { pageSuite } from './page-suite.mjs';

pageSuite('firefox');
