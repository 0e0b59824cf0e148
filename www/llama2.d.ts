// TypeScript declarations of llama2.js, the JavaScript API of llama2-wasm.

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
  open(url: string, options: { name?: string; signal?: AbortSignal }): Promise<{
    name: string;
    size: number | null;
    stream: ReadableStream<Uint8Array>;
  }>;
}

/** Options of a load. */
export interface LoadOptions {
  /** Name shown in errors and facts (default: the URL's or file's name). */
  name?: string;
  /** Called after every chunk. */
  onProgress?: (progress: Progress) => void;
  /** Cancels the download or read. */
  signal?: AbortSignal;
  /** Reads URLs from, and stores them to, a cache (default: plain fetch). */
  cache?: SourceCache;
}

/** Sampling options (run.c's flags and defaults). */
export interface GenerateOptions {
  /** 0 = greedy. Default 1. */
  temperature?: number;
  /** Nucleus sampling; 0 or 1 = off. Default 0.9. */
  topp?: number;
  /** RNG seed, any u64 (negatives wrap as run.c's `-s`); 0 or missing = the time. */
  seed?: number | bigint | string;
  /** Positions to run including the prompt; 0 = the model's seq_len. Default 256. */
  steps?: number;
  /** Stops the generation between two tokens. */
  signal?: AbortSignal;
}

/** Facts about the loaded model. */
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
  kv_cache_bytes: number;
  /** Weights plus run state. */
  memory_bytes: number;
}

export type Variant = 'simd' | 'scalar';

/** Which wasm build to run, and where its bytes come from (Node, custom locations). */
export interface WasmOptions {
  /** Default: `wasmVariant()`. */
  variant?: Variant;
  /** The `.wasm` bytes or module; default: fetched from `pkg/<variant>/` next to llama2.js. */
  wasm?: BufferSource | WebAssembly.Module;
}

export type StopReason = 'bos' | 'eos' | 'steps' | 'stopped';

/** A model in wasm memory that writes stories. */
export class Llama2 {
  private constructor();
  /** The wasm build in use. */
  readonly variant: Variant;
  /** Loads a checkpoint (v0/v1/v2), freeing the previous model first; follow with `loadTokenizer`. */
  loadCheckpoint(source: Source, options?: LoadOptions): Promise<ModelConfig>;
  /** Loads the tokenizer of the loaded checkpoint; the model is then ready. */
  loadTokenizer(source: Source, options?: LoadOptions): Promise<ModelConfig>;
  /** Whether a checkpoint and its tokenizer are loaded. */
  readonly ready: boolean;
  /** Facts about the loaded checkpoint (throws when none is loaded). */
  readonly config: ModelConfig;
  /** Bytes of the whole wasm memory. */
  readonly wasmMemoryBytes: number;
  /** Text, one piece per token (the prompt's first); breaking out, `stop()` or the signal end it. */
  generate(prompt?: string, options?: GenerateOptions): AsyncGenerator<string, void, void>;
  /** Stops the running generation after the current token. */
  stop(): void;
  /** Token ids of the last generation (golden-file format). */
  readonly tokenIds: number[];
  /** Why the last generation ended. */
  readonly stopReason: StopReason | string | undefined;
  /** Frees the engine and its model. */
  free(): void;
}

/** The wasm build this JS engine can run. */
export function wasmVariant(): Variant;

/** The u64 seed for the engine: 0 or missing becomes the time, negatives wrap. */
export function toSeed(seed: number | bigint | string | undefined | null): bigint;

/** Token ids of `text` under a tokenizer, without a model. */
export function encode(
  tokenizer: Source,
  vocabSize: number,
  text: string,
  options?: { bos?: boolean; eos?: boolean } & WasmOptions,
): Promise<number[]>;

/** An empty engine; load a model with `loadCheckpoint` and `loadTokenizer`. */
export function createEngine(options?: WasmOptions): Promise<Llama2>;

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
  } & WasmOptions,
): Promise<Llama2>;
