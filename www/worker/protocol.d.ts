// TypeScript declarations of protocol.js: the messages between a page and its engine worker
// (worker.js). client.js (client.d.ts) speaks it; a page may also post these itself.

import type { ErrorKind, ModelConfig, Source, StopReason, LensMap, Token, Trace, UsedOptions, Variant } from '../engine/llama2.js';
import type { CacheNote } from '../cache/cache.js';

/** Sampling options of a request (as `GenerateOptions`, without the signal). */
export interface SamplingFields {
  temperature?: number;
  topp?: number;
  /** Any u64 as a number or a decimal string (a worker message cannot carry a BigInt reliably). */
  seed?: number | string;
  steps?: number;
}

/** Loads a model; answered by `progress` messages, then `loaded` (or `error`). */
export interface LoadRequest {
  type: 'load';
  id: number;
  model: Source;
  tokenizer: Source;
  modelName?: string;
  tokenizerName?: string;
  workers?: 'auto' | number;
  transport?: 'auto' | 'shared' | 'messages';
  context?: number;
  size?: number;
  sha256?: string;
  /** false: URLs are read without the weight cache (nothing stored). */
  cache?: boolean;
}

/** A story; answered by `piece` messages, then `done`. */
export interface GenerateRequest extends SamplingFields {
  type: 'generate';
  id: number;
  prompt: string;
}

/** One chat turn; answered by `piece` messages, then `done`. */
export interface ChatRequest extends SamplingFields {
  type: 'chat';
  id: number;
  message: string;
  /** The system prompt of a conversation's first turn. */
  system?: string;
}

/** Ends the conversation; answered by `done` (reason `stopped`). */
export interface NewChatRequest {
  type: 'new-chat';
  id: number;
}

/** The engine's option defaults; answered by `defaults`. */
export interface DefaultsRequest {
  type: 'defaults';
  id: number;
}

/** A story seen from inside; answered by `token` messages, then `done`. With `take`, the
 * story pauses after that many new (not prompt) tokens (`done` reason `paused`). */
export interface TokensRequest extends SamplingFields {
  type: 'tokens';
  id: number;
  prompt: string;
  /** How many of the most probable next tokens each pass reports. Default 10. */
  topK?: number;
  attention?: boolean;
  take?: number;
}

/** The last story from position `pos` with `token` fed there; `token` messages, then `done`. */
export interface BranchRequest {
  type: 'branch';
  id: number;
  pos: number;
  token: number;
  take?: number;
}

/** A paused story goes on; `token` messages, then `done`. */
export interface MoreRequest {
  type: 'more';
  id: number;
  take?: number;
}

/** The logit lens at position `pos` of the last story; answered by `lens`. */
export interface LensRequest {
  type: 'lens';
  id: number;
  pos: number;
  /** Tokens per layer. Default 5. */
  k?: number;
}

/** Every vector of the pass at position `pos` of the last story; answered by `trace`. */
export interface TraceRequest {
  type: 'trace';
  id: number;
  pos: number;
}

/** The logit lens over the whole last story, summed up; answered by `lens-map`. */
export interface LensMapRequest {
  type: 'lens-map';
  id: number;
  pin?: number;
}

/** The loaded tokenizer's pieces; answered by `vocab`. */
export interface VocabRequest {
  type: 'vocab';
  id: number;
}

/** Requests: run strictly in order, each answered with its `id`. */
export type Request =
  | LoadRequest | GenerateRequest | ChatRequest | NewChatRequest | DefaultsRequest
  | TokensRequest | BranchRequest | MoreRequest | LensRequest | TraceRequest | LensMapRequest | VocabRequest;

/** Controls: acted on at once, no reply of their own. `stop` ends generation `id` (or drops it
 * if queued); `cancel` aborts load `id` (its reply is an `error` of kind `cancelled`). */
export type Control =
  | { type: 'stop'; id?: number }
  | { type: 'cancel'; id?: number }
  | { type: 'kill-shard'; shard: number }
  /** The shard worker started for `start-shard` `shard` failed (its `error` event). */
  | { type: 'shard-error'; shard: number; message: string };

