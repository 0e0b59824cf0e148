//! `conformance <golden.json> [--models DIR] [--threads N]`: runs every case of a golden file
//! (generate.json or tokenizer.json shaped) through the native engine, prints one line per
//! failing case and ends with `native: N passed, M failed`; exits non-zero on any failure.
//!
//! `conformance <golden.json> --check RESULTS.jsonl --label NAME`: judges the results a
//! JavaScript runner wrote (tests/e2e/conformance.mjs: Node, browsers) by the same rules
//! (`conformance::check`), with the same report.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use llama2_wasm::checkpoint::header::V1_HEADER_BYTES;
use llama2_wasm::checkpoint::Header;
use llama2_wasm::conformance::{self, Case, Outcome};
use llama2_wasm::native::load_generator;
use llama2_wasm::{Options, Step, Tokenizer};

const USAGE: &str = "usage: conformance <golden.json> [--models DIR] [--threads N]\n       \
                     conformance <golden.json> --check RESULTS.jsonl --label NAME [--models DIR]";

struct Args {
    file: String,
    models: PathBuf,
    threads: usize,
    check: Option<(String, String)>,
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        file: String::new(),
        models: std::env::var_os("LLAMA2_MODELS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("../shared/models")),
        threads: 1,
        check: None,
    };
    let (mut results, mut label) = (None, None);
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--models" => args.models = PathBuf::from(value()?),
            "--threads" => {
                args.threads = value()?.parse().map_err(|_| "--threads: not a number")?
            }
            "--check" => results = Some(value()?),
            "--label" => label = Some(value()?),
            a if args.file.is_empty() && !a.starts_with("--") => args.file = a.to_string(),
            a => return Err(format!("unexpected argument '{a}'")),
        }
    }
    if args.file.is_empty() {
        return Err("missing the golden file".into());
    }
    args.check = results.map(|r| (r, label.unwrap_or_else(|| "results".into())));
    Ok(args)
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("conformance: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cases = match std::fs::read_to_string(&args.file)
        .map_err(|e| e.to_string())
        .and_then(|json| conformance::parse_cases(&json))
    {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("conformance: {}: {e}", args.file);
            return ExitCode::FAILURE;
        }
    };
    let mut judge = Judge { models: args.models.clone(), tokenizers: HashMap::new() };
    let (label, results): (String, Vec<Result<(), String>>) = match &args.check {
        None => {
            let label = if args.threads > 1 {
                format!("native ({} threads)", args.threads)
            } else {
                "native".into()
            };
            (
                label,
                cases
                    .iter()
                    .map(|case| run(case, &args).and_then(|o| judge.check(case, &o)))
                    .collect(),
            )
        }
        Some((file, label)) => match read_outcomes(file, cases.len()) {
            Ok(outcomes) => (
                label.clone(),
                cases
                    .iter()
                    .zip(outcomes)
                    .map(|(case, o)| o.and_then(|o| judge.check(case, &o)))
                    .collect(),
            ),
            Err(e) => {
                eprintln!("conformance: {file}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut failed = 0;
    for (case, result) in cases.iter().zip(&results) {
        if let Err(problem) = result {
            failed += 1;
            println!("FAIL {}: {problem}", case.name());
        }
    }
    println!("{label}: {} passed, {failed} failed", cases.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The outcome of every case, by index, from a runner's JSON lines; a case it did not report
/// failed.
fn read_outcomes(file: &str, n: usize) -> Result<Vec<Result<Outcome, String>>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let mut outcomes: Vec<Result<Outcome, String>> = vec![Err("not run".into()); n];
    for (case, outcome) in conformance::parse_outcomes(&text)? {
        if case < n {
            outcomes[case] = outcome;
        }
    }
    Ok(outcomes)
}

/// Runs one case natively.
fn run(case: &Case, args: &Args) -> Result<Outcome, String> {
    let models = &args.models;
    match case {
        Case::Tokenizer(c) => {
            let bytes = read(&models.join(&c.tokenizer))?;
            let ids = conformance::run_tokenizer(c, &bytes).map_err(|e| e.to_string())?;
            Ok(Outcome { ids, text: None })
        }
        Case::Generate(c) => {
            let (checkpoint, tokenizer) = (models.join(&c.checkpoint), models.join(&c.tokenizer));
            let mut generator = load_generator(&checkpoint, &tokenizer, args.threads, None)
                .map_err(|e| e.to_string())?;
            let options =
                Options { temperature: c.temperature, topp: c.topp, seed: c.seed, steps: c.steps };
            generator
                .start(c.prompt.as_deref().unwrap_or(""), &options)
                .map_err(|e| e.to_string())?;
            let mut text = String::new();
            while let Step::Piece(piece) = generator.next().map_err(|e| e.to_string())? {
                text.push_str(&piece);
            }
            Ok(Outcome { ids: generator.ids().to_vec(), text: Some(text) })
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Judges outcomes; keeps each tokenizer it reads (with its checkpoint's vocabulary size).
struct Judge {
    models: PathBuf,
    tokenizers: HashMap<(String, usize), Tokenizer>,
}

impl Judge {
    fn check(&mut self, case: &Case, outcome: &Outcome) -> Result<(), String> {
        let (tokenizer, vocab) = match case {
            Case::Tokenizer(c) => (&c.tokenizer, c.vocab_size),
            Case::Generate(c) => {
                let path = self.models.join(&c.checkpoint);
                let mut head = Vec::with_capacity(V1_HEADER_BYTES);
                std::fs::File::open(&path)
                    .and_then(|f| f.take(V1_HEADER_BYTES as u64).read_to_end(&mut head))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let header = Header::read(&head, &c.checkpoint).map_err(|e| e.to_string())?;
                (&c.tokenizer, header.config.vocab_size)
            }
        };
        let key = (tokenizer.clone(), vocab);
        if !self.tokenizers.contains_key(&key) {
            let bytes = read(&self.models.join(tokenizer))?;
            let parsed =
                Tokenizer::from_bytes(&bytes, vocab, tokenizer).map_err(|e| e.to_string())?;
            self.tokenizers.insert(key.clone(), parsed);
        }
        conformance::check(case, outcome, &self.tokenizers[&key])
    }
}
