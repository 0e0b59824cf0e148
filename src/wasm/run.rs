//! Generating: a story or a chat, one token per `generate_next()`, and what the engine says
//! about itself (its ids, stop reason, vocabulary, seed, memory, configuration).

use wasm_bindgen::prelude::*;

use super::args::*;
use super::*;

#[wasm_bindgen]
impl Engine {
    /// Whether a model and its tokenizer are loaded (the leader).
    pub fn is_ready(&self) -> bool {
        matches!(self.slot, Slot::Ready(_) | Slot::Stepping(_))
    }

    /// Starts a generation (ending any running one). `options`: `{ temperature, topp, seed,
    /// steps, ablate }`, each optional (run.c's defaults, see `defaults()`); `seed` a number,
    /// BigInt or string (0 or empty = the time); `ablate` what to switch off (`--ablate`).
    pub fn start(&mut self, prompt: JsValue, options: JsValue) -> Result<()> {
        let prompt = string(&prompt, "prompt", "")?;
        let ablation = self.ablation(&options)?;
        let options = read_options(&options)?;
        self.stop_reason = None;
        let generator = self.generator()?;
        generator.ablate(ablation);
        generator.start(&prompt, &options)?;
        Ok(())
    }

    /// Starts a chat (run.c's `-m chat`): the first user turn, with an optional system prompt.
    pub fn start_chat(&mut self, system: JsValue, user: JsValue, options: JsValue) -> Result<()> {
        let system = string(&system, "system", "")?;
        let user = string(&user, "user message", "")?;
        let ablation = self.ablation(&options)?;
        let options = read_options(&options)?;
        self.stop_reason = None;
        let generator = self.generator()?;
        generator.ablate(ablation);
        generator.start_chat(&system, &user, &options)?;
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

    /// The options of the current or last generation as applied (`Generator::options`):
    /// `{ temperature, topp, steps, seed }`, the seed a string; undefined before any.
    pub fn options_used(&self) -> Result<JsValue> {
        let Slot::Ready(generator) = &self.slot else { return Ok(JsValue::UNDEFINED) };
        let o = generator.options();
        object(&[
            ("temperature", (o.temperature as f64).into()),
            ("topp", (o.topp as f64).into()),
            ("steps", o.steps.into()),
            ("seed", o.seed.to_string().into()),
        ])
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
}
