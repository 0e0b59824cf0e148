//! Step-wise generation: `start` a prompt (or a chat), then `next` gives one text piece per
//! token, so a caller (a terminal loop, a Web Worker) can stop between any two tokens.
//! The order of forward passes, samples and RNG draws is run.c's `generate` and `chat`.
//!
//! The options' defaults and how out-of-range values are treated live here, once: the CLI,
//! the wasm engine and through it the JavaScript API all take them from [`Options`].

use std::fmt;

use crate::checkpoint::Checkpoint;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::inspect::{self, Ablation, InspectOptions, Inspection, LensMap, Trace};
use crate::link::{self, Link, Look};
use crate::model::Transformer;
use crate::sampler::Sampler;
use crate::tokenizer::{Tokenizer, Utf8Stream, BOS, EOS};

/// Sampling options. [`Options::DEFAULT`] are run.c's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// 0 = greedy (argmax). Negative is clamped to 0 as run.c does; NaN is refused.
    pub temperature: f32,
    /// Top-p; outside [0, 1] becomes 0.9 as in run.c; 0 or 1 samples the full distribution.
    pub topp: f32,
    /// The xorshift64* state; 0 = the time (as run.c), see [`Generator::seed`].
    pub seed: u64,
    /// Number of positions to run (prompt included); 0 or more than seq_len = seq_len.
    pub steps: usize,
}

impl Options {
    /// run.c's defaults: `-t 1.0 -p 0.9 -n 256`, seed from the time.
    pub const DEFAULT: Options = Options { temperature: 1.0, topp: 0.9, seed: 0, steps: 256 };

    /// The options as run.c applies them: NaN is refused (nonsense), a negative temperature
    /// becomes 0, a top-p outside [0, 1] becomes 0.9, seed 0 becomes the time.
    fn checked(self) -> Result<Options> {
        let Options { mut temperature, mut topp, mut seed, steps } = self;
        if temperature.is_nan() {
            return Err(Error::Options("temperature is NaN".into()));
        }
        if topp.is_nan() {
            return Err(Error::Options("top-p is NaN".into()));
        }
        if temperature < 0.0 {
            temperature = 0.0;
        }
        if !(0.0..=1.0).contains(&topp) {
            topp = 0.9;
        }
        if seed == 0 {
            seed = time_seed();
        }
        Ok(Options { temperature, topp, seed, steps })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::DEFAULT
    }
}

/// A seed written as text (`-s`, the page's field): an integer, negatives wrapping to u64 as
/// run.c's `atoi` into its unsigned state does (`-5` is 2^64 - 5); empty means 0 (the time).
pub fn parse_seed(text: &str) -> Result<u64> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    t.parse::<i64>().map(|v| v as u64).or_else(|_| t.parse::<u64>()).map_err(|_| {
        Error::Options(format!("seed '{text}' is not an integer (empty or 0 = the time)"))
    })
}

/// The seed run.c takes when given none: the time (milliseconds here, seconds in run.c).
fn time_seed() -> u64 {
    #[cfg(target_arch = "wasm32")]
    let now = js_sys::Date::now() as u64;
    #[cfg(not(target_arch = "wasm32"))]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    now.max(1)
}

/// What one call to [`Generator::next`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The text this token completed (empty while a UTF-8 sequence is incomplete).
    Piece(String),
    /// Generation is over; further calls repeat this.
    Done(StopReason),
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model sampled BOS (`<s>`): the story is over.
    Bos,
    /// Chat: the assistant's turn ended with EOS (`</s>`); `chat_turn` continues.
    Eos,
    /// The step limit asked for was reached.
    StepLimit,
    /// The context was full: the model's `seq_len` (or the smaller KV cache it was given).
    Context,
    /// [`Generator::stop`] was called.
    Stopped,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Bos => "bos",
            StopReason::Eos => "eos",
            StopReason::StepLimit => "steps",
            StopReason::Context => "context",
            StopReason::Stopped => "stopped",
        })
    }
}

