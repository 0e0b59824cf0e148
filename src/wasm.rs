//! The only file that knows JavaScript: the `#[wasm_bindgen]` [`Engine`] that `www/llama2.js`
//! drives from a Web Worker (or Node).
//!
//! Loading is done in place, so the weights exist once, in wasm linear memory:
//! 1. `alloc_checkpoint(size)` reserves a zeroed buffer of the file's size (freeing any model
//!    loaded before, so reloading does not grow memory);
//! 2. JS writes the fetched chunks straight into
//!    `new Uint8Array(memory.buffer, checkpoint_ptr(), checkpoint_len())` (re-creating the view
//!    whenever memory may have grown, since growth detaches old views);
//! 3. `load_checkpoint(name)` parses and validates it (weights become views into the buffer);
//! 4. `load_tokenizer(bytes, name)` reads the tokenizer (its vocabulary size comes from the
//!    checkpoint) and allocates the run state.
//!
//! Then `start(...)` and `generate_next()` until it returns `undefined`. One call = one token,
//! so a stop request from JS gets through between tokens. Every error is a `JsError` carrying
//! the core's message; nothing here unwraps.

use wasm_bindgen::prelude::*;

use crate::export::{self, Formula};
use crate::{
    Checkpoint, Format, Generator, Options, Sampler, Step, StopReason, Tokenizer, Transformer,
    WeightBuffer,
};

/// Where the engine is in its life: each state owns exactly what it needs, so the one
/// checkpoint buffer moves from state to state instead of being copied.
#[allow(clippy::large_enum_variant)] // one Engine per page: a few hundred bytes do not matter
enum Slot {
    Empty,
    /// `alloc_checkpoint` done; JS is writing the file into the buffer.
    Filling(WeightBuffer),
    /// The checkpoint is parsed and waits for its tokenizer.
    Parsed(Checkpoint),
    /// Ready to generate.
    Ready(Generator),
}

