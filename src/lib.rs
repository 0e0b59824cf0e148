//! llama2-wasm: Karpathy's llama2.c (`run.c` and `runq.c`) in safe Rust, token-for-token
//! identical, for native command-line tools and for the browser (wasm32 + simd128).
//!
//! The core reads everything from byte buffers (no filesystem), so the same code runs in both
//! places:
//! - [`config`]: the model's shape (`Config`), its file format and its matrices' names.
//! - [`checkpoint`]: v0, v1 and v2 (int8) files: the header, the one table of where each
//!   tensor lies, and loading a file (or one shard of it) as its bytes stream in.
//! - [`tokenizer`]: `tokenizer.bin`, BPE encode, decode, UTF-8 reassembly of byte tokens.
//! - [`model`]: the transformer forward pass (fp32 and Q8_0) over the [`kernels`], on the
//!   whole model or one [`shard`] of it, meeting the other shards through a [`link`].
//! - [`sampler`]: argmax, multinomial, top-p, xorshift64*.
//! - [`generate`]: the step-wise generator (`start`, then `next` piece by piece), chat, and
//!   the options' defaults; [`inspect`]: what a step shows of the model (top tokens,
//!   attention, logit lens).
//! - `wasm` (wasm32 only): the `#[wasm_bindgen]` `Engine` the browser uses.
//!
//!
//! With the `tools` feature (on by default; the wasm module is built without it):
//! [`export`] (writing checkpoints, and SPEC's formula weights: the weight generator of the
//! tools, tests and fuzzer), [`conformance`] (golden files), [`native`] (files and threads for
//! the command-line tools) and `fuzzing` (the fuzz harnesses).

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod generate;
pub mod inspect;
pub mod kernels;
pub mod link;
pub mod model;
pub mod sampler;
pub mod shard;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

#[cfg(feature = "tools")]
pub mod conformance;
#[cfg(feature = "tools")]
pub mod export;
/// The cargo-fuzz harnesses (fuzz/), shared with tests/fuzz_regressions.rs.
#[cfg(all(feature = "tools", not(target_arch = "wasm32")))]
#[doc(hidden)]
pub mod fuzzing;
// Not gated to native: `wasm-pack test` builds the bins for wasm32 too, and they use it.
// std::fs compiles on wasm32 (it only fails at run time).
#[cfg(feature = "tools")]
pub mod native;

pub use checkpoint::{Checkpoint, WeightBuffer};
pub use config::{Config, Format, Weight};
pub use error::{Error, Result};
pub use generate::{Generator, Options, Step, StopReason};
pub use model::Transformer;
pub use sampler::{Rng, Sampler};
pub use shard::Shard;
pub use tokenizer::{Tokenizer, Utf8Stream};