/** Everything a page may post to the worker. */
export type PageMessage = Request | Control;

export interface ProgressReply {
  type: 'progress';
  id: number;
  file: 'model' | 'tokenizer';
  name: string;
  loaded: number;
  total: number;
}

export interface LoadedReply {
  type: 'loaded';
  id: number;
  config: ModelConfig;
  variant: Variant;
  wasmMemoryBytes: number;
}

/** One token's text ('' while a UTF-8 character is partial). */
export interface PieceReply {
  type: 'piece';
  id: number;
  text: string;
}

export interface DoneReply {
  type: 'done';
  id: number;
  /** `paused`: a `tokens`, `branch` or `more` request's `take` was reached. */
  reason: StopReason | 'paused';
  tokens: number;
  ms: number;
  /** Time to the first piece, or null when there was none. */
  ttftMs: number | null;
  /** The seed used, as a decimal string (null for a request dropped before it ran). */
  seed: string | null;
  ids: number[];
  /** The options as the engine applied them (run.c's rules), for a page to show as used. */
  used?: UsedOptions;
}

export interface ErrorReply {
  type: 'error';
  /** The request's id (undefined for a message that was not a request). */
  id: number | undefined;
  message: string;
  kind: ErrorKind;
}

export interface DefaultsReply {
  type: 'defaults';
  id: number;
  defaults: { temperature: number; topp: number; steps: number; topK: number; lensK: number };
}

/** One forward pass of an inspected story, or `{ text }` alone (text completed at the end,
 * with no pass of its own). The attention weights are moved, not copied. */
export interface TokenReply {
  type: 'token';
  id: number;
  token: Token | { text: string };
}

export interface LensReply {
  type: 'lens';
  id: number;
  /** Per layer, the top `k` tokens as [id, probability]. */
  layers: Array<Array<[number, number]>>;
}

export interface TraceReply {
  type: 'trace';
  id: number;
  trace: Trace;
}

export interface LensMapReply {
  type: 'lens-map';
  id: number;
  map: LensMap;
}

export interface VocabReply {
  type: 'vocab';
  id: number;
  /** Index = token id. */
  pieces: string[];
}

/** Where a URL came from or went to (the weight cache's note). */
export type CacheReply = { type: 'cache' } & CacheNote;

/** Once at start: the worker holds Web Lock `lock` for its whole life. */
export interface AliveReply {
  type: 'alive';
  lock: string;
}

/** A model split over workers: the page starts `engine/shard-worker.js` and sends it
 * `{ type: 'connect', port }` (protocol.js `start-shard`: why the page, not the worker). */
export interface StartShardMessage {
  type: 'start-shard';
  shard: number;
  port: MessagePort;
}

/** The page terminates the shard worker it started as `shard`. */
export interface EndShardMessage {
  type: 'end-shard';
  shard: number;
}

/** Everything the worker posts. */
export type WorkerMessage =
  | ProgressReply | LoadedReply | PieceReply | DoneReply | ErrorReply | DefaultsReply | CacheReply | AliveReply
  | TokenReply | LensReply | TraceReply | LensMapReply | VocabReply | StartShardMessage | EndShardMessage;

/** The request types that get replies, in turn. */
export const REQUESTS: ReadonlyArray<Request['type']>;
/** The controls, acted on at once. */
export const CONTROLS: ReadonlyArray<Control['type']>;
/** The reply that ends each request. */
export const FINAL: {
  readonly load: 'loaded';
  readonly generate: 'done';
  readonly chat: 'done';
  readonly 'new-chat': 'done';
  readonly defaults: 'defaults';
  readonly tokens: 'done';
  readonly branch: 'done';
  readonly more: 'done';
  readonly lens: 'lens';
  readonly trace: 'trace';
  readonly 'lens-map': 'lens-map';
  readonly vocab: 'vocab';
};
/** Requests that leave the engine's story as it is (a paused one stays paused). */
export const KEEPS_STORY: ReadonlyArray<Request['type']>;