/// Where the generator is between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing started, or finished: `next` repeats the reason.
    Done(StopReason),
    /// run.c's `generate`: prompt tokens are fed, then samples.
    Generate,
    /// run.c's `chat`: every position is sampled; the turn ends at EOS.
    Chat,
    /// Chat: the assistant's turn ended; waiting for `chat_turn`.
    AwaitingUser,
}

/// The engine: a model, its tokenizer, and the state of the current generation.
pub struct Generator {
    model: Transformer,
    tokenizer: Tokenizer,
    sampler: Sampler,
    phase: Phase,
    /// Positions this generation may run, and why it ends there.
    end: usize,
    end_reason: StopReason,
    /// The seed in use (the time when 0 was asked for).
    seed: u64,
    /// Position of the next forward pass.
    pos: usize,
    /// The token the next forward pass runs (generate mode).
    token: u32,
    /// The sampled token that follows `token` (chat mode).
    next: u32,
    /// The current turn's prompt tokens and how many of them have been fed.
    prompt: Vec<u32>,
    fed: usize,
    /// Generate mode: positions below this are already in the KV cache (batched prefill).
    prefilled: usize,
    /// Golden-file ids: the first token, then every token fed back.
    ids: Vec<u32>,
    text: Utf8Stream,
    /// The options of the current generation, as applied (a branch resamples with them).
    options: Options,
    /// What each pass captures, and the last pass's capture.
    inspecting: Option<InspectOptions>,
    last: Option<Inspection>,
}

impl Generator {
    /// The whole model of `checkpoint`, with a KV cache for its full context.
    pub fn new(checkpoint: Checkpoint, tokenizer: Tokenizer) -> Result<Generator> {
        let context = checkpoint.config().seq_len;
        Generator::with_model(Transformer::new(checkpoint, context, Link::alone())?, tokenizer)
    }

    /// The engine around `model` (whole, or the leader of its shards); the tokenizer must
    /// have the checkpoint's vocabulary size.
    pub fn with_model(model: Transformer, tokenizer: Tokenizer) -> Result<Generator> {
        let vocab = model.config().vocab_size;
        if tokenizer.vocab_size() != vocab {
            return Err(Error::State(format!(
                "the tokenizer has {} tokens but checkpoint '{}' has vocab_size {vocab}",
                tokenizer.vocab_size(),
                model.checkpoint().name()
            )));
        }
        Ok(Generator {
            model,
            tokenizer,
            sampler: Sampler::new(0.0, 0.9, 0),
            phase: Phase::Done(StopReason::Stopped),
            end: 0,
            end_reason: StopReason::StepLimit,
            seed: 0,
            pos: 0,
            token: BOS,
            next: BOS,
            prompt: Vec::new(),
            fed: 0,
            prefilled: 0,
            ids: Vec::new(),
            text: Utf8Stream::new(),
            options: Options::DEFAULT,
            inspecting: None,
            last: None,
        })
    }

    pub fn config(&self) -> &Config {
        self.model.config()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        self.model.checkpoint()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn model(&self) -> &Transformer {
        &self.model
    }

    /// Positions this generation (or chat) can still run before its step limit or context.
    pub fn positions_left(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// The seed of the current (or last) generation: the time when 0 was asked for.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The options of the current (or last) generation as they were applied (run.c's rules:
    /// a negative temperature 0, a top-p outside [0, 1] 0.9, steps 0 or past seq_len seq_len,
    /// seed 0 the time): what a reader should be shown as used.
    pub fn options(&self) -> Options {
        self.options
    }

    /// Bytes held by the model: checkpoint buffer plus run state (KV cache and activations).
    pub fn memory_bytes(&self) -> usize {
        self.model.memory_bytes()
    }

    /// Golden-file ids so far: the prompt's first token, then every token fed back
    /// (including a final sampled BOS).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Gives back the model and tokenizer, e.g. to free or reuse them.
    pub fn into_parts(self) -> (Transformer, Tokenizer) {
        (self.model, self.tokenizer)
    }

    /// Starts run.c's `generate`: `prompt` (may be empty) is encoded with BOS and fed, then
    /// tokens are sampled until BOS or the step limit.
    pub fn start(&mut self, prompt: &str, options: &Options) -> Result<()> {
        let prompt = self.encode_turn(prompt.as_bytes(), 0)?;
        self.start_tokens(&prompt, options)
    }

    /// [`Generator::start`] from token ids instead of text (the first one is fed first; run.c
    /// begins with BOS).
    pub fn start_tokens(&mut self, tokens: &[u32], options: &Options) -> Result<()> {
        let vocab = self.config().vocab_size;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::Prompt(format!(
                "token {bad} is not in the {vocab}-token vocabulary"
            )));
        }
        if tokens.is_empty() || tokens.len() > self.model.context() {
            return Err(Error::Prompt(format!(
                "{} tokens: a prompt has 1 to {} (the model's context)",
                tokens.len(),
                self.model.context()
            )));
        }
        self.reset(options)?;
        self.token = tokens[0];
        self.ids.push(self.token);
        self.prompt = tokens.to_vec();
        self.phase = Phase::Generate;
        Ok(())
    }

