//! A strict reader of chunked bodies (RFC 9112 §7.1): it finds where the body ends
//! and how many data bytes it carries, so the proxy can forward the bytes as they
//! are, count them against `max_request_body`, and know the next message's start.
//!
//! Strict, as SPEC §7 asks: 1–16 hex digits, CRLF only (no bare LF or CR),
//! extensions of visible characters only and at most `MAX_EXTENSION` bytes a line,
//! trailer lines that look like header lines and at most `MAX_TRAILERS` bytes in
//! all. Anything else is an error, and the connection is closed.

/// Bytes of chunk extensions allowed on one size line.
pub const MAX_EXTENSION: u32 = 4096;
/// Bytes of trailer section allowed.
pub const MAX_TRAILERS: u32 = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a size line (no digit yet).
    SizeStart,
    Size,
    /// Whitespace after the size: only more of it or `;` may follow.
    SizeSpace,
    /// Chunk extensions (RFC 9112 §7.1.1), one state per place in their grammar.
    Ext(Ext),
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

/// Where in `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )` a byte is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// After `;`: whitespace, then a name.
    Start,
    Name,
    AfterName,
    ValueStart,
    Token,
    Quoted,
    Escape,
    AfterValue,
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// Not a hex digit where the size starts, or a bad byte on the size line.
    BadSize,
    /// More than 16 hex digits.
    SizeOverflow,
    /// CR not followed by LF, or LF without CR.
    BadLineEnd,
    /// A control byte or an over-long extension.
    BadExtension,
    /// A trailer line that is not `name: value`, or trailers over the limit.
    BadTrailer,
}

/// How far one call got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to this body (all of it unless `done`).
    pub used: usize,
    /// Of those, chunk data bytes (what counts against a body limit).
    pub data: u64,
    /// The body ended within the input, after `used` bytes.
    pub done: bool,
    /// Of the `used` bytes, those of trailer lines (empty at `used` if none): the proxy does
    /// not forward trailers, as nginx does not (a backend could merge them into the
    /// head the proxy checked).
    pub trailers: std::ops::Range<usize>,
}

/// The reader's state between reads.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: State,
    /// Data bytes left in the current chunk, or the size being read.
    size: u64,
    digits: u8,
    line: u32,
    trailers: u32,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked { state: State::SizeStart, size: 0, digits: 0, line: 0, trailers: 0 }
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Visible characters, space and tab (and obs-text): what a value or extension may hold.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80
}

/// `range`, or the empty range at `used` when there is none (so `[..start]` and
/// `[end..used]` are always the bytes to keep).
fn none_at(range: std::ops::Range<usize>, used: usize) -> std::ops::Range<usize> {
    if range.is_empty() { used..used } else { range }
}

/// The state after byte `b` of a chunk extension.
fn extension(at: Ext, b: u8) -> Result<State, ChunkError> {
    let space = b == b' ' || b == b'\t';
    let next = match (at, b) {
        (Ext::Start | Ext::ValueStart | Ext::AfterName | Ext::AfterValue, _) if space => at,
        (Ext::Name | Ext::Token, _) if space => {
            if at == Ext::Name {
                Ext::AfterName
            } else {
                Ext::AfterValue
            }
        }
        (Ext::Start, _) if is_token(b) => Ext::Name,
        (Ext::Name, _) if is_token(b) => Ext::Name,
        (Ext::Name | Ext::AfterName, b'=') => Ext::ValueStart,
        (Ext::ValueStart, b'"') => Ext::Quoted,
        (Ext::ValueStart | Ext::Token, _) if is_token(b) => Ext::Token,
        (Ext::Quoted, b'"') => Ext::AfterValue,
        (Ext::Quoted, b'\\') => Ext::Escape,
        (Ext::Quoted | Ext::Escape, _) if is_text(b) => Ext::Quoted,
        (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b';') => Ext::Start,
        (Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterValue, b'\r') => return Ok(State::SizeLf),
        _ => return Err(ChunkError::BadExtension),
    };
    Ok(State::Ext(next))
}

impl Chunked {
    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Data bytes left in the chunk being read (0 anywhere but in chunk data).
    pub fn data_left(&self) -> u64 {
        if self.state == State::Data { self.size } else { 0 }
    }

