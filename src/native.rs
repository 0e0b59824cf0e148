//! Files and threads for the native tools and tests (the core itself reads byte buffers and
//! runs on one thread).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;

use crate::checkpoint::header::V1_HEADER_BYTES;
use crate::checkpoint::{Checkpoint, Header, Layout, Loader};
use crate::config::{Config, Format};
use crate::error::{Error, Result};
use crate::export::{self, Source};
use crate::generate::Generator;
use crate::inspect::{Ablate, Ablation};
use crate::link::{self, threads};
use crate::model::Transformer;
use crate::shard::Shard;
use crate::tokenizer::Tokenizer;

/// Loads and checks a checkpoint file of any format (the whole model).
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    read_shard(path, Shard::WHOLE)
}

/// The most bytes a tokenizer file may have (Llama 2's is 0.4 MB; a 1M-token vocabulary of
/// long pieces stays far below): a larger "tokenizer" is the wrong file, not one to read whole.
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// Opens `path` for reading if it is a regular file: a directory, a device (`/dev/zero`
/// would be read until memory runs out) or a FIFO (opening one with no writer blocks for
/// ever) is refused by what `stat` says, before it is opened.
fn open_regular(path: &Path) -> Result<(File, u64)> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| Error::io(&name, &e);
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a directory"
        } else if is_fifo(&meta) {
            "a FIFO (named pipe)"
        } else {
            "a device or other special file"
        };
        return Err(Error::Io { file: name, problem: format!("is {what}, not a regular file") });
    }
    let file = File::open(path).map_err(io)?;
    Ok((file, meta.len()))
}

#[cfg(unix)]
fn is_fifo(meta: &std::fs::Metadata) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type())
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::Metadata) -> bool {
    false
}

/// Loads shard `shard` of a checkpoint file: its header, then only the byte ranges it holds.
pub fn read_shard(path: &Path, shard: Shard) -> Result<Checkpoint> {
    let name = path.display().to_string();
    let io = |e: std::io::Error| Error::io(&name, &e);
    let (mut file, size) = open_regular(path)?;
    let mut prefix = vec![0; (size as usize).min(V1_HEADER_BYTES)];
    file.read_exact(&mut prefix).map_err(io)?;
    let mut loader = Loader::new(&prefix, size, &file_name(path), shard)?;
    loader.read_all(|at, place| {
        file.seek(SeekFrom::Start(at)).and_then(|_| file.read_exact(place)).map_err(io)
    })?;
    loader.finish()
}

