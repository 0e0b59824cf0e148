//! The only file that knows JavaScript: the `#[wasm_bindgen]` [`Engine`] that `www/engine/llama2.js`
//! drives from a Web Worker (or Node), as the whole model or as one shard of it.
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
//! Arguments are type-checked here (a `TypeError` naming the argument, never a trap), and
//! every error is a JS `Error` with the core's message and a `kind` (`Error::kind`, or `type`).

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::checkpoint::header::check_config;
use crate::checkpoint::{Header, Layout, Loader, Tensor};
use crate::config::Config;
use crate::generate::parse_seed;
use crate::inspect::InspectOptions;
use crate::link::{poll_once, Command, Link, Mailbox, Pending, To};
use crate::{Checkpoint, Error, Format, Generator, Options, Sampler, Shard, Step, StopReason};
use crate::{Tokenizer, Transformer};

/// An error as JavaScript receives it: an `Error` (or `TypeError`) with a `kind`.
pub struct Failure(JsValue);

impl Failure {
    fn new(error: js_sys::Error, kind: &str) -> Failure {
        let _ = Reflect::set(&error, &"kind".into(), &kind.into());
        Failure(error.into())
    }

    fn state(message: &str) -> Failure {
        Failure::new(js_sys::Error::new(message), "state")
    }

    fn type_error(message: &str) -> Failure {
        Failure::new(js_sys::TypeError::new(message).into(), "type")
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::new(js_sys::Error::new(&err.to_string()), err.kind())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message =
            js_sys::Reflect::get(&self.0, &"message".into()).ok().and_then(|m| m.as_string());
        write!(f, "{}", message.unwrap_or_default())
    }
}

impl From<Failure> for JsValue {
    fn from(failure: Failure) -> JsValue {
        failure.0
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// What `typeof value` says, for messages.
fn type_of(value: &JsValue) -> String {
    value.js_typeof().as_string().unwrap_or_default()
}

/// A string argument (`undefined`/`null` = `default`), or a TypeError naming it.
fn string(value: &JsValue, what: &str, default: &str) -> Result<String> {
    if value.is_undefined() || value.is_null() {
        return Ok(default.to_string());
    }
    value.as_string().ok_or_else(|| {
        Failure::type_error(&format!("{what} must be a string, not {}", type_of(value)))
    })
}

/// A whole-number argument (0 to 2^32 - 1), or a TypeError naming it: wasm-bindgen would
/// turn `'x'` into 0 and `-1` into 4294967295.
fn whole(value: &JsValue, what: &str) -> Result<u32> {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 && (0.0..=u32::MAX as f64).contains(&n) => Ok(n as u32),
        _ => Err(Failure::type_error(&format!(
            "{what} must be a whole number from 0 to {}, not {}",
            u32::MAX,
            shown(value)
        ))),
    }
}

/// A JS value as a message shows it: a number as JS prints it (`NaN`, not JSON's `null`), a
/// string quoted, anything else by its type.
fn shown(value: &JsValue) -> String {
    if let Some(n) = value.as_f64() {
        return match n {
            n if n.is_nan() => "NaN".into(),
            n if n.is_infinite() => if n > 0.0 { "Infinity" } else { "-Infinity" }.into(),
            n => format!("{n}"),
        };
    }
    if let Some(text) = value.as_string() {
        return format!("{text:?}");
    }
    type_of(value)
}

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
    Stepping(Pin<Box<dyn Future<Output = (Generator, crate::Result<Step>)>>>),
    /// The leader in the middle of a logit lens (`lens_start`), waiting for the shards.
    Lensing(Pin<Box<dyn Future<Output = (Generator, crate::Result<Lens>)>>>),
    /// A shard in the middle of a pass the leader asked for.
    Serving(Pin<Box<dyn Future<Output = (Transformer, crate::Result<()>)>>>),
}

