// TypeScript declarations of llama2.js, the JavaScript API of llama2-wasm.
// The lib requirement: they use async iterators and BigInt (`seed`), so compile with at least
// "lib": ["ES2020", "DOM"] (a worker-only project: "ES2020", "WebWorker"); client.d.ts's
// `AsyncGenerator`s need the same.

/** A checkpoint or tokenizer: a URL (fetched, streamed), a File/Blob (`blob.stream()`), or bytes. */
export type Source = string | URL | Blob | ArrayBuffer | Uint8Array;

/** Download or read progress of one file. */
export interface Progress {
  file: 'model' | 'tokenizer';
  name: string;
  loaded: number;
  total: number;
}

/** Where URLs are read from and stored to; `WeightCache` (llama2-wasm/cache) is one. */
export interface SourceCache {
  open(url: string, options: { name?: string; signal?: AbortSignal; size?: number; sha256?: string }): Promise<{
    name: string;
    size: number | null;
    stream: ReadableStream<Uint8Array>;
  }>;
}

/** How a model split over workers meets mid-pass: shared memory (a crossOriginIsolated page's
 * worker, or Node) or messages (anywhere). `auto`: shared memory where it works. */
export type Transport = 'auto' | 'shared' | 'messages';

/** How the model is placed: `workers` ('auto' or 1..64), `transport`, `context`. */
export interface Placement {
  /** Split the model over this many workers (same token ids for any number); 'auto' picks by
   * the model's size and the cores (and the fewest that can hold it past 4 GB). Default 'auto'. */
  workers?: 'auto' | number;
  transport?: Transport;
  /** Positions of the KV cache, at most the model's seq_len. Default: seq_len when it fits,
   * else as many as fit (see `ModelConfig.context`). */
  context?: number;
}

/** Options of a checkpoint load. */
export interface LoadOptions extends Placement {
  /** Name shown in errors and facts (default: the URL's or file's name). */
  name?: string;
  /** Called after every chunk. */
  onProgress?: (progress: Progress) => void;
  /** Cancels the download or read. */
  signal?: AbortSignal;
  /** Reads URLs from, and stores them to, a cache (default: plain fetch). */
  cache?: SourceCache;
  /** What the file must be (checked by the cache). */
  size?: number;
  sha256?: string;
}

/** Sampling options; the defaults are run.c's (see `defaults()`). */
export interface GenerateOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Nucleus sampling; 0 or 1 = off. Default 0.9. */
  topp?: number;
  /** RNG seed, any u64 (negatives wrap as run.c's `-s`); 0, '' or missing = the time. */
  seed?: number | bigint | string;
  /** Positions to run including the prompt; 0 = the model's seq_len. Default 256. */
  steps?: number;
  /** Parts of the model switched off for this generation, as the CLI's `--ablate`: 'L:H'
   * (head H of layer L), 'L:attn' (layer L's attention block), 'L:ffn' (its feed-forward
   * block), layers and heads from 0. Default none. Over any number of workers. */
  ablate?: string[];
  /** Stops the generation between two tokens. */
  signal?: AbortSignal;
}

/** A generation's options as the engine applied them (`optionsUsed`). */
export interface UsedOptions {
  temperature: number;
  topp: number;
  steps: number;
  /** Decimal: a u64. */
  seed: string;
}

/** Options of a chat turn: sampling, and the system prompt of the first turn. */
export interface ChatOptions extends GenerateOptions {
  system?: string;
}

/** Why a generation ended: the model sampled BOS (`bos`: the story is over) or EOS (`eos`: a
 * chat turn is over), the step limit asked for (`steps`), the context is full (`context`), or
 * `stopped`. */
export type StopReason = 'bos' | 'eos' | 'steps' | 'context' | 'stopped';

