// transport.js: how the shards of a model (one wasm engine per worker) meet, mid forward pass.
//
// The engine (src/link.rs) stops where the shards must exchange their parts of a vector and
// says so with `pending()`: 1 a gather for everyone, 2 a gather for the leader only (the
// logits), 3 the leader's command to run a pass. A link carries those between the workers:
//
// - SharedLink (SharedArrayBuffer + Atomics, when the page is crossOriginIsolated): each
//   shard copies its part into its region of the shared buffer, meets the others at a
//   barrier (spinning briefly, then Atomics.wait), and copies theirs out. Regions alternate
//   between two sets, so a shard writing the next part never overwrites one still being
//   read (it must pass the next barrier first). Synchronous: the exchange is done when it
//   returns. The other shards wait for commands in a loop (a session) while a generation runs.
// - PortLink (MessagePorts, anywhere): each shard posts its part to the others and awaits
//   theirs, numbered by gather so that an early part waits for its turn.
//
// Both fail with kind `shards` (errors.js) when a shard died, rather than waiting for ever.
//
// The stall rule: a shard waiting for the leader's next command is idle, for as long as the
// model lives (a story paused on Step, a lens left open); only a shard that stops answering
// inside a pass (a gather not met within the stall limit) is taken for lost.

import { LlamaError, shardsLost } from './errors.js';

/** pending() values (src/wasm/meet.rs `Engine::pending`; the engine's `limits().pending`: a test
 * checks that these copies agree). */
export const GATHER_ALL = 1;
export const GATHER_LEADER = 2;
export const COMMAND = 3;

/** How long a shard may take to reach a meeting point inside a pass before it is taken for
 * dead (the links take another for tests: their `stallMs`). */
export const STALL_MS = 120_000;
/** How long to spin on a meeting point before sleeping in Atomics.wait: a pass has dozens of
 * them, and a wake-up from Atomics.wait takes longer than most of these waits. (A spin that
 * adapts to contention was measured and did not help: docs/parallel.md.) */
const SPIN_MS = 2;


/** A view of `len` f32s at byte `ptr` of wasm `memory` (made fresh: memory may have grown). */
function f32s(memory, ptr, len) {
  return new Float32Array(memory.buffer, ptr, len);
}

// Layout of the shared buffer: a control block of i32s, the command, then the parts.
const COUNT = 0; // shards arrived at the barrier
const GEN = 1; // barrier generation
const SIGNAL = 2; // bumped by every command, session end and death: what waiting shards watch
const DEAD = 3; // 1 + index of a shard that died, or 0
const COMMANDS = 4; // commands written
const ENDED = 5; // the last session the leader ended
const CONTROL = 16; // i32s of the control block

/** The sizes of a shared buffer: `maxPart`, the most f32s one shard's part holds, and
 * `commandWords`, the most u32s of a command (the engine's `limits()`: never restated here). */
function layout(count, { maxPart, commandWords }) {
  const slot = 1 + commandWords; // [length, ...command]: the one command slot
  const base = 4 * (CONTROL + slot);
  return { slot, base, bytes: base + 4 * 2 * count * (1 + maxPart) };
}

export class SharedLink {
  /**
   * @param {SharedArrayBuffer} buffer from `SharedLink.buffer(count, sizes)`
   * @param {number} shard this shard's index
   * @param {number} count shards
   * @param {{ maxPart: number, commandWords: number, stallMs?: number }} sizes as for
   *   `buffer`, and the stall limit inside a pass
   */
  constructor(buffer, shard, count, sizes) {
    this.shard = shard;
    this.count = count;
    this.maxPart = sizes.maxPart;
    this.stallMs = sizes.stallMs ?? STALL_MS;
    const { slot, base } = layout(count, sizes);
    const maxPart = this.maxPart;
    this.ctrl = new Int32Array(buffer, 0, CONTROL);
    this.cmd = new Int32Array(buffer, 4 * CONTROL, slot);
    /** regions[set][shard]: [length, ...part] as i32 length + f32 values */
    this.regions = [0, 1].map((set) =>
      Array.from({ length: count }, (_, k) => {
        const at = base + 4 * (1 + maxPart) * (set * count + k);
        return { len: new Int32Array(buffer, at, 1), data: new Float32Array(buffer, at + 4, maxPart) };
      }),
    );
    this.set = 0;
    /** Commands this shard has run (or seen pass, before its session began). */
    this.seenCommand = 0;
  }

