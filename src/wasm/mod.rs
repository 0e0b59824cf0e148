//! The only module that knows JavaScript: the `#[wasm_bindgen]` [`Engine`] that
//! `www/engine/llama2.js` drives from a Web Worker (or Node), as the whole model or as one shard
//! of it. Its methods, by job: `load` (the checkpoint and tokenizer), `run` (stories, chats and
//! what the engine says of itself), `look` (the Inspect view's captures, branches, the lens),
//! `meet` (the shards' meetings); `args` checks every argument (the one layer that does), and
//! `exports` holds the module's functions besides the engine (`defaults()`, `limits()`, ...).
//!
//! Loading writes the weights once, straight to their place in wasm memory:
//! 1. `begin_checkpoint(prefix, size, name, shard, shards)` reads the header from the file's
//!    first bytes, checks the size and reserves this shard's memory;
//! 2. `checkpoint_ranges()` says which byte ranges of the file it needs, and JS passes them
//!    in with `write_checkpoint(at, bytes)` as they stream in (any chunking);
//! 3. `end_checkpoint()`, then `fit_context(want)` / `set_context(context)` size the KV cache;
//! 4. the leader (shard 0) loads the tokenizer: `load_tokenizer(bytes, name)`.
//!
//! Then `start(prompt, options)` and `generate_next()` until it returns `undefined`: one call
//! = one token, so a stop request from JS gets through between tokens. With several shards,
//! `generate_next()` also returns `undefined` where the shards meet (`pending()` says what is
//! to be exchanged: see `link.rs` and www/engine/llama2.js); the other shards run the leader's
//! commands with `serve(command)` and `poll()`.
//!
//! Arguments are type-checked in `args` (a `TypeError` naming the argument, never a trap), and
//! every error is a JS `Error` with the core's message and a `kind` (`Error::kind`, or `type`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use crate::checkpoint::Loader;
use crate::link::{poll_once, Command, Link, Mailbox, Pending, To};
use crate::{Checkpoint, Generator, Shard, Step, StopReason};
use crate::{Tokenizer, Transformer};
use args::Result;

mod args;
mod exports;
mod load;
mod look;
mod meet;
mod run;

pub use args::Failure;
pub use exports::*;

/// Where the engine is in its life: each state owns exactly what it needs, so the weights
/// move from state to state instead of being copied.
#[allow(clippy::large_enum_variant)] // one Engine per worker: a few hundred bytes do not matter
enum Slot {
    Empty,
    /// `begin_checkpoint` done; JS is writing the file's bytes.
    Loading(Loader),
    /// The checkpoint is loaded; its KV cache is not sized yet.
    Loaded(Checkpoint),
    /// The model is ready: a shard serving the leader, or the leader waiting for its tokenizer.
    Model(Transformer),
    /// The leader, ready to generate.
    Ready(Generator),
    /// The leader in the middle of a step, waiting for the shards to meet.
    Stepping(Parked<Generator, Step>),
    /// The leader looking into a position already run (`lens_start`, `trace_start`),
    /// waiting for the shards.
    Looking(Parked<Generator, Looked>),
    /// A shard in the middle of a pass the leader asked for.
    Serving(Parked<Transformer, ()>),
}

/// A pass parked at a meeting of the shards: it owns the model (`T`) until it ends, then gives
/// it back with its result. The three parked states differ in what they own and return.
type Parked<T, R> = Pin<Box<dyn Future<Output = (T, crate::Result<R>)>>>;

/// The logit lens of one position: per layer, the top tokens and their probabilities.
type Lens = Vec<Vec<(u32, f32)>>;

/// What looking into a position found: its logit lens, or its trace.
enum Looked {
    Lens(Lens),
    Trace(crate::inspect::Trace),
    Map(crate::inspect::LensMap),
}

/// A llama2.c model (or one shard of it) living in wasm memory, generating one token per call.
#[wasm_bindgen]
pub struct Engine {
    slot: Slot,
    /// This engine's part of the model (set by `begin_checkpoint`).
    shard: Shard,
    /// Where the shards meet, while there are several.
    mailbox: Option<Rc<RefCell<Mailbox>>>,
    /// Why the last generation ended (`None` while one runs or before the first).
    stop_reason: Option<StopReason>,
    /// The last logit lens or trace computed.
    looked: Option<Looked>,
    /// `stop()` came while a step was waiting for the shards: applied when it ends.
    stop_requested: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

#[wasm_bindgen]
impl Engine {
    /// An empty engine. Installs the panic hook (once per module) so that a bug shows its
    /// message in the console instead of a bare "unreachable".
    #[wasm_bindgen(constructor)]
    pub fn new() -> Engine {
        console_error_panic_hook::set_once();
        Engine {
            slot: Slot::Empty,
            shard: Shard::WHOLE,
            mailbox: None,
            stop_reason: None,
            looked: None,
            stop_requested: false,
        }
    }
}

impl Engine {
    fn generator(&mut self) -> Result<&mut Generator> {
        match &mut self.slot {
            Slot::Ready(generator) => Ok(generator),
            Slot::Stepping(_) => Err(Failure::state("a step is still waiting for the shards")),
            _ => Err(Failure::state("no model loaded: load a checkpoint and its tokenizer first")),
        }
    }

    fn model(&self) -> Option<&Transformer> {
        match &self.slot {
            Slot::Model(model) => Some(model),
            Slot::Ready(generator) => Some(generator.model()),
            _ => None,
        }
    }

    /// The `ablate` option, for this model (on a split model, the JS driver gives the other
    /// shards the same list, `set_ablation`, before the first pass).
    fn ablation(&mut self, options: &JsValue) -> Result<crate::inspect::Ablation> {
        let config = *self.generator()?.config();
        args::read_ablation(options, &config)
    }

    fn clear_pending(&self) {
        if let Some(m) = &self.mailbox {
            m.borrow_mut().pending = None;
        }
    }
}
