// The shared-memory link's commands (www/transport.js), with the leader and a shard in one
// thread so that the order of events is chosen, not raced. Once, a session's end followed at
// once by the next session's first command could make a slow shard run that command twice
// (it found the end overwritten by the command): its gathers then fell out of step, and a
// 3-worker chat failed with "shard 3 sent 0 values where 64 were expected".

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedLink } from '../../www/transport.js';

function pair() {
  const buffer = SharedLink.buffer(2, 16);
  return { leader: new SharedLink(buffer, 0, 2, 16), shard: new SharedLink(buffer, 1, 2, 16) };
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
