//! The BPE tokenizer of llama2.c: `tokenizer.bin`, encode, decode, and a streaming UTF-8
//! decoder that joins byte-fallback tokens (`<0xE2><0x80><0x99>`) back into characters.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::error::{Error, Result};

/// Token id of `<s>`, which starts every sequence; sampling it ends generation.
pub const BOS: u32 = 1;
/// Token id of `</s>`, which ends an assistant turn in chat.
pub const EOS: u32 = 2;

/// The vocabulary: each token's bytes and merge score, and a lookup from bytes to id.
pub struct Tokenizer {
    vocab: Vec<Vec<u8>>,
    /// Bytes of the longest piece: no token covers more of a text.
    longest: usize,
    scores: Vec<f32>,
    /// Bytes -> lowest id with those bytes (run.c's sorted-vocab binary search).
    ids: HashMap<Vec<u8>, u32>,
}

impl Tokenizer {
    /// Parses `tokenizer.bin` for a model whose vocabulary has `vocab_size` tokens.
    /// `name` (the file name) is used in error messages.
    pub fn from_bytes(bytes: &[u8], vocab_size: usize, name: &str) -> Result<Tokenizer> {
        if vocab_size <= EOS as usize {
            return Err(Error::tokenizer(
                name,
                format!("vocab_size {vocab_size} is too small: ids 0, 1, 2 are <unk>, <s>, </s>"),
            ));
        }
        let mut reader = Reader { bytes, at: 0 };
        let max_token_length = reader.i32().ok_or_else(|| {
            Error::tokenizer(name, format!("truncated: {} bytes, no header", bytes.len()))
        })?;
        if max_token_length <= 0 {
            return Err(Error::tokenizer(
                name,
                format!("max_token_length = {max_token_length} in the header must be positive"),
            ));
        }
        let mut vocab = Vec::new();
        let mut scores = Vec::new();
        // Every entry takes at least 8 bytes, so a vocab_size the file cannot hold is
        // refused before anything is allocated for it.
        if vocab_size > bytes.len() / 8 {
            return Err(Error::tokenizer(
                name,
                format!(
                    "{} bytes cannot hold the model's vocab_size of {vocab_size} tokens \
                     (wrong tokenizer for this checkpoint?)",
                    bytes.len()
                ),
            ));
        }
        vocab.reserve_exact(vocab_size);
        scores.reserve_exact(vocab_size);
        for id in 0..vocab_size {
            let (Some(score), Some(len)) = (reader.f32(), reader.i32()) else {
                return Err(mismatch(name, vocab_size, id));
            };
            if len < 0 || len > max_token_length {
                return Err(Error::tokenizer(
                    name,
                    format!("token {id} has length {len}, outside 0..={max_token_length}"),
                ));
            }
            let Some(piece) = reader.take(len as usize) else {
                return Err(Error::tokenizer(
                    name,
                    format!("token {id} ({len} bytes) runs past the end of the file"),
                ));
            };
            if score.is_nan() {
                return Err(Error::tokenizer(name, format!("token {id} has a NaN score")));
            }
            vocab.push(piece.to_vec());
            scores.push(score);
        }
        if reader.at != bytes.len() {
            return Err(Error::tokenizer(
                name,
                format!(
                    "{} bytes remain after the model's {vocab_size} tokens: this tokenizer has a \
                     larger vocabulary than the model (wrong tokenizer for this checkpoint?)",
                    bytes.len() - reader.at
                ),
            ));
        }
        let mut ids = HashMap::with_capacity(vocab_size);
        for (id, piece) in vocab.iter().enumerate() {
            ids.entry(piece.clone()).or_insert(id as u32);
        }
        let longest = vocab.iter().map(Vec::len).max().unwrap_or(0).max(1);
        Ok(Tokenizer { vocab, longest, scores, ids })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The raw bytes of token `id` (as stored in tokenizer.bin).
    pub fn piece(&self, id: u32) -> &[u8] {
        &self.vocab[id as usize]
    }

    /// The fewest tokens `encode(text, true, false)` can give: each covers at most the longest
    /// piece's bytes. A prompt that cannot fit is refused by this, before it is encoded (a 5 MB
    /// paste would otherwise take memory the engine never gives back).
    pub fn min_tokens(&self, text: &[u8]) -> usize {
        let text = text.iter().position(|&b| b == 0).map_or(text, |nul| &text[..nul]);
        let words = if text.is_empty() { 0 } else { (text.len() + 1).div_ceil(self.longest) };
        1 + words
    }

    /// BPE-encodes `text` exactly as run.c's `encode`: optional BOS, a dummy-prefix space
    /// when the text is non-empty, code points (or byte fallback), then greedy merges by
    /// score. Like C, the text ends at its first NUL byte.
    ///
    /// Fails only when a byte has no token: a byte-fallback id beyond a tiny vocabulary.
    pub fn encode(&self, text: &[u8], bos: bool, eos: bool) -> Result<Vec<u32>> {
        let text = match text.iter().position(|&b| b == 0) {
            Some(nul) => &text[..nul],
            None => text,
        };
        let mut tokens = Vec::with_capacity(text.len() + 3);
        if bos {
            tokens.push(BOS);
        }
        if !text.is_empty() {
            if let Some(&space) = self.ids.get(&b" "[..]) {
                tokens.push(space);
            }
        }
        // Split into code points: a lead byte and at most 3 continuation bytes.
        let mut start = 0;
        while start < text.len() {
            let mut end = start + 1;
            while end < text.len() && text[end] & 0xC0 == 0x80 && end - start < 4 {
                end += 1;
            }
            let point = &text[start..end];
            match self.ids.get(point) {
                Some(&id) => tokens.push(id),
                // Byte fallback: the first 3 ids are <unk>, <s>, </s>.
                None => {
                    for &b in point {
                        let id = b as u32 + 3;
                        if id as usize >= self.vocab.len() {
                            return Err(Error::Prompt(format!(
                                "byte 0x{b:02X} has no token in this {}-token vocabulary",
                                self.vocab.len()
                            )));
                        }
                        tokens.push(id);
                    }
                }
            }
            start = end;
        }
        self.merge(&mut tokens);
        if eos {
            tokens.push(EOS);
        }
        Ok(tokens)
    }

    /// Repeatedly merges the adjacent pair with the best score (the first on ties), as
    /// run.c does by rescanning the whole sequence after every merge. Same choices, but in
    /// O(n log n): the candidate pairs wait in a heap ordered by (score, position), over a
    /// linked list of the tokens, and a candidate whose tokens changed since is skipped.
    /// Like run.c, every adjacent pair is considered, BOS included.
    fn merge(&self, tokens: &mut Vec<u32>) {
        let n = tokens.len();
        let mut next: Vec<usize> = (1..=n).collect(); // n = no next token
        let mut prev: Vec<Option<usize>> = (0..n).map(|i| i.checked_sub(1)).collect();
        let mut version = vec![0u32; n]; // bumped when a token changes or is merged away
        let mut heap = BinaryHeap::new();
        let mut pair = Vec::new();
        let mut offer = |heap: &mut BinaryHeap<Candidate>,
                         tokens: &[u32],
                         version: &[u32],
                         left: usize,
                         right: usize| {
            if right >= n {
                return;
            }
            pair.clear();
            pair.extend_from_slice(self.piece(tokens[left]));
            pair.extend_from_slice(self.piece(tokens[right]));
            if let Some(&id) = self.ids.get(&pair) {
                // + 0.0 turns -0.0 into 0.0: C's `>` treats them as equal.
                let score = self.scores[id as usize] + 0.0;
                heap.push(Candidate {
                    score,
                    left,
                    right,
                    id,
                    versions: (version[left], version[right]),
                });
            }
        };
        for i in 0..n.saturating_sub(1) {
            offer(&mut heap, tokens, &version, i, i + 1);
        }
        while let Some(c) = heap.pop() {
            let (i, j) = (c.left, c.right);
            if next[i] != j || (version[i], version[j]) != c.versions {
                continue; // stale: one of the two tokens has changed since
            }
            tokens[i] = c.id;
            version[i] += 1;
            version[j] += 1;
            next[i] = next[j];
            if next[j] < n {
                prev[next[j]] = Some(i);
            }
            next[j] = n + 1; // j is gone
            if let Some(p) = prev[i] {
                offer(&mut heap, tokens, &version, p, i);
            }
            offer(&mut heap, tokens, &version, i, next[i]);
        }
        let mut merged = Vec::with_capacity(n);
        let mut at = 0;
        while at < n {
            merged.push(tokens[at]);
            at = next[at];
        }
        *tokens = merged;
    }

    /// The bytes that token `token` stands for after `prev` (run.c's `decode`): a leading
    /// space is dropped after BOS, and `<0xHH>` is the single byte 0xHH.
    pub fn decode(&self, prev: u32, token: u32) -> Vec<u8> {
        let mut piece = self.piece(token);
        if prev == BOS && piece.first() == Some(&b' ') {
            piece = &piece[1..];
        }
        match byte_token(piece) {
            Some(byte) => vec![byte],
            None => piece.to_vec(),
        }
    }
}

/// A mergeable adjacent pair: the heap's greatest is the best score, then the leftmost.
struct Candidate {
    score: f32,
    left: usize,
    right: usize,
    /// The token the pair merges into.
    id: u32,
    /// The versions of `left` and `right` when the pair was offered.
    versions: (u32, u32),
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// `<0xHH>` -> 0xHH (one or two hex digits, as run.c's `sscanf("<0x%02hhX>")`).
fn byte_token(piece: &[u8]) -> Option<u8> {
    let digits = piece.strip_prefix(b"<0x")?;
    let n = digits.iter().take(2).take_while(|b| b.is_ascii_hexdigit()).count();
    if n == 0 {
        return None;
    }
    let hex = std::str::from_utf8(&digits[..n]).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

fn mismatch(name: &str, vocab_size: usize, found: usize) -> Error {
    Error::tokenizer(
        name,
        format!(
            "ends after {found} tokens but the model's vocab_size is {vocab_size} \
             (wrong tokenizer for this checkpoint?)"
        ),
    )
}

/// A little-endian cursor that returns None instead of reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f32(&mut self) -> Option<f32> {
        self.take(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Turns the byte pieces of consecutive tokens into text: complete UTF-8 characters are
/// passed on, an incomplete sequence is held back until the next piece completes it, and
/// invalid bytes become U+FFFD. Like run.c's `safe_printf`, a one-byte piece that is an ASCII
/// control character (other than whitespace) is dropped.
#[derive(Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token's bytes; returns the text that is now complete.
    pub fn push(&mut self, piece: &[u8]) -> String {
        if let [b] = *piece {
            // C's isprint or isspace: 0x20..=0x7E, \t \n \v \f \r.
            let printable = (0x20..=0x7E).contains(&b) || (0x09..=0x0D).contains(&b);
            if b.is_ascii() && !printable {
                return String::new();
            }
        }
        self.pending.extend_from_slice(piece);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // An invalid sequence: replace it and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                        // An incomplete sequence at the end: hold it back.
                        None => {
                            rest = after;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        out
    }

    /// Ends the stream: a held-back incomplete sequence becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        if self.pending.is_empty() {
            String::new()
        } else {
            self.pending.clear();
            char::REPLACEMENT_CHARACTER.to_string()
        }
    }
}

/// The heap-based merge against run.c's literal rescanning loop, on random texts.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod merge_oracle {
    use super::*;

