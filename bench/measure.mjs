// One benchmark measurement through the public JS API (www/engine/llama2.js), the same code in Node
// (bench/node.mjs) and in a Web Worker of headless Chromium (bench/worker.mjs):
//   load_ms       createEngine (the module instantiated and warmed up) + loadCheckpoint +
//                 loadTokenizer (the bytes streamed into wasm memory, parsed): a fresh start
//   memory_mb     the wasm memory after load (weights, run state, heap)
//   ttft_ms       generate(prompt) until its first sampled token: every prompt position first
//   decode_tok_s  tokens per second of generate('') over `steps` positions (one forward each)
// Sampling as the native runner: temperature 1, top-p 1 (no sort; see BENCHMARKS.md), seed 42.

/**
 * @param {object} llama2 the imported www/engine/llama2.js module
 * @param {object} o
 * @param {'simd' | 'scalar' | 'relaxed'} o.variant the wasm build
 * @param {BufferSource | string} [o.wasm] its bytes (Node) or URL (the relaxed build in a browser)
 * @param {number} [o.workers] the model split over this many workers (default 1)
 * @param {'shared' | 'messages'} [o.transport] how they meet
 * @param {Function} [o.startShardWorker] how their workers start (llama2.js `createEngine`)
 * @param {*} o.model a checkpoint Source (URL in the browser, Blob in Node)
 * @param {*} o.tokenizer a tokenizer Source
 * @param {string} o.prompt the benchmark prompt
 * @param {number} o.promptTokens its token count (BOS included)
 * @param {number} o.steps decode positions
 */
export async function measure(llama2, { variant, wasm, workers = 1, transport, model, tokenizer, prompt, promptTokens, steps, context, startShardWorker }) {
  let t0 = performance.now();
  const llama = await llama2.createEngine({ variant, wasm, workers, transport, context, startShardWorker });
  await llama.loadCheckpoint(model, { name: 'model.bin' });
  await llama.loadTokenizer(tokenizer, { name: 'tokenizer.bin' });
  const load_ms = performance.now() - t0;
  const memory_mb = llama.wasmMemoryBytes / 1e6;
  const options = { temperature: 1, topp: 1, seed: 42n };

  // One piece per position: the prompt's tokens after the first, then the first sample.
  t0 = performance.now();
  let pieces = 0;
  for await (const _ of llama.generate(prompt, { ...options, steps: 0 })) {
    if (++pieces === promptTokens) break;
  }
  const ttft_ms = performance.now() - t0;

  // Node also reports CPU time, steadier than wall time on a shared machine.
  const cpu0 = globalThis.process?.cpuUsage?.();
  t0 = performance.now();
  let decoded = 0;
  for await (const _ of llama.generate('', { ...options, steps })) decoded++;
  const decode_tok_s = decoded / ((performance.now() - t0) / 1e3);
  const cpu = cpu0 && globalThis.process.cpuUsage(cpu0);
  const decode_cpu_tok_s = cpu ? decoded / ((cpu.user + cpu.system) / 1e6) : undefined;
  llama.free();
  return { decode_tok_s, decoded, ttft_ms, load_ms, memory_mb, variant: llama.variant, decode_cpu_tok_s };
}
