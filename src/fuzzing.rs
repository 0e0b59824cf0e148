//! Fuzz harnesses: the bodies of the cargo-fuzz targets in `fuzz/`, kept in the crate so that
//! `tests/fuzz_regressions.rs` replays the seed corpus and every crash reproducer through the
//! very same code on stable Rust. Each harness takes the fuzzer's raw bytes and panics only
//! when the engine broke a promise (a panic inside the engine, an id out of range, a
//! generator that no longer generates after an error); bad input must give an `Err`.
//!
//! Native only, and not part of the public API.

use crate::checkpoint::header::{AT_CONFIG, AT_GROUP_SIZE, AT_MAGIC, AT_SHARED, AT_VERSION};
use crate::checkpoint::Checkpoint;
use crate::config::{Config, Format};
use crate::error::Error;
use crate::export::{self, Formula};
use crate::generate::{Generator, Options, Step};
use crate::tokenizer::{Tokenizer, Utf8Stream, BOS, EOS};

/// A cursor over the fuzzer's bytes that reads zeros once they run out, so every byte
/// string is a valid input.
pub struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Input { bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(n.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.bytes.len())
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let head = self.bytes(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    /// A float, biased towards the values that break arithmetic.
    pub fn f32(&mut self) -> f32 {
        match self.u8() % 10 {
            0 => 0.0,
            1 => 1.0,
            2 => f32::NAN,
            3 => f32::INFINITY,
            4 => f32::NEG_INFINITY,
            5 => -1.0,
            6 => f32::MIN_POSITIVE / 4.0, // subnormal: 1/t overflows
            7 => f32::MAX,
            8 => 0.5,
            _ => f32::from_le_bytes(self.array()),
        }
    }

    /// A string of up to 255 bytes (lossy UTF-8, as JavaScript strings arrive).
    pub fn text(&mut self) -> String {
        let n = self.u8() as usize;
        String::from_utf8_lossy(self.bytes(n)).into_owned()
    }
}

// ---------------------------------------------------------------------------------------
// Tiny models and tokenizers built in memory
// ---------------------------------------------------------------------------------------

/// The shape of the generated test models: 2 layers, grouped-query attention, room for the
/// 256 byte tokens and a few merges.
pub const TINY: Config = Config {
    dim: 8,
    hidden_dim: 16,
    n_layers: 2,
    n_heads: 2,
    n_kv_heads: 1,
    vocab_size: 300,
    seq_len: 24,
    shared_classifier: true,
};

/// A checkpoint file of `config` in `format` with SPEC's formula weights from `seed`,
/// written by the crate's own exporter (the one `gen-checkpoint` uses).
pub fn tiny_checkpoint(config: &Config, format: Format, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    export::write_checkpoint(&mut out, config, format, &mut Formula::new(config, seed), "tiny.bin")
        .expect("the exporter writes any valid shape");
    out
}

/// A `tokenizer.bin` of `vocab_size` tokens laid out as llama2.c's: `<unk>`, `<s>`, `</s>`,
/// the 256 byte tokens `<0xHH>`, then `" "`, the letters and a few merges (`"th"`,
/// `" the"`, `"[INST]"`, ...), then filler pieces. Scores favour longer pieces.
pub fn synthetic_tokenizer(vocab_size: usize) -> Vec<u8> {
    const MERGES: [&str; 16] = [
        "th", "he", "the", " t", " the", "in", " a", "[", "]", "[I", "[IN", "[INS", "[INST",
        "[INST]", "[/", "[/INST]",
    ];
    let piece = |id: usize| -> Vec<u8> {
        match id {
            0 => b"<unk>".to_vec(),
            1 => b"\n<s>\n".to_vec(),
            2 => b"\n</s>\n".to_vec(),
            3..=258 => format!("<0x{:02X}>", id - 3).into_bytes(),
            259 => b" ".to_vec(),
            260..=285 => vec![b'a' + (id - 260) as u8],
            _ if id - 286 < MERGES.len() => MERGES[id - 286].as_bytes().to_vec(),
            _ => format!("~{id}").into_bytes(),
        }
    };
    let mut out = 16i32.to_le_bytes().to_vec();
    for id in 0..vocab_size {
        let p = piece(id);
        let score = if id < 259 { 0.0 } else { p.len() as f32 - id as f32 * 1e-3 };
        out.extend(score.to_le_bytes());
        out.extend((p.len() as i32).to_le_bytes());
        out.extend(p);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The harnesses
// ---------------------------------------------------------------------------------------

/// Target `checkpoint`: the bytes are a checkpoint file. If it parses, it runs a few steps
/// of sampled generation with a synthetic tokenizer of its vocabulary size.
pub fn checkpoint(data: &[u8]) {
    run_checkpoint(data);
}

/// Parses `bytes` as a checkpoint and, if that succeeds, generates a few tokens.
fn run_checkpoint(bytes: &[u8]) {
    let Ok(checkpoint) = Checkpoint::from_bytes(bytes, "fuzz.bin") else {
        return;
    };
    let vocab = checkpoint.config().vocab_size;
    let tokenizer = match Tokenizer::from_bytes(&synthetic_tokenizer(vocab), vocab, "synthetic") {
        Ok(t) => t,
        // Only a vocabulary too small for <unk>, <s>, </s> may be refused.
        Err(_) if vocab < 3 => return,
        Err(e) => panic!("the synthetic tokenizer of {vocab} tokens was refused: {e}"),
    };
    // The run state (KV cache) may not fit: that must be an error, not an abort.
    let Ok(mut generator) = Generator::new(checkpoint, tokenizer) else {
        return;
    };
    // Top-p sampling on whatever logits the weights give (NaN, inf, ...), then greedy.
    for options in [
        Options { temperature: 1.0, topp: 0.9, seed: 42, steps: 4 },
        Options { temperature: 0.0, topp: 0.9, seed: 42, steps: 3 },
    ] {
        generator.start("", &options).expect("an empty prompt always fits");
        drain(&mut generator, vocab, 8);
    }
}

/// Calls `next` up to `n` times, checking every id is in the vocabulary.
fn drain(generator: &mut Generator, vocab: usize, n: usize) {
    for _ in 0..n {
        match generator.next() {
            Ok(Step::Piece(_)) => {}
            Ok(Step::Done(_)) | Err(_) => break,
        }
    }
    if let Some(bad) = generator.ids().iter().find(|&&id| id as usize >= vocab) {
        panic!("id {bad} out of the vocabulary ({vocab}) in {:?}", generator.ids());
    }
}

/// The byte offsets of the header fields a mutation may overwrite (i32 unless noted).
fn header_fields(format: Format) -> Vec<usize> {
    // The 7 config ints: v0's whole header, after the magic and version in v1/v2.
    let config = |at: usize| (0..7).map(move |i| at + 4 * i);
    match format {
        Format::V0 => config(0).collect(),
        // magic, version, the config, the shared flag (a byte), the group size (unaligned)
        _ => [AT_MAGIC, AT_VERSION]
            .into_iter()
            .chain(config(AT_CONFIG))
            .chain([AT_SHARED, AT_GROUP_SIZE])
            .collect(),
    }
}

/// Target `checkpoint_mutated`: a valid tiny checkpoint (format chosen by the input) with
/// header fields overwritten, weights set to NaN/inf, and the file truncated or extended,
/// then the same as `checkpoint`.
pub fn checkpoint_mutated(data: &[u8]) {
    let mut input = Input::new(data);
    let choice = input.u8();
    let format = match choice % 4 {
        0 => Format::V0,
        1 => Format::V1,
        2 => Format::V2 { group_size: 4 },
        _ => Format::V2 { group_size: 8 },
    };
    let config = Config { vocab_size: 40, seq_len: 8, shared_classifier: choice & 4 == 0, ..TINY };
    let mut file = tiny_checkpoint(&config, format, 7);
    let fields = header_fields(format);
    for _ in 0..input.u8() % 8 {
        match input.u8() % 4 {
            0 | 1 => {
                let at = fields[input.u8() as usize % fields.len()];
                let old = file
                    .get(at..at + 4)
                    .map_or(0, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                let value = match input.u8() % 8 {
                    0 => old.wrapping_add(1),
                    1 => old.wrapping_sub(1),
                    2 => old.wrapping_mul(2),
                    3 => old / 2,
                    4 => old.wrapping_neg(),
                    5 => i32::MIN,
                    6 => i32::from(input.u8()) - 2,
                    _ => input.u32() as i32,
                };
                // (An earlier truncation may have cut the field off.)
                if at == AT_SHARED && at < file.len() {
                    file[at] = value as u8; // the shared flag is one byte
                } else if at != AT_SHARED && at + 4 <= file.len() {
                    file[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            2 => {
                let at = (input.u32() as usize % file.len()) & !3;
                let value = input.f32();
                if at + 4 <= file.len() {
                    file[at..at + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            _ => {
                let delta = input.u16() as usize;
                if input.u8() & 1 == 0 {
                    file.truncate(file.len().saturating_sub(delta));
                } else {
                    file.resize(file.len() + delta, 0);
                }
            }
        }
        if file.is_empty() {
            break;
        }
    }
    run_checkpoint(&file);
}

/// Target `tokenizer`: `[vocab_size u16][flags u8][text_len u16][text][tokenizer.bin]`.
/// If the file parses, encodes the text, decodes every id and reassembles the UTF-8.
pub fn tokenizer(data: &[u8]) {
    let mut input = Input::new(data);
    let vocab = input.u16() as usize;
    let flags = input.u8();
    let (bos, eos) = (flags & 1 != 0, flags & 2 != 0);
    let text_len = input.u16() as usize;
    let text = input.bytes(text_len);
    let file = input.rest();
    let Ok(tok) = Tokenizer::from_bytes(file, vocab, "fuzz-tokenizer.bin") else {
        return;
    };
    assert_eq!(tok.vocab_size(), vocab);
    let ids = match tok.encode(text, bos, eos) {
        Ok(ids) => ids,
        Err(Error::Prompt(_)) => return, // a byte with no token in a small vocabulary
        Err(e) => panic!("encode failed with an unexpected error: {e}"),
    };
    if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
        panic!("encode gave id {bad} for a {vocab}-token vocabulary: {ids:?}");
    }
    // (No such check for BOS: like run.c, the merges may join `<s>` with what follows.)
    assert!(!eos || ids.last() == Some(&EOS), "EOS asked for but missing: {ids:?}");
    let mut stream = Utf8Stream::new();
    let mut prev = BOS;
    for &id in &ids {
        stream.push(&tok.decode(prev, id));
        prev = id;
    }
    stream.finish();
    // Byte tokens (ids 3..=258) are pieces too: every one must decode without a panic.
    for id in 0..vocab.min(300) as u32 {
        stream.push(&tok.decode(prev, id));
    }
}

/// Target `generator`: a fixed tiny model (format picked by the input) and tokenizer, then
/// an arbitrary sequence of `start`, `next`, `stop`, `start_chat`, `chat_turn` with arbitrary
/// options and prompts. Nothing may panic, and afterwards greedy generation must give
/// exactly the ids of a fresh engine: no state survives an error or a stop.
pub fn generator(data: &[u8]) {
    let mut input = Input::new(data);
    let format = [Format::V0, Format::V1, Format::V2 { group_size: 8 }][input.u8() as usize % 3];
    let mut g = tiny_generator(format);
    let vocab = TINY.vocab_size;
    for _ in 0..64 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 6 {
            0 => {
                let prompt = input.text();
                let options = options(&mut input);
                let _ = g.start(&prompt, &options);
            }
            1 => drain(&mut g, vocab, 1),
            2 => {
                let n = input.u8() as usize % 32;
                drain(&mut g, vocab, n);
            }
            3 => g.stop(),
            4 => {
                let (system, user) = (input.text(), input.text());
                let options = options(&mut input);
                let _ = g.start_chat(&system, &user, &options);
            }
            _ => {
                let user = input.text();
                let _ = g.chat_turn(&user);
            }
        }
    }
    let greedy = Options { temperature: 0.0, topp: 0.9, seed: 1, steps: 8 };
    let mut fresh = tiny_generator(format);
    for engine in [&mut g, &mut fresh] {
        engine.start("the", &greedy).expect("a short prompt always starts");
        drain(engine, vocab, 16);
    }
    assert_eq!(g.ids(), fresh.ids(), "greedy ids differ from a fresh engine after the calls");
}

/// Options from the input: any float for temperature and top-p, any seed and step count.
fn options(input: &mut Input) -> Options {
    Options {
        temperature: input.f32(),
        topp: input.f32(),
        seed: input.u64(),
        steps: input.u16() as usize % 64,
    }
}

/// The generator target's engine: [`TINY`] in `format` with [`synthetic_tokenizer`].
pub fn tiny_generator(format: Format) -> Generator {
    let file = tiny_checkpoint(&TINY, format, 7);
    let checkpoint = Checkpoint::from_bytes(&file, "tiny.bin").expect("the tiny checkpoint parses");
    let tok = synthetic_tokenizer(TINY.vocab_size);
    let tokenizer = Tokenizer::from_bytes(&tok, TINY.vocab_size, "synthetic").expect("it parses");
    Generator::new(checkpoint, tokenizer).expect("the tiny model fits")
}
