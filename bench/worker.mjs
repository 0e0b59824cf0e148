// The browser side of a measurement: a module worker (as the page runs the engine) that
// measures once and posts the result. Message in: measure()'s options with URL sources. As on
// the page, the shard workers are started by the page (llama2.js `ShardWorkersByParent`).
import * as llama2 from '/engine/llama2.js';
import { measure } from './measure.mjs';

const shardWorkers = new llama2.ShardWorkersByParent((message, transfer) => postMessage(message, transfer));

onmessage = async ({ data }) => {
  if (data?.type === 'shard-error') return shardWorkers.failed(data);
  try {
    postMessage({ ok: true, result: await measure(llama2, { ...data, startShardWorker: shardWorkers.start }) });
  } catch (err) {
    postMessage({ ok: false, message: String(err?.stack ?? err) });
  }
};
