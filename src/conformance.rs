//! Golden-file cases (`../shared/golden/generate.json` and `tokenizer.json`): parsing, running
//! them through the engine, and the one set of rules a result is judged by ([`check`]): the
//! native runner, the cargo tests, the wasm tests and the JavaScript runners (Node, browsers:
//! they write their results and `conformance --check` judges them) all use it. Reads no files.

use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::generate::{Generator, Options, Step};
use crate::tokenizer::Tokenizer;

/// One run.c call and what it produced.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateCase {
    pub checkpoint: String,
    pub tokenizer: String,
    pub prompt: Option<String>,
    pub temperature: f32,
    pub topp: f32,
    pub seed: u64,
    pub steps: usize,
    pub ids: Vec<u32>,
    pub stdout: String,
}

/// One `encode(text, bos, eos)` call and its ids.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerCase {
    pub tokenizer: String,
    pub vocab_size: usize,
    pub text: String,
    pub bos: bool,
    pub eos: bool,
    pub ids: Vec<u32>,
}

/// A case of either golden file.
#[derive(Debug, Clone, PartialEq)]
pub enum Case {
    Generate(GenerateCase),
    Tokenizer(TokenizerCase),
}

impl Case {
    /// How failures name the case: `checkpoint prompt temperature topp seed steps`, or
    /// `tokenizer text bos eos`.
    pub fn name(&self) -> String {
        match self {
            Case::Generate(c) => format!(
                "{} {:?} t={} p={} s={} n={}",
                c.checkpoint,
                c.prompt.as_deref().unwrap_or("(no prompt)"),
                c.temperature,
                c.topp,
                c.seed,
                c.steps
            ),
            Case::Tokenizer(c) => {
                format!("{} {:?} bos={} eos={}", c.tokenizer, c.text, c.bos, c.eos)
            }
        }
    }

    /// The model files the case needs (checkpoint first, when there is one).
    pub fn files(&self) -> Vec<&str> {
        match self {
            Case::Generate(c) => vec![&c.checkpoint, &c.tokenizer],
            Case::Tokenizer(c) => vec![&c.tokenizer],
        }
    }

    pub fn expected_ids(&self) -> &[u32] {
        match self {
            Case::Generate(c) => &c.ids,
            Case::Tokenizer(c) => &c.ids,
        }
    }
}

/// Parses a golden file: a JSON list of generate or tokenizer cases.
pub fn parse_cases(json: &str) -> std::result::Result<Vec<Case>, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let list = value.as_array().ok_or("expected a JSON list of cases")?;
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_case(v).map_err(|e| format!("case {i}: {e}")))
        .collect()
}

fn parse_case(v: &Value) -> std::result::Result<Case, String> {
    let str_field =
        |k: &str| v[k].as_str().map(str::to_string).ok_or(format!("missing string '{k}'"));
    let num = |k: &str| v[k].as_f64().ok_or(format!("missing number '{k}'"));
    let bool_field = |k: &str| v[k].as_bool().ok_or(format!("missing boolean '{k}'"));
    let ids = v["ids"]
        .as_array()
        .ok_or("missing 'ids'")?
        .iter()
        .map(|id| id.as_u64().map(|id| id as u32).ok_or("an id is not a number".to_string()))
        .collect::<std::result::Result<Vec<u32>, String>>()?;
    if v.get("checkpoint").is_some() {
        Ok(Case::Generate(GenerateCase {
            checkpoint: str_field("checkpoint")?,
            tokenizer: str_field("tokenizer")?,
            prompt: v["prompt"].as_str().map(str::to_string),
            temperature: num("temperature")? as f32,
            topp: num("topp")? as f32,
            seed: v["seed"].as_u64().ok_or("missing integer 'seed'")?,
            steps: num("steps")? as usize,
            ids,
            stdout: str_field("stdout")?,
        }))
    } else {
        Ok(Case::Tokenizer(TokenizerCase {
            tokenizer: str_field("tokenizer")?,
            vocab_size: num("vocab_size")? as usize,
            text: str_field("text")?,
            bos: bool_field("bos")?,
            eos: bool_field("eos")?,
            ids,
        }))
    }
}

/// What running a generate case gave: the ids and the streamed text.
pub struct Generated {
    pub ids: Vec<u32>,
    pub text: String,
}