/** Facts about the loaded model, and how it runs. */
export interface ModelConfig {
  name: string;
  /** "v0", "v1" or "v2 (int8, group size N)". */
  format: string;
  dim: number;
  hidden_dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  seq_len: number;
  shared_classifier: boolean;
  /** Parameter count. */
  params: number;
  /** Checkpoint bytes. */
  file_size: number;
  /** Positions the KV cache holds (seq_len, or fewer when memory is short). */
  context: number;
  /** The whole model's KV cache for `context` positions. */
  kv_cache_bytes: number;
  /** This thread's part: weights plus run state. */
  memory_bytes: number;
  /** Workers the model is split over. */
  workers: number;
  /** How they meet ('none' for one worker). */
  transport: 'shared' | 'messages' | 'none';
}

/** The builds: `simd` (every current browser), `scalar` (no SIMD); `relaxed` (fused
 * multiply-add) is the benchmark's and not in the package: it needs `wasm`. */
export type Variant = 'simd' | 'scalar' | 'relaxed';

/** A `.wasm` given directly: bytes, a compiled module, or its URL (a string is relative to
 * the page, or the worker's script; in Node, to the package's wasm.js). */
export type WasmModuleSource = BufferSource | WebAssembly.Module | URL | string;

/** Which wasm build to run, and where its bytes come from (Node, custom locations). `relaxed`
 * is not in the package, so it needs `wasm`. */
export type WasmOptions =
  | {
      /** Default: `wasmVariant()`. */
      variant?: 'simd' | 'scalar';
      /** The `.wasm`, bypassing the lookup next to llama2.js (no request for the package's
       * own build). Node reads the package's own builds without it. */
      wasm?: WasmModuleSource;
    }
  | { variant: 'relaxed'; wasm: WasmModuleSource };

/** The kinds of errors (errors.js): decide on them, never on message text. */
export type ErrorKind =
  | 'network' | 'http' | 'cancelled' | 'format' | 'memory' | 'prompt' | 'options' | 'type' | 'state' | 'shards' | 'engine' | 'io';

/** An error with a machine-readable `kind`. */
export class LlamaError extends Error {
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown });
  readonly kind: ErrorKind;
}

/** The kind of any error (its `kind`; `cancelled` for an abort; `type` for a TypeError). */
export function errorKind(err: unknown): ErrorKind;

/** What can help after `err`: 'retry' (the same request again), 'reload' (load the model
 * again, on new workers, then the request) or null (the request must change). */
export function remedy(err: unknown): 'retry' | 'reload' | null;

/** The most workers a model may be split over. */
export const MAX_WORKERS: 64;

/** Whether a checkpoint of `size` bytes runs slower split over `workers` (meeting by
 * `transport`) than on one worker, by the benchmark's measure; `workers: 'auto'` never picks
 * such a split. */
export function splitIsSlow(size: number, workers: number, transport: 'shared' | 'messages' | 'none'): boolean;

/** One forward pass, seen from inside (`tokens`). */
export interface Token {
  /** The text of `id`. */
  text: string;
  /** The token that came next (sampled, or the prompt's). */
  id: number;
  /** Whether `id` was the prompt's (fed, not sampled). */
  prompt: boolean;
  /** The position of this pass. */
  pos: number;
  /** The token fed at `pos`. */
  token: number;
  /** The `topK` most probable next tokens at temperature 1, as [id, probability], most probable first. */
  top: Array<[number, number]>;
  /** The probability and rank of `id` there. */
  prob: number;
  rank: number;
  /** With `attention: true`: the weights, `(layer, head, position)`. */
  attention?: { layers: number; heads: number; positions: number; weights: Float32Array };
}

/** Text that belongs to no pass of its own: a branch's fed token (first), or the last
 * characters a story's end completes (last). It follows the text of the `Token` before it. */
export interface TextPiece {
  text: string;
  pos?: undefined;
}

/** One layer of a `Trace`: `x` is the residual stream. */
export interface LayerTrace {
  /** rmsnorm(x) with the attention's weights (dim). */
  attn_norm: Float32Array;
  /** The query (dim) and this position's key and value (kv_dim); q and k after RoPE. */
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** (n_heads, pos + 1): each head's softmax over the positions it attends to. */
  attention: Float32Array;
  /** The heads' weighted values before wo (dim); wo's output; x after adding it. */
  heads_out: Float32Array;
  attn_out: Float32Array;
  residual_attn: Float32Array;
  /** rmsnorm(x) with the feed-forward's weights (dim). */
  ffn_norm: Float32Array;
  /** silu(w1·x) * (w3·x) (hidden_dim). */
  gate: Float32Array;
  /** w2's output (dim); x after adding it. */
  ffn_out: Float32Array;
  residual_ffn: Float32Array;
}

