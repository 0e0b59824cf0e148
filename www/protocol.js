// protocol.js: the messages between a page and its engine worker (worker.js), in one place.
// client.js speaks it for the page, the <llama-story> element and the tests; worker.js answers.
//
// page -> worker. Every request carries an `id`; the worker runs them strictly in order, one
// at a time, and every reply repeats the id of the request it belongs to.
//   { type: 'load', id, model: Source, tokenizer: Source, modelName?, tokenizerName?,
//     workers?, transport?, context?, size?, sha256?, cache? }
//        cache: false reads URLs without the weight cache (nothing stored).
//        Source = URL string | File/Blob | ArrayBuffer (see llama2.js). When it arrives, the
//        running generation is stopped and a running load cancelled; it then runs in turn.
//   { type: 'generate', id, prompt, temperature?, topp?, seed?, steps? }
//   { type: 'chat', id, message, system?, temperature?, topp?, seed?, steps? }
//        one turn: the next turn of the conversation, or (after a load, a generate or a
//        'new-chat') the first, with `system`
//   { type: 'new-chat', id }
//   { type: 'defaults', id }   the engine's option defaults (run.c's), for the page to show
// page -> worker, controls (no reply of their own):
//   { type: 'stop', id }     end generation `id` after the current token, or drop it if queued
//   { type: 'cancel', id }   abort load `id` (its reply is an `error` of kind `cancelled`)
//   { type: 'kill-shard', shard }   test hook: end one shard's worker as a crash would
//
// worker -> page
//   { type: 'progress', id, file: 'model'|'tokenizer', name, loaded, total }
//   { type: 'loaded', id, config: ModelConfig, variant, wasmMemoryBytes }
//   { type: 'piece', id, text }                      one per token ('' while UTF-8 is partial)
//   { type: 'done', id, reason, tokens, ms, ttftMs, seed, ids }   reason: see StopReason
//   { type: 'error', id, message, kind }             kind: see errors.js
//   { type: 'cache', url, status, message }          where a URL came from / went to (cache.js)
//   { type: 'defaults', id, defaults: { temperature, topp, steps } }
//   { type: 'alive', lock }   once at start: the worker holds Web Lock `lock` for its whole
//        life, so the page learns that it ended (closed, terminated, crashed) by waiting for
//        that lock, with no timeout (client.js)
//   a wasm trap (out of memory, a bug) is not replied to but rethrown uncaught: the engine is
//   unusable after one, and the page's `error` event (client.js: kind `engine`) reports it.

/** Requests that get replies, in turn. */
export const REQUESTS = ['load', 'generate', 'chat', 'new-chat', 'defaults'];
/** Controls, acted on at once. */
export const CONTROLS = ['stop', 'cancel', 'kill-shard'];
/** The reply that ends each request. */
export const FINAL = { load: 'loaded', generate: 'done', chat: 'done', 'new-chat': 'done', defaults: 'defaults' };
