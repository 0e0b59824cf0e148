// story-settings.js: where the page and <llama-story> differ from the engine's defaults, in
// one place. Every other default (top-p 0.9, 256 steps, the seed from the time) is the
// engine's, run.c's, from the Rust core (`defaults()` in llama2.js): the page and the element
// leave those options out, or show what the engine reports, and never restate them.

/**
 * What a reader meets first.
 * - `temperature` 0.8, not run.c's 1: the TinyStories models write more coherent stories a
 *   little below 1 (fewer invented words, fewer sudden jumps), which is what a demo shows;
 *   the CLI and the JS API keep run.c's 1, so their output matches run.c byte for byte.
 * - `prompt`: the TinyStories opening, so one click gives a story.
 */
export const STORY_DEFAULTS = Object.freeze({
  prompt: 'Once upon a time',
  temperature: 0.8,
});
