//! `quantize <in.bin> <out.bin> [--group-size N]`: an fp32 checkpoint (v0 or v1) to v2
//! (int8 Q8_0), byte for byte as llama2.c's `export.py --version 2`, except that the group
//! size also has to divide `hidden_dim` (docs/llama2c.md: runq.c needs it).

use std::path::Path;
use std::process::ExitCode;

use llama2_wasm::export::{self, CheckpointSource};
use llama2_wasm::native::{read_checkpoint, tool_main, write_checkpoint_file};
use llama2_wasm::{Error, Format};

const USAGE: &str = "\
Usage:   quantize <in.bin> <out.bin> [--group-size N]
Example: quantize stories15M.bin stories15M-q80.bin
Converts an fp32 llama2.c checkpoint (v0 or v1) to the int8 v2 format runq.c reads.
  --group-size N  values per scale, default 64; halved until it divides dim and hidden_dim";

struct Args {
    input: String,
    output: String,
    group_size: Option<usize>,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut files = Vec::new();
    let mut group_size = None;
    let mut rest = argv.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--group-size" => {
                let value = rest.next().ok_or("--group-size needs a value")?;
                let gs: usize =
                    value.parse().ok().filter(|&gs| gs > 0 && gs <= i32::MAX as usize).ok_or_else(
                        || format!("--group-size: '{value}' is not a positive integer"),
                    )?;
                group_size = Some(gs);
            }
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option '{flag}'"))
            }
            file => files.push(file.to_string()),
        }
    }
    match <[String; 2]>::try_from(files) {
        Ok([input, output]) => Ok(Args { input, output, group_size }),
        Err(files) => {
            Err(format!("expected <in.bin> <out.bin>, got {} file arguments", files.len()))
        }
    }
}

fn main() -> ExitCode {
    tool_main("quantize", USAGE, parse_args, run)
}

fn run(args: &Args) -> Result<(), Error> {
    let checkpoint = read_checkpoint(Path::new(&args.input))?;
    let mut source = CheckpointSource::new(&checkpoint)?;
    let config = *checkpoint.config();
    let group_size = export::group_size(&config, args.group_size)?;
    let requested = args.group_size.unwrap_or(export::DEFAULT_GROUP_SIZE);
    if group_size != requested {
        eprintln!(
            "quantize: group size {requested} reduced to {group_size} to divide dim = {} and hidden_dim = {}",
            config.dim, config.hidden_dim
        );
    }
    let format = Format::V2 { group_size };
    write_checkpoint_file(&args.output, &config, format, &mut source)?;
    eprintln!(
        "quantize: wrote {} ({} from {} {})",
        args.output,
        format,
        checkpoint.format(),
        args.input
    );
    Ok(())
}
