// TypeScript declarations of llama-story.js: the <llama-story> custom element.

import type { ModelConfig } from './llama2.js';

export type LlamaStoryState = 'idle' | 'loading' | 'ready' | 'waiting' | 'generating' | 'done' | 'error';

export interface LlamaStoryDone {
  text: string;
  reason: string;
  tokens: number;
  seed: string;
}

/** <llama-story model tokenizer prompt steps temperature topp seed>. */
export class LlamaStory extends HTMLElement {
  /** What the page's elements asked of their shared worker. */
  static readonly stats: { workers: number; loads: number; generations: number };
  load(): Promise<ModelConfig>;
  generate(): Promise<void>;
  stop(): void;
}

declare global {
  interface HTMLElementTagNameMap {
    'llama-story': LlamaStory;
  }
  interface HTMLElementEventMap {
    'llama-story-loaded': CustomEvent<ModelConfig>;
    'llama-story-done': CustomEvent<LlamaStoryDone>;
  }
}
