#![cfg(not(target_arch = "wasm32"))]
//! The bad-input matrix (tests/bad_input.json, also run in the browser by
//! tests/e2e/hardening.test.mjs): every kind of bad checkpoint, tokenizer, prompt and option
//! gives the expected message, naming the file and the problem, or is clamped as run.c does;
//! and a generator whose `start` was refused still generates the golden story after.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::corrupt::{corrupt, Corruption, TokFile};
use llama2_wasm::native::{read_checkpoint, read_tokenizer};
use llama2_wasm::{Error, Generator, Options, Step};
use serde_json::Value;

const MATRIX: &str = include_str!("bad_input.json");
const LLAMA2: &str = env!("CARGO_BIN_EXE_llama2");
const GEN_CHECKPOINT: &str = env!("CARGO_BIN_EXE_gen-checkpoint");

fn rows() -> Vec<Value> {
    let matrix: Value = serde_json::from_str(MATRIX).expect("tests/bad_input.json is valid JSON");
    matrix["rows"].as_array().expect("rows").clone()
}

/// A row's string field, or `default`.
fn field<'a>(row: &'a Value, key: &str, default: &'a str) -> &'a str {
    row[key].as_str().unwrap_or(default)
}

/// The bytes of a base file: a test model, or `gen:SHAPE` made by gen-checkpoint.
fn base_bytes(spec: &str, dir: &Path) -> Option<Vec<u8>> {
    let Some(shape) = spec.strip_prefix("gen:") else {
        return common::fixture_bytes(spec);
    };
    let out = dir.join(format!("gen-{}.bin", shape.replace(',', "_")));
    if !out.exists() {
        let status = Command::new(GEN_CHECKPOINT)
            .args(["--shape", shape, "--seed", "1"])
            .arg(&out)
            .status()
            .expect("run gen-checkpoint");
        assert!(status.success(), "gen-checkpoint --shape {shape} failed");
    }
    Some(std::fs::read(&out).unwrap())
}

/// Applies a row's operations (see tests/bad_input.json) to a file's bytes.
fn apply(mut bytes: Vec<u8>, ops: &[Value]) -> Vec<u8> {
    for op in ops {
        let op = op.as_array().expect("an op is an array");
        let name = op[0].as_str().expect("op name");
        let int =
            |i: usize| op[i].as_i64().unwrap_or_else(|| panic!("{name}: integer argument {i}"));
        bytes = match name {
            "truncate" => corrupt(&bytes, Corruption::Truncate(int(1) as usize)),
            "truncate_end" => corrupt(&bytes, Corruption::Truncate(bytes.len() - int(1) as usize)),
            "set_i32" => corrupt(&bytes, Corruption::SetI32(int(1) as usize, int(2) as i32)),
            "set_byte" => corrupt(&bytes, Corruption::SetByte(int(1) as usize, int(2) as u8)),
            "append" => corrupt(&bytes, Corruption::Append(int(1) as usize)),
            "tok_keep" => {
                let mut tok = TokFile::parse(&bytes);
                tok.entries.truncate(int(1) as usize);
                tok.bytes()
            }
            "tok_len" => {
                let at = TokFile::parse(&bytes).len_offset(int(1) as usize);
                corrupt(&bytes, Corruption::SetI32(at, int(2) as i32))
            }
            "tok_score_bits" => {
                let at = TokFile::parse(&bytes).len_offset(int(1) as usize) - 4;
                corrupt(&bytes, Corruption::SetI32(at, int(2) as u32 as i32))
            }
            other => panic!("unknown op {other}"),
        };
    }
    bytes
}

/// Writes the row's checkpoint or tokenizer (changed or not) to `dir`; returns its path.
fn file_for(row: &Value, what: &str, default: &str, dir: &Path) -> Option<PathBuf> {
    let id = row["id"].as_str().unwrap();
    let spec = field(row, what, default);
    let ops = row[format!("{what}_ops")].as_array().cloned().unwrap_or_default();
    if ops.is_empty() && !spec.starts_with("gen:") {
        return common::fixture(spec);
    }
    let bytes = apply(base_bytes(spec, dir)?, &ops);
    let suffix = if what == "tokenizer" { "-tok" } else { "" };
    let path = dir.join(format!("bad-{id}{suffix}.bin"));
    std::fs::write(&path, bytes).unwrap();
    Some(path)
}

/// Row options over the defaults; `"NaN"` is NaN, steps above usize are usize::MAX.
fn options(value: &Value) -> Options {
    let float = |key: &str, default: f32| match &value[key] {
        Value::String(s) if s == "NaN" => f32::NAN,
        Value::Number(n) => n.as_f64().unwrap() as f32,
        _ => default,
    };
    let steps = value["steps"].as_f64().map_or(256, |s| {
        if s >= usize::MAX as f64 {
            usize::MAX
        } else {
            s as usize
        }
    });
    Options {
        temperature: float("temperature", 0.0),
        topp: float("topp", 0.9),
        seed: value["seed"].as_u64().unwrap_or(1),
        steps,
    }
}

fn prompt(row: &Value) -> String {
    match row["prompt_repeat"].as_array() {
        Some(r) => r[0].as_str().unwrap().repeat(r[1].as_u64().unwrap() as usize),
        None => field(row, "prompt", "Once upon a time").to_string(),
    }
}

