//! Arbitrary tokenizer.bin + vocab size + text: parse, encode, decode, UTF-8 reassembly.
//! The harness is `llama2_wasm::fuzzing::tokenizer` (replayed by tests/fuzz_regressions.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| llama2_wasm::fuzzing::tokenizer(data));
