// TypeScript declarations of cache.js: the weight cache (Cache API) of llama2-wasm.

import type { SourceCache } from './llama2.js';

/** Part size of cached files (4 MiB). */
export const SEGMENT_BYTES: number;

/** What happened to one file. */
export interface CacheNote {
  url: string;
  status: 'hit' | 'stored' | 'resumed' | 'partial' | 'memory' | 'uncached';
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
  sha256?: string;
}

/** Checkpoints and tokenizers by URL and size in the Cache API; pass it as `cache` to loads. */
export class WeightCache implements SourceCache {
  constructor(options?: {
    onNote?: (note: CacheNote) => void;
    segmentBytes?: number;
    storage?: CacheStorage;
  });
  open(url: string, options?: { name?: string; signal?: AbortSignal; size?: number; sha256?: string }): Promise<{
    name: string;
    size: number | null;
    stream: ReadableStream<Uint8Array>;
  }>;
  list(): Promise<CachedFile[]>;
  delete(url: string): Promise<void>;
  clear(): Promise<void>;
}
