// The browser side of a measurement: a module worker (as the page runs the engine) that
// measures once and posts the result. Message in: measure()'s options with URL sources.
import * as llama2 from '/engine/llama2.js';
import { measure } from './measure.mjs';

onmessage = async ({ data }) => {
  try {
    postMessage({ ok: true, result: await measure(llama2, data) });
  } catch (err) {
    postMessage({ ok: false, message: String(err?.stack ?? err) });
  }
};