/// Runs a generate case as run.c would: the same prompt, options and step count.
pub fn run_generate(
    case: &GenerateCase,
    checkpoint: Checkpoint,
    tokenizer: &[u8],
) -> Result<Generated> {
    let tokenizer =
        Tokenizer::from_bytes(tokenizer, checkpoint.config().vocab_size, &case.tokenizer)?;
    let mut generator = Generator::new(checkpoint, tokenizer)?;
    let options = Options {
        temperature: case.temperature,
        topp: case.topp,
        seed: case.seed,
        steps: case.steps,
    };
    generator.start(case.prompt.as_deref().unwrap_or(""), &options)?;
    let mut text = String::new();
    while let Step::Piece(piece) = generator.next()? {
        text.push_str(&piece);
    }
    Ok(Generated { ids: generator.ids().to_vec(), text })
}

/// Runs a generate case from the raw bytes of its two files.
pub fn run_generate_bytes(
    case: &GenerateCase,
    checkpoint: &[u8],
    tokenizer: &[u8],
) -> Result<Generated> {
    let checkpoint = Checkpoint::from_bytes(checkpoint, &case.checkpoint)?;
    run_generate(case, checkpoint, tokenizer)
}

/// Runs a tokenizer case: the ids of `encode(text, bos, eos)`.
pub fn run_tokenizer(case: &TokenizerCase, tokenizer: &[u8]) -> Result<Vec<u32>> {
    let tokenizer = Tokenizer::from_bytes(tokenizer, case.vocab_size, &case.tokenizer)?;
    tokenizer.encode(case.text.as_bytes(), case.bos, case.eos)
}

/// What running a case gave, wherever it ran: the ids, and (generate cases) the text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub ids: Vec<u32>,
    pub text: Option<String>,
}

/// Judges `outcome` against `case`: the ids must be the golden ids; the text must be run.c's
/// wherever it can be compared (see [`stdout_comparable`], which needs the case's tokenizer).
/// The error says what differed.
pub fn check(
    case: &Case,
    outcome: &Outcome,
    tokenizer: &Tokenizer,
) -> std::result::Result<(), String> {
    if let Some(diff) = first_difference(case.expected_ids(), &outcome.ids) {
        return Err(diff);
    }
    let Case::Generate(c) = case else { return Ok(()) };
    let Some(text) = &outcome.text else {
        return Err("no text was reported".into());
    };
    if stdout_comparable(c, tokenizer) && *text != c.stdout {
        return Err(format!("same ids but the text differs: expected {:?} got {text:?}", c.stdout));
    }
    Ok(())
}

/// The outcomes a JavaScript runner wrote, one JSON object per line: `{ "case": index, "ids":
/// [...], "text": "..." }`, or `{ "case": index, "error": "..." }` for a case that failed to run.
pub fn parse_outcomes(
    jsonl: &str,
) -> std::result::Result<Vec<(usize, std::result::Result<Outcome, String>)>, String> {
    jsonl
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let v: Value =
                serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let case = v["case"].as_u64().ok_or(format!("line {}: no case index", n + 1))? as usize;
            if let Some(error) = v["error"].as_str() {
                return Ok((case, Err(error.to_string())));
            }
            let ids = v["ids"]
                .as_array()
                .ok_or(format!("line {}: no ids", n + 1))?
                .iter()
                .map(|id| {
                    id.as_u64()
                        .map(|id| id as u32)
                        .ok_or(format!("line {}: an id is not a number", n + 1))
                })
                .collect::<std::result::Result<Vec<u32>, String>>()?;
            Ok((case, Ok(Outcome { ids, text: v["text"].as_str().map(str::to_string) })))
        })
        .collect()
}

/// `None` when equal, else where the lists first differ and what each holds there.
pub fn first_difference(expected: &[u32], got: &[u32]) -> Option<String> {
    let at = expected.iter().zip(got).position(|(e, g)| e != g);
    let at = match at {
        Some(at) => at,
        None if expected.len() == got.len() => return None,
        None => expected.len().min(got.len()),
    };
    let show = |ids: &[u32]| ids.get(at).map_or("(end)".to_string(), |id| id.to_string());
    Some(format!(
        "first difference at position {at}: expected {} got {} ({} ids expected, {} got)",
        show(expected),
        show(got),
        expected.len(),
        got.len()
    ))
}

/// The golden text can be compared only where run.c dropped no byte-fallback byte >= 0x80
/// (it skips such one-byte pieces; we reassemble them into characters).
pub fn stdout_comparable(case: &GenerateCase, tokenizer: &Tokenizer) -> bool {
    let mut prev = case.ids.first().copied().unwrap_or(1);
    for &id in case.ids.iter().skip(1) {
        let piece = tokenizer.decode(prev, id);
        if let [b] = piece[..] {
            if b >= 0x80 {
                return false;
            }
        }
        prev = id;
    }
    true
}
