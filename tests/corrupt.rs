#![cfg(not(target_arch = "wasm32"))]
//! The corruption matrix: hundreds of broken checkpoints and tokenizers made from the test
//! models (truncated at every header field and tensor boundary, every header field set to
//! 0, -1, 1 and huge values, bad magic, version, shared flag and group size; tokenizers with
//! bad lengths, sizes and bytes), each loaded and, when it loads, run for a few tokens.
//! Every case must give an error with a message, or valid output; none may panic.
//! Tensor boundaries are computed here from the header, independently of checkpoint.rs.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use common::corrupt::{corrupt, Corruption, TokFile};
use llama2_wasm::{Checkpoint, Error, Generator, Options, Step, Tokenizer};

/// Runs every case, each under catch_unwind; fails listing the cases that panicked.
struct Matrix {
    cases: usize,
    errors: usize,
    panics: Vec<String>,
}

impl Matrix {
    fn new() -> Matrix {
        Matrix { cases: 0, errors: 0, panics: Vec::new() }
    }

    /// `run` gives Ok (valid output) or the error; an error must have a message.
    fn case(&mut self, name: &str, run: impl FnOnce() -> Result<(), Error>) {
        self.cases += 1;
        let start = Instant::now();
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.errors += 1;
                assert!(!e.to_string().trim().is_empty(), "{name}: an error without a message");
                if let Error::Checkpoint { file, .. } | Error::Tokenizer { file, .. } = &e {
                    assert!(!file.is_empty(), "{name}: an error that names no file: {e}");
                }
            }
            Err(_) => self.panics.push(name.to_string()),
        }
        let secs = start.elapsed().as_secs_f64();
        if secs > 5.0 {
            eprintln!("slow case ({secs:.1} s): {name}");
        }
    }

    fn finish(self, what: &str) {
        eprintln!(
            "{what}: {} cases run, {} refused with an error, {} gave valid output, {} panicked",
            self.cases,
            self.errors,
            self.cases - self.errors - self.panics.len(),
            self.panics.len()
        );
        assert!(
            self.panics.is_empty(),
            "{what}: {} cases panicked:\n{}",
            self.panics.len(),
            self.panics.join("\n")
        );
    }
}

/// Loads a checkpoint and a tokenizer and, when both load, generates a few tokens at two
/// temperatures. Each piece must be valid text (it is a String) and generation must end.
fn load_and_generate(
    checkpoint: &[u8],
    name: &str,
    tokenizer: &[u8],
    tok_name: &str,
) -> Result<(), Error> {
    let checkpoint = Checkpoint::from_bytes(checkpoint, name)?;
    let tokenizer = Tokenizer::from_bytes(tokenizer, checkpoint.config().vocab_size, tok_name)?;
    let mut generator = Generator::new(checkpoint, tokenizer)?;
    for (prompt, temperature) in
        [("Once upon a time", 0.0), ("", 1.0), ("h\u{e9}llo \u{2713} \u{65e5}", 0.9)]
    {
        let options = Options { temperature, topp: 0.9, seed: 42, steps: 6 };
        generator.start(prompt, &options)?;
        // One piece per position, plus one for a held-back incomplete character at the end.
        let mut pieces = 0;
        while let Step::Piece(_) = generator.next()? {
            pieces += 1;
            assert!(pieces <= options.steps + 1, "generation did not stop at its step limit");
        }
    }
    Ok(())
}