  /** A shared buffer for `count` shards: `sizes` `{ maxPart, commandWords }`. */
  static buffer(count, sizes) {
    return new SharedArrayBuffer(layout(count, sizes).bytes);
  }

  /** This shard failed: wakes everyone, so that no one waits for it. */
  announceDead() {
    this.markDead(this.shard);
  }

  /** Marks shard `index` dead and wakes everyone, so that no one waits for it. */
  markDead(index) {
    Atomics.compareExchange(this.ctrl, DEAD, 0, index + 1);
    Atomics.add(this.ctrl, GEN, 1);
    Atomics.notify(this.ctrl, GEN);
    this.#signal();
  }

  #signal() {
    Atomics.add(this.ctrl, SIGNAL, 1);
    Atomics.notify(this.ctrl, SIGNAL);
  }

  #checkAlive() {
    const dead = Atomics.load(this.ctrl, DEAD);
    if (dead) throw shardsLost(`worker ${dead} of ${this.count} stopped`);
  }

  /** Waits until `ctrl[at]` is no longer `value`: spins a little, then sleeps. Inside a pass
   * (`inPass`) a wait longer than the stall limit means a shard is lost; between passes the
   * wait is idle and has no limit. */
  #waitChange(at, value, inPass) {
    const start = performance.now();
    for (let i = 1; Atomics.load(this.ctrl, at) === value; i++) {
      if ((i & 1023) === 0 && performance.now() - start > SPIN_MS) break;
    }
    if (Atomics.load(this.ctrl, at) === value) this.#sleep(at, value, inPass, start);
  }

  #sleep(at, value, inPass, start) {
    while (Atomics.load(this.ctrl, at) === value) {
      this.#checkAlive();
      Atomics.wait(this.ctrl, at, value, 100);
      if (inPass && performance.now() - start > this.stallMs) {
        throw shardsLost(`a worker did not answer inside a pass for ${this.stallMs / 1000} s`);
      }
    }
  }

  #barrier() {
    const gen = Atomics.load(this.ctrl, GEN);
    if (Atomics.add(this.ctrl, COUNT, 1) === this.count - 1) {
      Atomics.store(this.ctrl, COUNT, 0);
      Atomics.add(this.ctrl, GEN, 1);
      Atomics.notify(this.ctrl, GEN);
    } else {
      this.#waitChange(GEN, gen, true);
    }
    this.#checkAlive();
  }

  /** Does the exchange `pending` says (GATHER_ALL or GATHER_LEADER) for `engine`. */
  gather(engine, memory, pending) {
    const regions = this.regions[this.set];
    this.set ^= 1;
    const mine = regions[this.shard];
    const len = engine.outbox_len();
    if (len > this.maxPart) throw shardsLost(`a part of ${len} values does not fit its ${this.maxPart}`);
    mine.data.set(f32s(memory, engine.outbox_ptr(), len));
    mine.len[0] = len;
    this.#barrier();
    if (pending === GATHER_LEADER && this.shard !== 0) return;
    for (let k = 0; k < this.count; k++) {
      if (k === this.shard) continue;
      const n = regions[k].len[0];
      const at = engine.inbox(k, n); // may grow memory: view after
      f32s(memory, at, n).set(regions[k].data.subarray(0, n));
    }
  }

  // The one command slot is safe to rewrite: the leader writes a command only after every
  // shard has read the one before (it met them at a gather of that pass), and a session's end
  // is not a command (it has its own word), so a session's end followed at once by the next
  // session's first command cannot overwrite a command that a shard is still to read.

  /** The leader: the others are to run `command` (`[pos, logits, ...tokens]`). */
  sendCommand(command) {
    if (command.length >= this.cmd.length) {
      throw new LlamaError('engine', `a command of ${command.length} words does not fit the link's ${this.cmd.length - 1}`);
    }
    this.cmd[0] = command.length;
    this.cmd.set(command, 1);
    Atomics.add(this.ctrl, COMMANDS, 1);
    this.#signal();
  }

  /** The leader: session `session` is over; the others go back to their messages. */
  endSession(session) {
    Atomics.store(this.ctrl, ENDED, session);
    this.#signal();
  }

  /** The leader: where the next session's commands start (for `session` messages). */
  commandSeq() {
    return Atomics.load(this.ctrl, COMMANDS);
  }

  /**
   * A shard other than the leader: runs session `session`, whose commands come after the
   * `seq`-th: calls `serve(command)` for each until the leader ends it. A command not yet run
   * when the session has ended is the next session's (the leader cannot end a session before
   * every shard has run its passes).
   */
  async runSession(session, seq, serve) {
    this.seenCommand = Math.max(this.seenCommand, seq);
    for (;;) {
      const signal = Atomics.load(this.ctrl, SIGNAL);
      this.#checkAlive();
      if (Atomics.load(this.ctrl, ENDED) >= session) return;
      const commands = Atomics.load(this.ctrl, COMMANDS);
      if (commands !== this.seenCommand) {
        this.seenCommand = commands;
        await serve(this.cmd.slice(1, 1 + this.cmd[0]));
        continue;
      }
      this.#waitChange(SIGNAL, signal, false);
    }
  }
}

