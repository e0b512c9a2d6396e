//! A walker over the spanned TOML tree: typed getters that record a located problem
//! instead of failing, so one pass finds every problem in the file.

use crate::error::Problems;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

type Value<'i> = Spanned<DeValue<'i>>;

/// A table whose keys are taken one by one; what is left over is unknown.
pub(crate) struct Table<'t, 'i> {
    name: String,
    start: usize,
    prefix: &'t str,
    entries: Vec<(Field<'t, 'i>, bool)>,
}

impl<'t, 'i> Table<'t, 'i> {
    /// `name` is how messages refer to the table, e.g. `[listener]`; an empty name
    /// leaves it out (the start call's JSON, whose keys carry their whole path).
    pub(crate) fn new(name: impl Into<String>, start: usize, table: &'t DeTable<'i>) -> Self {
        let entries = table
            .iter()
            .map(|(k, v)| (Field { key: k.get_ref(), key_at: k.span().start, value: v, prefix: "" }, false))
            .collect();
        Self { name: name.into(), start, prefix: "", entries }
    }

    /// Messages name this table's keys as `{prefix}{key}`, e.g. `analysis.min_requests`.
    pub(crate) fn with_prefix(mut self, prefix: &'t str) -> Self {
        self.prefix = prefix;
        for (f, _) in &mut self.entries {
            f.prefix = prefix;
        }
        self
    }

    /// ` in [listener]`, or nothing for a table without a name.
    fn in_name(&self) -> String {
        if self.name.is_empty() { String::new() } else { format!(" in {}", self.name) }
    }

    /// Byte offset of the table itself, for "missing key" problems.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// Takes a key; `None` when absent.
    pub(crate) fn take(&mut self, key: &str) -> Option<Field<'t, 'i>> {
        let (field, taken) = self.entries.iter_mut().find(|(f, _)| f.key == key)?;
        *taken = true;
        Some(*field)
    }

    /// Takes a key that must be there.
    pub(crate) fn require(&mut self, key: &str, p: &mut Problems) -> Option<Field<'t, 'i>> {
        let field = self.take(key);
        if field.is_none() {
            p.at(self.start, format!("missing key `{}{key}`{}", self.prefix, self.in_name()));
        }
        field
    }

    /// Every entry, in file order (for tables whose keys are names, like pools).
    pub(crate) fn take_all(&mut self) -> Vec<Field<'t, 'i>> {
        self.entries
            .iter_mut()
            .map(|(f, taken)| {
                *taken = true;
                *f
            })
            .collect()
    }

    /// Reports every key nobody took.
    pub(crate) fn finish(self, p: &mut Problems) {
        let in_name = self.in_name();
        for (field, taken) in self.entries {
            if !taken {
                p.at(field.key_at, format!("unknown key `{}`{in_name}", field.name()));
            }
        }
    }
}

/// One key and its value.
#[derive(Clone, Copy)]
pub(crate) struct Field<'t, 'i> {
    pub(crate) key: &'t str,
    pub(crate) key_at: usize,
    value: &'t Value<'i>,
    /// Put before `key` in messages (see [`Table::with_prefix`]).
    prefix: &'t str,
}

impl<'t, 'i> Field<'t, 'i> {
    /// Byte offset of the value.
    pub(crate) fn at(&self) -> usize {
        self.value.span().start
    }

    /// The key as messages name it: with its table's prefix.
    pub(crate) fn name(&self) -> String {
        format!("{}{}", self.prefix, self.key)
    }

    fn wrong_type(&self, p: &mut Problems, want: &'static str) {
        let found = p.word(self.value.get_ref().type_str());
        p.at(self.at(), format!("`{}` must be {}, found {found}", self.name(), p.word(want)));
    }

    /// A number as written (for messages), or the value's type.
    pub(crate) fn text(&self) -> String {
        match self.value.get_ref() {
            DeValue::Integer(i) => i.to_string(),
            DeValue::Float(x) => x.as_str().to_owned(),
            other => other.type_str().to_owned(),
        }
    }

    /// The raw value, for callers that accept several types.
    pub(crate) fn value(&self) -> &'t DeValue<'i> {
        self.value.get_ref()
    }