/** The logit lens over a whole story, summed up (`Llama2.lensMap`). Each vector is
 * `(layer, position)`, row-major: `entropy[l * positions + p]`. */
export interface LensMap {
  layers: number;
  /** The story's positions that gave a next token (every id but the last). */
  positions: number;
  /** The token whose probability `pinned` holds, or null (then `pinned` is empty). */
  pin: number | null;
  /** Entropy of each layer's lens distribution, in bits. */
  entropy: Float32Array;
  /** KL(final ‖ layer) in bits (0 at the last layer: its lens is the model's output). */
  kl: Float32Array;
  /** The pinned token's probability under each layer's lens. */
  pinned: Float32Array;
}

/** Every intermediate vector of one position's forward pass (`trace(pos)`; the CLI's `--trace`). */
export interface Trace {
  pos: number;
  token: number;
  /** The token that came next, and whether it was the prompt's (fed, not sampled). */
  id: number;
  prompt: boolean;
  embedding: Float32Array;
  layers: LayerTrace[];
  /** The final RMSNorm (dim) and the classifier's logits (vocab_size). */
  final_norm: Float32Array;
  logits: Float32Array;
}

/** Options of `tokens`. */
export interface TokensOptions extends GenerateOptions {
  /** How many of the most probable next tokens each pass reports. Default 10. */
  topK?: number;
  /** Report the attention weights too. Default false. */
  attention?: boolean;
}

/** A model in wasm memory that writes stories. */
export class Llama2 {
  private constructor();
  /** The wasm build in use. */
  readonly variant: Variant;
  /** Loads a checkpoint (v0/v1/v2), freeing the previous model first; follow with `loadTokenizer`. */
  loadCheckpoint(source: Source, options?: LoadOptions): Promise<ModelConfig>;
  /** Loads the tokenizer of the loaded checkpoint; the model is then ready. */
  loadTokenizer(source: Source, options?: Pick<LoadOptions, 'name' | 'onProgress' | 'signal' | 'cache'>): Promise<ModelConfig>;
  /** Whether a checkpoint and its tokenizer are loaded. */
  readonly ready: boolean;
  /** Facts about the loaded checkpoint (throws when none is loaded). */
  readonly config: ModelConfig;
  /** Bytes of wasm memory: this thread's and its shard workers'. */
  readonly wasmMemoryBytes: number;
  /** Text, one piece per token (the prompt's first); breaking out, `stop()` or the signal end it.
   * Arguments of the wrong type throw a TypeError (kind `type`). */
  generate(prompt?: string, options?: GenerateOptions): AsyncGenerator<string, void, void>;
  /** `generate`, seen from inside: one `Token` per forward pass (same ids as `generate`). */
  tokens(prompt?: string, options?: TokensOptions): AsyncGenerator<Token | TextPiece, void, void>;
  /** Another branch of the last story: from position `pos` with token `id` there. Yields
   * `id`'s text first, then `Token`s when the story was inspected (`tokens`), else text pieces. */
  branch(pos: number, id: number, options?: { signal?: AbortSignal }): AsyncGenerator<Token | TextPiece | string, void, void>;
  /** Each token id's piece as tokenizer.bin has it (`' upon'`, `'<0x0A>'`). */
  readonly vocab: string[];
  /** The logit lens at position `pos`: per layer, the `k` most probable tokens [id, probability]. */
  lens(pos: number, k?: number): Promise<Array<Array<[number, number]>>>;
  /** Every intermediate vector of the pass at position `pos` (already run) of the last story. */
  trace(pos: number): Promise<Trace>;
  /** The logit lens over the whole last story, summed up; `pin`: a token id whose probability
   * to map. The story stays where it is. */
  lensMap(pin?: number): Promise<LensMap>;
  /** One chat turn (run.c's `-m chat`): the assistant's reply to `message`; the next call
   * continues the conversation until `newChat()`, a `generate` or a load. A conversation
   * that filled the context (or its steps) ends there: the next call throws a `LlamaError` of
   * kind `prompt` until `newChat()`. */
  chat(message: string, options?: ChatOptions): AsyncGenerator<string, void, void>;
  /** Ends the conversation: the next `chat` starts a new one. */
  newChat(): void;
  /** Stops the running generation after the current token. */
  stop(): void;
  /** Token ids of the last generation (golden-file format). */
  readonly tokenIds: number[];
  /** Why the last generation ended (undefined before the first, or while one runs). */
  readonly stopReason: StopReason | undefined;
  /** The last generation's options as the engine applied them (run.c's rules). */
  readonly optionsUsed: UsedOptions | undefined;
  /** The seed of the last generation, as a decimal string (the time when none was given). */
  readonly seed: string | undefined;
  /** Frees the engine, its model and its workers; later use throws a LlamaError of kind
   * `state` ("this engine was freed"). */
  free(): void;
}

