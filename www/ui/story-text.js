// story-text.js: a story's text as it streams in, drawn at most once per frame (a fast model
// makes far more tokens than the screen has frames): the page's story and <llama-story>'s.

import { readable } from './wording.js';

export class StoryText {
  /** The pieces so far, as the engine sent them. */
  raw = '';
  tokens = 0;
  #frame = 0;
  #draw;

  /** @param {(text: string, tokens: number) => void} draw shows the readable text */
  constructor(draw) {
    this.#draw = draw;
  }

  /** A piece arrived: drawn at the next frame. */
  push(piece) {
    this.raw += piece;
    this.tokens++;
    this.#frame ||= requestAnimationFrame(() => this.flush());
  }

  /** Draws now (a story's end), instead of at the next frame. */
  flush() {
    cancelAnimationFrame(this.#frame);
    this.#frame = 0;
    this.#draw(readable(this.raw), this.tokens);
  }
}
