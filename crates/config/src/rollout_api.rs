//! The start call's settings (`POST /v1/services/{svc}/rollout`, SPEC §4, §9). The
//! JSON object is written out as TOML and read by the very code that reads
//! `[service.rollout]`, so the file and the API can never accept different things.

use crate::RolloutSettings;
use crate::error::{Problems, one_line};
use crate::reader::Table;
use crate::rollout::settings;
use serde_json::{Map, Value};
use std::fmt::Write as _;
use toml::de::DeTable;

/// Deeper than any setting (`smoke[0].path` is three levels); refused beyond.
const MAX_DEPTH: usize = 4;

/// Applies the start call's overrides over `base` (the service's `[service.rollout]`).
///
/// `overrides` holds only setting keys, nested as in the file: any key of
/// `[service.rollout]` and `"analysis": {…}` with any key of
/// `[service.rollout.analysis]` (the caller removes `pool`, `reason` and the like
/// first). A key given replaces the base's value; `smoke` replaces the whole list.
/// The same rules as the file apply. Every problem is reported, joined with `"; "`,
/// each naming the field as the caller wrote it, e.g. "`analysis.max_error_rate`
/// must be between 0 and 1, found 2" or "unknown key `analysis.foo`".
pub fn rollout_overrides(base: &RolloutSettings, overrides: &Map<String, Value>) -> Result<RolloutSettings, String> {
    let mut r = Render::default();
    let text = r.members(overrides, "", 0).join("\n");
    let doc =
        DeTable::parse(&text).map_err(|e| format!("the rollout settings could not be read: {}", e.message().trim()))?;
    let mut p = Problems::for_api(&text);
    let s = settings(Table::new("", 0, doc.get_ref()), base, &mut p);
    let mut errors: Vec<String> = r.errors.iter().map(|e| one_line(e)).collect();
    // A member left out was reported already; its absence is not a second problem.
    errors.extend(p.into_messages().into_iter().filter(|m| !r.left_out.contains(m)));
    if errors.is_empty() { Ok(s) } else { Err(errors.join("; ")) }
}

/// Writes JSON as TOML, collecting what cannot be written.
#[derive(Default)]
struct Render {
    /// Problems found while writing (null, too deep).
    errors: Vec<String>,
    /// `missing key `PATH`` for each member left out.
    left_out: Vec<String>,
}

impl Render {
    /// `"key" = value` for each member; members that cannot be written are left out.
    fn members(&mut self, map: &Map<String, Value>, path: &str, depth: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(map.len());
        for (k, v) in map {
            let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            match self.value(v, &here, depth) {
                Some(value) => {
                    let mut line = String::new();
                    quote(k, &mut line);
                    line.push_str(" = ");
                    line.push_str(&value);
                    out.push(line);
                }
                None => self.left_out.push(format!("missing key `{here}`")),
            }
        }
        out
    }

    /// One value as TOML on one line; `None` (reported) when it or a part cannot be.
    fn value(&mut self, v: &Value, path: &str, depth: usize) -> Option<String> {
        if depth >= MAX_DEPTH {
            self.errors.push(format!("`{path}` is nested too deeply"));
            return None;
        }
        Some(match v {
            Value::Null => {
                self.errors.push(format!("`{path}` must not be null (leave it out to keep the service's setting)"));
                return None;
            }
            Value::Bool(b) => b.to_string(),
            // JSON's number grammar is a subset of TOML's.
            Value::Number(n) => n.to_string(),
            Value::String(s) => {
                let mut out = String::new();
                quote(s, &mut out);
                out
            }
            Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                let mut whole = true;
                for (i, item) in items.iter().enumerate() {
                    match self.value(item, &format!("{path}[{i}]"), depth + 1) {
                        Some(text) => parts.push(text),
                        None => whole = false,
                    }
                }
                // A hole would shift the positions that later messages name.
                if !whole {
                    return None;
                }
                format!("[{}]", parts.join(", "))
            }
            Value::Object(map) => format!("{{ {} }}", self.members(map, path, depth + 1).join(", ")),
        })
    }
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