/// A llama2.c model living in wasm memory, generating one token per call.
#[wasm_bindgen]
pub struct Engine {
    slot: Slot,
    /// Why the last generation ended (`None` while one runs or before the first).
    stop_reason: Option<StopReason>,
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
        Engine { slot: Slot::Empty, stop_reason: None }
    }

    /// Frees the loaded model (if any), then reserves `size` zeroed bytes for a checkpoint file.
    /// `size` is a JS number, checked here: wasm32 addresses at most 4 GB, and a number that
    /// large must fail with a message rather than wrap around.
    pub fn alloc_checkpoint(&mut self, size: f64) -> Result<(), JsError> {
        self.slot = Slot::Empty; // free first: the allocator then reuses the old block
        self.stop_reason = None;
        if !(size.is_finite() && size >= 0.0 && size.fract() == 0.0) {
            return Err(JsError::new(&format!("checkpoint size {size} is not a byte count")));
        }
        if size > u32::MAX as f64 {
            return Err(JsError::new(&format!(
                "out of memory: the checkpoint is {:.1} GB, more than the 4 GB a wasm32 page can address",
                size / 1e9
            )));
        }
        let buffer = WeightBuffer::new(size as usize)?;
        self.slot = Slot::Filling(buffer);
        Ok(())
    }

    /// Address in wasm memory of the buffer reserved by `alloc_checkpoint`.
    pub fn checkpoint_ptr(&mut self) -> Result<usize, JsError> {
        Ok(self.filling()?.as_bytes_mut().as_mut_ptr() as usize)
    }

    /// Length in bytes of the buffer reserved by `alloc_checkpoint`.
    pub fn checkpoint_len(&mut self) -> Result<usize, JsError> {
        Ok(self.filling()?.len())
    }

    /// Parses the filled buffer as a checkpoint named `name` (the name appears in errors).
    /// On failure the buffer is freed and the engine is empty.
    pub fn load_checkpoint(&mut self, name: &str) -> Result<(), JsError> {
        let buffer = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Filling(buffer) => buffer,
            _ => {
                return Err(JsError::new(
                    "load_checkpoint: call alloc_checkpoint and fill it first",
                ))
            }
        };
        self.slot = Slot::Parsed(Checkpoint::from_buffer(buffer, name)?);
        Ok(())
    }

    /// Reads a `tokenizer.bin` for the loaded checkpoint and makes the engine ready.
    /// With a model already ready, replaces its tokenizer (the weights stay).
    /// On a bad tokenizer the checkpoint stays loaded, so another tokenizer can be tried.
    pub fn load_tokenizer(&mut self, bytes: &[u8], name: &str) -> Result<(), JsError> {
        let checkpoint = match std::mem::replace(&mut self.slot, Slot::Empty) {
            Slot::Parsed(checkpoint) => checkpoint,
            Slot::Ready(generator) => generator.into_parts().0,
            other => {
                self.slot = other;
                return Err(JsError::new("load_tokenizer: load a checkpoint first"));
            }
        };
        let tokenizer = match Tokenizer::from_bytes(bytes, checkpoint.config().vocab_size, name) {
            Ok(tokenizer) => tokenizer,
            Err(err) => {
                self.slot = Slot::Parsed(checkpoint);
                return Err(err.into());
            }
        };
        self.slot = Slot::Ready(Generator::new(checkpoint, tokenizer)?);
        self.stop_reason = None;
        Ok(())
    }

    /// Whether a model and tokenizer are loaded.
    pub fn is_ready(&self) -> bool {
        matches!(self.slot, Slot::Ready(_))
    }

    /// Starts a generation (ending any running one). `seed` is a BigInt: the full u64 state of
    /// the xorshift RNG, as run.c's `-s`. `steps` 0 or above `seq_len` means `seq_len`.
    pub fn start(
        &mut self,
        prompt: &str,
        temperature: f32,
        topp: f32,
        seed: u64,
        steps: u32,
    ) -> Result<(), JsError> {
        let options = Options { temperature, topp, seed, steps: steps as usize };
        self.stop_reason = None;
        self.generator()?.start(prompt, &options)?;
        Ok(())
    }

    /// The next piece of text (possibly `""` while a multi-byte character is incomplete), or
    /// `undefined` when the generation is over (see `stop_reason`).
    pub fn generate_next(&mut self) -> Result<Option<String>, JsError> {
        match self.generator()?.next()? {
            Step::Piece(piece) => Ok(Some(piece)),
            Step::Done(reason) => {
                self.stop_reason = Some(reason);
                Ok(None)
            }
        }
    }

    /// Ends the current generation; the next `generate_next` returns `undefined`.
    pub fn stop(&mut self) {
        if let Slot::Ready(generator) = &mut self.slot {
            generator.stop();
        }
    }

    /// Token ids so far, in the golden-file format (first token, then every token fed back).
    pub fn token_ids(&self) -> Vec<u32> {
        match &self.slot {
            Slot::Ready(generator) => generator.ids().to_vec(),
            _ => Vec::new(),
        }
    }

    /// Why the last generation ended ("bos", "eos", "steps", "stopped", ...), or `undefined`.
    pub fn stop_reason(&self) -> Option<String> {
        self.stop_reason.map(|reason| reason.to_string())
    }

    /// Bytes used by the model: the weights buffer plus the run state (KV cache etc.).
    pub fn memory_bytes(&self) -> usize {
        match &self.slot {
            Slot::Empty => 0,
            Slot::Filling(buffer) => buffer.len(),
            Slot::Parsed(checkpoint) => checkpoint.file_size(),
            Slot::Ready(generator) => generator.memory_bytes(),
        }
    }

    /// The loaded model's facts as a plain object: `{ name, format, dim, hidden_dim, n_layers,
    /// n_heads, n_kv_heads, vocab_size, seq_len, shared_classifier, params, file_size,
    /// kv_cache_bytes, memory_bytes }`.
    pub fn config(&self) -> Result<JsValue, JsError> {
        let checkpoint = match &self.slot {
            Slot::Parsed(checkpoint) => checkpoint,
            Slot::Ready(generator) => generator.checkpoint(),
            _ => return Err(JsError::new("config: no checkpoint loaded")),
        };
        let c = checkpoint.config();
        let object = js_sys::Object::new();
        let set = |key: &str, value: JsValue| js_sys::Reflect::set(&object, &key.into(), &value);
        set("name", checkpoint.name().into())
            .and(set("format", checkpoint.format().to_string().into()))
            .and(set("dim", c.dim.into()))
            .and(set("hidden_dim", c.hidden_dim.into()))
            .and(set("n_layers", c.n_layers.into()))
            .and(set("n_heads", c.n_heads.into()))
            .and(set("n_kv_heads", c.n_kv_heads.into()))
            .and(set("vocab_size", c.vocab_size.into()))
            .and(set("seq_len", c.seq_len.into()))
            .and(set("shared_classifier", c.shared_classifier.into()))
            .and(set("params", (c.n_params() as f64).into()))
            .and(set("file_size", (checkpoint.file_size() as f64).into()))
            .and(set("kv_cache_bytes", (c.kv_cache_bytes() as f64).into()))
            .and(set("memory_bytes", (self.memory_bytes() as f64).into()))
            .map_err(|_| JsError::new("config: cannot build the result object"))?;
        Ok(object.into())
    }
}

