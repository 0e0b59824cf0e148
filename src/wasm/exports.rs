//! The module's functions besides the engine: the facts JavaScript reads (`defaults()`,
//! `limits()`), checks before a download (`min_workers`, `check_checkpoint_size`,
//! `check_header`), the warm-up, and `encode` without a model.

use wasm_bindgen::prelude::*;

use super::args::*;
use crate::checkpoint::header::check_config;
use crate::checkpoint::{Header, Layout, Tensor};
use crate::config::Config;
use crate::inspect::InspectOptions;
use crate::link::Link;
use crate::{Checkpoint, Error, Format, Options, Sampler, Tokenizer, Transformer};

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
