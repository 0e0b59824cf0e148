// errors.js: the errors of llama2-wasm, each with a machine-readable `kind`, so that a program
// (the page deciding on Retry, a test) never has to match message text.
//
//   kind        what                                                   retry helps?
//   network     the connection failed or dropped (offline, CORS, cut)  yes (a cut download resumes)
//   http        the server answered 4xx/5xx                            no
//   cancelled   a load was cancelled (AbortSignal, Cancel)              -
//   format      a corrupt or mismatched checkpoint/tokenizer           no
//   memory      it does not fit (wasm32: 4 GB per worker)              no
//   prompt      the prompt does not fit the context                    no
//   options     a nonsense option (NaN temperature, a bad seed)        no
//   type        an argument of the wrong type (a TypeError)            no
//   state       calls in the wrong order (generate before load)        no
//   shards      the model's workers lost each other                    reload
//   engine      the engine's worker died (a wasm trap)                 reload
//
// Errors from the wasm engine carry the kinds of `Error::kind` (src/error.rs).

/** An error with a `kind` (see the table above). */
export class LlamaError extends Error {
  /**
   * @param {string} kind
   * @param {string} message
   * @param {{ cause?: unknown }} [options]
   */
  constructor(kind, message, options) {
    super(message, options);
    this.name = 'LlamaError';
    this.kind = kind;
  }
}

/** The kind of any error: its `kind`; `cancelled` for an abort, `type` for a TypeError,
 * `options` for a RangeError; else `engine`. */
export function errorKind(err) {
  if (typeof err?.kind === 'string') return err.kind;
  if (err?.name === 'AbortError' || err?.name === 'TimeoutError') return 'cancelled';
  if (err instanceof TypeError) return 'type';
  if (err instanceof RangeError) return 'options';
  return 'engine';
}

/** Every kind of the table above (src/error.rs `KINDS` are among them but `io`, which only
 * the native tools meet: a test checks). */
export const KINDS = ['network', 'http', 'cancelled', 'format', 'memory', 'prompt', 'options', 'type', 'state', 'shards', 'engine'];

/** Kinds where trying the same request again can succeed (a cut download resumes). */
export const RETRYABLE = new Set(['network']);

/** Kinds where the model must be loaded again (new workers), after which the request can succeed. */
export const RELOAD = new Set(['shards', 'engine']);

/**
 * What can help after `err`, decided here once for the page and the element: 'retry' (the same
 * request again: a cut download resumes), 'reload' (the model loaded again on new workers, then
 * the request), or null (the request itself must change).
 * @returns {'retry' | 'reload' | null}
 */
export function remedy(err) {
  const kind = errorKind(err);
  if (RETRYABLE.has(kind)) return 'retry';
  if (RELOAD.has(kind)) return 'reload';
  return null;
}

/** How src/error.rs begins an `Error::Shards` message (`SHARDS_LOST`; a test checks). */
export const SHARDS_LOST = "the model's workers lost each other";

/** The error of workers that lost each other (`message`: how), kind `shards`. */
export function shardsLost(message) {
  return new LlamaError('shards', `${SHARDS_LOST}: ${message}. Load the model again.`);
}

/** A request for `url` that failed before or during its response. */
export function networkError(url, cause) {
  const why = cause?.message ?? String(cause);
  return new LlamaError(
    'network',
    `cannot download ${url}: ${why} (offline? or the server does not allow this page to read it: CORS)`,
    { cause },
  );
}

/** A response that is not a success. */
export function httpError(url, response) {
  return new LlamaError('http', `cannot download ${url}: HTTP ${response.status} ${response.statusText}`.trimEnd());
}
