//! Where the shards of a model meet (see `shard.rs`).
//!
//! The forward pass (`model.rs`) stops at a few points of each layer where a matrix needs a
//! whole vector of which each shard computed a part: [`Link::gather`] then gives every shard
//! (or only the leader) the other shards' parts. The leader also tells the other shards what
//! to run ([`Link::command`]); they run the same forward pass on their rows.
//!
//! The forward pass is an `async fn`, so that it can wait at these points without a thread:
//! - alone (one shard), a gather returns at once;
//! - natively ([`Transport::Threads`], `llama2 --threads N`), the shards are threads that meet at a
//!   barrier inside the gather, which also returns ready;
//! - in the browser ([`Mailbox`]), the gather leaves its part in the mailbox and returns
//!   `Pending`: the JavaScript driver (www/engine/llama2.js) carries the parts between workers
//!   (shared memory or messages), puts the others' parts in the mailbox and polls again.
//!
//! [`block_on`] runs such a future to its end when nothing has to be driven from outside.

use std::cell::RefCell;
use std::future::Future;
use std::ops::Range;
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::error::{Error, Result};
use crate::shard::Shard;

/// Which parts of a buffer each shard computed.
#[derive(Clone, Copy)]
pub enum Parts<'a> {
    /// `rows` rows of `width` values; shard `k` computed columns `ranges[k]` of every row.
    Columns { rows: usize, width: usize, ranges: &'a [Range<usize>] },
    /// Rows of `width` values; row `t` came whole from shard `owners[t]`.
    Rows { width: usize, owners: &'a [usize] },
}

impl Parts<'_> {
    /// The index ranges of the buffer shard `k` computed.
    fn segments(&self, k: usize) -> Vec<Range<usize>> {
        match *self {
            Parts::Columns { rows, width, ranges } => {
                let r = &ranges[k];
                (0..rows).map(|t| t * width + r.start..t * width + r.end).collect()
            }
            Parts::Rows { width, owners } => owners
                .iter()
                .enumerate()
                .filter(|&(_, &owner)| owner == k)
                .map(|(t, _)| t * width..(t + 1) * width)
                .collect(),
        }
    }

    fn pack(&self, k: usize, buf: &[f32], out: &mut Vec<f32>) {
        out.clear();
        for s in self.segments(k) {
            out.extend_from_slice(&buf[s]);
        }
    }

    /// Puts shard `k`'s packed part `part` where it belongs in `buf`.
    fn unpack(&self, k: usize, part: &[f32], buf: &mut [f32]) -> Result<()> {
        let segments = self.segments(k);
        let expected: usize = segments.iter().map(|s| s.len()).sum();
        if part.len() != expected {
            return Err(Error::Shards(format!(
                "shard {} sent {} values where {expected} were expected",
                k + 1,
                part.len()
            )));
        }
        let mut at = 0;
        for s in segments {
            let len = s.len();
            buf[s].copy_from_slice(&part[at..at + len]);
            at += len;
        }
        Ok(())
    }
}

/// Who receives the parts of a gather.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    Everyone,
    /// Only the leader needs them (the logits, which it samples).
    Leader,
}

/// One forward pass, as the leader asks the other shards to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tokens: Vec<u32>,
    pub pos: usize,
    /// Whether the logits of the last token are wanted (the leader samples them).
    pub logits: bool,
    /// What the pass shows of itself (the leader gathers it).
    pub look: Look,
}

/// What a forward pass captures of its last token, for a reader (see `model.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Look {
    /// The attention weights of every layer and head.
    pub attention: bool,
    /// The logit lens: the classifier's logits on the residual stream after every layer.
    pub lens: bool,
    /// Every intermediate vector of the pass (`inspect::Trace`).
    pub trace: bool,
}

impl Look {
    pub const NOTHING: Look = Look { attention: false, lens: false, trace: false };
}

impl Command {
    /// The u32s an encoded command has before its tokens: pos and flags. (At most
    /// `model::PREFILL_BATCH` tokens follow: `model::COMMAND_WORDS` in all.)
    pub const HEADER_WORDS: usize = 2;

