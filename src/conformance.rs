//! Golden-file cases (`../shared/golden/generate.json`, `tokenizer.json`, `chat.json`):
//! parsing, running them through the engine, and the one set of rules a result is judged by
//! ([`check`]): the native runner, the cargo tests, the wasm tests and the JavaScript runners
//! (Node, browsers: they write their outcomes and `conformance --check` judges them) all use
//! it. Reads no files.

use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::error::Result;
use crate::generate::{parse_seed, terminal_chat, Generator, Options, Step};
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

/// One `run -m chat` session of run.c (see golden/README.md): the system prompt (`None`: asked
/// on stdin, answered with an empty line), the user's turns (the first as `-i`), and stdout.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatCase {
    pub checkpoint: String,
    pub tokenizer: String,
    pub system: Option<String>,
    pub user: Vec<String>,
    pub options: Options,
    pub stdout: String,
}

impl ChatCase {
    /// Each assistant turn of run.c's transcript: what follows "Assistant: " up to the next
    /// "\nUser: " (or the end).
    pub fn turns(&self) -> Vec<&str> {
        self.stdout
            .split("Assistant: ")
            .skip(1)
            .map(|turn| turn.split("\nUser: ").next().unwrap_or(turn))
            .collect()
    }
}

/// A case of any golden file.
#[derive(Debug, Clone, PartialEq)]
pub enum Case {
    Generate(GenerateCase),
    Tokenizer(TokenizerCase),
    Chat(ChatCase),
}

impl Case {
    /// How failures name the case.
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
            Case::Chat(c) => format!(
                "{} chat system={:?} user={:?} t={} p={} s={} n={}",
                c.checkpoint,
                c.system,
                c.user,
                c.options.temperature,
                c.options.topp,
                c.options.seed,
                c.options.steps
            ),
        }
    }

    /// The model files the case needs (checkpoint first, when there is one).
    pub fn files(&self) -> Vec<&str> {
        match self {
            Case::Generate(c) => vec![&c.checkpoint, &c.tokenizer],
            Case::Tokenizer(c) => vec![&c.tokenizer],
            Case::Chat(c) => vec![&c.checkpoint, &c.tokenizer],
        }
    }

    /// The golden ids (chat transcripts have none: their text is compared).
    pub fn expected_ids(&self) -> Option<&[u32]> {
        match self {
            Case::Generate(c) => Some(&c.ids),
            Case::Tokenizer(c) => Some(&c.ids),
            Case::Chat(_) => None,
        }
    }
}

/// Parses a golden file: a JSON list of generate, tokenizer or chat cases.
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
    let ids = || {
        v["ids"]
            .as_array()
            .ok_or("missing 'ids'")?
            .iter()
            .map(|id| id.as_u64().map(|id| id as u32).ok_or("an id is not a number".to_string()))
            .collect::<std::result::Result<Vec<u32>, String>>()
    };
    if v.get("mode").and_then(Value::as_str) == Some("chat") {
        // As run.c's command line: strings, read with atof / atoi.
        let text_num = |k: &str| -> std::result::Result<f64, String> {
            str_field(k)?.trim().parse().map_err(|_| format!("'{k}' is not a number"))
        };
        let user = v["user"]
            .as_array()
            .ok_or("missing 'user'")?
            .iter()
            .map(|u| {
                u.as_str().map(str::to_string).ok_or("a user turn is not a string".to_string())
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return Ok(Case::Chat(ChatCase {
            checkpoint: str_field("checkpoint")?,
            tokenizer: str_field("tokenizer")?,
            system: v["system"].as_str().map(str::to_string),
            user,
            options: Options {
                temperature: text_num("temperature")? as f32,
                topp: text_num("topp")? as f32,
                seed: parse_seed(&str_field("seed")?).map_err(|e| e.to_string())?,
                steps: text_num("steps")?.max(0.0) as usize,
            },
            stdout: str_field("stdout")?,
        }));
    }
    if v.get("checkpoint").is_some() {
        Ok(Case::Generate(GenerateCase {
            checkpoint: str_field("checkpoint")?,
            tokenizer: str_field("tokenizer")?,
            prompt: v["prompt"].as_str().map(str::to_string),
            temperature: num("temperature")? as f32,
            topp: num("topp")? as f32,
            seed: v["seed"].as_u64().ok_or("missing integer 'seed'")?,
            steps: num("steps")? as usize,
            ids: ids()?,
            stdout: str_field("stdout")?,
        }))
    } else {
        Ok(Case::Tokenizer(TokenizerCase {
            tokenizer: str_field("tokenizer")?,
            vocab_size: num("vocab_size")? as usize,
            text: str_field("text")?,
            bos: bool_field("bos")?,
            eos: bool_field("eos")?,
            ids: ids()?,
        }))
    }
}

/// One assistant turn as the API streams it, and why it ended ("eos", "steps", "context").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub text: String,
    pub reason: String,
}