    /// Reads `input`, which continues the body from where the last call stopped.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, ChunkError> {
        let mut i = 0;
        let mut data = 0u64;
        let mut trailers = 0..0;
        while i < input.len() {
            let b = input[i];
            if matches!(self.state, State::TrailerName | State::TrailerValue | State::TrailerLf)
                || (self.state == State::TrailerStart && b != b'\r')
            {
                trailers = if trailers.is_empty() { i..i + 1 } else { trailers.start..i + 1 };
            }
            match self.state {
                State::Done => break,
                State::Data => {
                    let avail = (input.len() - i) as u64;
                    let take = avail.min(self.size);
                    // `take` ≤ the input's length, so it fits usize.
                    i += usize::try_from(take).unwrap_or(usize::MAX);
                    data += take;
                    self.size -= take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::SizeStart => {
                    let d = hex(b).ok_or(ChunkError::BadSize)?;
                    (self.size, self.digits, self.state) = (d, 1, State::Size);
                }
                State::Size => match hex(b) {
                    Some(d) if self.digits < 16 => {
                        self.size = (self.size << 4) | d;
                        self.digits += 1;
                    }
                    Some(_) => return Err(ChunkError::SizeOverflow),
                    None => self.end_of_size(b)?,
                },
                State::SizeSpace => {
                    self.count_extension()?;
                    match b {
                        b' ' | b'\t' => {}
                        b';' => self.state = State::Ext(Ext::Start),
                        _ => return Err(ChunkError::BadExtension),
                    }
                }
                State::Ext(at) => {
                    self.count_extension()?;
                    self.state = extension(at, b)?;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = if self.size == 0 { State::TrailerStart } else { State::Data };
                }
                State::DataCr => {
                    self.state = if b == b'\r' { State::DataLf } else { return Err(ChunkError::BadLineEnd) }
                }
                State::DataLf => {
                    self.state = if b == b'\n' { State::SizeStart } else { return Err(ChunkError::BadLineEnd) }
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::EndLf;
                    } else if is_token(b) {
                        self.state = State::TrailerName;
                        self.count_trailer()?;
                    } else {
                        // Leading whitespace would be obs-fold; anything else is not a field.
                        return Err(ChunkError::BadTrailer);
                    }
                }
                State::TrailerName => {
                    self.count_trailer()?;
                    if b == b':' {
                        self.state = State::TrailerValue;
                    } else if !is_token(b) {
                        return Err(ChunkError::BadTrailer);
                    }
                }
                State::TrailerValue => {
                    self.count_trailer()?;
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if !is_text(b) {
                        return Err(ChunkError::BadTrailer);
                    }
                }
                State::TrailerLf => {
                    self.count_trailer()?;
                    self.state = if b == b'\n' { State::TrailerStart } else { return Err(ChunkError::BadLineEnd) }
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadLineEnd);
                    }
                    self.state = State::Done;
                    return Ok(Fed { used: i + 1, data, done: true, trailers: none_at(trailers, i + 1) });
                }
            }
            i += 1;
        }
        Ok(Fed { used: i, data, done: self.state == State::Done, trailers: none_at(trailers, i) })
    }

    /// The byte after a size's digits: an extension, or the line's end.
    fn end_of_size(&mut self, b: u8) -> Result<(), ChunkError> {
        match b {
            b';' => {
                self.line = 1;
                self.state = State::Ext(Ext::Start);
                Ok(())
            }
            b' ' | b'\t' => {
                self.line = 1;
                self.state = State::SizeSpace;
                Ok(())
            }
            b'\r' => {
                self.state = State::SizeLf;
                Ok(())
            }
            b'\n' => Err(ChunkError::BadLineEnd),
            _ => Err(ChunkError::BadSize),
        }
    }

    fn count_extension(&mut self) -> Result<(), ChunkError> {
        self.line += 1;
        if self.line > MAX_EXTENSION { Err(ChunkError::BadExtension) } else { Ok(()) }
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailers += 1;
        if self.trailers > MAX_TRAILERS { Err(ChunkError::BadTrailer) } else { Ok(()) }
    }
}

#[cfg(test)]
#[path = "chunked_tests.rs"]
mod tests;