    /// As a list of u32s (for JavaScript): `[pos, flags, ...tokens]`, flags bit 0 logits,
    /// bit 1 attention, bit 2 lens, bit 3 trace.
    pub fn encode(&self) -> Vec<u32> {
        let Look { attention, lens, trace } = self.look;
        let flags =
            self.logits as u32 | (attention as u32) << 1 | (lens as u32) << 2 | (trace as u32) << 3;
        [self.pos as u32, flags].into_iter().chain(self.tokens.iter().copied()).collect()
    }

    /// The inverse of [`Command::encode`].
    pub fn decode(words: &[u32]) -> Option<Command> {
        let [pos, flags, tokens @ ..] = words else { return None };
        let look = Look { attention: flags & 2 != 0, lens: flags & 4 != 0, trace: flags & 8 != 0 };
        Some(Command { pos: *pos as usize, logits: flags & 1 != 0, look, tokens: tokens.to_vec() })
    }
}

/// What a driven link waits for (see [`Mailbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// Send `outbox` to `to` (everyone, or the leader), and put every other shard's part into
    /// `inboxes[k]` (a leader receives from everyone; others only when `to` is everyone).
    Gather(To),
    /// The leader's command: send it to every other shard.
    Command(Command),
}

/// The exchange point between a driven shard and its driver.
#[derive(Default)]
pub struct Mailbox {
    pub pending: Option<Pending>,
    /// This shard's part of the current gather.
    pub outbox: Vec<f32>,
    /// The other shards' parts, by shard index (this shard's own stays empty).
    pub inboxes: Vec<Vec<f32>>,
}

/// One shard's connection to the others.
pub struct Link {
    shard: Shard,
    transport: Transport,
}

pub enum Transport {
    /// The whole model: nothing to exchange.
    Alone,
    /// Driven from outside (JavaScript) through a shared mailbox.
    Driven(Rc<RefCell<Mailbox>>),
    /// Native threads meeting at a barrier.
    Threads(threads::ThreadLink),
}

impl Link {
    /// The whole model.
    pub fn alone() -> Link {
        Link { shard: Shard::WHOLE, transport: Transport::Alone }
    }

    /// Shard `shard`, driven through the returned mailbox.
    pub fn driven(shard: Shard) -> (Link, Rc<RefCell<Mailbox>>) {
        let mailbox = Rc::new(RefCell::new(Mailbox {
            inboxes: vec![Vec::new(); shard.count],
            ..Mailbox::default()
        }));
        let transport =
            if shard.count == 1 { Transport::Alone } else { Transport::Driven(mailbox.clone()) };
        (Link { shard, transport }, mailbox)
    }

    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// After this, `buf` holds every shard's part (on the leader only, with `To::Leader`).
    pub async fn gather(&mut self, buf: &mut [f32], parts: Parts<'_>, to: To) -> Result<()> {
        let me = self.shard.index;
        match &mut self.transport {
            Transport::Alone => Ok(()),
            Transport::Driven(mailbox) => {
                {
                    let mut m = mailbox.borrow_mut();
                    let m = &mut *m;
                    parts.pack(me, buf, &mut m.outbox);
                    m.pending = Some(Pending::Gather(to));
                }
                YieldOnce(false).await;
                let m = mailbox.borrow();
                if to == To::Everyone || me == 0 {
                    for k in (0..self.shard.count).filter(|&k| k != me) {
                        parts.unpack(k, &m.inboxes[k], buf)?;
                    }
                }
                Ok(())
            }
            Transport::Threads(link) => link.gather(me, buf, parts, to),
        }
    }

    /// The leader tells the other shards to run `command`.
    pub async fn command(&mut self, command: &Command) -> Result<()> {
        match &mut self.transport {
            Transport::Alone => Ok(()),
            Transport::Driven(mailbox) => {
                mailbox.borrow_mut().pending = Some(Pending::Command(command.clone()));
                YieldOnce(false).await;
                Ok(())
            }
            Transport::Threads(link) => link.command(command),
        }
    }
}

