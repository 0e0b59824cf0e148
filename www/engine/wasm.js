// wasm.js: the engine's WebAssembly module, compiled once per thread and build.
//
// The builds (build.sh) differ only in their instructions, so they share one JS glue
// (pkg/simd/llama2_wasm.js; build.sh checks that the glues are identical). Each .wasm is named
// by a literal `new URL(..., import.meta.url)`, so bundlers (Vite, webpack) ship it.

import { initSync } from '../pkg/simd/llama2_wasm.js';
import * as glue from '../pkg/simd/llama2_wasm.js';
import { importNode } from './start-worker.js';

/** Where each build is. (`relaxed`: fused multiply-add; measured by the benchmark only.) */
const BUILDS = {
  simd: () => new URL('../pkg/simd/llama2_wasm_bg.wasm', import.meta.url),
  scalar: () => new URL('../pkg/scalar/llama2_wasm_bg.wasm', import.meta.url),
};

/** A tiny module using SIMD (`i8x16.popcnt`): valid only where wasm simd128 is supported. */
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15,
  253, 98, 11,
]);

/**
 * The wasm build this JS engine can run: `'simd'` (simd128) or `'scalar'`.
 * @returns {'simd' | 'scalar'}
 */
export function wasmVariant() {
  return WebAssembly.validate(SIMD_PROBE) ? 'simd' : 'scalar';
}

/** The bytes (or a Response) of a .wasm: file: URLs in Node, else fetched. */
async function fetchBuild(url) {
  if (url.protocol === 'file:') {
    const { readFile } = await importNode('node:fs/promises');
    return readFile(url);
  }
  return fetch(url);
}

/** The compiled module per build (or per module given), once per thread. */
const compiled = new Map();

/**
 * Compiles the engine's module (once per build) and instantiates it in this thread (once).
 * @param {{ variant?: 'simd' | 'scalar' | 'relaxed', wasm?: BufferSource | WebAssembly.Module | URL | string }} [options]
 *   `wasm`: the `.wasm` itself (bytes, a compiled module, or where it is), bypassing the
 *   lookup; `variant` then only names it
 * @returns {Promise<NonNullable<typeof instance>>}
 */
export async function instantiate({ variant, wasm } = {}) {
  if (variant !== undefined && !['simd', 'scalar', 'relaxed'].includes(variant)) {
    throw new TypeError(`variant must be 'simd', 'scalar' or 'relaxed', not ${JSON.stringify(variant)}`);
  }
  if (variant === 'relaxed' && wasm === undefined) {
    throw new TypeError("variant 'relaxed' (the benchmark's build) needs its module: pass wasm");
  }
  variant ??= wasmVariant();
  // The glue holds one instance per thread: the first build instantiated here stays (asked
  // again, by name, with its bytes or not, it is the same one).
  if (instance) {
    if (instance.variant !== variant) {
      throw new Error(`this thread already runs the ${instance.variant} build; one build per thread`);
    }
    return instance;
  }
  const key = wasm ?? variant;
  if (!compiled.has(key)) {
    compiled.set(key, (async () => {
      let source = wasm ?? BUILDS[variant]();
      if (source instanceof WebAssembly.Module) return source;
      // A string is relative to the page (or worker); in Node, to this file. (Not to
      // import.meta.url in a browser: webpack replaces it with the file's path at build time.)
      if (typeof source === 'string' || source instanceof URL) {
        source = await fetchBuild(new URL(source, globalThis.location?.href ?? import.meta.url));
      }
      if (typeof Response === 'function' && source instanceof Response) {
        if (!source.ok) throw new Error(`cannot load the engine ${source.url}: HTTP ${source.status}`);
        // compileStreaming needs the application/wasm type; a plain compile does not.
        return WebAssembly.compile(await source.arrayBuffer());
      }
      return WebAssembly.compile(source);
    })());
    compiled.get(key).catch(() => compiled.delete(key));
  }
  const module = await compiled.get(key);
  instance ??= { variant, glue, module, memory: initSync({ module }).memory, warm: false };
  return instance;
}

/**
 * This thread's instance: `{ variant, glue, module, memory, warm }` (`warm`: the warm-up ran).
 * @type {null | { variant: string, glue: typeof glue, module: WebAssembly.Module, memory: WebAssembly.Memory, warm: boolean }}
 */
let instance = null;
