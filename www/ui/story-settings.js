// story-settings.js: where the page and <llama-story> differ from the engine's defaults, in
// one place. Every other default (top-p 0.9, the seed from the time) is the engine's, run.c's, from the Rust core (`defaults()` in llama2.js): the page and the element
// leave those options out, or show what the engine reports, and never restate them.

/**
 * What a reader meets first.
 * - `temperature` 0.8, not run.c's 1: the TinyStories models write more coherent stories a
 *   little below 1 (fewer invented words, fewer sudden jumps), which is what a demo shows;
 *   the CLI and the JS API keep run.c's 1, so their output matches run.c byte for byte.
 * - `prompt`: the TinyStories opening, so one click gives a story.
 * - `maxTemperature` 2, the page's Temperature field's range: above it a TinyStories model
 *   writes noise (and bytes that are no UTF-8, shown as �); the API and the CLI take any.
 * - `steps` 0, the model's context (run.c's meaning of 0), not run.c's 256: a story runs until
 *   the model ends it or reaches its length, whatever the model; the end note then says so
 *   calmly instead of blaming a Steps setting the reader never touched.
 */
export const STORY_DEFAULTS = Object.freeze({
  prompt: 'Once upon a time',
  temperature: 0.8,
  steps: 0,
  maxTemperature: 2,
});
