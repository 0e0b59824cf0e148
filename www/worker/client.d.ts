// TypeScript declarations of client.js: EngineClient, the one client of the engine worker
// (worker.js; its messages are protocol.d.ts).

import type { LensMap, LlamaError, Trace } from '../engine/llama2.js';
import type { CacheNote } from '../cache/cache.js';
import type {
  BranchRequest, ChatRequest, DoneReply, GenerateRequest, LoadedReply, LoadRequest, MoreRequest, ProgressReply,
  TokenReply, TokensRequest,
} from './protocol.js';

/** A request in flight: its id, its final reply, and how to end it. */
export interface Run<T> {
  id: number;
  /** The final reply; rejects with a LlamaError (kind from the worker, `engine` if it died). */
  done: Promise<T>;
  /** A generation or chat turn: stop after the current token (or drop it if queued). A load:
   * cancel it (`done` rejects with kind `cancelled`). */
  stop(): void;
}

/** The page's engine worker: a module worker of worker.js next to client.js. */
export function startWorker(): Worker;

/** The engine in a worker, one request after another. */
export class EngineClient {
  /** @param worker default: `startWorker()` */
  constructor(worker?: Worker);
  /** Why the worker is gone (kind `engine`), or null while it lives. */
  dead: LlamaError | null;
  /** Listens to the weight cache's notes or to the worker's death; returns the unsubscribe. */
  on(kind: 'cache', listener: (note: { type: 'cache' } & CacheNote) => void): () => void;
  on(kind: 'dead', listener: (err: LlamaError) => void): () => void;
  /** Loads a model (stops the running generation and cancels a running load first). */
  load(options: Omit<LoadRequest, 'type' | 'id'>, events?: { onProgress?: (progress: ProgressReply) => void }): Run<LoadedReply>;
  /** A story, `onPiece` per token. */
  generate(options: Omit<GenerateRequest, 'type' | 'id'>, events?: { onPiece?: (text: string) => void }): Run<DoneReply>;
  /** A chat turn, `onPiece` per token. */
  chat(options: Omit<ChatRequest, 'type' | 'id'>, events?: { onPiece?: (text: string) => void }): Run<DoneReply>;
  /** A story seen from inside, `onToken` per forward pass; with `take` it pauses (`more`). */
  tokens(options: Omit<TokensRequest, 'type' | 'id'>, events?: { onToken?: (token: TokenReply['token']) => void }): Run<DoneReply>;
  /** The last story from position `pos` with `token` fed there. */
  branch(options: Omit<BranchRequest, 'type' | 'id'>, events?: { onToken?: (token: TokenReply['token']) => void }): Run<DoneReply>;
  /** The paused story goes on (`take`: that many new tokens, else to its end). */
  more(options?: Omit<MoreRequest, 'type' | 'id'>, events?: { onToken?: (token: TokenReply['token']) => void }): Run<DoneReply>;
  /** The logit lens at position `pos` of the last story: per layer, the top `k` [id, probability]. */
  lens(pos: number, k?: number): Promise<Array<Array<[number, number]>>>;
  /** Every intermediate vector of the pass at position `pos` of the last story. */
  trace(pos: number): Promise<Trace>;
  /** The logit lens over the whole last story, summed up; `pin`: a token id to map. */
  lensMap(pin?: number): Promise<LensMap>;
  /** The loaded tokenizer's pieces, index = token id. */
  vocab(): Promise<string[]>;
  /** Ends the conversation: the next `chat` starts a new one. */
  newChat(): Run<DoneReply>;
  /** The engine's option defaults: run.c's, and the inspection's `topK` and `lensK`. */
  defaults(): Promise<{ temperature: number; topp: number; steps: number; topK: number; lensK: number }>;
  /** Test hook: ends the worker of shard `shard` as a crash would. */
  killShard(shard: number): void;
  /** Ends the worker: every request fails (kind `engine`). */
  terminate(): void;
}