    /// From now on, each forward pass with logits captures what `options` asks
    /// ([`Generator::inspection`]); `None` turns it off. While on, a prompt's positions run
    /// one by one (each gets its logits), and the ids are the same as without.
    pub fn inspect(&mut self, options: Option<InspectOptions>) {
        self.inspecting = options;
        self.last = None;
    }

    /// What the last forward pass captured (see [`Generator::inspect`]).
    pub fn inspection(&self) -> Option<&Inspection> {
        self.last.as_ref()
    }

    /// Continues the story (generate mode) from position `pos` with `token` fed there instead
    /// of what was: the KV cache below `pos` is kept (no pass over the prefix), the ids after
    /// are dropped, and sampling starts again from the generation's seed, so that the ids are
    /// those of a generation started from `ids[..pos]` + `token`. Returns the text of `token`
    /// (after `ids[pos - 1]`, as the story's text would have it; empty while it is part of a
    /// character that the next tokens complete).
    pub fn branch(&mut self, pos: usize, token: u32) -> Result<String> {
        let vocab = self.config().vocab_size;
        if self.ids.is_empty() || matches!(self.phase, Phase::Chat | Phase::AwaitingUser) {
            return Err(Error::State(
                "branch: generate a story first (chats cannot branch)".into(),
            ));
        }
        if pos >= self.ids.len() {
            return Err(Error::Options(format!(
                "branch: position {pos} is past the story's {} tokens",
                self.ids.len()
            )));
        }
        if token as usize >= vocab {
            return Err(Error::Options(format!(
                "branch: token {token} is not in the {vocab}-token vocabulary"
            )));
        }
        let Options { temperature, topp, .. } = self.options;
        self.ids.truncate(pos);
        self.ids.push(token);
        self.prompt = self.ids.clone();
        self.prefilled = pos;
        self.pos = pos;
        self.token = token;
        self.sampler = Sampler::new(temperature, topp, self.seed);
        self.text = Utf8Stream::new();
        self.last = None;
        self.phase = Phase::Generate;
        let prev = if pos == 0 { BOS } else { self.ids[pos - 1] };
        Ok(self.text.push(&self.tokenizer.decode(prev, token)))
    }

    /// The logit lens at position `pos` (already run): the `k` most probable tokens of the
    /// classifier applied to the residual stream after each layer, per layer. The pass at
    /// `pos` is run again to see it (it writes the same KV cache entries again).
    pub async fn lens(&mut self, pos: usize, k: usize) -> Result<Vec<Vec<(u32, f32)>>> {
        let k = inspect::lens_k(k)?;
        let Some(&token) = self.ids.get(pos) else {
            return Err(Error::Options(format!("lens: position {pos} has not run")));
        };
        let look = Look { lens: true, ..Look::NOTHING };
        self.model.forward_look(&[token], pos, false, look).await?;
        Ok(inspect::lens_top(self.model.lens_seen(), self.config().vocab_size, k))
    }

