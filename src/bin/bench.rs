//! `bench <checkpoint> <tokenizer> [--prompt TEXT] [--steps N] [--threads N] [--context N]`:
//! one measurement of the native engine for `./build.sh bench` (bench/bench.mjs runs it
//! alternately with the wasm engines); `--threads` splits the model over that many threads.
//! `bench --prompt-of N <tokenizer>` prints the benchmark prompt: N tokens with BOS.
//!
//! Prints one JSON object: `decode_tok_s` (tokens sampled per second over `--steps` positions
//! from an empty prompt), `ttft_ms` (from `start` with the prompt to its first sampled token),
//! `prompt_tokens`, `load_ms` (read + parse the checkpoint and tokenizer, allocate the run
//! state), `memory_mb` (weights + run state of every thread's shard: the process's resident
//! memory where Linux tells it, else the leader's shard alone), `backend` (the kernel set).
//! Same sampler as the wasm runners: temperature 1, top-p 1 (no top-p sort: see
//! BENCHMARKS.md), seed 42.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use llama2_wasm::native::{load_generator, read_tokenizer};
use llama2_wasm::{kernels, Options, Result, Step, Tokenizer};

/// The process's resident memory (`VmRSS` in /proc/self/status), where the system says it:
/// with `--threads`, the other shards live in other threads, out of the leader's sight.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    Some(kb.trim().strip_suffix("kB")?.trim().parse::<usize>().ok()? * 1024)
}

/// Text the benchmark prompt is cut from (whole words, until it has the wanted tokens).
pub const PROMPT_SOURCE: &str = "Once upon a time, there was a little girl named Lily who lived in a small \
house near the forest with her mother, her father and a very old dog called Max. Every morning she \
walked to the river to look at the fish, the frogs and the birds, and every evening she told her mother \
what she had seen. One day she found a shiny blue stone under a tree and decided to keep it in a box \
under her bed, because she thought it was magic and would bring her luck.";

fn prompt_of(tokenizer: &Tokenizer, n: usize) -> Result<String> {
    let mut best = String::new();
    for end in PROMPT_SOURCE.match_indices(' ').map(|(i, _)| i).chain([PROMPT_SOURCE.len()]) {
        let text = &PROMPT_SOURCE[..end];
        if tokenizer.encode(text.as_bytes(), true, false)?.len() > n {
            break;
        }
        best = text.to_string();
    }
    Ok(best)
}

fn run(args: &[String]) -> Result<String> {
    if args.first().map(String::as_str) == Some("--prompt-of") {
        let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(64);
        let path = Path::new(args.get(2).map_or("tokenizer.bin", String::as_str));
        return prompt_of(&read_tokenizer(path, 32000)?, n);
    }
    let (checkpoint, tokenizer) = match args {
        [c, t, ..] => (Path::new(c), Path::new(t)),
        _ => return Ok(String::new()),
    };
    let mut prompt = String::new();
    let (mut steps, mut threads, mut context) = (256, 1, None);
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().cloned().unwrap_or_default();
        match flag.as_str() {
            "--prompt" => prompt = value,
            "--steps" => steps = value.parse().unwrap_or(256),
            "--threads" => threads = value.parse().unwrap_or(1),
            "--context" => context = value.parse().ok(),
            _ => {}
        }
    }

    let t0 = Instant::now();
    let mut generator = load_generator(checkpoint, tokenizer, threads, context, &[])?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;

    let options = |steps| Options { temperature: 1.0, topp: 1.0, seed: 42, steps };
    // Time to first token: every prompt position, then the first sampled token.
    let t0 = Instant::now();
    generator.start(&prompt, &options(0))?;
    let prompt_tokens = generator.tokenizer().encode(prompt.as_bytes(), true, false)?.len();
    for _ in 0..prompt_tokens {
        generator.next()?;
    }
    let ttft_ms = t0.elapsed().as_secs_f64() * 1e3;

    // Decode: `steps` positions from BOS, each one forward pass and one sample.
    generator.start("", &options(steps))?;
    let t0 = Instant::now();
    let mut tokens = 0;
    while let Step::Piece(_) = generator.next()? {
        tokens += 1;
    }
    let decode_tok_s = tokens as f64 / t0.elapsed().as_secs_f64();
    let memory_mb = resident_bytes().unwrap_or(generator.memory_bytes()) as f64 / 1e6;
    Ok(format!(
        "{{\"decode_tok_s\":{decode_tok_s:.3},\"decoded\":{tokens},\"ttft_ms\":{ttft_ms:.3},\"prompt_tokens\":{prompt_tokens},\
\"load_ms\":{load_ms:.3},\"memory_mb\":{memory_mb:.3},\"backend\":\"{}\"}}",
        kernels::backend()
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) if out.is_empty() => {
            eprintln!(
                "usage: bench <checkpoint> <tokenizer> [--prompt TEXT] [--steps N] [--threads N] \
                 [--context N] | bench --prompt-of N <tokenizer>"
            );
            ExitCode::from(2)
        }
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("bench: {err}");
            ExitCode::FAILURE
        }
    }
}
