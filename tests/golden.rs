#![cfg(not(target_arch = "wasm32"))]
//! Every case of ../shared/golden (run.c's and runq.c's own outputs) through the engine:
//! the token ids must be identical, and the text too wherever run.c dropped no byte.

mod common;

use llama2_wasm::conformance::{self, first_difference, Case};
use llama2_wasm::{Checkpoint, Tokenizer};

/// How a case went when it did not fail.
enum Outcome {
    /// One of its models is missing.
    Skipped,
    /// Same ids; `text_compared` when run.c's text could be compared too (and was equal).
    Passed { text_compared: bool },
}

/// The cases of a golden file, or None when it is missing.
fn cases(file: &str) -> Option<Vec<Case>> {
    let path = common::golden(file)?;
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some(conformance::parse_cases(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn run(case: &Case) -> Result<Outcome, String> {
    let files: Option<Vec<Vec<u8>>> = case.files().into_iter().map(common::fixture_bytes).collect();
    let Some(files) = files else {
        return Ok(Outcome::Skipped);
    };
    match case {
        Case::Tokenizer(c) => {
            let got = conformance::run_tokenizer(c, &files[0]).map_err(|e| e.to_string())?;
            first_difference(&c.ids, &got).map_or(Ok(Outcome::Passed { text_compared: false }), Err)
        }
        Case::Generate(c) => {
            let got = conformance::run_generate_bytes(c, &files[0], &files[1])
                .map_err(|e| e.to_string())?;
            if let Some(diff) = first_difference(&c.ids, &got.ids) {
                return Err(diff);
            }
            let checkpoint =
                Checkpoint::from_bytes(&files[0], &c.checkpoint).map_err(|e| e.to_string())?;
            let tokenizer =
                Tokenizer::from_bytes(&files[1], checkpoint.config().vocab_size, &c.tokenizer)
                    .map_err(|e| e.to_string())?;
            let text_compared = conformance::stdout_comparable(c, &tokenizer);
            if text_compared && got.text != c.stdout {
                return Err(format!(
                    "same ids, different text: expected {:?} got {:?}",
                    c.stdout, got.text
                ));
            }
            Ok(Outcome::Passed { text_compared })
        }
    }
}

/// Runs every case of `file` and fails listing each differing case. Returns how many
/// cases passed and how many of those compared their text.
fn check_all(file: &str) -> Option<(usize, usize)> {
    let cases = cases(file)?;
    assert!(!cases.is_empty(), "{file} has no cases");
    let (mut passed, mut texts, mut skipped, mut failures) = (0, 0, 0, Vec::new());
    for case in &cases {
        match run(case) {
            Ok(Outcome::Passed { text_compared }) => {
                passed += 1;
                texts += text_compared as usize;
            }
            Ok(Outcome::Skipped) => skipped += 1,
            Err(problem) => failures.push(format!("{}: {problem}", case.name())),
        }
    }
    eprintln!(
        "{file}: {passed} passed ({texts} with their text), {} failed, {skipped} skipped",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{file}: {} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Some((passed, texts))
}

#[test]
fn every_generate_case_matches_run_c() {
    let Some((passed, texts)) = check_all("generate.json") else {
        return;
    };
    // The text check is not vacuous: most cases print no dropped byte.
    assert!(
        passed == 0 || texts * 2 > passed,
        "only {texts} of {passed} cases compared their text"
    );
}

#[test]
fn every_tokenizer_case_matches_run_c() {
    check_all("tokenizer.json");
}

/// The model split over 2 and 3 threads (tensor parallelism by rows, `--threads`): every
/// case gives run.c's ids, as with one.
#[test]
fn every_generate_case_matches_run_c_over_threads() {
    let Some(cases) = cases("generate.json") else {
        return;
    };
    let mut failures = Vec::new();
    for threads in [2, 3] {
        for case in &cases {
            let Case::Generate(c) = case else { continue };
            let (Some(checkpoint), Some(tokenizer)) =
                (common::fixture(&c.checkpoint), common::fixture(&c.tokenizer))
            else {
                continue;
            };
            let result =
                llama2_wasm::native::load_generator(&checkpoint, &tokenizer, threads, None)
                    .and_then(|mut generator| {
                        let options = llama2_wasm::Options {
                            temperature: c.temperature,
                            topp: c.topp,
                            seed: c.seed,
                            steps: c.steps,
                        };
                        generator.start(c.prompt.as_deref().unwrap_or(""), &options)?;
                        while let llama2_wasm::Step::Piece(_) = generator.next()? {}
                        Ok(generator.ids().to_vec())
                    });
            match result {
                Ok(ids) => {
                    if let Some(diff) = first_difference(&c.ids, &ids) {
                        failures.push(format!("{threads} threads, {}: {diff}", case.name()));
                    }
                }
                Err(e) => failures.push(format!("{threads} threads, {}: {e}", case.name())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