/// The tensor boundaries of a valid checkpoint: (what starts there, byte offset), computed
/// from its header, plus the file's end.
fn boundaries(bytes: &[u8]) -> Vec<(String, usize)> {
    let i32_at = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) == 0x616b_3432;
    let version = if magic { i32_at(4) } else { 0 };
    let base = if magic { 8 } else { 0 };
    let f: Vec<usize> = (0..7).map(|i| i32_at(base + 4 * i).unsigned_abs() as usize).collect();
    let (dim, hidden, layers, heads, kv_heads, vocab, seq_len) =
        (f[0], f[1], f[2], f[3], f[4], f[5], f[6]);
    let shared = if magic { bytes[36] == 1 } else { i32_at(20) > 0 };
    let kv_dim = dim * kv_heads / heads;
    let matrices =
        [("wq", dim * dim), ("wk", kv_dim * dim), ("wv", kv_dim * dim), ("wo", dim * dim)];
    let ffn = [("w1", hidden * dim), ("w2", dim * hidden), ("w3", hidden * dim)];
    let cls = if shared { vec![] } else { vec![("wcls", vocab * dim)] };

    // (name, bytes) in file order.
    let mut tensors: Vec<(String, usize)> = Vec::new();
    let f32s = |name: &str, n: usize| (name.to_string(), 4 * n);
    match version {
        0 => {
            tensors.push(f32s("token_embedding", vocab * dim));
            tensors.push(f32s("rms_att", layers * dim));
            tensors.extend(matrices.iter().map(|&(n, len)| f32s(n, layers * len)));
            tensors.push(f32s("rms_ffn", layers * dim));
            tensors.extend(ffn.iter().map(|&(n, len)| f32s(n, layers * len)));
            tensors.push(f32s("rms_final", dim));
            tensors.push(f32s("rope table", seq_len * (dim / heads)));
            tensors.extend(cls.iter().map(|&(n, len)| f32s(n, len)));
        }
        1 => {
            tensors.push(f32s("rms_att", layers * dim));
            tensors.push(f32s("rms_ffn", layers * dim));
            tensors.push(f32s("rms_final", dim));
            tensors.push(f32s("token_embedding", vocab * dim));
            tensors.extend(matrices.iter().chain(&ffn).map(|&(n, len)| f32s(n, layers * len)));
            tensors.extend(cls.iter().map(|&(n, len)| f32s(n, len)));
        }
        _ => {
            let gs = i32_at(37) as usize;
            tensors.push(f32s("rms_att", layers * dim));
            tensors.push(f32s("rms_ffn", layers * dim));
            tensors.push(f32s("rms_final", dim));
            let mut q8 = |name: String, n: usize| {
                tensors.push((format!("{name} int8"), n));
                tensors.push((format!("{name} scales"), 4 * n / gs));
            };
            q8("token_embedding".into(), vocab * dim);
            for &(n, len) in matrices.iter().chain(&ffn) {
                for l in 0..layers {
                    q8(format!("{n}[{l}]"), len);
                }
            }
            for &(n, len) in &cls {
                q8(n.into(), len);
            }
        }
    }
    let mut at = if magic { 256 } else { 28 };
    let mut out = Vec::new();
    for (name, size) in tensors {
        out.push((format!("start of {name}"), at));
        if size >= 2 {
            out.push((format!("middle of {name}"), at + size / 2 + 1));
        }
        at += size;
    }
    assert_eq!(at, bytes.len(), "the boundaries computed here do not add up to the file size");
    out.push(("end".into(), at));
    out
}

/// Every corruption of one valid checkpoint.
fn checkpoint_corruptions(bytes: &[u8]) -> Vec<(String, Corruption)> {
    let magic = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) == 0x616b_3432;
    let version = if magic { i32::from_le_bytes(bytes[4..8].try_into().unwrap()) } else { 0 };
    let mut out = Vec::new();
    let mut add = |name: String, c: Corruption| out.push((name, c));

    // Truncation inside and at the end of every header field, and at every tensor boundary.
    let header_cuts: Vec<usize> = if magic {
        vec![0, 1, 3, 4, 8, 12, 16, 20, 24, 28, 32, 36, 37, 39, 41, 128, 255]
    } else {
        vec![0, 2, 4, 8, 12, 16, 20, 24, 27]
    };
    for n in header_cuts {
        add(format!("truncated to {n} bytes (header)"), Corruption::Truncate(n));
    }
    for (what, at) in boundaries(bytes) {
        for n in [at.wrapping_sub(1), at, at + 1] {
            if n < bytes.len() {
                add(
                    format!("truncated to {n} bytes ({what}{})", if n == at { "" } else { " +-1" }),
                    Corruption::Truncate(n),
                );
            }
        }
    }
    for n in [1, 3, 4, 64] {
        add(format!("{n} extra bytes"), Corruption::Append(n));
    }

    // Every header field set to 0, -1, 1 and huge (and a few more).
    let values = [0, -1, 1, 2, 3, i32::MAX, i32::MIN, 1 << 20, 1 << 16, 65537];
    let fields =
        ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
    let base = if magic { 8 } else { 0 };
    for (i, field) in fields.iter().enumerate() {
        for v in values {
            add(format!("{field} = {v}"), Corruption::SetI32(base + 4 * i, v));
        }
    }
    if !magic {
        // A v0 file that starts with the magic is read as a v1/v2 header.
        add("v0 with the 'ak42' magic".into(), Corruption::SetI32(0, 0x616b_3432));
        return out;
    }
    for v in [0, 1, 0x616b_3433, 0x3234_6b61, -1] {
        add(format!("magic = {v:#x}"), Corruption::SetI32(0, v));
    }
    for v in [0, -1, 3, 1 << 20, i32::MAX, if version == 1 { 2 } else { 1 }] {
        add(format!("version = {v}"), Corruption::SetI32(4, v));
    }
    for v in [2, 3, 128, 255, if bytes[36] == 1 { 0 } else { 1 }] {
        add(format!("shared flag = {v}"), Corruption::SetByte(36, v));
    }
    if version == 2 {
        for v in [0, -1, 1, 2, 3, 5, 8, 16, 32, 128, 1 << 20, i32::MAX, i32::MIN] {
            add(format!("group_size = {v}"), Corruption::SetI32(37, v));
        }
    }
    out
}

