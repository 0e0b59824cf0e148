//! `gen-checkpoint --shape ... --seed N [--unshared] [--format v0|v1|v2] [--group-size N] <out>`:
//! a checkpoint of any shape with docs/llama2c.md's formula weights (random-looking values from the
//! xorshift64* stream, RMSNorm weights 1), for tests and benchmarks. Streams the file, so the
//! 110M shape needs no more memory than one int8 matrix.

use std::process::ExitCode;

use llama2_wasm::export::{self, Formula};
use llama2_wasm::native::{tool_main, write_checkpoint_file};
use llama2_wasm::{Error, Format};

const USAGE: &str = "\
Usage:   gen-checkpoint --shape SHAPE --seed N [--unshared] [--format v0|v1|v2] [--group-size N] <out.bin>
Example: gen-checkpoint --shape 15M --seed 1 stories15M-formula.bin
  --shape SHAPE     dim,hidden_dim,n_layers,n_heads,n_kv_heads,vocab_size,seq_len
                    or one of 15M, 42M, 110M (the tinyllamas shapes), 260K, 7B (Llama 2 7B's)
  --seed N          seed of the xorshift64* stream the weights are drawn from
  --unshared        write a separate classifier (default: shared with the embedding)
  --format F        v0 (run.c, default), v1, or v2 (int8, runq.c)
  --group-size N    v2 only: values per scale, default 64, halved until it divides dim and hidden_dim";

struct Args {
    shape: [i32; 7],
    seed: u64,
    shared: bool,
    format: String,
    group_size: Option<usize>,
    output: String,
}

/// A named shape, or seven comma-separated positive integers.
fn parse_shape(s: &str) -> Result<[i32; 7], String> {
    let named = match s {
        "15M" => Some([288, 768, 6, 6, 6, 32000, 256]),
        "42M" => Some([512, 1376, 8, 8, 8, 32000, 1024]),
        "110M" => Some([768, 2048, 12, 12, 12, 32000, 1024]),
        "260K" => Some([64, 172, 5, 8, 4, 512, 512]),
        "7B" => Some([4096, 11008, 32, 32, 32, 32000, 4096]),
        _ => None,
    };
    if let Some(shape) = named {
        return Ok(shape);
    }
    let values: Vec<i32> = s
        .split(',')
        .map(|v| v.trim().parse::<i32>().ok().filter(|&v| v > 0))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            format!("--shape: '{s}' is not 7 positive integers nor 15M, 42M, 110M, 260K or 7B")
        })?;
    <[i32; 7]>::try_from(values).map_err(|v| {
        format!("--shape: '{s}' has {} values, expected 7 (D,H,L,NH,NKV,V,S)", v.len())
    })
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let (mut shape, mut seed, mut output) = (None, None, None);
    let mut args = Args {
        shape: [0; 7],
        seed: 0,
        shared: true,
        format: "v0".into(),
        group_size: None,
        output: String::new(),
    };
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--shape" => shape = Some(parse_shape(value()?)?),
            "--seed" => {
                let v = value()?;
                seed = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("--seed: '{v}' is not an unsigned integer"))?,
                );
            }
            "--unshared" => args.shared = false,
            "--format" => {
                let v = value()?;
                if !["v0", "v1", "v2"].contains(&v.as_str()) {
                    return Err(format!("--format: '{v}' is not v0, v1 or v2"));
                }
                args.format = v.clone();
            }
            "--group-size" => {
                let v = value()?;
                let gs = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&gs| gs > 0 && gs <= i32::MAX as usize)
                    .ok_or_else(|| format!("--group-size: '{v}' is not a positive integer"))?;
                args.group_size = Some(gs);
            }
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option '{flag}'"))
            }
            file if output.is_none() => output = Some(file.to_string()),
            file => {
                return Err(format!("unexpected argument '{file}' (the output is already given)"))
            }
        }
    }
    args.shape = shape.ok_or("missing --shape")?;
    args.seed = seed.ok_or("missing --seed")?;
    args.output = output.ok_or("missing the output file")?;
    if args.group_size.is_some() && args.format != "v2" {
        return Err("--group-size applies only to --format v2".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    tool_main("gen-checkpoint", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<(), Error> {
    let config = export::config(args.shape, args.shared, "--shape")?;
    let format = match args.format.as_str() {
        "v0" => Format::V0,
        "v1" => Format::V1,
        _ => Format::V2 { group_size: export::group_size(&config, args.group_size)? },
    };
    let mut source = Formula::new(&config, args.seed);
    write_checkpoint_file(&args.output, &config, format, &mut source)?;
    eprintln!("gen-checkpoint: wrote {} ({format}, {} parameters)", args.output, config.n_params());
    Ok(())
}