/// The logit lens of one position: per layer, the top tokens and their probabilities.
type Lens = Vec<Vec<(u32, f32)>>;

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
    /// The last logit lens computed.
    lens: Option<Lens>,
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
            lens: None,
            stop_requested: false,
        }
    }

    /// Frees the loaded model (if any), reads the checkpoint's header from `prefix` (its first
    /// 256 bytes, or all of a shorter file), checks that the file's `size` is what the header
    /// describes, and reserves the memory of shard `shard` of `shards` (0 of 1: the whole).
    pub fn begin_checkpoint(
        &mut self,
        prefix: &[u8],
        size: f64,
        name: JsValue,
        shard: u32,
        shards: u32,
    ) -> Result<()> {
        self.slot = Slot::Empty; // free first: the allocator then reuses the old blocks
        self.mailbox = None;
        self.stop_reason = None;
        self.lens = None;
        // A stop asked of the last model's step (one its shards never finished) is not the
        // next model's: it would end its first story before its first token.
        self.stop_requested = false;
        let name = string(&name, "name", "checkpoint")?;
        let size = byte_count(size, "checkpoint size")?;
        self.shard = Shard::new(shard as usize, shards as usize).ok_or_else(|| {
            Failure::type_error(&format!("shard {shard} of {shards}: not a shard"))
        })?;
        self.slot = Slot::Loading(Loader::new(prefix, size, &name, self.shard)?);
        Ok(())
    }

    /// The byte ranges of the file this shard needs, as `[start, end, start, end, ...]`.
    pub fn checkpoint_ranges(&self) -> Result<Vec<f64>> {
        let Slot::Loading(loader) = &self.slot else {
            return Err(Failure::state("checkpoint_ranges: call begin_checkpoint first"));
        };
        Ok(loader.file_ranges().into_iter().flat_map(|r| [r.start as f64, r.end as f64]).collect())
    }

    /// Writes `bytes`, found at byte `at` of the file (bytes this shard does not hold are
    /// skipped). Each byte of the file is to be written once.
    pub fn write_checkpoint(&mut self, at: f64, bytes: &[u8]) -> Result<()> {
        let at = byte_count(at, "offset")?;
        let Slot::Loading(loader) = &mut self.slot else {
            return Err(Failure::state("write_checkpoint: call begin_checkpoint first"));
        };
        loader.write(at, bytes);
        Ok(())
    }

    /// Ends the load: every byte this shard needs must have been written. On failure the
    /// engine is empty.
    pub fn end_checkpoint(&mut self) -> Result<()> {
        let Slot::Loading(loader) = std::mem::replace(&mut self.slot, Slot::Empty) else {
            return Err(Failure::state("end_checkpoint: call begin_checkpoint first"));
        };
        self.slot = Slot::Loaded(loader.finish()?);
        Ok(())
    }

    /// The most positions (up to `want`; 0 = the model's seq_len) whose KV cache this engine
    /// can allocate now; 0 when not one fits.
    pub fn fit_context(&self, want: u32) -> Result<u32> {
        let Slot::Loaded(checkpoint) = &self.slot else {
            return Err(Failure::state("fit_context: load a checkpoint first"));
        };
        let c = checkpoint.config();
        let want = if want == 0 { c.seq_len } else { (want as usize).min(c.seq_len) };
        Ok(Transformer::fitting_context(c, self.shard, want) as u32)
    }

    /// Allocates the KV cache for `context` positions (`1..=seq_len`; 0 = seq_len): the
    /// model is then ready (a shard to serve; the leader for its tokenizer).
    pub fn set_context(&mut self, context: u32) -> Result<()> {
        let checkpoint = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Loaded(checkpoint) => checkpoint,
            other => {
                self.slot = other;
                return Err(Failure::state("set_context: load a checkpoint first"));
            }
        };
        let context = if context == 0 { checkpoint.config().seq_len } else { context as usize };
        let (link, mailbox) = Link::driven(self.shard);
        self.mailbox = (self.shard.count > 1).then_some(mailbox);
        self.slot = Slot::Model(Transformer::new(checkpoint, context, link)?);
        Ok(())
    }

    /// Reads a `tokenizer.bin` for the loaded model (the leader's) and makes the engine ready.
    /// With a model already ready, replaces its tokenizer. On a bad tokenizer the model stays
    /// loaded, so another tokenizer can be tried.
    pub fn load_tokenizer(&mut self, bytes: &[u8], name: JsValue) -> Result<()> {
        let name = string(&name, "name", "tokenizer")?;
        let model = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Model(model) => model,
            Slot::Ready(generator) => generator.into_parts().0,
            other => {
                self.slot = other;
                return Err(Failure::state("load_tokenizer: load a checkpoint first"));
            }
        };
        if !model.shard().is_leader() {
            self.slot = Slot::Model(model);
            return Err(Failure::state("load_tokenizer: only the leader shard samples"));
        }
        match Tokenizer::from_bytes(bytes, model.config().vocab_size, &name) {
            Ok(tokenizer) => {
                self.slot = Slot::Ready(Generator::with_model(model, tokenizer)?);
                self.stop_reason = None;
                Ok(())
            }
            Err(err) => {
                self.slot = Slot::Model(model);
                Err(err.into())
            }
        }
    }

    /// Whether a model and its tokenizer are loaded (the leader).
    pub fn is_ready(&self) -> bool {
        matches!(self.slot, Slot::Ready(_) | Slot::Stepping(_))
    }

    /// Starts a generation (ending any running one). `options`: `{ temperature, topp, seed,
    /// steps }`, each optional (run.c's defaults, see `defaults()`); `seed` a number, BigInt
    /// or string (0 or empty = the time).
    pub fn start(&mut self, prompt: JsValue, options: JsValue) -> Result<()> {
        let prompt = string(&prompt, "prompt", "")?;
        let options = read_options(&options)?;
        self.stop_reason = None;
        self.generator()?.start(&prompt, &options)?;
        Ok(())
    }

    /// Starts a chat (run.c's `-m chat`): the first user turn, with an optional system prompt.
    pub fn start_chat(&mut self, system: JsValue, user: JsValue, options: JsValue) -> Result<()> {
        let system = string(&system, "system", "")?;
        let user = string(&user, "user message", "")?;
        let options = read_options(&options)?;
        self.stop_reason = None;
        self.generator()?.start_chat(&system, &user, &options)?;
        Ok(())
    }

    /// Continues a chat whose assistant turn ended (stop reason `eos`) with the user's turn.
    pub fn chat_turn(&mut self, user: JsValue) -> Result<()> {
        let user = string(&user, "user message", "")?;
        self.stop_reason = None;
        self.generator()?.chat_turn(&user)?;
        Ok(())
    }

    /// The next piece of text (possibly `""` while a multi-byte character is incomplete), or
    /// `undefined`: the generation is over (see `stop_reason`), or the shards must meet first
    /// (`pending()` is not 0; call again once they have).
    pub fn generate_next(&mut self) -> Result<Option<String>> {
        let mut step = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Ready(generator) => Box::pin(async move {
                let mut generator = generator;
                let step = generator.step().await;
                (generator, step)
            }),
            Slot::Stepping(step) => step,
            other => {
                self.slot = other;
                return Err(Failure::state(
                    "no model loaded: load a checkpoint and its tokenizer first",
                ));
            }
        };
        self.clear_pending();
        let Some((mut generator, result)) = poll_once(step.as_mut()) else {
            self.slot = Slot::Stepping(step);
            return Ok(None);
        };
        if std::mem::take(&mut self.stop_requested) {
            generator.stop();
        }
        self.slot = Slot::Ready(generator);
        match result? {
            Step::Piece(piece) => Ok(Some(piece)),
            Step::Done(reason) => {
                self.stop_reason = Some(reason);
                Ok(None)
            }
        }
    }

    /// Each forward pass from now on captures the `top_k` most probable next tokens
    /// (`undefined`: `InspectOptions::DEFAULT_TOP_K`) and, with `attention`, every layer's and
    /// head's attention weights (`inspection()`); `inspect_off()` turns it off. While on, a
    /// prompt runs position by position. `top_k` is the JS API's `topK`, checked here only.
    pub fn inspect(&mut self, top_k: JsValue, attention: bool) -> Result<()> {
        let top_k = match top_k.is_undefined() {
            true => InspectOptions::DEFAULT_TOP_K,
            false => whole(&top_k, "tokens: topK")? as usize,
        };
        if top_k == 0 {
            return Err(Error::Options("tokens: topK must be at least 1 token".into()).into());
        }
        self.generator()?.inspect(Some(InspectOptions { top_k, attention }));
        Ok(())
    }

    /// Passes capture nothing from now on (and a prompt runs in batches again).
    pub fn inspect_off(&mut self) -> Result<()> {
        self.generator()?.inspect(None);
        Ok(())
    }

    /// What the last forward pass captured (`inspect::Inspection`, by its field names): `{ pos,
    /// token, id, prompt (id was the prompt's), prob, rank, top: [[id, prob], ...], attention:
    /// Float32Array | undefined, layers, heads }` (attention is `(layer, head, pos + 1)`), or
    /// `undefined`.
    pub fn inspection(&self) -> Result<JsValue> {
        let Slot::Ready(generator) = &self.slot else { return Ok(JsValue::UNDEFINED) };
        let Some(seen) = generator.inspection() else { return Ok(JsValue::UNDEFINED) };
        let c = generator.config();
        let top = js_sys::Array::new();
        for &(id, p) in &seen.top {
            top.push(&js_sys::Array::of2(&id.into(), &(p as f64).into()));
        }
        let attention: JsValue = if seen.attention.is_empty() {
            JsValue::UNDEFINED
        } else {
            js_sys::Float32Array::from(&seen.attention[..]).into()
        };
        object(&[
            ("pos", seen.pos.into()),
            ("token", seen.token.into()),
            ("id", seen.id.into()),
            ("prompt", seen.prompt.into()),
            ("prob", (seen.prob as f64).into()),
            ("rank", seen.rank.into()),
            ("top", top.into()),
            ("attention", attention),
            ("layers", c.n_layers.into()),
            ("heads", c.n_heads.into()),
        ])
    }

    /// Continues the story from position `pos` with token `token` fed there (see
    /// `Generator::branch`: the KV cache below `pos` is kept; sampling restarts from the seed).
    pub fn branch(&mut self, pos: JsValue, token: JsValue) -> Result<()> {
        let (pos, token) = (whole(&pos, "branch: pos")?, whole(&token, "branch: token")?);
        self.stop_reason = None;
        self.generator()?.branch(pos as usize, token)?;
        Ok(())
    }

    /// Starts the logit lens of position `pos` (top `k` per layer, `undefined`:
    /// `inspect::DEFAULT_LENS_K`); then `poll_lens()` until it is done (the shards may have to
    /// meet: `pending()`), and `lens()`.
    pub fn lens_start(&mut self, pos: JsValue, k: JsValue) -> Result<bool> {
        let pos = whole(&pos, "lens: pos")?;
        let k = match k.is_undefined() {
            true => crate::inspect::DEFAULT_LENS_K as u32,
            false => whole(&k, "lens: k")?,
        };
        if k == 0 {
            return Err(Error::Options("lens: k must be at least 1 token".into()).into());
        }
        let generator = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Ready(generator) => generator,
            other => {
                self.slot = other;
                return Err(Failure::state("lens: no model ready (or a step is running)"));
            }
        };
        self.slot = Slot::Lensing(Box::pin(async move {
            let mut generator = generator;
            let lens = generator.lens(pos as usize, k as usize).await;
            (generator, lens)
        }));
        self.poll_lens()
    }

    /// Goes on with the lens started by `lens_start`: whether it is done.
    pub fn poll_lens(&mut self) -> Result<bool> {
        self.clear_pending();
        let Slot::Lensing(task) = &mut self.slot else {
            return Err(Failure::state("poll_lens: no lens is running"));
        };
        let Some((generator, lens)) = poll_once(task.as_mut()) else { return Ok(false) };
        self.slot = Slot::Ready(generator);
        self.lens = Some(lens?);
        Ok(true)
    }

    /// The last lens: per layer, `[[id, prob], ...]`.
    pub fn lens(&self) -> JsValue {
        let layers = js_sys::Array::new();
        for layer in self.lens.iter().flatten() {
            let top = js_sys::Array::new();
            for &(id, p) in layer {
                top.push(&js_sys::Array::of2(&id.into(), &(p as f64).into()));
            }
            layers.push(&top);
        }
        layers.into()
    }

    /// Ends the current generation; the next `generate_next` returns `undefined`.
    pub fn stop(&mut self) {
        match &mut self.slot {
            Slot::Ready(generator) => generator.stop(),
            Slot::Stepping(_) => self.stop_requested = true,
            _ => {}
        }
    }

    /// Token ids so far, in the golden-file format (first token, then every token fed back).
    pub fn token_ids(&self) -> Vec<u32> {
        match &self.slot {
            Slot::Ready(generator) => generator.ids().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Why the last generation ended ("bos", "eos", "steps", "context", "stopped"), or
    /// `undefined`.
    pub fn stop_reason(&self) -> Option<String> {
        self.stop_reason.map(|reason| reason.to_string())
    }

    /// Each token id's piece as `tokenizer.bin` has it (`" upon"`, `"<0x0A>"`), as text
    /// (invalid UTF-8 replaced): what an inspect view shows for an id.
    pub fn vocab(&self) -> Result<Vec<String>> {
        let Slot::Ready(generator) = &self.slot else {
            return Err(Failure::state("vocab: no model ready (or a step is running)"));
        };
        let tokenizer = generator.tokenizer();
        Ok((0..tokenizer.vocab_size() as u32)
            .map(|id| String::from_utf8_lossy(tokenizer.piece(id)).into_owned())
            .collect())
    }

    /// The seed of the current or last generation (the time when none was given), as a string
    /// (a u64 does not fit a JS number).
    pub fn seed(&self) -> Option<String> {
        match &self.slot {
            Slot::Ready(generator) => Some(generator.seed().to_string()),
            _ => None,
        }
    }

    /// Positions the KV cache holds (0 before `set_context`).
    pub fn context(&self) -> usize {
        self.model().map_or(0, Transformer::context)
    }

    /// Bytes used by this engine's model: its weights plus its run state (KV cache etc.).
    pub fn memory_bytes(&self) -> f64 {
        (match &self.slot {
            Slot::Loading(loader) => loader.memory_bytes(),
            Slot::Loaded(checkpoint) => checkpoint.memory_bytes(),
            _ => self.model().map_or(0, Transformer::memory_bytes),
        }) as f64
    }

    /// The loaded model's facts as a plain object: `{ name, format, dim, hidden_dim, n_layers,
    /// n_heads, n_kv_heads, vocab_size, seq_len, shared_classifier, params, file_size,
    /// context, kv_cache_bytes, memory_bytes }` (`kv_cache_bytes`: the whole model's, for
    /// `context` positions; `memory_bytes`: this engine's).
    pub fn config(&self) -> Result<JsValue> {
        let checkpoint = match &self.slot {
            Slot::Loaded(checkpoint) => checkpoint,
            _ => match self.model() {
                Some(model) => model.checkpoint(),
                None => return Err(Failure::state("config: no checkpoint loaded")),
            },
        };
        let c = checkpoint.config();
        let context = match self.context() {
            0 => c.seq_len,
            n => n,
        };
        let facts: [(&str, JsValue); 15] = [
            ("name", checkpoint.name().into()),
            ("format", checkpoint.format().to_string().into()),
            ("dim", c.dim.into()),
            ("hidden_dim", c.hidden_dim.into()),
            ("n_layers", c.n_layers.into()),
            ("n_heads", c.n_heads.into()),
            ("n_kv_heads", c.n_kv_heads.into()),
            ("vocab_size", c.vocab_size.into()),
            ("seq_len", c.seq_len.into()),
            ("shared_classifier", c.shared_classifier.into()),
            ("params", (c.n_params() as f64).into()),
            ("file_size", (checkpoint.file_size() as f64).into()),
            ("context", context.into()),
            ("kv_cache_bytes", (c.kv_cache_bytes(context) as f64).into()),
            ("memory_bytes", self.memory_bytes().into()),
        ];
        object(&facts)
    }

    /// What the shards must exchange before the engine can go on ([`PENDING`]): 0 nothing, 1
    /// a gather for everyone (send `outbox` to every shard, `inbox` each one's part), 2 a gather
    /// for the leader (only the leader receives), 3 the leader's command for the other shards
    /// (`command()`).
    pub fn pending(&self) -> u32 {
        let Some(mailbox) = &self.mailbox else { return 0 };
        match &mailbox.borrow().pending {
            None => 0,
            Some(Pending::Gather(To::Everyone)) => PENDING.gather_all,
            Some(Pending::Gather(To::Leader)) => PENDING.gather_leader,
            Some(Pending::Command(_)) => PENDING.command,
        }
    }

    /// Address in wasm memory of this shard's part of the pending gather (f32s).
    pub fn outbox_ptr(&self) -> usize {
        self.mailbox.as_ref().map_or(0, |m| m.borrow().outbox.as_ptr() as usize)
    }

    /// Number of f32s in this shard's part of the pending gather.
    pub fn outbox_len(&self) -> usize {
        self.mailbox.as_ref().map_or(0, |m| m.borrow().outbox.len())
    }

    /// Makes room for `len` f32s of shard `shard`'s part of the pending gather and returns
    /// their address in wasm memory, for JS to write them there.
    pub fn inbox(&mut self, shard: u32, len: u32) -> Result<usize> {
        let mailbox =
            self.mailbox.as_ref().ok_or_else(|| Failure::state("inbox: one shard only"))?;
        let mut m = mailbox.borrow_mut();
        let inbox = m
            .inboxes
            .get_mut(shard as usize)
            .ok_or_else(|| Failure::type_error(&format!("inbox: no shard {shard}")))?;
        inbox.clear();
        inbox.resize(len as usize, 0.0);
        Ok(inbox.as_ptr() as usize)
    }

    /// The leader's pending command (`[pos, flags, ...tokens]`, see `link::Command::encode`),
    /// for the other shards' `serve`.
    pub fn command(&self) -> Vec<u32> {
        let Some(mailbox) = &self.mailbox else { return Vec::new() };
        match &mailbox.borrow().pending {
            Some(Pending::Command(c)) => c.encode(),
            _ => Vec::new(),
        }
    }

    /// A shard other than the leader: starts the pass of the leader's `command()`. Returns
    /// whether it is done; else exchange what `pending()` says and call `poll()`.
    pub fn serve(&mut self, command: &[u32]) -> Result<bool> {
        let command = Command::decode(command)
            .ok_or_else(|| Failure::type_error("serve: a command is [pos, flags, ...tokens]"))?;
        let model = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Model(model) => model,
            other => {
                self.slot = other;
                return Err(Failure::state("serve: this shard has no model ready"));
            }
        };
        self.slot = Slot::Serving(Box::pin(async move {
            let mut model = model;
            let result = model.serve(&command).await;
            (model, result)
        }));
        self.poll()
    }

    /// Goes on with the pass started by `serve`: whether it is done.
    pub fn poll(&mut self) -> Result<bool> {
        let Slot::Serving(pass) = &mut self.slot else {
            return Err(Failure::state("poll: no pass is running"));
        };
        if let Some(m) = &self.mailbox {
            m.borrow_mut().pending = None;
        }
        let Some((model, result)) = poll_once(pass.as_mut()) else { return Ok(false) };
        self.slot = Slot::Model(model);
        result?;
        Ok(true)
    }
}

