//! A valid tiny checkpoint with mutated header fields, weights and length.
//! The harness is `llama2_wasm::fuzzing::checkpoint_mutated` (replayed by tests/fuzz_regressions.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llama2_wasm::fuzzing::checkpoint_mutated(data));
