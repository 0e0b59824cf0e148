// The page's essentials (essentials.mjs) in WebKitGTK's MiniBrowser (Safari's engine), driven
// by WebKitWebDriver under an Xvfb display of its own (webdriver.mjs).
// WebKitGTK 2.50 as packaged makes pages crossOriginIsolated but gives them no
// SharedArrayBuffer, so 2 workers meet over messages; with JavaScriptCore's
// useSharedArrayBuffer on (as Safari ships it) they meet through shared memory. WebKit ignores
// COEP `credentialless`: on a host without headers the service worker falls back to
// `require-corp` (one more reload), and the page is isolated.
// Run from tests/e2e: `node --test webkit.test.mjs`.

import { essentials } from './essentials.mjs';

essentials('webkit', {
  parallel: [
    { label: 'WebKitGTK as packaged (no SharedArrayBuffer)', transport: 'messages' },
    { label: 'SharedArrayBuffer on as in Safari', launch: { sharedArrayBuffer: true }, transport: 'shared memory' },
  ],
  plainHost: { coep: 'require-corp', transport: 'messages' },
});
