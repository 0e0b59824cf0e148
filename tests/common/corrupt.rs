//! Builders of broken files from valid ones, shared by the corruption matrix
//! (tests/corrupt.rs) and the bad-input matrix (tests/bad_input.rs).

/// What is done to a valid file to make a case.
#[derive(Debug, Clone, Copy)]
pub enum Corruption {
    /// Keep only the first n bytes.
    Truncate(usize),
    /// Overwrite the i32 at a byte offset.
    SetI32(usize, i32),
    /// Overwrite one byte.
    SetByte(usize, u8),
    /// Append n zero bytes.
    Append(usize),
}

pub fn corrupt(bytes: &[u8], c: Corruption) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match c {
        Corruption::Truncate(n) => out.truncate(n),
        Corruption::SetI32(at, v) => out[at..at + 4].copy_from_slice(&v.to_le_bytes()),
        Corruption::SetByte(at, v) => out[at] = v,
        Corruption::Append(n) => out.resize(out.len() + n, 0),
    }
    out
}

/// A tokenizer file as its entries, to rebuild it with changes.
pub struct TokFile {
    pub max_token_length: i32,
    pub entries: Vec<(f32, Vec<u8>)>,
}

impl TokFile {
    pub fn parse(bytes: &[u8]) -> TokFile {
        let i32_at = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let mut at = 4;
        let mut entries = Vec::new();
        while at < bytes.len() {
            let score = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = i32_at(at + 4) as usize;
            entries.push((score, bytes[at + 8..at + 8 + len].to_vec()));
            at += 8 + len;
        }
        TokFile { max_token_length: i32_at(0), entries }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.max_token_length.to_le_bytes().to_vec();
        for (score, piece) in &self.entries {
            out.extend_from_slice(&score.to_le_bytes());
            out.extend_from_slice(&(piece.len() as i32).to_le_bytes());
            out.extend_from_slice(piece);
        }
        out
    }

    /// Byte offset of entry `i`'s length field.
    pub fn len_offset(&self, i: usize) -> usize {
        4 + self.entries[..i].iter().map(|(_, p)| 8 + p.len()).sum::<usize>() + 4
    }
}
