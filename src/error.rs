//! One error type for the whole engine. Every message names the input it is about
//! (the checkpoint or tokenizer file, the prompt, an option) and what was wrong with it,
//! because these messages are shown as they are to users, in the terminal and in the page.

use std::fmt;

/// What went wrong, and with which input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The checkpoint file `file` is malformed, truncated or unsupported.
    Checkpoint { file: String, problem: String },
    /// The tokenizer file `file` is malformed or does not fit the model.
    Tokenizer { file: String, problem: String },
    /// The prompt cannot be run (too long for the model's context, ...).
    Prompt(String),
    /// A generation option is out of range (NaN temperature, ...).
    Options(String),
    /// Memory for the model or its state could not be reserved.
    OutOfMemory(String),
    /// An operation was called in the wrong order (generate before start, ...).
    State(String),
    /// Reading or writing a file failed (native tools only).
    Io { file: String, problem: String },
    /// The shards of a model lost each other (a worker or thread failed mid-pass).
    Shards(String),
}

/// Every [`Error::kind`] (www/engine/errors.js lists the same kinds, and the browser's own: a test
/// checks the two agree through the engine's `limits()`).
pub const KINDS: [&str; 7] = ["format", "prompt", "options", "memory", "state", "io", "shards"];

/// How a [`Error::Shards`] message begins (www/engine/errors.js `shardsLost` builds the same for the
/// browser's own losses: a test checks it through `limits()`).
pub const SHARDS_LOST: &str = "the model's workers lost each other";

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn checkpoint(file: &str, problem: impl Into<String>) -> Self {
        Error::Checkpoint { file: file.to_string(), problem: problem.into() }
    }

    pub fn tokenizer(file: &str, problem: impl Into<String>) -> Self {
        Error::Tokenizer { file: file.to_string(), problem: problem.into() }
    }

    /// For the native tools: wraps an `std::io::Error` with the file it concerns.
    pub fn io(file: &str, err: &std::io::Error) -> Self {
        Error::Io { file: file.to_string(), problem: err.to_string() }
    }

    /// What kind of problem this is, for programs (JavaScript reads it as `error.kind`, so
    /// that no one has to match message text): `format` (a bad checkpoint or tokenizer),
    /// `prompt`, `options`, `memory`, `state` (calls in the wrong order), `io`, `shards`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Checkpoint { .. } | Error::Tokenizer { .. } => "format",
            Error::Prompt(_) => "prompt",
            Error::Options(_) => "options",
            Error::OutOfMemory(_) => "memory",
            Error::State(_) => "state",
            Error::Io { .. } => "io",
            Error::Shards(_) => "shards",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Checkpoint { file, problem } => write!(f, "checkpoint '{file}': {problem}"),
            Error::Tokenizer { file, problem } => write!(f, "tokenizer '{file}': {problem}"),
            Error::Prompt(problem) => write!(f, "prompt: {problem}"),
            Error::Options(problem) => write!(f, "options: {problem}"),
            Error::OutOfMemory(problem) => write!(f, "out of memory: {problem}"),
            Error::State(problem) => write!(f, "{problem}"),
            Error::Io { file, problem } => write!(f, "'{file}': {problem}"),
            Error::Shards(problem) => write!(f, "{SHARDS_LOST}: {problem}"),
        }
    }
}

impl std::error::Error for Error {}
