//! `llama2 <checkpoint> [options]`: run.c's command line, for every checkpoint format.
//!
//! Streams the generated text (valid UTF-8) to stdout and `achieved tok/s: X` to stderr;
//! `--ids` prints instead the token ids as the golden files hold them.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use llama2_wasm::generate::{parse_seed, terminal_chat};
use llama2_wasm::inspect::{Ablate, InspectOptions, Inspection, LensMap, Trace};
use llama2_wasm::link::block_on;
use llama2_wasm::native::{load_generator, tool_main};
use llama2_wasm::{Config, Error, Generator, Options, Step};

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
  --inspect <file> write what each forward pass shows (JSON lines: top tokens, attention)
  --top-k <int>    tokens per pass in --inspect, default 10
  --trace <file>   write every vector of one position's forward pass (JSON), after the story
  --trace-pos <int> the position --trace writes, default the last one run
  --lens-map <file> write the logit lens over the whole story, per layer and position: its
                   entropy and KL to the final distribution in bits (JSON), after the story
  --pin <int>      with --lens-map: also map this token id's probability
  --ablate <L:H|L:attn|L:ffn>  switch off head H, or the attention or feed-forward block, of
                   layer L (from 0) at every position; repeatable
  --ids       print the token ids (first token, then every token fed back) instead of text
The checkpoint may be llama2.c's v0 (run.c), v1 or v2 (int8, runq.c) format.";