/// Loads a tokenizer file for a model with `vocab_size` tokens.
pub fn read_tokenizer(path: &Path, vocab_size: usize) -> Result<Tokenizer> {
    let name = path.display().to_string();
    let (file, size) = open_regular(path)?;
    if size > MAX_TOKENIZER_BYTES {
        return Err(Error::tokenizer(
            &file_name(path),
            format!(
                "{size} bytes is more than any tokenizer.bin ({MAX_TOKENIZER_BYTES} at most): \
                 the wrong file?"
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_TOKENIZER_BYTES).read_to_end(&mut bytes).map_err(|e| Error::io(&name, &e))?;
    Tokenizer::from_bytes(&bytes, vocab_size, &file_name(path))
}

/// A generator for the checkpoint at `path` split over `threads` shards, one thread each
/// (shard 0, the leader, on the calling thread; each thread loads its own part of the file),
/// with a KV cache of `context` positions (`None`: the model's seq_len), and what `ablate`
/// says switched off in every shard (checked against the model's shape). The token ids are the
/// same for any number of threads.
pub fn load_generator(
    checkpoint: &Path,
    tokenizer: &Path,
    threads: usize,
    context: Option<usize>,
    ablate: &[Ablate],
) -> Result<Generator> {
    if Shard::new(0, threads).is_none() {
        return Err(Error::Options(format!(
            "threads {threads} must be in 1..={}",
            crate::shard::MAX_SHARDS
        )));
    }
    let mut parts = threads::parts(threads).into_iter();
    let leader = parts.next().expect("parts(n) gives n >= 1 parts");
    let mut started = Vec::new();
    for part in parts {
        let path = checkpoint.to_path_buf();
        let ablate = ablate.to_vec();
        let (ready, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut part = part;
            let Some(commands) = part.commands.take() else { return };
            let shard = part.shard;
            let model = read_shard(&path, shard).and_then(|c| {
                let context = context.unwrap_or(c.config().seq_len);
                let ablation = Ablation::new(&ablate, c.config())?;
                let mut model = Transformer::new(c, context, part.into())?;
                model.set_ablation(ablation);
                Ok(model)
            });
            let mut model = match model {
                Ok(model) => model,
                Err(err) => return ready.send(Err(err)).unwrap_or(()),
            };
            let _ = ready.send(Ok(()));
            // Until the leader is dropped (its senders with it).
            while let Ok(command) = commands.recv() {
                if link::block_on(model.serve(&command)).is_err() {
                    break;
                }
            }
        });
        started.push(ready_rx);
    }
    let c = read_shard(checkpoint, leader.shard)?;
    let ablation = Ablation::new(ablate, c.config())?;
    for ready in started {
        ready.recv().map_err(|_| Error::Shards("a shard thread ended while loading".into()))??;
    }
    let context = context.unwrap_or(c.config().seq_len);
    let vocab = c.config().vocab_size;
    let mut model = Transformer::new(c, context, leader.into())?;
    model.set_ablation(ablation);
    Generator::with_model(model, read_tokenizer(tokenizer, vocab)?)
}

/// Writes a checkpoint file of `config` in `format` from `source` (see [`export`]) to `path`,
/// never losing what was there:
/// - a regular file (or a new path, or a symlink to either) is written to a temporary file
///   beside it, renamed over it once complete: a failed write (a full disk, a bad source)
///   leaves the path as it was, and removes only the temporary file it made; a symlink stays
///   and its file is replaced;
/// - anything else (a pipe, `/dev/stdout`, a device) is written to directly, and never removed;
/// - a checkpoint larger than the disk's free space is refused before a byte is written.
pub fn write_checkpoint_file(
    path: &str,
    config: &Config,
    format: Format,
    source: &mut dyn Source,
) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, &e);
    let target = Path::new(path);
    let size = Layout::new(Header { config: *config, format }).file_size;
    match std::fs::metadata(target) {
        Ok(meta) if !meta.is_file() => {
            let file = std::fs::OpenOptions::new().write(true).open(target).map_err(io)?;
            return write_to(file, config, format, source, path);
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    // Through a symlink to the file it names, so that the link stays a link.
    let real = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let dir = match real.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Some(free) = free_space(&dir).map_err(io)?.filter(|&free| size > free) {
        return Err(Error::Io {
            file: path.to_string(),
            problem: format!(
                "the checkpoint is {size} bytes ({:.1} GB), more than the {free} bytes free on \
                 its disk",
                size as f64 / 1e9
            ),
        });
    }
    let temp = dir.join(format!(".{}.{}.part", file_name(&real), std::process::id()));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp).map_err(io)?;
    let written = write_to(file, config, format, source, path)
        .and_then(|()| std::fs::rename(&temp, &real).map_err(io));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp); // ours: made by create_new above
    }
    written
}

fn write_to(
    file: File,
    config: &Config,
    format: Format,
    source: &mut dyn Source,
    path: &str,
) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    export::write_checkpoint(&mut out, config, format, source, path)?;
    out.into_inner().map_err(|e| Error::io(path, e.error()))?.sync_all().or_else(|e| {
        // A pipe or a terminal cannot be synced; what was written is written.
        if e.kind() == std::io::ErrorKind::InvalidInput {
            Ok(())
        } else {
            Err(Error::io(path, &e))
        }
    })
}

/// The bytes free for this user on the disk of `dir`.
#[cfg(not(target_arch = "wasm32"))]
fn free_space(dir: &Path) -> std::io::Result<Option<u64>> {
    fs4::available_space(dir).map(Some)
}

/// wasm32 has no disks to ask (the tools are built there only for `wasm-pack test`).
#[cfg(target_arch = "wasm32")]
fn free_space(_: &Path) -> std::io::Result<Option<u64>> {
    Ok(None)
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
    // Arguments are OS strings: one that is not UTF-8 is an error of its own, not a panic.
    let argv: std::result::Result<Vec<String>, String> = std::env::args_os()
        .skip(1)
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                format!("argument {} ({}) is not valid UTF-8", i + 1, arg.to_string_lossy())
            })
        })
        .collect();
    let args = match argv.and_then(|argv| parse(&argv)) {
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
