//! Errors of loading a config: the file itself, its TOML syntax, or its meaning.

use std::fmt;

/// One thing wrong with a config file, at a place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the offending value (or key, for unknown keys).
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// Why a config could not be loaded. `Display` prints the exact lines of `switchyard check`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: {message}")]
    Io {
        /// The path as the user gave it.
        file: String,
        /// The OS error.
        message: String,
    },
    /// The file is not valid TOML; reported alone.
    #[error("{}", render(file, std::slice::from_ref(problem)))]
    Syntax {
        /// The path as the user gave it.
        file: String,
        /// Where and what.
        problem: Problem,
    },
    /// Valid TOML with one or more problems of meaning, all of them.
    #[error("{}", render(file, problems))]
    Invalid {
        /// The path as the user gave it.
        file: String,
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// One line per problem, `FILE:LINE:COL: message` (or `FILE: message` for I/O).
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_owned).collect()
    }
}

fn render(file: &str, problems: &[Problem]) -> String {
    let mut out = String::new();
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("{file}:{}:{}: {}", p.line, p.col, p.message));
    }
    out
}

/// A message that quotes the file's text stays one line: control characters
/// (a newline inside a multi-line string, say) are escaped.
pub(crate) fn one_line(message: &str) -> String {
    if !message.chars().any(char::is_control) {
        return message.to_owned();
    }
    message.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Problems collected while reading a file, located by byte offset until rendered.
pub(crate) struct Problems<'s> {
    src: &'s str,
    found: Vec<(usize, String)>,
    api: bool,
}

impl<'s> Problems<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Self { src, found: Vec::new(), api: false }
    }

    /// For TOML rendered from a JSON body: messages speak of objects, not tables.
    pub(crate) fn for_api(src: &'s str) -> Self {
        Self { src, found: Vec::new(), api: true }
    }

    /// Whether the text came from the admin API's JSON rather than the file.
    pub(crate) fn api(&self) -> bool {
        self.api
    }

    /// A TOML type word (`table`, `a table`) as the reader of the source knows it.
    pub(crate) fn word(&self, toml: &'static str) -> &'static str {
        match (self.api, toml) {
            (true, "table") => "object",
            (true, "a table") => "an object",
            _ => toml,
        }
    }

    /// Records a problem at byte `offset` of the source.
    pub(crate) fn at(&mut self, offset: usize, message: impl fmt::Display) {
        self.found.push((offset, message.to_string()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Sorted by position; the same problem at the same place is kept once.
    pub(crate) fn into_problems(mut self) -> Vec<Problem> {
        self.found.sort_by_key(|(offset, _)| *offset);
        self.found.dedup();
        let src = self.src;
        self.found.into_iter().map(|(offset, message)| locate(src, offset, message)).collect()
    }
}

impl Problems<'_> {
    /// The messages alone, in source order, without locations (for the admin API).
    pub(crate) fn into_messages(self) -> Vec<String> {
        self.into_problems().into_iter().map(|p| p.message).collect()
    }
}

/// Turns a byte offset into a 1-based line and character column.
pub(crate) fn locate(src: &str, offset: usize, message: String) -> Problem {
    let offset = offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    Problem { line, col, message: one_line(&message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        let p = locate(src, src.find('"').unwrap(), "m".into());
        assert_eq!((p.line, p.col), (2, 6));
        assert_eq!(locate(src, 0, "m".into()).line, 1);
    }
}
