// TypeScript declarations of cache.js: the weight cache (Cache API) of llama2-wasm.

import type { SourceCache } from '../engine/llama2.js';

/** Part size of cached files (4 MiB). */
export const SEGMENT_BYTES: number;

/**
 * What happened to one file: `hit` read from the cache (checked with the server, or not:
 * the message says), `stored` downloaded and stored, `resumed` a cut download goes on,
 * `partial` a download was interrupted (its whole parts kept), `memory` not cached (quota),
 * `uncached` no Cache API or no size, `changed` the server has a new version (downloading it),
 * `discarded` a damaged entry was deleted.
 */
export interface CacheNote {
  url: string;
  status: 'hit' | 'stored' | 'resumed' | 'partial' | 'memory' | 'uncached' | 'changed' | 'discarded';
  message: string;
}

/** One cached file (complete, or a partial download that the next load resumes). */
export interface CachedFile {
  url: string;
  size: number;
  /** Bytes stored (= size when complete). */
  bytes: number;
  complete: boolean;
  /** When it was stored (ms since the epoch). */
  stored: number;
  /** The whole file's SHA-256 (hex), when it was verified against one. */
  sha256?: string;
}

/** Checkpoints and tokenizers by URL in the Cache API; pass it as `cache` to loads. */
export class WeightCache implements SourceCache {
  constructor(options?: {
    onNote?: (note: CacheNote) => void;
    segmentBytes?: number;
    storage?: CacheStorage;
  });
  /**
   * `size`: the file's size (checked against the cache and the download); `sha256`: its SHA-256
   * in hex (64 digits; checked over the bytes: a mismatch is a `format` LlamaError naming both).
   */
  open(url: string, options?: { name?: string; signal?: AbortSignal; size?: number; sha256?: string }): Promise<{
    name: string;
    size: number | null;
    stream: ReadableStream<Uint8Array>;
  }>;
  /** Never throws: a malformed entry is deleted, not listed. */
  list(): Promise<CachedFile[]>;
  delete(url: string): Promise<void>;
  clear(): Promise<void>;
}