/// A future that is pending once: where a driven shard hands over to its driver.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// Polls `future` once: its output, or `None` when it waits for its driver.
pub fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Option<F::Output> {
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

/// Runs `future` to its end; an error if it waits for a driver (a driven link has one).
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    poll_once(pin!(future)).unwrap_or_else(|| {
        Err(Error::State("this shard is driven from outside: step it with its driver".into()))
    })
}

pub mod threads {
    //! The native transport (it compiles everywhere, but wasm32 has no threads to run it): one thread per shard, meeting at a barrier. Each gather writes
    //! its part into its slot, waits at the barrier, then reads the others' slots. The slots
    //! alternate between two sets, so a fast shard writing the next gather's part never
    //! overwrites one still being read: it must pass the next barrier first, which waits
    //! for every shard to have finished reading this one.

    use std::sync::mpsc::{Receiver, Sender};
    use std::sync::{Arc, Barrier, Mutex};

    use super::{Command, Link, Parts, To, Transport};

    use crate::error::{Error, Result};
    use crate::shard::Shard;

    pub struct ThreadLink {
        barrier: Arc<Barrier>,
        /// `2 * count` slots: set `parity`, shard `k` at `parity * count + k`.
        slots: Arc<Vec<Mutex<Vec<f32>>>>,
        parity: usize,
        /// The leader's channels to the other shards (empty elsewhere).
        commands: Vec<Sender<Command>>,
    }

    /// One shard's end of the threads' meeting point: what its thread takes along (it is
    /// `Send`; the [`Link`] made from it is not).
    pub struct ThreadPart {
        pub shard: Shard,
        link: ThreadLink,
        /// The leader's commands, for every shard but the leader.
        pub commands: Option<Receiver<Command>>,
    }

    impl From<ThreadPart> for Link {
        fn from(part: ThreadPart) -> Link {
            let transport = if part.shard.count == 1 {
                Transport::Alone
            } else {
                Transport::Threads(part.link)
            };
            Link { shard: part.shard, transport }
        }
    }

    /// The parts of `count` shards meeting at one barrier, in shard order (the leader first).
    pub fn parts(count: usize) -> Vec<ThreadPart> {
        let barrier = Arc::new(Barrier::new(count));
        let slots = Arc::new((0..2 * count).map(|_| Mutex::new(Vec::new())).collect::<Vec<_>>());
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (1..count).map(|_| std::sync::mpsc::channel()).unzip();
        let mut receivers = receivers.into_iter();
        let mut senders = Some(senders);
        (0..count)
            .map(|index| ThreadPart {
                shard: Shard { index, count },
                link: ThreadLink {
                    barrier: barrier.clone(),
                    slots: slots.clone(),
                    parity: 0,
                    commands: if index == 0 {
                        senders.take().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                },
                commands: if index == 0 { None } else { receivers.next() },
            })
            .collect()
    }

    fn broken() -> Error {
        Error::Shards("a shard thread failed".into())
    }

    impl ThreadLink {
        pub(super) fn gather(
            &mut self,
            me: usize,
            buf: &mut [f32],
            parts: Parts<'_>,
            to: To,
        ) -> Result<()> {
            let count = self.slots.len() / 2;
            let set = self.parity * count;
            self.parity ^= 1;
            parts.pack(me, buf, &mut *self.slots[set + me].lock().map_err(|_| broken())?);
            self.barrier.wait();
            if to == To::Everyone || me == 0 {
                for k in (0..count).filter(|&k| k != me) {
                    parts.unpack(k, &self.slots[set + k].lock().map_err(|_| broken())?, buf)?;
                }
            }
            Ok(())
        }

        pub(super) fn command(&mut self, command: &Command) -> Result<()> {
            for sender in &self.commands {
                sender.send(command.clone()).map_err(|_| broken())?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_and_decode() {
        for (logits, attention, lens, trace) in
            [(true, true, false, true), (false, false, true, false), (true, false, false, false)]
        {
            let look = Look { attention, lens, trace };
            let c = Command { tokens: vec![1, 2, 3], pos: 7, logits, look };
            assert_eq!(Command::decode(&c.encode()), Some(c.clone()), "{:?}", c.encode());
        }
    }
}