/// The options that take a value.
const FLAGS_WITH_VALUES: [&str; 17] = [
    "-t",
    "-p",
    "-s",
    "-n",
    "-i",
    "-z",
    "-m",
    "-y",
    "--threads",
    "--context",
    "--inspect",
    "--top-k",
    "--trace",
    "--trace-pos",
    "--lens-map",
    "--pin",
    "--ablate",
];

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
    /// `--inspect FILE` and `--top-k K`.
    inspect: Option<String>,
    inspect_options: InspectOptions,
    /// `--trace FILE` and `--trace-pos P` (None: the last position run).
    trace: Option<String>,
    trace_pos: Option<usize>,
    /// `--lens-map FILE` and `--pin ID`.
    lens_map: Option<String>,
    pin: Option<u32>,
    /// `--ablate`, in the order given.
    ablate: Vec<Ablate>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let checkpoint =
        argv.first().filter(|a| !a.starts_with('-')).ok_or("missing the checkpoint")?;
    let mut top_k_given = false;
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
        inspect: None,
        inspect_options: InspectOptions::new(InspectOptions::DEFAULT_TOP_K, true)
            .expect("the default top-k is at least 1"),
        trace: None,
        trace_pos: None,
        lens_map: None,
        pin: None,
        ablate: Vec::new(),
    };
    let mut rest = argv[1..].iter();
    while let Some(flag) = rest.next() {
        if flag == "--ids" {
            args.ids = true;
            continue;
        }
        if !FLAGS_WITH_VALUES.contains(&flag.as_str()) {
            return Err(format!("unknown option '{flag}'"));
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
            "--inspect" => args.inspect = Some(value.clone()),
            "--trace" => args.trace = Some(value.clone()),
            "--trace-pos" => {
                let pos = value.trim().parse().map_err(|_| {
                    format!("--trace-pos: '{value}' is not a position (a whole number from 0)")
                })?;
                args.trace_pos = Some(pos);
            }
            "--lens-map" => args.lens_map = Some(value.clone()),
            "--pin" => {
                let id = value.trim().parse().map_err(|_| {
                    format!("--pin: '{value}' is not a token id (a whole number from 0)")
                })?;
                args.pin = Some(id);
            }
            "--ablate" => args.ablate.push(Ablate::parse(value).map_err(|e| e.to_string())?),
            "--top-k" => {
                let count = value.trim().parse().ok();
                let options = count.map(|k| InspectOptions::new(k, true));
                args.inspect_options = options.and_then(|o| o.ok()).ok_or_else(|| {
                    format!("--top-k: '{value}' is not a count of tokens (1 or more)")
                })?;
                top_k_given = true;
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
    if args.trace_pos.is_some() && args.trace.is_none() {
        return Err("--trace-pos is the position --trace writes: give --trace FILE too".into());
    }
    if args.pin.is_some() && args.lens_map.is_none() {
        return Err("--pin is the token --lens-map maps: give --lens-map FILE too".into());
    }
    if (args.inspect.is_some() || args.trace.is_some() || args.lens_map.is_some()) && args.chat {
        return Err("--inspect, --trace and --lens-map work in generate mode".into());
    }
    if top_k_given && args.inspect.is_none() {
        return Err(
            "--top-k is the number of tokens --inspect writes: give --inspect FILE too".into()
        );
    }
    Ok(args)
}

fn main() -> ExitCode {
    tool_main("llama2", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<(), Error> {
    let (checkpoint, tokenizer) = (Path::new(&args.checkpoint), Path::new(&args.tokenizer));
    let mut generator =
        load_generator(checkpoint, tokenizer, args.threads, args.context, &args.ablate)?;
    if args.chat {
        chat(&mut generator, args)
    } else {
        generate(&mut generator, args)
    }
}

/// run.c's `generate`: stream the pieces, then the speed from the second token on.
fn generate(generator: &mut Generator, args: &Args) -> Result<(), Error> {
    let mut inspect = match &args.inspect {
        None => None,
        Some(path) => {
            generator.inspect(Some(args.inspect_options));
            let file = std::fs::File::create(path).map_err(|e| Error::io(path, &e))?;
            Some((path, std::io::BufWriter::new(file), None))
        }
    };
    generator.start(args.prompt.as_deref().unwrap_or(""), &args.options)?;
    let mut out = std::io::stdout().lock();
    let mut timer = None;
    let mut tokens = 0usize;
    loop {
        let step = generator.next()?;
        if let Some((path, file, written)) = &mut inspect {
            // One line per forward pass (a step that ran none, at the step limit, has none).
            if let Some(seen) = generator.inspection().filter(|seen| Some(seen.pos) != *written) {
                *written = Some(seen.pos);
                writeln!(file, "{}", inspection_json(seen, generator.config()))
                    .map_err(|e| Error::io(path, &e))?;
            }
        }
        let Step::Piece(piece) = step else { break };
        if !args.ids {
            let piece = terminal_safe(&piece);
            out.write_all(piece.as_bytes()).and_then(|_| out.flush()).map_err(stdout_error)?;
        }
        // Like run.c, time from the end of the first step so that loading is not counted.
        timer.get_or_insert_with(Instant::now);
        tokens += 1;
    }
    if let Some((path, mut file, _)) = inspect {
        file.flush().map_err(|e| Error::io(path, &e))?;
    }
    if let Some(path) = &args.trace {
        let last = generator.ids().len().saturating_sub(2); // the last id was never fed
        let pos = args.trace_pos.unwrap_or(last);
        if pos > last {
            return Err(Error::Options(format!(
                "--trace-pos {pos}: the story ran positions 0..={last}"
            )));
        }
        let trace = block_on(generator.trace(pos))?;
        std::fs::write(path, trace_json(&trace, generator.config()) + "\n")
            .map_err(|e| Error::io(path, &e))?;
    }
    if let Some(path) = &args.lens_map {
        let map = block_on(generator.lens_map(args.pin))?;
        std::fs::write(path, lens_map_json(&map) + "\n").map_err(|e| Error::io(path, &e))?;
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

/// One `--inspect` line, by `Inspection`'s field names: `{"pos", "token", "id", "prompt",
/// "prob", "rank", "top": [[id, prob], ...], "attention": [[[w_0 .. w_pos] per head] per
/// layer]}`.
fn inspection_json(seen: &Inspection, c: &Config) -> String {
    let positions = seen.pos + 1;
    let attention: Vec<Vec<&[f32]>> = seen
        .attention
        .chunks_exact(c.n_heads * positions)
        .map(|layer| layer.chunks_exact(positions).collect())
        .collect();
    serde_json::json!({
        "pos": seen.pos,
        "token": seen.token,
        "id": seen.id,
        "prompt": seen.prompt,
        "prob": seen.prob,
        "rank": seen.rank,
        "top": seen.top.iter().map(|&(id, p)| serde_json::json!([id, p])).collect::<Vec<_>>(),
        "attention": attention,
    })
    .to_string()
}

/// The `--trace` object: `{"pos", "token", "id", "prompt", "embedding", "layers": [{"attn_norm", "q", "k",
/// "v", "attention": [[w per position] per head], "heads_out", "attn_out", "residual_attn",
/// "ffn_norm", "gate", "ffn_out", "residual_ffn"}], "final_norm", "logits"}`.
fn trace_json(t: &Trace, c: &Config) -> String {
    let layers: Vec<serde_json::Value> = t
        .layers
        .iter()
        .map(|l| {
            let fields = l.vectors().map(|(name, v)| {
                let value = if name == "attention" {
                    // One row per head, as `--inspect` writes attention.
                    let heads: Vec<&[f32]> = v.chunks_exact(t.pos + 1).collect();
                    debug_assert_eq!(heads.len(), c.n_heads);
                    serde_json::json!(heads)
                } else {
                    serde_json::json!(v)
                };
                (name.to_string(), value)
            });
            serde_json::Value::Object(fields.into_iter().collect())
        })
        .collect();
    serde_json::json!({
        "pos": t.pos, "token": t.token, "id": t.id, "prompt": t.prompt,
        "embedding": t.embedding, "layers": layers,
        "final_norm": t.final_norm, "logits": t.logits,
    })
    .to_string()
}

/// The `--lens-map` object: `{"layers", "positions", "pin", "entropy", "kl", "pinned"}`, each
/// vector as one row per layer of one value per position (`pinned` empty without `--pin`).
fn lens_map_json(m: &LensMap) -> String {
    let rows = |v: &[f32]| -> Vec<Vec<f32>> {
        v.chunks_exact(m.positions.max(1)).map(<[f32]>::to_vec).collect()
    };
    serde_json::json!({
        "layers": m.layers, "positions": m.positions, "pin": m.pin,
        "entropy": rows(&m.entropy), "kl": rows(&m.kl), "pinned": rows(&m.pinned),
    })
    .to_string()
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
        &mut |text| {
            let text = terminal_safe(text);
            out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(stdout_error)
        },
    )
}

/// Model text as a terminal may receive it: control characters other than tab, newline and
/// carriage return (ESC starts escape sequences that retitle windows or rewrite the screen;
/// C1 controls; NUL) are dropped. run.c's `safe_printf` drops one-byte pieces of that kind;
/// a longer piece can carry them too. (`--ids` and the JavaScript API keep the text exact.)
fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char =
        |c: char| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{7f}';
    if text.chars().any(unsafe_char) {
        text.chars().filter(|&c| !unsafe_char(c)).collect::<String>().into()
    } else {
        text.into()
    }
}

fn stdout_error(e: std::io::Error) -> Error {
    Error::io("stdout", &e)
}

#[cfg(test)]
mod tests {
    use super::{terminal_safe, InspectOptions, Options, USAGE};

    #[test]
    fn the_usage_states_the_cores_defaults() {
        // USAGE is run.c's text, so it spells the defaults out: they must be the core's.
        let d = Options::DEFAULT;
        for line in [
            format!("-t <float>  temperature in [0,inf], default {:.1}", d.temperature),
            format!("in top-p (nucleus) sampling in [0,1], default {}", d.topp),
            format!("number of steps to run for, default {}.", d.steps),
            format!("tokens per pass in --inspect, default {}", InspectOptions::DEFAULT_TOP_K),
        ] {
            assert!(USAGE.contains(&line), "USAGE should say: {line}");
        }
    }

    #[test]
    fn control_sequences_never_reach_the_terminal() {
        // An OSC sequence that would retitle the window, a CSI that would clear the screen, C1
        // controls and NUL, inside longer pieces; tab, newline and carriage return stay.
        let piece = "a\u{1b}]0;pwned\u{7}b\u{1b}[2Jc\u{9b}d\u{0}e\u{7f}\tf\ng\rh";
        assert_eq!(terminal_safe(piece), "a]0;pwnedb[2Jcde\tf\ng\rh");
        assert_eq!(terminal_safe("plain text, unicode: é 日"), "plain text, unicode: é 日");
    }
}
