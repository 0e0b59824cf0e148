#![cfg(not(target_arch = "wasm32"))]
//! The `llama2` binary as a user runs it: golden ids and text, the speed line, chat on
//! stdin, and clear errors (exit code 2 with the usage for bad flags, 1 for bad files).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use llama2_wasm::conformance::{self, Case, GenerateCase};
use llama2_wasm::native::{read_checkpoint, read_tokenizer};
use llama2_wasm::{Generator, Options, Step};

const LLAMA2: &str = env!("CARGO_BIN_EXE_llama2");

/// Runs llama2 with `args`, feeding `stdin` (closed right after; None = no stdin at all).
fn llama2(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(LLAMA2)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {LLAMA2}: {e}"));
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for llama2")
}

/// `llama2(args, None)`, failing the test instead of waiting for ever when the process hangs
/// (a minute is far beyond any answer here: this guards against a hang, it times nothing).
fn llama2_or_hang(args: &[&str], what: &str) -> Output {
    let mut child = Command::new(LLAMA2)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {LLAMA2}: {e}"));
    for _ in 0..600 {
        if child.try_wait().expect("wait for llama2").is_some() {
            return child.wait_with_output().expect("wait for llama2");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().ok();
    panic!("{what}: llama2 hangs (still running after a minute)");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

/// The golden generate case for `checkpoint` with `prompt`, or None if the golden file is
/// missing.
fn golden_case(checkpoint: &str, prompt: Option<&str>, temperature: f32) -> Option<GenerateCase> {
    let path = common::golden("generate.json")?;
    let cases = conformance::parse_cases(&std::fs::read_to_string(path).unwrap()).unwrap();
    let found = cases.into_iter().find_map(|c| match c {
        Case::Generate(c)
            if c.checkpoint == checkpoint
                && c.prompt.as_deref() == prompt
                && c.temperature == temperature =>
        {
            Some(c)
        }
        _ => None,
    });
    Some(found.unwrap_or_else(|| panic!("no golden case {checkpoint} {prompt:?} t={temperature}")))
}

/// The command line of a golden case (run.c's flags), plus `extra`.
fn run_case(case: &GenerateCase, extra: &[&str]) -> Option<Output> {
    let checkpoint = common::fixture(&case.checkpoint)?;
    let tokenizer = common::fixture(&case.tokenizer)?;
    let (t, p, seed, n) = (
        case.temperature.to_string(),
        case.topp.to_string(),
        case.seed.to_string(),
        case.steps.to_string(),
    );
    let mut args =
        vec![s(&checkpoint), "-z", s(&tokenizer), "-t", &t, "-p", &p, "-s", &seed, "-n", &n];
    if let Some(prompt) = &case.prompt {
        args.extend(["-i", prompt.as_str()]);
    }
    args.extend_from_slice(extra);
    let out = llama2(&args, None);
    assert!(out.status.success(), "{}: {}", case.checkpoint, text(&out.stderr));
    Some(out)
}

fn ids_line(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
}

#[test]
fn ids_equal_the_golden_ids_in_every_format() {
    let cases = [
        ("gqa-v0.bin", Some("Once upon a time"), 0.0),
        ("gqa-v1.bin", Some("Once upon a time"), 0.0),
        ("gqa-v2.bin", Some("Hello world"), 0.0),
        ("unshared-v0.bin", Some("Lily"), 0.7),
        ("aidreams260K.bin", Some("The robot"), 1.0),
        ("aidreams260K-v2.bin", None, 0.5),
    ];
    for (checkpoint, prompt, temperature) in cases {
        let Some(case) = golden_case(checkpoint, prompt, temperature) else {
            return;
        };
        let Some(out) = run_case(&case, &["--ids"]) else {
            continue;
        };
        assert_eq!(text(&out.stdout), format!("{}\n", ids_line(&case.ids)), "{}", case.checkpoint);
    }
}

#[test]
fn text_equals_the_golden_stdout_and_speed_goes_to_stderr() {
    let Some(case) = golden_case("aidreams260K.bin", Some("Once upon a time"), 0.0) else {
        return;
    };
    let Some(out) = run_case(&case, &[]) else {
        return;
    };
    assert_eq!(text(&out.stdout), format!("{}\n", case.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("achieved tok/s: "), "no speed line in {stderr:?}");
}

/// run.c reads the seed with atoi into a u64: -5 is the state 2^64 - 5.
#[test]
fn negative_seed_is_accepted_as_run_c_does() {
    let (Some(model), Some(tok)) =
        (common::fixture("aidreams260K.bin"), common::fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    let out = llama2(&[s(&model), "-z", s(&tok), "-s", "-5", "-t", "1", "-n", "40", "--ids"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let checkpoint = read_checkpoint(&model).unwrap();
    let tokenizer = read_tokenizer(&tok, checkpoint.config().vocab_size).unwrap();
    let mut generator = Generator::new(checkpoint, tokenizer).unwrap();
    let options = Options { temperature: 1.0, topp: 0.9, seed: 5u64.wrapping_neg(), steps: 40 };
    generator.start("", &options).unwrap();
    while let Step::Piece(_) = generator.next().unwrap() {}
    assert_eq!(text(&out.stdout), format!("{}\n", ids_line(generator.ids())));
}

fn chat_fixtures() -> Option<(String, String)> {
    let model = common::fixture("aidreams260K.bin")?;
    let tok = common::fixture("tok512-aidreams.bin")?;
    Some((s(&model).to_string(), s(&tok).to_string()))
}

#[test]
fn chat_with_prompt_and_closed_stdin_ends_cleanly() {
    let Some((model, tok)) = chat_fixtures() else {
        return;
    };
    let out = llama2(
        &[&model, "-z", &tok, "-m", "chat", "-y", "sys", "-i", "hi", "-s", "1", "-n", "60"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Assistant: "), "{stdout:?}");
}

#[test]
fn chat_reads_turns_from_stdin() {
    let Some((model, tok)) = chat_fixtures() else {
        return;
    };
    // No -y and no -i: the system prompt and the first turn come from stdin.
    let out = llama2(
        &[&model, "-z", &tok, "-m", "chat", "-s", "1", "-n", "100"],
        Some("be brief\nhello\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("Enter system prompt (optional): User: Assistant: "), "{stdout:?}");
    // Empty stdin: as run.c, the (empty) last line is the turn, until the steps run out.
    let out = llama2(&[&model, "-z", &tok, "-m", "chat", "-y", "sys", "-n", "40"], Some(""));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("User: Assistant: "), "{}", text(&out.stdout));
}

/// Every transcript of ../shared/golden/chat.json (run.c's and runq.c's `-m chat`), through the
/// command line as the README says a case maps to one: stdout byte for byte (where run.c
/// dropped no byte-fallback byte; `conformance::check` decides, with the ids of the same run).
#[test]
fn chat_transcripts_are_run_c_s_byte_for_byte() {
    let Some(path) = common::golden("chat.json") else {
        return;
    };
    let cases = conformance::parse_cases(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in &cases {
        let Case::Chat(c) = case else { continue };
        let (Some(model), Some(tok)) =
            (common::fixture(&c.checkpoint), common::fixture(&c.tokenizer))
        else {
            continue;
        };
        let (seed, t, p, n) = (
            c.options.seed.to_string(),
            c.options.temperature.to_string(),
            c.options.topp.to_string(),
            c.options.steps.to_string(),
        );
        let mut args =
            vec![s(&model), "-z", s(&tok), "-m", "chat", "-s", &seed, "-t", &t, "-p", &p];
        args.extend(["-n", &n, "-i", &c.user[0]]);
        if let Some(system) = &c.system {
            args.extend(["-y", system.as_str()]);
        }
        let stdin: String = c
            .system
            .is_none()
            .then_some("\n")
            .into_iter()
            .map(str::to_string)
            .chain(c.user[1..].iter().map(|u| format!("{u}\n")))
            .collect();
        let out = llama2(&args, Some(&stdin));
        assert!(out.status.success(), "{}: {}", case.name(), text(&out.stderr));
        let files = [std::fs::read(&model).unwrap(), std::fs::read(&tok).unwrap()];
        let run = conformance::run_bytes(case, &files[0], &files[1]).unwrap();
        let checkpoint = llama2_wasm::Checkpoint::from_bytes(&files[0], "m").unwrap();
        let tokenizer =
            llama2_wasm::Tokenizer::from_bytes(&files[1], checkpoint.config().vocab_size, "t")
                .unwrap();
        let outcome =
            conformance::Outcome { ids: run.ids, text: Some(text(&out.stdout)), turns: None };
        if let Err(problem) = conformance::check(case, &outcome, &tokenizer) {
            panic!("{}: {problem}", case.name());
        }
    }
}

#[test]
fn bad_flags_exit_2_with_the_usage() {
    let model = "model.bin";
    let bad: &[&[&str]] = &[
        &[],
        &["-t", "1"],
        &[model, "-t"],
        &[model, "-t", "hot"],
        &[model, "-p", "x"],
        &[model, "-s", "1.5"],
        &[model, "-n", "many"],
        &[model, "-m", "poem"],
        &[model, "-x", "1"],
        &[model, "--frobnicate"],
    ];
    for args in bad {
        let out = llama2(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("Usage:"), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn bad_files_and_nan_give_clear_errors() {
    let dir = common::out_dir("cli_bad_files");
    let missing = dir.join("missing-model.bin");
    let out = llama2(&[s(&missing)], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing-model.bin"), "{}", text(&out.stderr));

    let (Some(model), Some(tok)) =
        (common::fixture("gqa-v1.bin"), common::fixture("tokenizer.bin"))
    else {
        return;
    };
    let bytes = std::fs::read(&model).unwrap();
    let truncated = dir.join("truncated-model.bin");
    std::fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    let garbage = dir.join("garbage-model.bin");
    std::fs::write(&garbage, b"this is not a checkpoint at all, just some text").unwrap();
    for (path, name) in [(&truncated, "truncated-model.bin"), (&garbage, "garbage-model.bin")] {
        let out = llama2(&[s(path), "-z", s(&tok)], None);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(name) && stderr.contains("checkpoint"), "{stderr}");
    }

    // A missing or wrong tokenizer names the tokenizer file.
    let no_tok = dir.join("missing-tokenizer.bin");
    let out = llama2(&[s(&model), "-z", s(&no_tok)], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("missing-tokenizer.bin"), "{}", text(&out.stderr));
    let short_tok = dir.join("short-tokenizer.bin");
    std::fs::write(&short_tok, &std::fs::read(&tok).unwrap()[..1000]).unwrap();
    let out = llama2(&[s(&model), "-z", s(&short_tok)], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("short-tokenizer.bin"), "{}", text(&out.stderr));

    // NaN is nonsense: refused with a clear message, in both modes.
    for mode in ["generate", "chat"] {
        let out = llama2(
            &[s(&model), "-z", s(&tok), "-t", "nan", "-m", mode, "-y", "s", "-i", "hi"],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{mode}");
        assert!(text(&out.stderr).contains("NaN"), "{mode}: {}", text(&out.stderr));
    }
    let out = llama2(&[s(&model), "-z", s(&tok), "-p", "NaN"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("NaN"), "{}", text(&out.stderr));

    // run.c clamps what is merely out of range: negative temperature and steps, top-p > 1.
    let out = llama2(
        &[s(&model), "-z", s(&tok), "-t", "-1", "-p", "7", "-n", "-3", "-s", "1", "--ids"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// What an adversarial pass found: each of these once panicked, hung, read
/// until memory ran out, or named the wrong problem.
#[test]
fn hostile_arguments_and_files_get_clear_errors_quickly() {
    use std::os::unix::ffi::OsStrExt;
    let (Some(model), Some(tok)) =
        (common::fixture("aidreams260K.bin"), common::fixture("tok512-aidreams.bin"))
    else {
        return;
    };
    // An argument that is not UTF-8: a usage error naming it, not a panic (exit 101).
    let out = Command::new(LLAMA2)
        .args([
            s(&model).as_ref(),
            "-z".as_ref(),
            s(&tok).as_ref(),
            "-i".as_ref(),
            std::ffi::OsStr::from_bytes(b"\xff\xfe"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("argument 5") && text(&out.stderr).contains("not valid UTF-8")
    );

    // An unknown option is named as such, even without a value after it.
    let out = llama2(&[s(&model), "-x"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown option '-x'"), "{}", text(&out.stderr));

    // --top-k 0 wrote empty lists; --top-k without --inspect was silently ignored.
    let inspect = common::out_dir("cli_top_k").join("inspect.jsonl");
    for (args, problem) in [
        (vec!["--inspect", s(&inspect), "--top-k", "0"], "1 or more"),
        (vec!["--top-k", "5"], "give --inspect FILE too"),
    ] {
        let out = llama2(&[&[s(&model), "-z", s(&tok)], &args[..]].concat(), None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains(problem), "{args:?}: {}", text(&out.stderr));
    }

    // --trace and --ablate: a bad spec or a lone --trace-pos at once (usage, 2); a layer or
    // head the model lacks, or a position the story did not reach, once the model is known (1).
    let trace = common::out_dir("cli_trace").join("trace.json");
    for (args, code, problem) in [
        (vec!["--ablate", "1-2"], 2, "give LAYER:HEAD, LAYER:attn or LAYER:ffn"),
        (vec!["--ablate", "x:attn"], 2, "give LAYER:HEAD"),
        (vec!["--trace-pos", "3"], 2, "give --trace FILE too"),
        (vec!["--trace", s(&trace), "--trace-pos", "-1"], 2, "is not a position"),
        (vec!["--ablate", "4:0"], 1, "layer 4 is past the model's 4 layers"),
        (vec!["--ablate", "0:4"], 1, "head 4 is past the model's 4 heads"),
        (
            vec!["-n", "8", "--trace", s(&trace), "--trace-pos", "8"],
            1,
            "the story ran positions 0..=7",
        ),
        // --lens-map: a lone --pin, or a pin that is no token of the vocabulary.
        (vec!["--pin", "3"], 2, "give --lens-map FILE too"),
        (vec!["--lens-map", s(&trace), "--pin", "x"], 2, "is not a token id"),
        (
            vec!["-n", "4", "--lens-map", s(&trace), "--pin", "512"],
            1,
            "token 512 is not in the vocabulary of 512",
        ),
        (vec!["-m", "chat", "--lens-map", s(&trace)], 2, "work in generate mode"),
    ] {
        let out = llama2(&[&[s(&model), "-z", s(&tok)], &args[..]].concat(), None);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(problem), "{args:?}: {}", text(&out.stderr));
    }

    // Special files are refused by what they are, at once: a FIFO with no writer (opening it
    // would block for ever), a device (/dev/zero would be read until memory runs out), a
    // directory.
    let dir = common::out_dir("cli_hostile");
    let fifo = dir.join("model.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let dev_zero = std::path::PathBuf::from("/dev/zero");
    for (checkpoint, tokenizer, what) in [
        (&fifo, &tok, "a FIFO"),
        (&model, &fifo, "a FIFO"),
        (&model, &dev_zero, "a device"),
        (&dir, &tok, "a directory"),
    ] {
        let out = llama2_or_hang(&[s(checkpoint), "-z", s(tokenizer)], what);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(text(&out.stderr).contains(&format!("is {what}")), "{}", text(&out.stderr));
    }

    // A tokenizer far larger than any: refused by its size, not read.
    let huge = dir.join("huge-tokenizer.bin");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(llama2_wasm::native::MAX_TOKENIZER_BYTES + 1)
        .unwrap();
    let out = llama2(&[s(&model), "-z", s(&huge)], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("more than any tokenizer.bin"), "{}", text(&out.stderr));
}
