// node bench/node.mjs VARIANT CHECKPOINT TOKENIZER PROMPT_TOKENS STEPS [WORKERS TRANSPORT] < prompt
// One measurement of a wasm build in Node (a fresh process each, so memory is this model's);
// prints one JSON object. Run by bench/bench.mjs.
import { openAsBlob, readFileSync } from 'node:fs';
import * as llama2 from '../www/engine/llama2.js';
import { measure } from './measure.mjs';

const [variant, model, tokenizer, promptTokens, steps, workers = '1', transport = 'shared'] = process.argv.slice(2);
const wasm = readFileSync(new URL(`../www/pkg/${variant}/llama2_wasm_bg.wasm`, import.meta.url));
const prompt = readFileSync(0, 'utf8');
const result = await measure(llama2, {
  variant, wasm, workers: Number(workers), transport, model: await openAsBlob(model), tokenizer: await openAsBlob(tokenizer),
  prompt, promptTokens: Number(promptTokens), steps: Number(steps),
});
console.log(JSON.stringify(result));
process.exit(0); // shard workers, if any, end with the process
