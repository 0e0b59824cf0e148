//! A tiny model driven by arbitrary options, prompts and call sequences.
//! The harness is `llama2_wasm::fuzzing::generator` (replayed by tests/fuzz_regressions.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llama2_wasm::fuzzing::generator(data));
