// TypeScript declarations of llama-story.js: the <llama-story> custom element.

import type { ModelConfig, StopReason } from '../engine/llama2.js';

/** `paused`: an `inspect` story waits for Step. */
export type LlamaStoryState = 'idle' | 'loading' | 'ready' | 'waiting' | 'generating' | 'done' | 'paused' | 'error';

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
  /** 'bos' (the model ended the story), 'steps', 'context', 'stopped', or 'paused' (an
   * `inspect` story after Step). */
  reason: StopReason | 'paused';
  tokens: number;
  seed: string;
}

/**
 * <llama-story model tokenizer prompt steps temperature topp seed workers inspect explain>.
 * `workers`: 'auto' or a number of workers to split the model over (messages between them
 * unless the page is cross-origin isolated; the element never changes the page's headers).
 * `inspect` (boolean): the story token by token, with each token's top 10, attention, logit
 * lens, branches and Step (part `inspect`).
 * `explain` (boolean, without `inspect`): after each story, pick a token and walk its forward
 * pass stage by stage, map the logit lens over the story, try another temperature (part
 * `explain`; the page's Explain mode).
 */
export class LlamaStory extends HTMLElement {
  /** What the page's elements asked of their shared worker. */
  static readonly stats: { workers: number; loads: number; generations: number };
  load(): Promise<LlamaStoryLoaded>;
  /** A story; with `inspect` and `take`, only its first `take` new tokens (state `paused`). */
  generate(options?: { take?: number }): Promise<void>;
  /** With `inspect`: the paused story's next token, or a new story's first. */
  step(): Promise<void>;
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
