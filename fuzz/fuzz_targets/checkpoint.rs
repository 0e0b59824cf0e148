//! Arbitrary bytes as a checkpoint file, then a few generation steps.
//! The harness is `llama2_wasm::fuzzing::checkpoint` (replayed by tests/fuzz_regressions.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llama2_wasm::fuzzing::checkpoint(data));