    /// The logit lens at every position of the story that gave a next token, summed up
    /// ([`LensMap`]): each pass is run again to see it (writing the same KV cache entries
    /// again), so the story stays where it is. `pin`: a token id whose probability to map.
    pub async fn lens_map(&mut self, pin: Option<u32>) -> Result<LensMap> {
        let vocab = self.config().vocab_size;
        if let Some(id) = pin.filter(|&id| id as usize >= vocab) {
            return Err(Error::Options(format!(
                "lens map: token {id} is not in the vocabulary of {vocab}"
            )));
        }
        if self.ids.len() < 2 {
            return Err(Error::Options("lens map: no story has run".into()));
        }
        let (layers, positions) = (self.config().n_layers, self.ids.len() - 1);
        let size = layers * positions;
        let mut map = LensMap {
            layers,
            positions,
            pin,
            entropy: vec![0.0; size],
            kl: vec![0.0; size],
            ..LensMap::default()
        };
        if pin.is_some() {
            map.pinned = vec![0.0; size];
        }
        let look = Look { lens: true, ..Look::NOTHING };
        for pos in 0..positions {
            self.model.forward_look(&[self.ids[pos]], pos, false, look).await?;
            for (l, (entropy, kl, pinned)) in
                inspect::lens_stats(self.model.lens_seen(), vocab, pin).into_iter().enumerate()
            {
                let at = l * positions + pos;
                (map.entropy[at], map.kl[at]) = (entropy, kl);
                if pin.is_some() {
                    map.pinned[at] = pinned;
                }
            }
        }
        Ok(map)
    }

    /// Every intermediate vector of the pass at position `pos` (already run), as the story
    /// ran it: the pass is run again to see it (it writes the same KV cache entries again).
    pub async fn trace(&mut self, pos: usize) -> Result<Trace> {
        // A pass at `pos` fed ids[pos] and gave ids[pos + 1]: the last id was never fed.
        let (Some(&token), true) = (self.ids.get(pos), pos + 1 < self.ids.len()) else {
            return Err(Error::Options(format!("trace: position {pos} has not run")));
        };
        let look = Look { attention: true, trace: true, ..Look::NOTHING };
        self.model.forward_look(&[token], pos, true, look).await?;
        let trace = self.model.trace_seen(pos, token);
        Ok(Trace { id: self.ids[pos + 1], prompt: pos + 1 < self.prompt.len(), ..trace })
    }

    /// Switches off what `ablation` says (heads, attention or feed-forward blocks) from the
    /// next pass on; [`Ablation::NONE`] puts the model back. On a model split over shards,
    /// each shard must be given the same (the native tools do it at load).
    pub fn ablate(&mut self, ablation: Ablation) {
        self.model.set_ablation(ablation);
    }

    /// Starts run.c's `chat`: the first turn with an optional system prompt, in Llama 2's
    /// `[INST] <<SYS>> ... [/INST]` template. `next` gives the assistant's reply until EOS.
    /// As run.c, a turn is not refused for its length: its tokens are fed until the step limit
    /// or the context ends the chat (`next` then says why).
    pub fn start_chat(&mut self, system: &str, user: &str, options: &Options) -> Result<()> {
        let rendered = if system.is_empty() {
            format!("[INST] {user} [/INST]")
        } else {
            format!("[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]")
        };
        let prompt = self.tokenizer.encode(rendered.as_bytes(), true, false)?;
        self.reset(options)?;
        self.prompt = prompt;
        self.phase = Phase::Chat;
        Ok(())
    }

    /// Continues a chat after the assistant's turn ended (`StopReason::Eos`).
    pub fn chat_turn(&mut self, user: &str) -> Result<()> {
        if self.phase != Phase::AwaitingUser {
            return Err(Error::State("chat_turn: no chat is waiting for the user".into()));
        }
        let rendered = format!("[INST] {user} [/INST]");
        self.prompt = self.tokenizer.encode(rendered.as_bytes(), true, false)?;
        self.fed = 0;
        self.phase = Phase::Chat;
        Ok(())
    }

    /// Ends the current generation; `next` then gives `Done(Stopped)`. A chat waiting for the
    /// user's next turn is not running: it stays, and `chat_turn` can continue it.
    pub fn stop(&mut self) {
        if matches!(self.phase, Phase::Generate | Phase::Chat) {
            self.text = Utf8Stream::new();
            self.phase = Phase::Done(StopReason::Stopped);
        }
    }