    /// run.c's merge loop, as written there: rescan, take the first best pair, repeat.
    fn merge_by_rescan(t: &Tokenizer, tokens: &mut Vec<u32>) {
        loop {
            let mut best: Option<(f32, usize, u32)> = None;
            for i in 0..tokens.len().saturating_sub(1) {
                let pair = [t.piece(tokens[i]), t.piece(tokens[i + 1])].concat();
                if let Some(&id) = t.ids.get(&pair) {
                    let score = t.scores[id as usize];
                    if best.is_none_or(|(s, _, _)| score > s) {
                        best = Some((score, i, id));
                    }
                }
            }
            let Some((_, i, id)) = best else { return };
            tokens[i] = id;
            tokens.remove(i + 1);
        }
    }

    #[test]
    fn heap_merge_chooses_as_run_c() {
        let dir = std::env::var("LLAMA2_MODELS")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models").into());
        let Ok(bytes) = std::fs::read(format!("{dir}/tokenizer.bin")) else {
            eprintln!("skipping: tokenizer.bin not found in {dir}");
            assert!(std::env::var("LLAMA2_REQUIRE_FIXTURES").is_err(), "tokenizer.bin missing");
            return;
        };
        let t = Tokenizer::from_bytes(&bytes, 32000, "tokenizer.bin").unwrap();
        let alphabet: Vec<char> = "aab eetnhs.,'\n\tÿé日🦙".chars().collect();
        let mut rng = crate::sampler::Rng::new(5);
        for _ in 0..300 {
            let len = rng.next_u32() as usize % 60;
            let text: String =
                (0..len).map(|_| alphabet[rng.next_u32() as usize % alphabet.len()]).collect();
            let fast = t.encode(text.as_bytes(), true, false).unwrap();
            // The same pre-merge tokens, merged by rescanning.
            let mut slow = vec![BOS];
            if !text.is_empty() {
                slow.push(t.ids[&b" "[..]]);
            }
            for c in text.chars() {
                let mut buf = [0u8; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes();
                match t.ids.get(bytes) {
                    Some(&id) => slow.push(id),
                    None => slow.extend(bytes.iter().map(|&b| b as u32 + 3)),
                }
            }
            merge_by_rescan(&t, &mut slow);
            assert_eq!(fast, slow, "text {text:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8Stream;

    /// Feeds each piece and returns what each push gave, then what finish gave.
    fn stream(pieces: &[&[u8]]) -> (Vec<String>, String) {
        let mut s = Utf8Stream::new();
        let out = pieces.iter().map(|p| s.push(p)).collect();
        (out, s.finish())
    }

    #[test]
    fn multi_byte_characters_split_across_pieces_are_joined() {
        // é (2 bytes), ✓ (3 bytes) and 😀 (4 bytes), one byte token at a time.
        let (out, end) =
            stream(&[b"\xC3", b"\xA9", b"\xE2", b"\x9C", b"\x93", b"\xF0\x9F", b"\x98", b"\x80"]);
        assert_eq!(out, ["", "é", "", "", "✓", "", "", "😀"]);
        assert_eq!(end, "");
        // A piece that ends one character and starts the next.
        let (out, end) = stream(&[b"a\xE2\x9C", b"\x93b\xC3", b"\xA9"]);
        assert_eq!(out, ["a", "✓b", "é"]);
        assert_eq!(end, "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let (out, end) = stream(&[b"\xFF", b"x\xC3(y", b"\x80", b"\xED\xA0\x80", b"ok"]);
        assert_eq!(out, ["\u{FFFD}", "x\u{FFFD}(y", "\u{FFFD}", "\u{FFFD}\u{FFFD}\u{FFFD}", "ok"]);
        assert_eq!(end, "");
        // A held-back lead byte followed by something that cannot continue it.
        let (out, _) = stream(&[b"\xE2", b"a"]);
        assert_eq!(out, ["", "\u{FFFD}a"]);
    }

    #[test]
    fn an_incomplete_character_at_the_end_becomes_one_replacement_character() {
        let mut s = Utf8Stream::new();
        assert_eq!(s.push(b"hi \xE2\x9C"), "hi ");
        assert_eq!(s.finish(), "\u{FFFD}");
        // Finished means empty: a new stream starts clean.
        assert_eq!(s.finish(), "");
        assert_eq!(s.push(b"\x93"), "\u{FFFD}");
    }

    #[test]
    fn one_byte_control_pieces_are_dropped_like_run_c() {
        let (out, _) =
            stream(&[b"\x07", b"\x00", b"\x7F", b"\x1B", b"\n", b"\t", b"\r", b" ", b"~"]);
        assert_eq!(out, ["", "", "", "", "\n", "\t", "\r", " ", "~"]);
        // Only one-byte pieces are filtered, as run.c's safe_printf does.
        assert_eq!(Utf8Stream::new().push(b"a\x07"), "a\x07");
        // A dropped control byte does not break a held-back character.
        let (out, _) = stream(&[b"\xC3", b"\x07", b"\xA9"]);
        assert_eq!(out.concat(), "é");
    }
}
