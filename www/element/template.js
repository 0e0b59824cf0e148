// template.js: the shadow DOM of <llama-story>: its parts and their style. Sizes are in em, so
// the element takes its size from the text around it (a docs page's 16 px, a book's 10 px root),
// and its fonts are the page's unless --llama-story-font says otherwise.

export const TEMPLATE = `
<style>
  :host {
    display: block;
    font: var(--llama-story-font, inherit);
    line-height: 1.5;
    color: var(--llama-story-color, inherit);
    background: var(--llama-story-background, transparent);
    border: var(--llama-story-border, 1px solid #8886);
    border-radius: 0.5em;
    padding: 0.75em 1em;
    margin: 1em 0;
  }
  :host([hidden]) { display: none; }
  [part~="controls"] { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: center; }
  [part~="prompt"] { flex: 1 1 12em; min-width: 0; font: inherit; color: inherit; background: transparent;
    border: 1px solid #8888; border-radius: 0.25em; padding: 0.2em 0.4em; }
  [part~="button"] { font: inherit; padding: 0.2em 0.9em; border: 1px solid var(--llama-story-accent, #2f6fde);
    background: var(--llama-story-accent, #2f6fde); color: white; border-radius: 0.25em; cursor: pointer; }
  [part~="button"]:focus-visible, [part~="prompt"]:focus-visible { outline: 2px solid var(--llama-story-accent, #2f6fde); outline-offset: 2px; }
  [part~="button"]:disabled { opacity: 0.5; cursor: default; }
  [part~="stop"] { background: transparent; color: var(--llama-story-accent, #2f6fde); }
  [part~="progress"] { width: 8em; accent-color: var(--llama-story-accent, #2f6fde); }
  [part~="status"] { font-size: 0.85em; opacity: 0.75; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; min-width: 0; }
  [part~="output"] { white-space: pre-wrap; overflow-wrap: anywhere; font: var(--llama-story-output-font, 1.05em/1.5 Georgia, serif);
    margin: 0.5em 0 0; min-height: 3em; }
  [part~="inspect"] { --inspect-accent: var(--llama-story-accent, #2f6fde); margin-top: 0.5em; }
  [part~="explain"] { --accent: var(--llama-story-accent, #2f6fde); margin-top: 0.5em; }
  [hidden] { display: none !important; }
  .announce { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
</style>
<div part="container">
  <div part="controls">
    <input part="prompt" aria-label="Prompt">
    <button part="button generate" type="button" aria-keyshortcuts="Control+Enter" title="Generate (Ctrl+Enter)">Generate</button>
    <button part="button stop" type="button" aria-keyshortcuts="Escape" title="Stop (Esc)" disabled>Stop</button>
    <button part="button step" type="button" title="One token per click" hidden>Step</button>
    <button part="button retry" type="button" hidden>Retry</button>
    <progress part="progress" max="1" value="0" hidden></progress>
    <span part="status"></span>
    <span class="announce" aria-live="polite"></span>
  </div>
  <pre part="output"></pre>
  <div part="inspect" hidden></div>
  <div part="explain" hidden></div>
</div>`;