    /// Runs one position and returns its text, or `Done` once generation is over.
    // Not an Iterator: each step can fail, and `Done` repeats rather than ending a sequence.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Step> {
        link::block_on(self.step())
    }

    /// [`Generator::next`] for a model whose shards are driven from outside (the browser):
    /// the future waits wherever the shards meet.
    pub async fn step(&mut self) -> Result<Step> {
        let step = match self.phase {
            Phase::Done(reason) => return Ok(Step::Done(reason)),
            Phase::AwaitingUser => return Ok(Step::Done(StopReason::Eos)),
            _ if self.pos >= self.end => return Ok(self.finish(self.end_reason)),
            Phase::Generate => self.generate_step().await,
            Phase::Chat => self.chat_step().await,
        };
        if step.is_err() {
            // The shards no longer agree on where they are: this generation is over.
            self.phase = Phase::Done(StopReason::Stopped);
        }
        step
    }

    /// One iteration of run.c's `generate` loop.
    /// Prompt positions whose logits run.c computes but never reads go through the model in
    /// one batch on the first call (prefill); their pieces then come one per call as before.
    async fn generate_step(&mut self) -> Result<Step> {
        let next = if let Some(options) = self.inspecting {
            // Every position runs on its own, with its logits, to be seen.
            let forced = self.prompt.get(self.pos + 1).copied();
            let next = self.inspected_pass(self.token, forced, options).await?;
            self.prefilled = self.prefilled.max(self.pos + 1);
            next
        } else if self.pos + 1 < self.prompt.len() {
            if self.pos >= self.prefilled {
                let end = (self.prompt.len() - 1).min(self.end);
                self.model.prefill(&self.prompt[self.pos..end], self.pos).await?;
                self.prefilled = end;
            }
            self.prompt[self.pos + 1]
        } else {
            let logits = self.model.forward(&[self.token], self.pos, true).await?;
            self.sampler.sample(logits)
        };
        self.pos += 1;
        self.ids.push(next);
        if next == BOS {
            return Ok(self.finish(StopReason::Bos));
        }
        let piece = self.tokenizer.decode(self.token, next);
        self.token = next;
        Ok(Step::Piece(self.text.push(&piece)))
    }

    /// A forward pass of `token` at `self.pos` that records what it shows; returns `forced` (a
    /// prompt's next token) or else the sampled one.
    async fn inspected_pass(
        &mut self,
        token: u32,
        forced: Option<u32>,
        options: InspectOptions,
    ) -> Result<u32> {
        let look = Look { attention: options.attention(), ..Look::NOTHING };
        let logits = self.model.forward_look(&[token], self.pos, true, look).await?;
        let probs = inspect::probabilities(logits);
        let next = match forced {
            Some(next) => next,
            None => self.sampler.sample(logits),
        };
        let attention =
            if options.attention() { self.model.attention_seen().to_vec() } else { Vec::new() };
        self.last = Some(Inspection {
            pos: self.pos,
            token,
            id: next,
            prompt: forced.is_some(),
            top: inspect::top(&probs, options.top_k()),
            prob: probs[next as usize],
            rank: inspect::rank(&probs, next),
            attention,
        });
        Ok(next)
    }

    /// One iteration of run.c's `chat` loop: feed a prompt token or the last sample, sample
    /// (every position, prompt included, as run.c does), print once the prompt is consumed.
    async fn chat_step(&mut self) -> Result<Step> {
        let token = if self.fed < self.prompt.len() {
            self.fed += 1;
            self.prompt[self.fed - 1]
        } else {
            self.next
        };
        self.ids.push(token);
        self.next = match self.inspecting {
            Some(options) => self.inspected_pass(token, None, options).await?,
            None => {
                let logits = self.model.forward(&[token], self.pos, true).await?;
                self.sampler.sample(logits)
            }
        };
        self.pos += 1;
        // run.c feeds the EOS that ended the reply, prints what follows it, then asks the user.
        if token == EOS {
            self.phase = Phase::AwaitingUser;
        }
        let mut out = String::new();
        if self.fed >= self.prompt.len() && self.next != EOS {
            out = self.text.push(&self.tokenizer.decode(token, self.next));
        }
        if self.next == EOS {
            out.push_str(&self.text.finish());
            out.push('\n');
        }
        Ok(Step::Piece(out))
    }

    /// Ends generation with `reason`, flushing a held-back incomplete character.
    fn finish(&mut self, reason: StopReason) -> Step {
        self.phase = Phase::Done(reason);
        let rest = self.text.finish();
        if rest.is_empty() {
            Step::Done(reason)
        } else {
            Step::Piece(rest)
        }
    }

    /// Checks the options and resets everything for a new generation.
    fn reset(&mut self, options: &Options) -> Result<()> {
        let Options { temperature, topp, seed, steps } = options.checked()?;
        // run.c: 0 or more than seq_len = seq_len. Then the KV cache may hold fewer.
        let (seq_len, context) = (self.config().seq_len, self.model.context());
        let steps = if steps == 0 || steps > seq_len { seq_len } else { steps };
        (self.end, self.end_reason) =
            if steps > context || options.steps == 0 || options.steps >= seq_len {
                (steps.min(context), StopReason::Context)
            } else {
                (steps, StopReason::StepLimit)
            };
        self.seed = seed;
        self.options = Options { temperature, topp, seed, steps };
        self.last = None;
        self.sampler = Sampler::new(temperature, topp, seed);
        self.pos = 0;
        self.fed = 0;
        self.prefilled = 0;
        self.next = BOS;
        self.ids.clear();
        self.text = Utf8Stream::new();
        Ok(())
    }

    /// Encodes a turn with BOS and checks it fits in the context after position `pos`.
    fn encode_turn(&self, text: &[u8], pos: usize) -> Result<Vec<u32>> {
        let (seq_len, context) = (self.config().seq_len, self.model.context());
        let room = context - pos.min(context);
        let of = if context < seq_len {
            format!("context ({context} of its seq_len {seq_len})")
        } else {
            format!("context (seq_len {seq_len})")
        };
        if self.tokenizer.min_tokens(text) > room {
            return Err(Error::Prompt(format!(
                "{} bytes make more tokens than the {room} positions left of the model's {of}; \
                 shorten the prompt",
                text.len()
            )));
        }
        let tokens = self.tokenizer.encode(text, true, false)?;
        if tokens.len() > room {
            return Err(Error::Prompt(format!(
                "{} tokens do not fit in the {room} positions left of the model's {of}; shorten \
                 the prompt",
                tokens.len(),
            )));
        }
        Ok(tokens)
    }
}

