//! `conformance <golden.json> [--models DIR]`: runs every case of a golden file
//! (generate.json or tokenizer.json shaped) through the engine natively, prints one line per
//! failing case and ends with `N passed, M failed`; exits non-zero on any failure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use llama2_wasm::conformance::{self, first_difference, Case};
use llama2_wasm::native::read_checkpoint;
use llama2_wasm::Tokenizer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut file = None;
    let mut models = std::env::var_os("LLAMA2_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/models"));
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--models" if i + 1 < args.len() => {
                models = PathBuf::from(&args[i + 1]);
                i += 1;
            }
            arg if file.is_none() && !arg.starts_with("--") => file = Some(arg.to_string()),
            arg => return usage(&format!("unexpected argument '{arg}'")),
        }
        i += 1;
    }
    let Some(file) = file else {
        return usage("missing the golden file");
    };
    let cases = match std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())
        .and_then(|json| conformance::parse_cases(&json))
    {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("conformance: {file}: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let (mut passed, mut failed) = (0, 0);
    for case in &cases {
        match run_case(case, &models, &mut files) {
            Ok(()) => passed += 1,
            Err(problem) => {
                failed += 1;
                println!("FAIL {}: {problem}", case.name());
            }
        }
    }
    println!("native: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("conformance: {problem}\nusage: conformance <golden.json> [--models DIR]");
    ExitCode::from(2)
}

/// Runs one case; the error says what differed or why it could not run.
fn run_case(
    case: &Case,
    models: &Path,
    files: &mut HashMap<String, Vec<u8>>,
) -> Result<(), String> {
    let mut tokenizer_bytes = |name: &str| -> Result<Vec<u8>, String> {
        if !files.contains_key(name) {
            let bytes = std::fs::read(models.join(name))
                .map_err(|e| format!("cannot read {}: {e}", models.join(name).display()))?;
            files.insert(name.to_string(), bytes);
        }
        Ok(files[name].clone())
    };
    match case {
        Case::Tokenizer(c) => {
            let bytes = tokenizer_bytes(&c.tokenizer)?;
            let got = conformance::run_tokenizer(c, &bytes).map_err(|e| e.to_string())?;
            first_difference(&c.ids, &got).map_or(Ok(()), Err)
        }
        Case::Generate(c) => {
            let bytes = tokenizer_bytes(&c.tokenizer)?;
            let checkpoint =
                read_checkpoint(&models.join(&c.checkpoint)).map_err(|e| e.to_string())?;
            let vocab = checkpoint.config().vocab_size;
            let got =
                conformance::run_generate(c, checkpoint, &bytes).map_err(|e| e.to_string())?;
            if let Some(diff) = first_difference(&c.ids, &got.ids) {
                return Err(diff);
            }
            let tokenizer =
                Tokenizer::from_bytes(&bytes, vocab, &c.tokenizer).map_err(|e| e.to_string())?;
            if conformance::stdout_comparable(c, &tokenizer) && got.text != c.stdout {
                return Err(format!(
                    "same ids but the text differs: expected {:?} got {:?}",
                    c.stdout, got.text
                ));
            }
            Ok(())
        }
    }
}
