#!/usr/bin/env node
// Writes DIR/models.json, the list of staged models the page offers (tools/serve.sh):
//   { "default": URL, "models": [{ "name", "model", "tokenizer", "size", "sha256" }] }
// for each pair of PAIRS (name, checkpoint, tokenizer) whose two files are in DIR, in order;
// the first is the default. The page passes size and sha256 on, and the weight cache checks them.
//
//   node tools/models-json.mjs DIR name:checkpoint:tokenizer...

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [dir, ...pairs] = process.argv.slice(2);
const models = [];
for (const pair of pairs) {
  const [name, model, tokenizer] = pair.split(':');
  if (!existsSync(join(dir, model)) || !existsSync(join(dir, tokenizer))) continue;
  const sha256 = createHash('sha256').update(readFileSync(join(dir, model))).digest('hex');
  models.push({ name, model: `models/${model}`, tokenizer: `models/${tokenizer}`, size: statSync(join(dir, model)).size, sha256 });
}
writeFileSync(join(dir, 'models.json'), `${JSON.stringify({ default: models[0]?.model ?? '', models }, null, 2)}\n`);
