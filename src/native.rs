//! File loading for the native tools and tests (the core itself reads only byte buffers).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use crate::checkpoint::{Checkpoint, Config, Format, WeightBuffer};
use crate::error::{Error, Result};
use crate::export::{self, Source};
use crate::tokenizer::Tokenizer;

/// Reads a whole file into a new aligned buffer, in one copy.
pub fn read_buffer(path: &Path) -> Result<WeightBuffer> {
    let name = path.display().to_string();
    let mut file = File::open(path).map_err(|e| Error::io(&name, &e))?;
    let len = file.metadata().map_err(|e| Error::io(&name, &e))?.len();
    let len =
        usize::try_from(len).map_err(|_| Error::OutOfMemory(format!("'{name}' is {len} bytes")))?;
    let mut buffer = WeightBuffer::new(len)?;
    file.read_exact(buffer.as_bytes_mut()).map_err(|e| Error::io(&name, &e))?;
    Ok(buffer)
}

/// Loads and checks a checkpoint file of any format.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    Checkpoint::from_buffer(read_buffer(path)?, &file_name(path))
}

/// Loads a tokenizer file for a model with `vocab_size` tokens.
pub fn read_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error::io(&name, &e))?;
    Tokenizer::from_bytes(&bytes, vocab_size, &file_name(path))
}

/// Writes a checkpoint file of `config` in `format` from `source` (see [`export`]); on an
/// error no half-written file is left behind.
pub fn write_checkpoint_file(
    path: &str,
    config: &Config,
    format: Format,
    source: &mut dyn Source,
) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::io(path, &e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let written = export::write_checkpoint(&mut out, config, format, source, path);
    if written.is_err() {
        drop(out);
        let _ = std::fs::remove_file(path);
    }
    written
}

/// The file name alone, as errors show it.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The `main` of every command-line tool: parses the arguments (a problem prints it and the
/// usage, exit code 2), then runs (an error prints its message, exit code 1).
pub fn tool_main<A>(
    tool: &str,
    usage: &str,
    parse: impl FnOnce(&[String]) -> std::result::Result<A, String>,
    run: impl FnOnce(&A) -> Result<()>,
) -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{tool}: {problem}\n\n{usage}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::FAILURE
        }
    }
}