/// Rust-only helpers (not exported to JS).
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

    fn clear_pending(&self) {
        if let Some(m) = &self.mailbox {
            m.borrow_mut().pending = None;
        }
    }
}

/// A byte count or offset from JS: a non-negative integer number.
fn byte_count(value: f64, what: &str) -> Result<u64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(53) {
        Ok(value as u64)
    } else {
        Err(Failure::type_error(&format!("{what} {value} is not a byte count")))
    }
}

/// A plain JS object of `fields`.
fn object(fields: &[(&str, JsValue)]) -> Result<JsValue> {
    let object = js_sys::Object::new();
    for (key, value) in fields {
        Reflect::set(&object, &(*key).into(), value)
            .map_err(|_| Failure::state("cannot build the result object"))?;
    }
    Ok(object.into())
}

/// The generation options of a JS object (each optional; see [`Options`]).
fn read_options(value: &JsValue) -> Result<Options> {
    let mut options = Options::DEFAULT;
    if value.is_undefined() || value.is_null() {
        return Ok(options);
    }
    if !value.is_object() {
        return Err(Failure::type_error(&format!(
            "options must be an object, not {}",
            type_of(value)
        )));
    }
    let field = |key: &str| Reflect::get(value, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let number = |key: &str| -> Result<Option<f64>> {
        let v = field(key);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        v.as_f64().map(Some).ok_or_else(|| {
            Failure::type_error(&format!("options: {key} must be a number, not {}", type_of(&v)))
        })
    };
    if let Some(t) = number("temperature")? {
        options.temperature = t as f32;
    }
    if let Some(p) = number("topp")? {
        options.topp = p as f32;
    }
    // As run.c: below 1 (or NaN) means seq_len; anything past seq_len is seq_len too.
    if let Some(n) = number("steps")? {
        options.steps = if n >= 1.0 { n.min(u32::MAX as f64) as usize } else { 0 };
    }
    options.seed = seed(&field("seed"))?;
    Ok(options)
}

/// A seed from JS: a number (an integer), a BigInt or a string; negatives wrap to u64 as
/// run.c's `-s`; missing, 0 or empty = the time.
fn seed(v: &JsValue) -> Result<u64> {
    if v.is_undefined() || v.is_null() {
        return Ok(0);
    }
    if let Some(text) = v.as_string() {
        return Ok(parse_seed(&text)?);
    }
    if let Some(n) = v.as_f64() {
        if n.is_finite() && n.fract() == 0.0 && n.abs() < 2f64.powi(63) {
            return Ok(n as i64 as u64);
        }
        return Err(
            Error::Options(format!("seed {n} is not an integer (empty or 0 = the time)")).into()
        );
    }
    if v.is_bigint() {
        let wrapped = js_sys::BigInt::as_uint_n(64.0, &v.clone().unchecked_into());
        let text = wrapped.to_string(10).map(String::from).unwrap_or_default();
        return Ok(parse_seed(&text)?);
    }
    Err(Failure::type_error(&format!(
        "options: seed must be a number, BigInt or string, not {}",
        type_of(v)
    )))
}

/// The options' defaults, for the JavaScript API: run.c's `{ temperature, topp, steps }`, and
/// the inspection's `topK` (a pass's top tokens) and `lensK` (the logit lens's per layer).
#[wasm_bindgen]
pub fn defaults() -> Result<JsValue> {
    let d = Options::DEFAULT;
    object(&[
        ("temperature", (d.temperature as f64).into()),
        ("topp", (d.topp as f64).into()),
        ("steps", d.steps.into()),
        ("topK", InspectOptions::DEFAULT_TOP_K.into()),
        ("lensK", crate::inspect::DEFAULT_LENS_K.into()),
    ])
}

/// The codes of `Engine::pending`.
pub struct PendingCodes {
    pub gather_all: u32,
    pub gather_leader: u32,
    pub command: u32,
}

pub const PENDING: PendingCodes = PendingCodes { gather_all: 1, gather_leader: 2, command: 3 };

/// The engine's limits and codes that JavaScript sizes its buffers and checks by (one place:
/// here): `{ prefillBatch, commandWords, maxWorkers, headerBytes, pending: { gatherAll,
/// gatherLeader, command }, errorKinds, shardsLost }` (the last two: `Error::kind`'s names
/// and how a lost-workers message begins). A command to the other shards (`command()`) has at most
/// `commandWords` u32s; a gathered part at most `prefillBatch` rows. (transport.js and
/// llama2.js keep copies they need before an engine exists; a test checks they agree.)
#[wasm_bindgen]
pub fn limits() -> Result<JsValue> {
    let pending = object(&[
        ("gatherAll", PENDING.gather_all.into()),
        ("gatherLeader", PENDING.gather_leader.into()),
        ("command", PENDING.command.into()),
    ])?;
    object(&[
        ("prefillBatch", crate::model::PREFILL_BATCH.into()),
        ("commandWords", crate::model::COMMAND_WORDS.into()),
        ("maxWorkers", crate::shard::MAX_SHARDS.into()),
        ("headerBytes", crate::checkpoint::header::V1_HEADER_BYTES.into()),
        ("pending", pending),
        (
            "errorKinds",
            crate::error::KINDS.iter().map(|&k| JsValue::from(k)).collect::<js_sys::Array>().into(),
        ),
        ("shardsLost", crate::error::SHARDS_LOST.into()),
    ])
}

/// What one worker's wasm32 memory can address, and the part of it weights may take (the
/// rest: the KV cache, activations, the heap).
const WORKER_MEMORY: u64 = 4 << 30;
const WORKER_WEIGHTS: u64 = WORKER_MEMORY - (WORKER_MEMORY >> 3);

/// The fewest workers that can hold a checkpoint of `size` bytes.
#[wasm_bindgen]
pub fn min_workers(size: f64) -> Result<u32> {
    let size = byte_count(size, "checkpoint size")?;
    Ok(size.div_ceil(WORKER_WEIGHTS).clamp(1, crate::shard::MAX_SHARDS as u64) as u32)
}

/// Checks, before a download, that a checkpoint of `size` bytes can be held by `shards`
/// workers at all (each wasm32 memory addresses at most 4 GB).
#[wasm_bindgen]
pub fn check_checkpoint_size(size: f64, name: JsValue, shards: u32) -> Result<()> {
    let name = string(&name, "name", "checkpoint")?;
    let need = min_workers(size)?;
    if need > shards.max(1) {
        let held = if shards <= 1 { "one worker".to_string() } else { format!("{shards} workers") };
        return Err(Error::OutOfMemory(format!(
            "checkpoint '{name}': the checkpoint is {:.1} GB, more than {held} can hold (wasm32 \
             gives each worker at most 4 GB): load it over {need} or more workers",
            size / 1e9
        ))
        .into());
    }
    Ok(())
}

/// Checks a checkpoint's header (`prefix`, its first bytes) against the file's `size` and the
/// `context` asked for (0: as much as fits), before anything is freed or downloaded: a wrong
/// file or a context past its seq_len fails here, and the model already loaded stays.
#[wasm_bindgen]
pub fn check_header(prefix: &[u8], size: f64, name: JsValue, context: u32) -> Result<()> {
    let name = string(&name, "name", "checkpoint")?;
    let size = byte_count(size, "checkpoint size")?;
    let seq_len = Layout::read(prefix, size, &name)?.header.config.seq_len;
    if context as usize > seq_len {
        return Err(Error::Options(format!(
            "options: context {context} is more than checkpoint '{name}' has: its seq_len is \
             {seq_len}"
        ))
        .into());
    }
    Ok(())
}

/// The tiny model the warm-up runs: SPEC's shape conventions, weights of a simple pattern (any
/// ordinary values make the same code hot). Not `export::formula_checkpoint`, the weight
/// generator of the tools and tests: the checkpoint writer it needs costs the module 14 KB
/// (5 KB gzipped, measured 2026-12-07), and these 30 lines do.
fn warm_up_model(format: Format) -> crate::Result<Checkpoint> {
    let config: Config = check_config(&[64, 192, 2, 4, 2, 512, 64], true, "warm-up")?;
    let header = Header { config, format };
    let layout = Layout::new(header);
    let mut bytes = header.to_bytes();
    bytes.resize(layout.file_size as usize, 0);
    let mut i = 0u32;
    let mut next = || {
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        i >> 16
    };
    for entry in &layout.entries {
        let at = entry.offset as usize;
        let n = entry.values() as usize;
        if entry.tensor == Tensor::RopeTable {
            continue;
        }
        match entry.group_size {
            None => {
                for v in bytes[at..at + 4 * n].chunks_exact_mut(4) {
                    let w = (next() % 2001) as f32 / 20_000.0 - 0.05;
                    v.copy_from_slice(&w.to_le_bytes());
                }
            }
            Some(gs) => {
                for v in &mut bytes[at..at + n] {
                    *v = (next() % 255) as u8;
                }
                for s in bytes[at + n..at + n + 4 * (n / gs)].chunks_exact_mut(4) {
                    s.copy_from_slice(&(0.05f32 / 127.0).to_le_bytes());
                }
            }
        }
    }
    Checkpoint::from_bytes(&bytes, "warm-up")
}

/// Runs the hot code once on a tiny model (fp32 and int8, prefill, decode, top-p sampling),
/// so that the engine compiles it to optimized code now rather than during the user's first
/// generation. V8 first runs a function in its baseline tier and switches at the next call
/// once the optimized code is ready: the first prefill of a 110M model (a few long calls)
/// otherwise runs ~15 % slower, and a 15M model's 25 ms prefill takes 50 ms. Takes 40-70 ms
/// once per module instance; `rounds` 0 means 3 (enough in Node 20 and Chromium 156).
#[wasm_bindgen]
pub fn warm_up(rounds: u32) -> Result<()> {
    console_error_panic_hook::set_once();
    for format in [Format::V0, Format::V2 { group_size: 32 }] {
        let checkpoint = warm_up_model(format)?;
        let context = checkpoint.config().seq_len;
        let mut model = Transformer::new(checkpoint, context, Link::alone())?;
        let prompt: Vec<u32> = (0..24).map(|t| 3 + t * 17 % 500).collect();
        for _ in 0..if rounds == 0 { 3 } else { rounds.min(100) } {
            let mut sampler = Sampler::new(1.0, 0.9, 7);
            crate::link::block_on(model.prefill(&prompt, 0))?;
            for pos in prompt.len()..context {
                let logits = crate::link::block_on(model.forward(&[1], pos, true))?;
                sampler.sample(logits);
            }
        }
    }
    Ok(())
}

/// `encode(text, bos, eos)` with a `tokenizer.bin` of `vocab_size` tokens, without a model
/// (golden tokenizer cases, tools). The engine encodes its prompts itself.
#[wasm_bindgen]
pub fn encode(
    tokenizer: &[u8],
    vocab_size: u32,
    text: JsValue,
    bos: bool,
    eos: bool,
) -> Result<Vec<u32>> {
    console_error_panic_hook::set_once();
    let text = string(&text, "text", "")?;
    let tokenizer = Tokenizer::from_bytes(tokenizer, vocab_size as usize, "tokenizer")?;
    Ok(tokenizer.encode(text.as_bytes(), bos, eos)?)
}
