// The links of www/engine/transport.js, in one thread so that the order of events is chosen, not
// raced. The shared-memory link's commands: once, a session's end followed at once by the
// next session's first command could make a slow shard run that command twice (it found the
// end overwritten by the command): its gathers then fell out of step, and a
// 3-worker chat failed with "shard 3 sent 0 values where 64 were expected".

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GATHER_ALL, PortLink, SharedLink } from '../../www/engine/transport.js';

function pair() {
  const sizes = { maxPart: 16, commandWords: 8 };
  const buffer = SharedLink.buffer(2, sizes);
  return { leader: new SharedLink(buffer, 0, 2, sizes), shard: new SharedLink(buffer, 1, 2, sizes) };
}

test('a session ended and the next one begun before a shard looks: the shard runs the new command once, in the new session', async () => {
  const { leader, shard } = pair();
  const seq1 = leader.commandSeq();
  leader.sendCommand([0, 1, 7]);
  const ran = [];
  let seq2;
  await shard.runSession(1, seq1, (command) => {
    ran.push([1, ...command]);
    // While the shard runs session 1's pass, the leader ends session 1, begins session 2 and
    // writes its first command: the shard sees both only when it looks again.
    leader.endSession(1);
    seq2 = leader.commandSeq();
    leader.sendCommand([1, 1, 8]);
  });
  await shard.runSession(2, seq2, (command) => {
    ran.push([2, ...command]);
    leader.endSession(2);
  });
  assert.deepEqual(ran, [[1, 0, 1, 7], [2, 1, 1, 8]]);
});

test('a session whose message comes after it ended runs nothing', async () => {
  const { leader, shard } = pair();
  const seq = leader.commandSeq();
  leader.endSession(1);
  leader.sendCommand([0, 1, 9]); // session 2's
  const ran = [];
  await shard.runSession(1, seq, (command) => ran.push(command));
  assert.deepEqual(ran, []);
});

// The stall rule: only a shard silent inside a pass is lost (waiting for commands is idle,
// field.test.mjs pauses past the limit over real workers).

/** An engine face whose part is `values` (f32s at byte 0 of `memory`). */
function fakeEngine(memory, values) {
  new Float32Array(memory.buffer, 0, values.length).set(values);
  return { outbox_ptr: () => 0, outbox_len: () => values.length, inbox: () => 64 };
}

test('shared memory: a shard that never reaches a gather is lost after the stall limit', () => {
  const sizes = { maxPart: 16, commandWords: 8, stallMs: 200 };
  const buffer = SharedLink.buffer(2, sizes);
  const leader = new SharedLink(buffer, 0, 2, sizes);
  const memory = new WebAssembly.Memory({ initial: 1 });
  const start = performance.now();
  assert.throws(() => leader.gather(fakeEngine(memory, [1, 2]), memory, GATHER_ALL),
    (err) => err.kind === 'shards' && /did not answer inside a pass for 0.2 s/.test(err.message));
  assert.ok(performance.now() - start >= 200);
});

test('messages: a shard that never sends its part is lost after the stall limit; an older link\'s parts are never taken', async () => {
  const { port1, port2 } = new MessageChannel();
  try {
    const leader = new PortLink([null, port1], 0, { epoch: 2, stallMs: 200 });
    const memory = new WebAssembly.Memory({ initial: 1 });
    // A part of the last model's link (epoch 1) for gather 0 arrives late: not this link's.
    port2.postMessage({ epoch: 1, seq: 0, part: new Float32Array([9, 9]) });
    await assert.rejects(leader.gather(fakeEngine(memory, [1, 2]), memory, GATHER_ALL),
      (err) => err.kind === 'shards' && /worker 2 did not answer inside a pass for 0.2 s/.test(err.message));
  } finally {
    port1.close();
    port2.close();
  }
});
