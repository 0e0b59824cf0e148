//! `llama2 <checkpoint> [options]`: run.c's command line, for every checkpoint format.
//!
//! Streams the generated text (valid UTF-8) to stdout and `achieved tok/s: X` to stderr;
//! `--ids` prints instead the token ids as the golden files hold them.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use llama2_wasm::generate::{parse_seed, terminal_chat};
use llama2_wasm::native::{load_generator, tool_main};
use llama2_wasm::{Error, Generator, Options, Step};

const USAGE: &str = "\
Usage:   llama2 <checkpoint> [options]
Example: llama2 model.bin -n 256 -i \"Once upon a time\"
Options:
  -t <float>  temperature in [0,inf], default 1.0
  -p <float>  p value in top-p (nucleus) sampling in [0,1], default 0.9
  -s <int>    random seed, default time(NULL)
  -n <int>    number of steps to run for, default 256. 0 = max_seq_len
  -i <string> input prompt
  -z <string> optional path to custom tokenizer (default tokenizer.bin)
  -m <string> mode: generate|chat, default: generate
  -y <string> (optional) system prompt in chat mode
  --threads <int>  split the model over this many threads (same output), default 1
  --context <int>  positions of the KV cache, default the model's seq_len
  --ids       print the token ids (first token, then every token fed back) instead of text
The checkpoint may be llama2.c's v0 (run.c), v1 or v2 (int8, runq.c) format.";

/// The parsed command line.
struct Args {
    checkpoint: String,
    tokenizer: String,
    options: Options,
    prompt: Option<String>,
    chat: bool,
    system: Option<String>,
    ids: bool,
    threads: usize,
    context: Option<usize>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let checkpoint =
        argv.first().filter(|a| !a.starts_with('-')).ok_or("missing the checkpoint")?;
    let mut args = Args {
        checkpoint: checkpoint.clone(),
        tokenizer: "tokenizer.bin".into(),
        options: Options::default(),
        prompt: None,
        chat: false,
        system: None,
        ids: false,
        threads: 1,
        context: None,
    };
    let mut rest = argv[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--ids" {
            args.ids = true;
            continue;
        }
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<f64, String> {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{flag}: '{value}' is not a number ({what})"))
        };
        match flag.as_str() {
            "-t" => args.options.temperature = number("temperature")? as f32,
            "-p" => args.options.topp = number("top-p")? as f32,
            // run.c reads the seed with atoi into an unsigned 64-bit state: -5 is 2^64 - 5.
            "-s" => args.options.seed = parse_seed(value).map_err(|e| format!("-s: {e}"))?,
            // Negative steps become 0, which means seq_len.
            "-n" => {
                let steps: i64 =
                    value.trim().parse().map_err(|_| format!("-n: '{value}' is not an integer"))?;
                args.options.steps = steps.max(0) as usize;
            }
            "-i" => args.prompt = Some(value.clone()),
            "-z" => args.tokenizer = value.clone(),
            "-m" => match value.as_str() {
                "generate" => args.chat = false,
                "chat" => args.chat = true,
                other => return Err(format!("unknown mode '{other}' (generate or chat)")),
            },
            "-y" => args.system = Some(value.clone()),
            "--threads" => {
                args.threads = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("--threads: '{value}' is not a count of threads"))?
            }
            "--context" => {
                let context: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("--context: '{value}' is not a count of positions"))?;
                args.context = Some(context);
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    tool_main("llama2", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<(), Error> {
    let (checkpoint, tokenizer) = (Path::new(&args.checkpoint), Path::new(&args.tokenizer));
    let mut generator = load_generator(checkpoint, tokenizer, args.threads, args.context)?;
    if args.chat {
        chat(&mut generator, args)
    } else {
        generate(&mut generator, args)
    }
}

/// run.c's `generate`: stream the pieces, then the speed from the second token on.
fn generate(generator: &mut Generator, args: &Args) -> Result<(), Error> {
    generator.start(args.prompt.as_deref().unwrap_or(""), &args.options)?;
    let mut out = std::io::stdout().lock();
    let mut timer = None;
    let mut tokens = 0usize;
    while let Step::Piece(piece) = generator.next()? {
        if !args.ids {
            out.write_all(piece.as_bytes()).and_then(|_| out.flush()).map_err(stdout_error)?;
        }
        // Like run.c, time from the end of the first step so that loading is not counted.
        timer.get_or_insert_with(Instant::now);
        tokens += 1;
    }
    if args.ids {
        let ids: Vec<String> = generator.ids().iter().map(u32::to_string).collect();
        writeln!(out, "{}", ids.join(" ")).map_err(stdout_error)?;
    } else {
        writeln!(out).map_err(stdout_error)?;
    }
    if let Some(start) = timer {
        if tokens > 1 {
            let secs = start.elapsed().as_secs_f64();
            eprintln!("achieved tok/s: {}", (tokens - 1) as f64 / secs);
        }
    }
    Ok(())
}

/// run.c's `chat`: turns read from stdin ("User: "), replies streamed after "Assistant: ".
fn chat(generator: &mut Generator, args: &Args) -> Result<(), Error> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines().map_while(std::result::Result::ok);
    let mut out = std::io::stdout().lock();
    terminal_chat(
        generator,
        args.system.as_deref(),
        args.prompt.as_deref(),
        &args.options,
        &mut || lines.next(),
        &mut |text| out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(stdout_error),
    )
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::io("stdout", &e)
}