/// run.c's `chat()` as it appears in a terminal (`llama2 -m chat`): "Enter system prompt
/// (optional): " when no system prompt is given, "User: " before each turn read from `input`
/// (the first may be given), "Assistant: " before each reply, the replies streamed to
/// `output`, and a final newline when the steps run out. When `input` has no more lines, the
/// last one is sent again, as run.c's `read_stdin` leaves its buffer unchanged at the end of
/// its input; so a chat always ends with its steps.
pub fn terminal_chat(
    generator: &mut Generator,
    system: Option<&str>,
    first_user: Option<&str>,
    options: &Options,
    input: &mut dyn FnMut() -> Option<String>,
    output: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<()> {
    let mut last_line = String::new();
    let mut ask = |prompt: &str, output: &mut dyn FnMut(&str) -> Result<()>| -> Result<String> {
        output(prompt)?;
        if let Some(line) = input() {
            last_line = line;
        }
        Ok(last_line.clone())
    };
    let system = match system {
        Some(system) => system.to_string(),
        None => ask("Enter system prompt (optional): ", output)?,
    };
    let first = match first_user {
        Some(user) => user.to_string(),
        None => ask("User: ", output)?,
    };
    generator.start_chat(&system, &first, options)?;
    loop {
        output("Assistant: ")?;
        loop {
            match generator.next()? {
                Step::Piece(piece) => output(&piece)?,
                Step::Done(StopReason::Eos) => break,
                Step::Done(_) => return output("\n"),
            }
        }
        if generator.positions_left() == 0 {
            return output("\n");
        }
        let user = ask("User: ", output)?;
        generator.chat_turn(&user)?;
    }
}
