//! llama2-wasm: Karpathy's llama2.c (`run.c` and `runq.c`) in safe Rust, token-for-token
//! identical, for native command-line tools and for the browser (wasm32 + simd128).
//!
//! The core reads everything from byte buffers (no filesystem, no threads), so the same code
//! runs in both places:
//! - [`checkpoint`]: one aligned buffer holding a v0, v1 or v2 (int8) checkpoint, every size
//!   checked; weights are views into it.
//! - [`tokenizer`]: `tokenizer.bin`, BPE encode, decode, UTF-8 reassembly of byte tokens.
//! - [`model`]: the transformer forward pass (fp32 and Q8_0) over the [`kernels`].
//! - [`sampler`]: argmax, multinomial, top-p, xorshift64*.
//! - [`generate`]: the step-wise generator (`start`, then `next` piece by piece), chat.
//! - [`export`]: writing v0, v1 and v2 checkpoints (the `quantize` and `gen-checkpoint` tools).
//! - `wasm` (wasm32 only): the `#[wasm_bindgen]` `Engine` the browser uses.

pub mod checkpoint;
pub mod conformance;
pub mod error;
pub mod export;
/// The cargo-fuzz harnesses (fuzz/), shared with tests/fuzz_regressions.rs.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod generate;
pub mod kernels;
pub mod model;
// Not gated to native: `wasm-pack test` builds the bins for wasm32 too, and they use it.
// std::fs compiles on wasm32 (it only fails at run time) and the wasm module never calls it,
// so nothing of it ends up in www/pkg.
pub mod native;
pub mod sampler;
pub mod tokenizer;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use checkpoint::{Checkpoint, Config, Format, WeightBuffer};
pub use error::{Error, Result};
pub use generate::{Generator, Options, Step, StopReason};
pub use model::Transformer;
pub use sampler::{Rng, Sampler};
pub use tokenizer::{Tokenizer, Utf8Stream};
