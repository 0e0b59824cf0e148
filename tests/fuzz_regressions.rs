#![cfg(not(target_arch = "wasm32"))]
//! The fuzz targets' harnesses (src/fuzzing.rs) on stable Rust: every file of the checked-in
//! seed corpus (fuzz/seeds/<target>/) and every crash reproducer the fuzzer found
//! (tests/fuzz_regressions/<target>/) is replayed through the same function the cargo-fuzz
//! target calls. A reproducer is added here when its bug is fixed; the test names say which.
//!
//! `cargo test --test fuzz_regressions -- --ignored write_seed_corpus` regenerates the seeds.

use std::fs;
use std::path::{Path, PathBuf};

use llama2_wasm::fuzzing::{self, TINY};
use llama2_wasm::{Checkpoint, Config, Error, Format, Generator, Options, Step, Tokenizer};

/// A cargo-fuzz target: its name (the directory of its inputs) and its harness.
type Target = (&'static str, fn(&[u8]));

const TARGETS: [Target; 4] = [
    ("checkpoint", fuzzing::checkpoint),
    ("checkpoint_mutated", fuzzing::checkpoint_mutated),
    ("tokenizer", fuzzing::tokenizer),
    ("generator", fuzzing::generator),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir`, sorted (none if it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs every file under `base/<target>/` through its target; returns how many ran.
fn replay(base: &Path) -> usize {
    let mut n = 0;
    for (target, harness) in TARGETS {
        for file in files(&base.join(target)) {
            let data = fs::read(&file).unwrap();
            let result = std::panic::catch_unwind(|| harness(&data));
            assert!(result.is_ok(), "{target} panicked on {}", file.display());
            n += 1;
        }
    }
    n
}

#[test]
fn seed_corpus_runs_clean() {
    let n = replay(&root().join("fuzz/seeds"));
    for (target, _) in TARGETS {
        assert!(
            !files(&root().join("fuzz/seeds").join(target)).is_empty(),
            "no seeds for {target}"
        );
    }
    eprintln!("{n} seed inputs replayed");
}

#[test]
fn crash_reproducers_run_clean() {
    let n = replay(&root().join("tests/fuzz_regressions"));
    // The directory holds what the fuzzers once found; an empty replay would check nothing
    // (a moved directory, a glob that matches no file).
    assert!(n > 0, "no reproducer under tests/fuzz_regressions/TARGET/: nothing was replayed");
    eprintln!("{n} reproducers replayed");
}

// ---------------------------------------------------------------------------------------
// The harness's own building blocks: if these break, the fuzz targets test nothing.
// ---------------------------------------------------------------------------------------

#[test]
fn tiny_checkpoints_parse_in_every_format() {
    let v2 = |group_size| Format::V2 { group_size };
    for format in [Format::V0, Format::V1, v2(4), v2(8)] {
        for shared in [true, false] {
            let config = Config { shared_classifier: shared, ..TINY };
            let file = fuzzing::tiny_checkpoint(&config, format, 7);
            let ckpt = Checkpoint::from_bytes(&file, "tiny")
                .unwrap_or_else(|e| panic!("{format:?} shared={shared}: {e}"));
            assert_eq!(*ckpt.config(), config);
            assert_eq!(ckpt.format(), format);
        }
    }
}

#[test]
fn tiny_generator_generates_and_is_deterministic() {
    let greedy = Options { temperature: 0.0, topp: 0.9, seed: 1, steps: 12 };
    let run = |format| {
        let mut g = fuzzing::tiny_generator(format);
        g.start("the", &greedy).unwrap();
        while let Step::Piece(_) = g.next().unwrap() {}
        g.ids().to_vec()
    };
    let ids = run(Format::V0);
    assert_eq!(ids.len(), 1 + 12, "the first token, then one per step: {ids:?}");
    assert_eq!(ids, run(Format::V1), "v0 and v1 hold the same weights");
}

#[test]
fn synthetic_tokenizer_has_byte_fallback_and_merges() {
    let tok = Tokenizer::from_bytes(&fuzzing::synthetic_tokenizer(300), 300, "synthetic").unwrap();
    assert_eq!(tok.decode(0, 3 + 0xE2), vec![0xE2]);
    // " the" is one token; "é" falls back to its two bytes.
    let ids = tok.encode("the é".as_bytes(), true, false).unwrap();
    assert_eq!(ids.len(), 1 + 1 + 1 + 2, "{ids:?}");
}

#[test]
fn vocabularies_without_the_special_tokens_are_refused() {
    // Found by the tokenizer target: encoding with BOS indexed a 1-token vocabulary.
    for vocab in 0..3 {
        let err = Tokenizer::from_bytes(&fuzzing::synthetic_tokenizer(vocab), vocab, "t.bin")
            .err()
            .unwrap_or_else(|| panic!("vocab_size {vocab} accepted"));
        assert!(matches!(err, Error::Tokenizer { .. }), "{err}");
    }
}

#[test]
fn top_p_with_an_empty_nucleus_still_samples() {
    // Found by the generator target: a top-p whose cutoff is above every probability
    // (tiny top-p on a flat distribution) left no candidate and indexed an empty list.
    let mut g = fuzzing::tiny_generator(Format::V1);
    for (temperature, topp) in [(f32::INFINITY, 1e-6), (f32::MIN_POSITIVE / 4.0, 0.5), (1e30, 0.01)]
    {
        let options = Options { temperature, topp, seed: 3, steps: 6 };
        g.start("a", &options).unwrap();
        while let Step::Piece(_) = g.next().unwrap() {}
        assert!(g.ids().iter().all(|&id| (id as usize) < TINY.vocab_size), "{:?}", g.ids());
    }
}

// ---------------------------------------------------------------------------------------
// The seed corpus (checked in; regenerate with --ignored)
// ---------------------------------------------------------------------------------------

/// `[vocab u16][flags u8][text_len u16][text][tokenizer.bin]`, the tokenizer target's input.
fn tokenizer_input(vocab: u16, bos: bool, eos: bool, text: &str, file: &[u8]) -> Vec<u8> {
    let mut out = vocab.to_le_bytes().to_vec();
    out.push(bos as u8 | (eos as u8) << 1);
    out.extend((text.len() as u16).to_le_bytes());
    out.extend(text.as_bytes());
    out.extend(file);
    out
}

#[test]
#[ignore = "writes fuzz/seeds/; run by hand when the input formats change"]
fn write_seed_corpus() {
    let seeds = root().join("fuzz/seeds");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = seeds.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), data).unwrap();
    };

    // checkpoint: small real files of each format.
    let small = Config { vocab_size: 32, seq_len: 8, ..TINY };
    let unshared = Config { shared_classifier: false, ..small };
    let v2 = |group_size| Format::V2 { group_size };
    for (name, config, format) in [
        ("v0-shared.bin", small, Format::V0),
        ("v0-unshared.bin", unshared, Format::V0),
        ("v1-shared.bin", small, Format::V1),
        ("v2-gs4.bin", small, v2(4)),
        ("v2-gs8-unshared.bin", unshared, v2(8)),
        ("v1-mha.bin", Config { n_kv_heads: 2, n_layers: 1, ..small }, Format::V1),
    ] {
        write("checkpoint", name, &fuzzing::tiny_checkpoint(&config, format, 7));
    }

    // checkpoint_mutated: each format, then a few header edits and truncations.
    for choice in 0u8..8 {
        write("checkpoint_mutated", &format!("format-{choice}"), &[choice]);
    }
    write("checkpoint_mutated", "seq-len-plus-one", &[1, 1, 0, 8, 0]);
    write("checkpoint_mutated", "truncate-4", &[0, 1, 3, 4, 0, 0]);
    write("checkpoint_mutated", "nan-weight", &[2, 1, 2, 0, 2, 0, 0, 2]);

    // tokenizer: the real 512-token tokenizer and the synthetic one, with varied text.
    let models =
        std::env::var("LLAMA2_MODELS").map_or(root().join("../shared/models"), PathBuf::from);
    let tok512 = fs::read(models.join("tok512-aidreams.bin")).expect("tok512-aidreams.bin");
    for (i, (text, bos, eos)) in [
        ("Once upon a time, there was a little girl named Lily.", true, false),
        ("héllo wörld ✓ 日本 🙂 \t\n<0x41>", true, true),
        ("", false, true),
    ]
    .into_iter()
    .enumerate()
    {
        write("tokenizer", &format!("tok512-{i}"), &tokenizer_input(512, bos, eos, text, &tok512));
    }
    let synthetic = fuzzing::synthetic_tokenizer(300);
    write(
        "tokenizer",
        "synthetic-300",
        &tokenizer_input(300, true, false, "[INST] the é [/INST]", &synthetic),
    );

    // generator: scripted call sequences (see fuzzing::generator for the encoding).
    let opts = |t: u8, p: u8| -> Vec<u8> {
        let mut v = vec![t, p];
        v.extend(42u64.to_le_bytes());
        v.extend(20u16.to_le_bytes());
        v
    };
    let text = |s: &str| -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend(s.as_bytes());
        v
    };
    let mut start_next = vec![0, 0];
    start_next.extend(text("the a"));
    start_next.extend(opts(8, 8));
    start_next.extend([2, 30, 3, 1]);
    write("generator", "start-next-stop", &start_next);
    let mut chat = vec![1, 4];
    chat.extend(text("be brief"));
    chat.extend(text("hi there"));
    chat.extend(opts(1, 0));
    chat.extend([2, 31, 5]);
    chat.extend(text("more"));
    chat.extend([2, 31]);
    write("generator", "chat-turns", &chat);
    let mut odd = vec![2, 0];
    odd.extend(text("x"));
    odd.extend(opts(2, 2)); // NaN temperature: refused
    odd.extend([1, 0]);
    odd.extend(text(""));
    odd.extend(opts(6, 8)); // subnormal temperature
    odd.extend([2, 10, 5]);
    odd.extend(text("no chat"));
    write("generator", "bad-options", &odd);
    // A long session, so the fuzzer's length limit starts where many calls fit.
    let mut long = vec![0];
    for round in 0..6u8 {
        long.extend([0]);
        long.extend(text("the a [INST] é"));
        long.extend(opts(round % 10, 9 - round));
        long.extend([2, 9, 1, 4]);
        long.extend(text("sys"));
        long.extend(text("hello the"));
        long.extend(opts(1, 8));
        long.extend([2, 20, 5]);
        long.extend(text("again"));
        long.extend([1, 3, 5]);
        long.extend(text("late"));
    }
    write("generator", "long-session", &long);
}

/// The generator target's last check, in plain API terms: an error leaves the engine usable.
#[test]
fn generator_refuses_nan_options_and_keeps_working() {
    let mut g: Generator = fuzzing::tiny_generator(Format::V0);
    let nan = Options { temperature: f32::NAN, ..Options::default() };
    assert!(matches!(g.start("the", &nan), Err(Error::Options(_))));
    g.start("the", &Options { temperature: 0.0, steps: 4, ..Options::default() }).unwrap();
    assert!(matches!(g.next(), Ok(Step::Piece(_))));
}