/** The wasm build this JS engine can run. */
export function wasmVariant(): 'simd' | 'scalar';

/** The options' defaults, from the engine: run.c's, and the inspection's `topK` and `lensK`. */
export function defaults(options?: WasmOptions): Promise<{ temperature: number; topp: number; steps: number; topK: number; lensK: number }>;

/** Token ids of `text` under a tokenizer, without a model. */
export function encode(
  tokenizer: Source,
  vocabSize: number,
  text: string,
  options?: { bos?: boolean; eos?: boolean } & WasmOptions,
): Promise<number[]>;

/**
 * How the worker of each shard but the first is started: a Worker running
 * `engine/shard-worker.js` (or an object with its face). The default starts it from the
 * engine's own thread. An engine running in a worker of a page is better given one that asks
 * the page to start it (`worker/worker.js` does, through `worker/client.js`): in Firefox,
 * while a debugger watches the page's workers (devtools, WebDriver BiDi), a worker started
 * from inside a worker now and then hangs its parent for good.
 */
export type StartShardWorker = () => Worker | Promise<Worker>;

/**
 * For an engine run in a worker of one's own: its shard workers started by the thread that
 * started that worker, as worker/worker.js and client.js do. In the worker,
 * `const shards = new ShardWorkersByParent(postMessage)` and
 * `createEngine({ startShardWorker: shards.start })`, and pass the parent's `shard-error`
 * messages to `shards.failed`; in the parent, `const children = new ShardWorkersForChild((m) =>
 * worker.postMessage(m))` and `children.handle(data)` first in the worker's `onmessage`
 * (worker/protocol.js: `start-shard`, `end-shard`, `shard-error`).
 */
export class ShardWorkersByParent {
  constructor(post: (message: object, transfer?: Transferable[]) => void);
  readonly start: StartShardWorker;
  failed(message: { shard: number; message: string }): void;
}
export class ShardWorkersForChild {
  constructor(report: (message: { type: 'shard-error'; shard: number; message: string }) => void);
  /** Whether `data` was `start-shard` or `end-shard` (then handled). */
  handle(data: unknown): boolean;
  terminateAll(): void;
}

/** An empty engine; load a model with `loadCheckpoint` and `loadTokenizer`. */
export function createEngine(options?: WasmOptions & Placement & { startShardWorker?: StartShardWorker }): Promise<Llama2>;

/** A ready engine: a checkpoint and its tokenizer loaded. */
export function loadModel(
  options: {
    model: Source;
    tokenizer: Source;
    modelName?: string;
    tokenizerName?: string;
    onProgress?: (progress: Progress) => void;
    signal?: AbortSignal;
    cache?: SourceCache;
    size?: number;
    sha256?: string;
    startShardWorker?: StartShardWorker;
  } & WasmOptions & Placement,
): Promise<Llama2>;
