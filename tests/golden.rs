#![cfg(not(target_arch = "wasm32"))]
//! Every case of ../shared/golden (run.c's and runq.c's own outputs) through the engine, judged
//! by the one rule set (`conformance::check`): the token ids must be identical, and the text
//! too wherever run.c dropped no byte; chat transcripts byte for byte. Also split over 2 and 3
//! threads (`--threads`): the same ids.

mod common;

use llama2_wasm::conformance::{self, Case};
use llama2_wasm::native::load_generator;
use llama2_wasm::Tokenizer;

/// The cases of a golden file, or None when it is missing.
fn cases(file: &str) -> Option<Vec<Case>> {
    let path = common::golden(file)?;
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(conformance::parse_cases(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// The vocabulary size a case's tokenizer is read with: the checkpoint's, or the case's own.
fn vocab(case: &Case, files: &[Vec<u8>]) -> usize {
    match case {
        Case::Tokenizer(c) => c.vocab_size,
        _ => {
            llama2_wasm::Checkpoint::from_bytes(&files[0], "c").map_or(0, |c| c.config().vocab_size)
        }
    }
}

/// Runs every case of `file` (`threads` > 1: over that many threads) and fails listing each
/// differing case. Returns how many cases ran.
fn check_all(file: &str, threads: usize) -> usize {
    let Some(cases) = cases(file) else {
        return 0;
    };
    assert!(!cases.is_empty(), "{file} has no cases");
    let mut failures = Vec::new();
    for case in &cases {
        let paths: Option<Vec<_>> = case.files().into_iter().map(common::fixture).collect();
        let Some(paths) = paths else {
            continue; // said by common::fixture (a failure under LLAMA2_REQUIRE_FIXTURES=1)
        };
        let files: Vec<Vec<u8>> =
            paths.iter().map(|p| std::fs::read(p).expect("read a fixture")).collect();
        let outcome = match (case, threads) {
            (Case::Tokenizer(_), _) | (_, 1) => {
                conformance::run_bytes(case, &files[0], files.last().expect("a tokenizer"))
            }
            _ => load_generator(&paths[0], &paths[1], threads, None, &[])
                .and_then(|mut generator| conformance::run(case, &mut generator)),
        };
        let tokenizer =
            Tokenizer::from_bytes(files.last().expect("a tokenizer"), vocab(case, &files), "t");
        let result = match (outcome, tokenizer) {
            (Ok(outcome), Ok(tokenizer)) => conformance::check(case, &outcome, &tokenizer),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        };
        if let Err(problem) = result {
            failures.push(format!("{}: {problem}", case.name()));
        }
    }
    eprintln!(
        "{file} ({threads} threads): {} passed, {} failed",
        cases.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{file}: {} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn every_generate_case_matches_run_c() {
    check_all("generate.json", 1);
}

#[test]
fn every_tokenizer_case_matches_run_c() {
    check_all("tokenizer.json", 1);
}

#[test]
fn every_chat_transcript_matches_run_c() {
    check_all("chat.json", 1);
}

#[test]
fn every_generate_and_chat_case_matches_run_c_over_threads() {
    for threads in [2, 3] {
        check_all("generate.json", threads);
        check_all("chat.json", threads);
    }
}
