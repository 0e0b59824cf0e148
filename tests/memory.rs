#![cfg(target_os = "linux")]
//! What a model costs in memory before its first token: the KV cache is allocated as run.c's
//! calloc does, so its pages cost nothing until positions fill them. Once, a 10 MB checkpoint
//! whose header says seq_len 131072 made the engine write a 2 GB KV cache at load.
//! (Its own test binary: the resident memory it reads is the whole process's.)

mod common;

use llama2_wasm::link::Link;
use llama2_wasm::native::read_checkpoint;
use llama2_wasm::Transformer;

const GEN: &str = env!("CARGO_BIN_EXE_gen-checkpoint");

/// This process's resident memory (VmRSS), in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("kB");
    kb * 1024
}

#[test]
fn a_long_context_costs_nothing_until_it_is_used() {
    let path = common::out_dir("memory_long_context").join("long.bin");
    // The 260K shape with a 131072-position context: 5 layers x 131072 x 64 x 2 (k, v) x 4
    // bytes = 335 MB of KV cache for a checkpoint of 4 MB.
    let status = std::process::Command::new(GEN)
        .args(["--shape", "64,172,5,8,4,512,131072", "--seed", "1"])
        .arg(&path)
        .status()
        .expect("gen-checkpoint");
    assert!(status.success());
    let checkpoint = read_checkpoint(&path).expect("checkpoint");
    let context = checkpoint.config().seq_len;
    let before = resident();
    let mut model = Transformer::new(checkpoint, context, Link::alone()).expect("model");
    let grown = resident().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "the model grew resident memory by {} MB before its first token",
        grown >> 20
    );
    // And it works: a few positions, at the start and at the end of the context.
    for pos in [0, 1, context - 1] {
        let logits = llama2_wasm::link::block_on(model.forward(&[1], pos, true)).expect("forward");
        assert!(logits.iter().all(|l| l.is_finite()));
    }
}