export class PortLink {
  /**
   * @param {(MessagePort | null)[]} ports the port to each shard, by index (null: this one)
   * @param {number} shard this shard's index
   * @param {{ epoch?: number, stallMs?: number }} [options] `epoch`: the load this link is for
   *   (the ports outlive a model: a part of an older link's pass is never taken for this
   *   one's); `stallMs`: the stall limit inside a pass
   */
  constructor(ports, shard, { epoch = 0, stallMs = STALL_MS } = {}) {
    this.ports = ports;
    this.shard = shard;
    this.count = ports.length;
    this.epoch = epoch;
    this.stallMs = stallMs;
    this.seq = 0;
    /** Parts that came early, and the receivers waiting: `${seq}/${k}` -> part or resolver. */
    this.parts = new Map();
    this.waiting = new Map();
    this.failed = null;
    /** The leader's commands (for the other shards). */
    this.onCommand = () => {};
    ports.forEach((port, k) => {
      if (!port) return;
      port.onmessage = ({ data }) => {
        if (data.epoch !== this.epoch) return; // an older model's, late
        if (data.command) return this.onCommand(data.command);
        if (data.dead !== undefined) return this.markDead(data.dead);
        const key = `${data.seq}/${k}`;
        const resolve = this.waiting.get(key);
        if (resolve) {
          this.waiting.delete(key);
          resolve(data.part);
        } else this.parts.set(key, data.part);
      };
    });
  }

  /** This shard failed: tells the others, so that no one waits for it. */
  announceDead() {
    for (const port of this.ports) port?.postMessage({ epoch: this.epoch, dead: this.shard });
    this.markDead(this.shard);
  }

  /** Shard `index` died: every wait ends with an error. */
  markDead(index) {
    this.#fail(shardsLost(`worker ${index + 1} of ${this.count} stopped`));
  }

  /** Another model replaces this link's: a pass still waiting ends (its error is nobody's). */
  close() {
    this.#fail(new LlamaError('cancelled', 'cancelled: another model was loaded'));
  }

  #fail(error) {
    this.failed ??= error;
    for (const resolve of this.waiting.values()) resolve(null);
    this.waiting.clear();
  }

  /** Shard `k`'s part of gather `seq`; inside a pass, so a shard silent past the stall limit
   * is taken for lost (as over shared memory). */
  #receive(k, seq) {
    const key = `${seq}/${k}`;
    if (this.parts.has(key)) {
      const part = this.parts.get(key);
      this.parts.delete(key);
      return part;
    }
    if (this.failed) throw this.failed;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(key);
        this.#fail(shardsLost(`worker ${k + 1} did not answer inside a pass for ${this.stallMs / 1000} s`));
        resolve(null);
      }, this.stallMs);
      this.waiting.set(key, (part) => {
        clearTimeout(timer);
        resolve(part);
      });
    });
  }

  /** Does the exchange `pending` says (GATHER_ALL or GATHER_LEADER) for `engine`. */
  async gather(engine, memory, pending) {
    const seq = this.seq++;
    const part = f32s(memory, engine.outbox_ptr(), engine.outbox_len()).slice();
    const everyone = pending === GATHER_ALL;
    for (let k = 0; k < this.count; k++) {
      if (k !== this.shard && (everyone || k === 0)) this.ports[k].postMessage({ epoch: this.epoch, seq, part });
    }
    if (!everyone && this.shard !== 0) return;
    for (let k = 0; k < this.count; k++) {
      if (k === this.shard) continue;
      const received = await this.#receive(k, seq);
      if (received === null || this.failed) throw this.failed ?? shardsLost('a worker stopped');
      f32s(memory, engine.inbox(k, received.length), received.length).set(received);
    }
  }

  /** The leader: the others are to run `command`. */
  sendCommand(command) {
    if (this.failed) throw this.failed;
    for (let k = 1; k < this.count; k++) this.ports[k].postMessage({ epoch: this.epoch, command });
  }
}