/// Rust-only helpers (not exported to JS).
impl Engine {
    /// The buffer JS fills; Rust callers (the wasm tests) write through this instead of a
    /// raw pointer.
    pub fn checkpoint_bytes_mut(&mut self) -> Result<&mut [u8], JsError> {
        Ok(self.filling()?.as_bytes_mut())
    }

    fn filling(&mut self) -> Result<&mut WeightBuffer, JsError> {
        match &mut self.slot {
            Slot::Filling(buffer) => Ok(buffer),
            _ => Err(JsError::new("no checkpoint buffer: call alloc_checkpoint first")),
        }
    }

    fn generator(&mut self) -> Result<&mut Generator, JsError> {
        match &mut self.slot {
            Slot::Ready(generator) => Ok(generator),
            _ => Err(JsError::new("no model loaded: load a checkpoint and its tokenizer first")),
        }
    }
}

/// Runs the hot code once on a tiny generated model (fp32 and int8, prefill, decode, top-p
/// sampling), so that the engine compiles it to optimized code now rather than during the
/// user's first generation. V8 first runs a function in its baseline tier and switches at the
/// next call once the optimized code is ready: the first prefill of a 110M model (a few long
/// calls) otherwise runs ~15 % slower, and a 15M model's 25 ms prefill takes 50 ms. Takes
/// 40-70 ms once per module instance; `rounds` 0 means 3 (enough in Node 20 and Chromium 156).
#[wasm_bindgen]
pub fn warm_up(rounds: u32) -> Result<(), JsError> {
    console_error_panic_hook::set_once();
    let config = export::config([64, 192, 2, 4, 2, 512, 64], true, "warm-up")?;
    for format in [Format::V0, Format::V2 { group_size: 32 }] {
        let mut bytes = Vec::new();
        export::write_checkpoint(&mut bytes, &config, format, &mut Formula::new(&config, 1), "")?;
        let checkpoint = Checkpoint::from_buffer(WeightBuffer::from_bytes(&bytes)?, "warm-up")?;
        let mut model = Transformer::new(checkpoint)?;
        let prompt: Vec<u32> = (0..24).map(|t| 3 + t * 17 % 500).collect();
        for _ in 0..if rounds == 0 { 3 } else { rounds.min(100) } {
            let mut sampler = Sampler::new(1.0, 0.9, 7);
            model.prefill(&prompt, 0);
            for pos in prompt.len()..config.seq_len {
                let logits = model.forward(1, pos);
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
    vocab_size: usize,
    text: &str,
    bos: bool,
    eos: bool,
) -> Result<Vec<u32>, JsError> {
    console_error_panic_hook::set_once();
    let tokenizer = Tokenizer::from_bytes(tokenizer, vocab_size, "tokenizer")?;
    Ok(tokenizer.encode(text.as_bytes(), bos, eos)?)
}