#[test]
fn corrupt_checkpoints_never_panic() {
    let files = [
        ("gqa-v0.bin", "tokenizer.bin"),
        ("gqa-v1.bin", "tokenizer.bin"),
        ("gqa-v2.bin", "tokenizer.bin"),
        ("unshared-v0.bin", "tokenizer.bin"),
        ("aidreams260K.bin", "tok512-aidreams.bin"),
        ("stories260K.bin", "tok512-aidreams.bin"),
        ("aidreams260K-v2.bin", "tok512-aidreams.bin"),
        ("stories260K-v2.bin", "tok512-aidreams.bin"),
    ];
    let mut matrix = Matrix::new();
    for (file, tok) in files {
        let (Some(bytes), Some(tokenizer)) =
            (common::fixture_bytes(file), common::fixture_bytes(tok))
        else {
            continue;
        };
        // The valid file itself runs (so the cases below test the corruption, not the file).
        load_and_generate(&bytes, file, &tokenizer, tok).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (what, c) in checkpoint_corruptions(&bytes) {
            let name = format!("{file}: {what}");
            let corrupted = corrupt(&bytes, c);
            matrix.case(&name, || load_and_generate(&corrupted, &name, &tokenizer, tok));
        }
    }
    if matrix.cases > 0 {
        assert!(matrix.cases >= 500, "only {} checkpoint cases", matrix.cases);
    }
    matrix.finish("corrupt checkpoints");
}