/// Runs a generation to its end; returns its token ids.
fn run(generator: &mut Generator, prompt: &str, options: &Options) -> Result<Vec<u32>, Error> {
    generator.start(prompt, options)?;
    while let Step::Piece(_) = generator.next()? {}
    Ok(generator.ids().to_vec())
}

/// Checks `message` against a row's expected substrings (`a|b` = either), names filled in.
fn check_message(row: &Value, message: &str, names: &[(&str, String)]) {
    let id = row["id"].as_str().unwrap();
    for want in row["expect"]["error"].as_array().expect("expect.error") {
        let mut want = want.as_str().unwrap().to_string();
        for (key, name) in names {
            want = want.replace(&format!("{{{key}}}"), name);
        }
        assert!(
            want.split('|').any(|w| message.contains(w)),
            "{id}: the message lacks '{want}':\n  {message}"
        );
    }
    println!("| {id} | {message} |");
}

/// The golden ids of aidreams260K, "Once upon a time", temperature 0 (256 steps).
fn golden_ids() -> Option<Vec<u32>> {
    let path = common::golden("generate.json")?;
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = cases.as_array()?.iter().find(|c| {
        c["checkpoint"] == "aidreams260K.bin"
            && c["prompt"] == "Once upon a time"
            && c["temperature"] == 0.0
            && c["steps"] == 256
    })?;
    Some(case["ids"].as_array()?.iter().map(|v| v.as_u64().unwrap() as u32).collect())
}

/// A row through the `llama2` command line: it must fail with the expected message on stderr.
fn run_cli(row: &Value, cli: &[Value], dir: &Path) {
    let args: Vec<String> = cli.iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let (Some(checkpoint), Some(tokenizer)) =
        (common::fixture("aidreams260K.bin"), common::fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    let mut command = Command::new(LLAMA2);
    if args[0].starts_with('-') {
        command.arg(&checkpoint).arg("-z").arg(&tokenizer).args(&args);
    } else {
        command.arg(dir.join(&args[0])).arg("-z").arg(&tokenizer);
    }
    let output = command.output().expect("run llama2");
    assert!(!output.status.success(), "{}: llama2 {args:?} succeeded", row["id"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    check_message(row, stderr.lines().next().unwrap_or(""), &[]);
}

#[test]
fn every_bad_input_gives_its_message_or_is_clamped() {
    let dir = common::out_dir("bad_input");
    let golden = golden_ids();
    let (mut errors, mut clamped, mut skipped) = (0, 0, Vec::new());
    for row in rows() {
        let id = row["id"].as_str().unwrap();
        if row["native"] == false {
            skipped.push(format!("{id} ({})", field(&row, "native_note", "")));
            continue;
        }
        if let Some(cli) = row["cli"].as_array() {
            run_cli(&row, cli, &dir);
            errors += 1;
            continue;
        }
        let (Some(checkpoint), Some(tokenizer)) = (
            file_for(&row, "checkpoint", "aidreams260K.bin", &dir),
            file_for(&row, "tokenizer", "tok512-aidreams.bin", &dir),
        ) else {
            continue;
        };
        let names = [
            ("checkpoint", checkpoint.file_name().unwrap().to_string_lossy().into_owned()),
            ("tokenizer", tokenizer.file_name().unwrap().to_string_lossy().into_owned()),
        ];
        let loaded = read_checkpoint(&checkpoint).and_then(|c| {
            let tokenizer = read_tokenizer(&tokenizer, c.config().vocab_size)?;
            Generator::new(c, tokenizer)
        });
        let mut generator = match loaded {
            Ok(generator) => generator,
            Err(err) => {
                check_message(&row, &err.to_string(), &names);
                errors += 1;
                continue;
            }
        };
        let result = run(&mut generator, &prompt(&row), &options(&row["options"]));
        if let Some(same_as) = row["expect"].get("same_as") {
            let ids = result.unwrap_or_else(|e| panic!("{id}: refused: {e}"));
            let want = run(&mut generator, &prompt(&row), &options(same_as)).unwrap();
            assert_eq!(ids, want, "{id}: not clamped as run.c");
            println!("| {id} | (no error: same ids as {same_as}) |");
            clamped += 1;
        } else {
            let err = result.expect_err(&format!("{id}: no error"));
            check_message(&row, &err.to_string(), &names);
            errors += 1;
            // The refused start left the generator usable: the golden story still comes out.
            if let (Some(golden), "aidreams260K.bin") =
                (&golden, field(&row, "checkpoint", "aidreams260K.bin"))
            {
                let options = Options { temperature: 0.0, topp: 0.9, seed: 1, steps: 256 };
                let ids = run(&mut generator, "Once upon a time", &options).unwrap();
                assert_eq!(&ids, golden, "{id}: the generator is broken after the error");
            }
        }
    }
    eprintln!(
        "bad-input matrix (native): {errors} refused with the expected message, {clamped} clamped \
         as run.c, not run natively: {}",
        skipped.join(", ")
    );
    let have_models = common::fixture("aidreams260K.bin").is_some();
    assert!(
        !have_models || errors + clamped >= 35,
        "only {} rows ran (missing test models?)",
        errors + clamped
    );
}
