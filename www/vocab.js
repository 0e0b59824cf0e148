// vocab.js: the loaded tokenizer as the inspect view needs it: each token id's piece (to show
// ids as text) and a prompt's token ids (to tell the prompt's positions from the model's).
// Used by worker.js only. The engine does not export its vocabulary, so this reads the
// tokenizer.bin the engine loaded once more (from the weight cache when it came from there, or
// the File/bytes it came as): only when a story is inspected, never for a plain story.
// When the engine exports its pieces and marks prompt positions, this file goes.

import { encode } from './llama2.js';
import { open, readAll } from './source.js';

export class Vocabulary {
  #bytes;
  #size;
  #pieces = null;

  /** @param {Uint8Array} bytes a tokenizer.bin the engine accepted; @param {number} size the model's vocab_size */
  constructor(bytes, size) {
    this.#bytes = bytes;
    this.#size = size;
  }

  /** Reads `source` (a load's tokenizer Source) again, through `cache` when given. */
  static async read(source, { name, cache, size }) {
    return new Vocabulary(await readAll(await open(source, { name, cache })), size);
  }

  /**
   * Each id's piece as tokenizer.bin has it (e.g. " upon", "<0x0A>", "\n<s>\n"), decoded as
   * UTF-8. The layout (src/tokenizer.rs): i32 max_token_length, then per token f32 score, i32
   * length, its bytes; the engine checked the file when it loaded it.
   * @returns {string[]}
   */
  pieces() {
    if (this.#pieces) return this.#pieces;
    const bytes = this.#bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const utf8 = new TextDecoder();
    const pieces = [];
    for (let id = 0, at = 4; id < this.#size; id++) {
      const length = view.getInt32(at + 4, true);
      pieces.push(utf8.decode(bytes.subarray(at + 8, at + 8 + length)));
      at += 8 + length;
    }
    return (this.#pieces = pieces);
  }

  /** The ids the engine feeds for `prompt` (BOS first), by the engine's own encoder. */
  promptIds(prompt) {
    return encode(this.#bytes, this.#size, prompt);
  }
}