/// Every corruption of one valid tokenizer: (name, bytes, vocab size to load it with).
fn tokenizer_corruptions(bytes: &[u8], vocab: usize) -> Vec<(String, Vec<u8>, usize)> {
    let tok = TokFile::parse(bytes);
    assert_eq!(tok.entries.len(), vocab, "the fixture tokenizer has the model's vocabulary");
    let mut out: Vec<(String, Vec<u8>, usize)> = Vec::new();
    let last = vocab - 1;

    // Truncations: in the header, at entry boundaries and inside entries, near the end.
    let mut cuts =
        vec![0, 1, 3, 4, 5, 8, 11, 12, bytes.len() - 1, bytes.len() - 4, bytes.len() / 2];
    for i in [0, 1, 2, 3, 100, 258, 259, 300, last] {
        let len_at = tok.len_offset(i);
        cuts.extend([len_at - 4, len_at - 2, len_at, len_at + 2, len_at + 4, len_at + 5]);
    }
    cuts.extend((1..40).map(|k| k * bytes.len() / 40));
    for n in cuts {
        if n < bytes.len() {
            out.push((
                format!("truncated to {n} bytes"),
                corrupt(bytes, Corruption::Truncate(n)),
                vocab,
            ));
        }
    }
    for n in [1, 4, 8, 9, 100] {
        out.push((format!("{n} extra bytes"), corrupt(bytes, Corruption::Append(n)), vocab));
    }

    // Bad lengths in the entries.
    for i in [0, 1, 2, 3, 259, 300, last] {
        for v in [-1, i32::MIN, 0x7FFF_FFFF, 1 << 20, tok.max_token_length + 1, 1000] {
            let at = tok.len_offset(i);
            out.push((
                format!("token {i} length = {v}"),
                corrupt(bytes, Corruption::SetI32(at, v)),
                vocab,
            ));
        }
    }
    // Bad max_token_length.
    for v in [0, -1, 1, 2, i32::MIN, i32::MAX] {
        out.push((
            format!("max_token_length = {v}"),
            corrupt(bytes, Corruption::SetI32(0, v)),
            vocab,
        ));
    }
    // The wrong vocabulary size for the file.
    for v in [0, 1, 3, 259, vocab - 1, vocab + 1, 2 * vocab, 1 << 20, usize::MAX / 2] {
        out.push((format!("loaded with vocab_size {v}"), bytes.to_vec(), v));
    }
    // Odd but well-formed entries: NaN and infinite scores, empty, invalid UTF-8 and
    // malformed byte-token pieces, duplicated pieces, all scores tied.
    let mut edit = |name: &str, f: &dyn Fn(&mut TokFile)| {
        let mut t = TokFile::parse(bytes);
        f(&mut t);
        out.push((name.to_string(), t.bytes(), vocab));
    };
    edit("NaN score", &|t| t.entries[300].0 = f32::NAN);
    edit("infinite scores", &|t| {
        t.entries[300].0 = f32::INFINITY;
        t.entries[301].0 = f32::NEG_INFINITY;
    });
    edit("empty pieces", &|t| {
        for i in [0, 1, 2, 259, 260, 300, last] {
            t.entries[i].1.clear();
        }
    });
    edit("no space token", &|t| {
        for e in &mut t.entries {
            if e.1 == b" " {
                e.1 = b"#".to_vec();
            }
        }
    });
    edit("invalid UTF-8 pieces", &|t| {
        for (i, e) in t.entries.iter_mut().enumerate().skip(259) {
            let len = e.1.len();
            e.1 = [0xFF, 0xC3, 0xE2, 0x80, 0xF0][i % 5..]
                .iter()
                .copied()
                .cycle()
                .take(len.max(1))
                .collect();
        }
    });
    edit("malformed byte tokens", &|t| {
        for (i, piece) in
            ["<0x", "<0xZZ>", "<0x1", "<0x>", "<0xFFFF>", "<0x00>", "<0x0A"].iter().enumerate()
        {
            t.entries[3 + i].1 = piece.as_bytes().to_vec();
            t.entries[300 + i].1 = piece.as_bytes().to_vec();
        }
    });
    edit("duplicate pieces", &|t| {
        let piece = t.entries[300].1.clone();
        for i in 301..320 {
            t.entries[i].1 = piece.clone();
        }
    });
    edit("all scores tied", &|t| t.entries.iter_mut().for_each(|e| e.0 = 0.0));
    edit("max_token_length larger than needed", &|t| t.max_token_length = i32::MAX);
    out
}

#[test]
fn corrupt_tokenizers_never_panic() {
    let mut matrix = Matrix::new();
    for (tok, model) in
        [("tok512-aidreams.bin", "aidreams260K.bin"), ("tokenizer.bin", "gqa-v2.bin")]
    {
        let (Some(bytes), Some(checkpoint)) =
            (common::fixture_bytes(tok), common::fixture_bytes(model))
        else {
            continue;
        };
        let vocab = if tok == "tokenizer.bin" { 32000 } else { 512 };
        for (what, corrupted, vocab) in tokenizer_corruptions(&bytes, vocab) {
            let name = format!("{tok}: {what}");
            matrix.case(&name, || {
                // The tokenizer on its own (any vocab size), then with the model.
                let tokenizer = Tokenizer::from_bytes(&corrupted, vocab, &name)?;
                for text in ["Once upon a time", "", "\u{fffd}\u{e9}\u{1F600} x\0y"] {
                    let ids = tokenizer.encode(text.as_bytes(), true, true)?;
                    let mut prev = 1;
                    for id in ids {
                        let _ = tokenizer.decode(prev, id);
                        prev = id;
                    }
                }
                load_and_generate(&checkpoint, model, &corrupted, &name)
            });
        }
    }
    if matrix.cases > 0 {
        assert!(matrix.cases >= 200, "only {} tokenizer cases", matrix.cases);
    }
    matrix.finish("corrupt tokenizers");
}

/// The harness itself: a panicking case is caught and reported by name, not lost.
#[test]
fn the_matrix_reports_a_panicking_case() {
    let mut matrix = Matrix::new();
    matrix.case("fine", || Ok(()));
    matrix.case("refused", || Err(Error::Prompt("too long".into())));
    matrix.case("boom", || panic!("deliberate panic (expected in this test)"));
    assert_eq!(
        (matrix.cases, matrix.errors, matrix.panics.clone()),
        (3, 1, vec!["boom".to_string()])
    );
    let finished = catch_unwind(AssertUnwindSafe(|| matrix.finish("harness")));
    assert!(finished.is_err(), "finish must fail when a case panicked");
}
