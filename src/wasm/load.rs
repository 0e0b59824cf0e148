//! Loading: the checkpoint's bytes straight to their place in wasm memory, the KV cache
//! sized to the memory there is, the tokenizer.

use wasm_bindgen::prelude::*;

use super::args::*;
use super::*;

#[wasm_bindgen]
impl Engine {
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
        self.looked = None;
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
}
