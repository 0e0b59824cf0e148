// TypeScript declarations of llama-story.js: the <llama-story> custom element.

import type { ModelConfig, StopReason } from './llama2.js';

export type LlamaStoryState = 'idle' | 'loading' | 'ready' | 'waiting' | 'generating' | 'done' | 'error';

/** The detail of `llama-story-loaded`: the model's config, with how it runs. */
export type LlamaStoryLoaded = ModelConfig & {
  /** Workers the model is split over. */
  workers: number;
  /** How they meet: 'shared' memory, 'messages', or 'none' (one worker). */
  transport: 'shared' | 'messages' | 'none';
  /** KV cache positions (at most seq_len: fewer when memory is short). */
  context: number;
};

export interface LlamaStoryDone {
  text: string;
  /** 'bos' (the model ended the story), 'steps', 'context' or 'stopped'. */
  reason: StopReason;
  tokens: number;
  seed: string;
}

/**
 * <llama-story model tokenizer prompt steps temperature topp seed workers>.
 * `workers`: 'auto' or a number of workers to split the model over (messages between them
 * unless the page is cross-origin isolated; the element never changes the page's headers).
 */
export class LlamaStory extends HTMLElement {
  /** What the page's elements asked of their shared worker. */
  static readonly stats: { workers: number; loads: number; generations: number };
  load(): Promise<LlamaStoryLoaded>;
  generate(): Promise<void>;
  stop(): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'llama-story': LlamaStory;
  }
  interface HTMLElementEventMap {
    'llama-story-loaded': CustomEvent<LlamaStoryLoaded>;
    'llama-story-done': CustomEvent<LlamaStoryDone>;
  }
}
