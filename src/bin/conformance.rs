//! `conformance <golden.json> [--models DIR] [--threads N]`: runs every case of a golden file
//! (generate.json, tokenizer.json or chat.json shaped) through the native engine, prints one line per
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
use llama2_wasm::conformance::{self, Case, Compared, Outcome};
use llama2_wasm::native::load_generator;
use llama2_wasm::Tokenizer;

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
    let (label, results): (String, Vec<Result<Compared, String>>) = match &args.check {
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
    let (mut failed, mut uncompared) = (0, 0);
    for (case, result) in cases.iter().zip(&results) {
        match result {
            Err(problem) => {
                failed += 1;
                println!("FAIL {}: {problem}", case.name());
            }
            Ok(Compared::Nothing) => {
                uncompared += 1;
                println!("NOT COMPARED {}: run.c dropped bytes from this transcript", case.name());
            }
            Ok(_) => {}
        }
    }
    let note =
        if uncompared > 0 { format!(" ({uncompared} not comparable)") } else { String::new() };
    println!("{label}: {} passed{note}, {failed} failed", cases.len() - failed);
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
    let files = case.files();
    if let Case::Tokenizer(_) = case {
        let bytes = read(&models.join(files[0]))?;
        return conformance::run_bytes(case, &[], &bytes).map_err(|e| e.to_string());
    }
    let (checkpoint, tokenizer) = (models.join(files[0]), models.join(files[1]));
    load_generator(&checkpoint, &tokenizer, args.threads, None, &[])
        .and_then(|mut generator| conformance::run(case, &mut generator))
        .map_err(|e| e.to_string())
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
    fn check(&mut self, case: &Case, outcome: &Outcome) -> Result<Compared, String> {
        let files = case.files();
        let (tokenizer, vocab) = match case {
            Case::Tokenizer(c) => (&c.tokenizer, c.vocab_size),
            Case::Generate(_) | Case::Chat(_) => {
                let path = self.models.join(files[0]);
                let mut head = Vec::with_capacity(V1_HEADER_BYTES);
                std::fs::File::open(&path)
                    .and_then(|f| f.take(V1_HEADER_BYTES as u64).read_to_end(&mut head))
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let header = Header::read(&head, files[0]).map_err(|e| e.to_string())?;
                (&files[1].to_string(), header.config.vocab_size)
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