    pub(crate) fn str(&self, p: &mut Problems) -> Option<&'t str> {
        let s = self.value.get_ref().as_str();
        if s.is_none() {
            self.wrong_type(p, "a string");
        }
        s
    }

    pub(crate) fn bool(&self, p: &mut Problems) -> Option<bool> {
        let b = self.value.get_ref().as_bool();
        if b.is_none() {
            self.wrong_type(p, "true or false");
        }
        b
    }

    pub(crate) fn int(&self, p: &mut Problems) -> Option<i64> {
        let Some(i) = self.value.get_ref().as_integer() else {
            self.wrong_type(p, "an integer");
            return None;
        };
        let digits = i.as_str().replace('_', "");
        match i64::from_str_radix(&digits, i.radix()) {
            Ok(v) => Some(v),
            Err(_) => {
                p.at(self.at(), format!("`{}` is out of range", self.name()));
                None
            }
        }
    }

    /// An integer of at least `min` (and at most `u32::MAX`).
    pub(crate) fn count(&self, p: &mut Problems, min: i64) -> Option<u32> {
        let v = self.int(p)?;
        if v < min {
            p.at(self.at(), format!("`{}` must be at least {min}, found {v}", self.name()));
            return None;
        }
        let n = u32::try_from(v);
        if n.is_err() {
            p.at(self.at(), format!("`{}` must be at most {}, found {v}", self.name(), u32::MAX));
        }
        n.ok()
    }

    /// A finite number; an integer is fine (`max_error_rate = 0`).
    pub(crate) fn float(&self, p: &mut Problems) -> Option<f64> {
        let v = match self.value.get_ref() {
            // Precision lost above 2^53 does not matter for limits and ratios.
            DeValue::Integer(_) => self.int(p)? as f64,
            DeValue::Float(x) => x.as_str().replace('_', "").parse().unwrap_or(f64::NAN),
            _ => {
                self.wrong_type(p, "a number");
                return None;
            }
        };
        if !v.is_finite() {
            p.at(self.at(), format!("`{}` must be a finite number, found {}", self.name(), self.text()));
            return None;
        }
        Some(v)
    }

    pub(crate) fn array(&self, p: &mut Problems) -> Option<Vec<Field<'t, 'i>>> {
        let Some(items) = self.value.get_ref().as_array() else {
            self.wrong_type(p, "an array");
            return None;
        };
        Some(items.iter().map(|v| Field { value: v, ..*self }).collect())
    }

    /// A table, named `name` in messages.
    pub(crate) fn table(&self, p: &mut Problems, name: impl Into<String>) -> Option<Table<'t, 'i>> {
        let Some(t) = self.value.get_ref().as_table() else {
            self.wrong_type(p, "a table");
            return None;
        };
        Some(Table::new(name, self.at(), t))
    }

    pub(crate) fn strings(&self, p: &mut Problems) -> Option<Vec<(&'t str, usize)>> {
        let items = self.array(p)?;
        let out: Vec<_> = items.iter().filter_map(|f| f.str(p).map(|s| (s, f.at()))).collect();
        (out.len() == items.len()).then_some(out)
    }

    pub(crate) fn duration(&self, p: &mut Problems) -> Option<Duration> {
        let s = self.str(p)?;
        match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                p.at(self.at(), format!("`{}`: {e}", self.name()));
                None
            }
        }
    }

    /// A duration longer than zero.
    pub(crate) fn positive_duration(&self, p: &mut Problems) -> Option<Duration> {
        let d = self.duration(p)?;
        if d.is_zero() {
            p.at(self.at(), format!("`{}` must be longer than 0", self.name()));
            return None;
        }
        Some(d)
    }

    /// A size: an integer of bytes, or a string such as `"10MiB"`.
    pub(crate) fn size(&self, p: &mut Problems) -> Option<u64> {
        let parsed = match self.value.get_ref() {
            DeValue::Integer(_) => return self.int(p).and_then(|v| self.non_negative(v, p)),
            DeValue::String(s) => parse_size(s),
            other => Err(format!("must be a size (bytes, or a string like \"10MiB\"), found {}", other.type_str())),
        };
        match parsed {
            Ok(n) => Some(n),
            Err(e) => {
                p.at(self.at(), format!("`{}`: {e}", self.name()));
                None
            }
        }
    }

    fn non_negative(&self, v: i64, p: &mut Problems) -> Option<u64> {
        match u64::try_from(v) {
            Ok(n) => Some(n),
            Err(_) => {
                p.at(self.at(), format!("`{}` must be at least 0, found {v}", self.name()));
                None
            }
        }
    }

    pub(crate) fn socket_addr(&self, p: &mut Problems) -> Option<SocketAddr> {
        let s = self.str(p)?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                p.at(self.at(), format!("`{}`: invalid address \"{s}\" (expected IP:PORT)", self.name()));
                None
            }
        }
    }

    /// A path resolved against the config's folder, checked to be a readable file.
    pub(crate) fn readable_file(&self, p: &mut Problems, base: &Path) -> Option<PathBuf> {
        let path = self.path(p, base)?;
        if let Err(e) = std::fs::read(&path) {
            p.at(self.at(), format!("`{}`: cannot read {}: {e}", self.name(), path.display()));
        }
        Some(path)
    }

    /// A readable file holding a secret of at least `min` bytes (surrounding
    /// whitespace ignored), so that what reads it after a reload cannot fail on it.
    pub(crate) fn secret_file(&self, p: &mut Problems, base: &Path, min: usize) -> Option<PathBuf> {
        let path = self.path(p, base)?;
        match std::fs::read(&path) {
            Err(e) => p.at(self.at(), format!("`{}`: cannot read {}: {e}", self.name(), path.display())),
            Ok(b) if b.trim_ascii().len() < min => {
                p.at(self.at(), format!("`{}`: {} holds fewer than {min} bytes", self.name(), path.display()))
            }
            Ok(_) => {}
        }
        Some(path)
    }

    /// A path resolved against the config's folder.
    pub(crate) fn path(&self, p: &mut Problems, base: &Path) -> Option<PathBuf> {
        let s = self.str(p)?;
        if s.is_empty() {
            p.at(self.at(), format!("`{}` must not be empty", self.name()));
            return None;
        }
        Some(base.join(s))
    }
}

/// Parses a size: `"512"`, `"64KiB"`, `"10MiB"`, `"1GiB"` (bytes when no unit).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let bad = || format!("invalid size \"{s}\" (bytes, or a number with KiB, MiB or GiB, e.g. \"10MiB\")");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).ok_or_else(bad)
}

/// Parses `"250ms"`, `"2s"`, `"1m"`, `"30d"` (humantime's grammar).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration \"{s}\" ({e}; e.g. \"250ms\", \"2s\", \"1m\")"))
}