/// What running a case gave, wherever it ran: the ids (every token fed, golden-file style),
/// and the text (generate: the story; chat: the whole terminal transcript) or, for a chat run
/// through the API, its turns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub ids: Vec<u32>,
    pub text: Option<String>,
    pub turns: Option<Vec<Turn>>,
}

/// How much of a case [`check`] could compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compared {
    /// The ids and the text (or, for a tokenizer case, the ids).
    Everything,
    /// The ids only: run.c dropped bytes from the text (see [`drops_bytes`]).
    Ids,
    /// Nothing: a chat transcript (no golden ids) whose text run.c dropped bytes from.
    Nothing,
}

/// Judges `outcome` against `case`: the ids must be the golden ids; the text must be run.c's
/// wherever it can be compared. run.c drops the one-byte pieces it cannot print (byte-fallback
/// bytes >= 0x80) where we reassemble them into characters, so where the run's ids hold such
/// a piece ([`drops_bytes`], with the case's tokenizer) the text is not compared (as
/// golden/README.md says). The error says what differed.
pub fn check(
    case: &Case,
    outcome: &Outcome,
    tokenizer: &Tokenizer,
) -> std::result::Result<Compared, String> {
    if let Some(expected) = case.expected_ids() {
        if let Some(diff) = first_difference(expected, &outcome.ids) {
            return Err(diff);
        }
    }
    if let Case::Tokenizer(_) = case {
        return Ok(Compared::Everything);
    }
    if drops_bytes(&outcome.ids, tokenizer) {
        return Ok(if case.expected_ids().is_some() { Compared::Ids } else { Compared::Nothing });
    }
    let (expected, got) = match (case, &outcome.text, &outcome.turns) {
        (Case::Generate(c), Some(text), _) => (&c.stdout, text),
        (Case::Chat(c), Some(text), _) => (&c.stdout, text),
        (Case::Chat(c), None, Some(turns)) => {
            return check_turns(c, turns).map(|_| Compared::Everything)
        }
        _ => return Err("no text was reported".into()),
    };
    if expected != got {
        return Err(format!("the text differs: expected {expected:?} got {got:?}"));
    }
    Ok(Compared::Everything)
}

/// A chat's turns as the API gave them, against run.c's transcript. The transcript writes a
/// turn ended by EOS with the newline of its last piece cut off by the "\nUser: " that
/// follows, and ends a chat that ran out of steps with a newline of its own; an empty turn
/// after the transcript's end is the API noticing the steps are spent.
fn check_turns(c: &ChatCase, turns: &[Turn]) -> std::result::Result<(), String> {
    let expected = c.turns();
    for (i, want) in expected.iter().enumerate() {
        let Some(turn) = turns.get(i) else {
            return Err(format!("turn {} is missing: expected {want:?}", i + 1));
        };
        let got = if turn.reason == "eos" {
            turn.text.strip_suffix('\n').unwrap_or(&turn.text).to_string()
        } else {
            format!("{}\n", turn.text)
        };
        if *want != got {
            return Err(format!("turn {} differs: expected {want:?} got {got:?}", i + 1));
        }
    }
    match turns.get(expected.len()) {
        Some(extra) if !extra.text.is_empty() || extra.reason == "eos" => {
            Err(format!("an extra turn {:?}", extra.text))
        }
        _ => Ok(()),
    }
}

/// A runner's report of one case: its outcome, or why it could not run.
pub type Reported = std::result::Result<Outcome, String>;

