// The app package.test.mjs builds with each bundler (Vite: src/main.js, webpack: src/index.js),
// as a user would write it: the package's API and its element, imported by name, with no
// bundler configuration. `?models=URL` says where the test models are (default /models/).
// Each result lands in a data attribute the test waits for.

import { loadModel } from 'llama2-wasm';
import 'llama2-wasm/llama-story';

const models = new URLSearchParams(location.search).get('models') ?? '/models/';
const model = `${models}aidreams260K.bin`;
const tokenizer = `${models}tok512-aidreams.bin`;

/** Greedy story into `#id`: its text, then `data-done` (the stop reason) or `data-error`. */
async function story(id, options) {
  const out = document.createElement('pre');
  out.id = id;
  document.body.append(out);
  try {
    const llama = await loadModel({ model, tokenizer, ...options });
    for await (const piece of llama.generate('Once upon a time', { temperature: 0, steps: 256 })) out.textContent += piece;
    out.dataset.workers = String(llama.config.workers);
    out.dataset.done = llama.stopReason;
    llama.free();
  } catch (err) {
    out.dataset.error = String(err?.message ?? err);
  }
}

// On the page's thread: one engine, then the model split over 2 workers (shard-worker.js).
await story('one', { workers: 1 });
await story('two', { workers: 2 });

// The element, whose engine runs in the package's worker.js.
const element = document.createElement('llama-story');
element.id = 'story';
for (const [name, value] of Object.entries({ model, tokenizer, steps: '256', temperature: '0' })) element.setAttribute(name, value);
document.body.append(element);
