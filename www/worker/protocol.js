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
// Looking inside a story (the inspect view: inspect-view.js; the numbers: llama2.js `tokens`):
//   { type: 'tokens', id, prompt, temperature?, topp?, seed?, steps?, topK?, attention?, take? }
//        `generate` seen from inside: a `token` reply per forward pass, then `done`. With
//        `take`, the story pauses after that many new (not prompt) tokens: `done` has reason
//        'paused', and the story waits in the engine for `more` (any other request but `lens`
//        and `vocab` ends it)
//   { type: 'branch', id, pos, token, take? }   the last story from position `pos` with
//        `token` fed there (llama2.js `branch`): `token` replies, then `done`
//   { type: 'more', id, take? }   the paused story goes on: `token` replies, then `done`
//   { type: 'lens', id, pos, k? }   the logit lens at position `pos` of the last story
//   { type: 'trace', id, pos }   every vector of the pass at position `pos` of the last story
//   { type: 'lens-map', id, pin? }   the logit lens over the whole last story, summed up
//        (llama2.js `lensMap`); `pin`: a token id whose probability to map
//   { type: 'vocab', id }   the loaded tokenizer's pieces, to show ids as text
// page -> worker, controls (no reply of their own):
//   { type: 'stop', id }     end generation `id` after the current token, or drop it if queued
//   { type: 'cancel', id }   abort load `id` (its reply is an `error` of kind `cancelled`)
//   { type: 'kill-shard', shard }   test hook: end one shard's worker as a crash would
//   { type: 'shard-error', shard, message }   the shard worker the page started for
//        `start-shard` failed (its `error` event: a wasm trap, a script that did not load)
//
// worker -> page
//   { type: 'progress', id, file: 'model'|'tokenizer', name, loaded, total }
//   { type: 'loaded', id, config: ModelConfig, variant, wasmMemoryBytes }
//   { type: 'piece', id, text }                      one per token ('' while UTF-8 is partial)
//   { type: 'done', id, reason, tokens, ms, ttftMs, seed, ids, used }   reason: see StopReason;
//        used: the options as the engine applied them (llama2.js `optionsUsed`)
//   { type: 'error', id, message, kind }             kind: see errors.js
//   { type: 'cache', url, status, message }          where a URL came from / went to (cache.js)
//   { type: 'defaults', id, defaults: { temperature, topp, steps, topK, lensK } }
//   { type: 'token', id, token: Token }   one forward pass (llama2.js `tokens`: text, id, pos,
//        token, top, prob, rank, attention?) and `prompt`: whether `id` was the prompt's; or
//        `{ text }` alone (text completed at the end, with no pass of its own)
//   { type: 'done', id, reason: StopReason | 'paused', ... }   as above
//   { type: 'lens', id, layers: [[[id, prob], ...] per layer] }
//   { type: 'trace', id, trace: Trace }   llama2.js `trace` (its vectors moved, not copied)
//   { type: 'lens-map', id, map: LensMap }   llama2.js `lensMap` (its vectors moved)
//   { type: 'vocab', id, pieces: string[] }   index = token id, the tokenizer's bytes as UTF-8
//   { type: 'alive', lock }   once at start: the worker holds Web Lock `lock` for its whole
//        life, so the page learns that it ended (closed, terminated, crashed) by waiting for
//        that lock, with no timeout (client.js)
//   { type: 'start-shard', shard, port }   start engine/shard-worker.js for a model split over
//        workers and send it `{ type: 'connect', port }` (the worker's end of its channel to
//        the engine); report its `error` events with `shard-error`. The page starts them, not
//        the engine worker: in Firefox, under a debugger, a worker started inside a worker
//        now and then hangs its parent (docs/browsers.md)
//   { type: 'end-shard', shard }   terminate that shard worker (also ended with the engine's)
//   a wasm trap (out of memory, a bug) is not replied to but rethrown uncaught: the engine is
//   unusable after one, and the page's `error` event (client.js: kind `engine`) reports it.

// The shard worker's protocol: a model split over workers (shards.js, the leader, holds shard 0;
// shard-worker.js each other shard). Every request is answered, in order, with `{ ok: true,
// ... }` or `{ ok: false, message, kind }`, except `write` and `session` (and `connect`, the
// page's, when the page started the worker for its engine worker: see `start-shard`):
//   { type: 'connect', port }            the leader is at the other end of `port`: every message
//        after comes, and is answered, through it
//   { type: 'init', module, ports }     the compiled engine module; a port to each shard
//   { type: 'begin', prefix, size, name, shard, count } -> { ranges }   a new checkpoint
//   { type: 'write', at, bytes }        bytes of the file (not answered; see 'sync')
//   { type: 'sync' }                    answered once every write before it is done
//   { type: 'end' }                     the checkpoint is complete
//   { type: 'fit', want } -> { context }   the most positions this shard's memory holds
//   { type: 'context', context, shared, sizes, epoch, shard, count } -> { memoryBytes,
//        wasmMemoryBytes }   size the KV cache; the link (shared memory or the ports; `sizes`
//        as SharedLink takes them, `epoch` the load) for the passes to come
//   { type: 'ablate', list }            switch off what the leader's `ablate` option says
//        (`['1:2', '0:attn']`) from the next pass on
//   { type: 'session', id, seq }        shared memory: run the commands after the seq-th until
//        the leader ends session id (not answered)
// Mid-pass, the shards meet through the link (transport.js), not through these messages.

/** The shard worker's requests. */
export const SHARD_REQUESTS = ['init', 'begin', 'write', 'sync', 'end', 'fit', 'context', 'ablate', 'session'];

/** Requests that get replies, in turn. */
export const REQUESTS = ['load', 'generate', 'chat', 'new-chat', 'defaults', 'tokens', 'branch', 'more', 'lens', 'trace', 'lens-map', 'vocab'];
/** Controls, acted on at once. */
export const CONTROLS = ['stop', 'cancel', 'kill-shard', 'shard-error'];
/** The reply that ends each request. */
export const FINAL = {
  load: 'loaded', generate: 'done', chat: 'done', 'new-chat': 'done', defaults: 'defaults',
  tokens: 'done', branch: 'done', more: 'done', lens: 'lens', trace: 'trace', 'lens-map': 'lens-map', vocab: 'vocab',
};
/** Requests that leave the engine's story as it is (a paused one stays paused). */
export const KEEPS_STORY = ['defaults', 'lens', 'trace', 'lens-map', 'vocab', 'more'];