/// The outcomes a JavaScript runner wrote, one JSON object per line: `{ "case": index, "ids":
/// [...], "text": "..." }` (or `"turns": [{ "text", "reason" }]`), or `{ "case": index,
/// "error": "..." }` for a case that failed to run.
pub fn parse_outcomes(jsonl: &str) -> std::result::Result<Vec<(usize, Reported)>, String> {
    jsonl
        .lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let at = |what: &str| format!("line {}: {what}", n + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
            let case = v["case"].as_u64().ok_or_else(|| at("no case index"))? as usize;
            if let Some(error) = v["error"].as_str() {
                return Ok((case, Err(error.to_string())));
            }
            let ids = v["ids"]
                .as_array()
                .ok_or_else(|| at("no ids"))?
                .iter()
                .map(|id| {
                    id.as_u64().map(|id| id as u32).ok_or_else(|| at("an id is not a number"))
                })
                .collect::<std::result::Result<Vec<u32>, String>>()?;
            let turns = match v.get("turns").and_then(Value::as_array) {
                None => None,
                Some(turns) => Some(
                    turns
                        .iter()
                        .map(|t| match (t["text"].as_str(), t["reason"].as_str()) {
                            (Some(text), Some(reason)) => {
                                Ok(Turn { text: text.into(), reason: reason.into() })
                            }
                            _ => Err(at("a turn needs text and reason")),
                        })
                        .collect::<std::result::Result<Vec<Turn>, String>>()?,
                ),
            };
            Ok((case, Ok(Outcome { ids, text: v["text"].as_str().map(str::to_string), turns })))
        })
        .collect()
}

/// Runs a generate case as run.c would: the same prompt, options and step count.
pub fn run_generate(case: &GenerateCase, generator: &mut Generator) -> Result<Outcome> {
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
    Ok(Outcome { ids: generator.ids().to_vec(), text: Some(text), turns: None })
}

/// Runs a chat case as `llama2 -m chat` does (src/bin/llama2.rs): the terminal transcript.
pub fn run_chat(case: &ChatCase, generator: &mut Generator) -> Result<Outcome> {
    let mut lines = case.user.iter().skip(1).cloned();
    // run.c asks for the system prompt on stdin when none is given: answered with an empty line.
    let mut stdin = case.system.is_none().then(String::new).into_iter().chain(&mut lines);
    let mut text = String::new();
    terminal_chat(
        generator,
        case.system.as_deref(),
        case.user.first().map(String::as_str),
        &case.options,
        &mut || stdin.next(),
        &mut |piece| {
            text.push_str(piece);
            Ok(())
        },
    )?;
    Ok(Outcome { ids: generator.ids().to_vec(), text: Some(text), turns: None })
}

/// Runs a generate or chat case from the raw bytes of its two files.
pub fn run_bytes(case: &Case, checkpoint: &[u8], tokenizer: &[u8]) -> Result<Outcome> {
    let (name, tok_name) = match case {
        Case::Generate(c) => (&c.checkpoint, &c.tokenizer),
        Case::Chat(c) => (&c.checkpoint, &c.tokenizer),
        Case::Tokenizer(c) => {
            let tokenizer = Tokenizer::from_bytes(tokenizer, c.vocab_size, &c.tokenizer)?;
            let ids = tokenizer.encode(c.text.as_bytes(), c.bos, c.eos)?;
            return Ok(Outcome { ids, text: None, turns: None });
        }
    };
    let checkpoint = Checkpoint::from_bytes(checkpoint, name)?;
    let tokenizer = Tokenizer::from_bytes(tokenizer, checkpoint.config().vocab_size, tok_name)?;
    run(case, &mut Generator::new(checkpoint, tokenizer)?)
}

/// Runs a generate or chat case on `generator` (a tokenizer case needs none: see `run_bytes`).
pub fn run(case: &Case, generator: &mut Generator) -> Result<Outcome> {
    match case {
        Case::Generate(c) => run_generate(c, generator),
        Case::Chat(c) => run_chat(c, generator),
        Case::Tokenizer(c) => {
            let ids = generator.tokenizer().encode(c.text.as_bytes(), c.bos, c.eos)?;
            Ok(Outcome { ids, text: None, turns: None })
        }
    }
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

/// Whether decoding `ids` (golden-file style: each token after the one before) meets a
/// one-byte piece >= 0x80, which run.c drops and we reassemble into a character.
pub fn drops_bytes(ids: &[u32], tokenizer: &Tokenizer) -> bool {
    ids.windows(2).any(|w| {
        (w[1] as usize) < tokenizer.vocab_size()
            && matches!(tokenizer.decode(w[0], w[1])[..], [b] if b >= 0x80)
    })
}
