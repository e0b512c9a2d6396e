//! `[service.rollout]` and `[service.rollout.analysis]` (SPEC §2, §9) read over a
//! base: the defaults for the file, the service's settings for the start call
//! (`rollout_api.rs` walks the call's JSON with this same code).

use crate::error::Problems;
use crate::reader::{Field, Table};
use crate::{Analysis, OnInconclusive, RolloutSettings, Smoke, Weight, format_duration};
use std::time::Duration;
use toml::de::DeValue;

/// Reads every key of `t` over `base`; a bad value is reported and leaves the base's.
pub(crate) fn settings(mut t: Table, base: &RolloutSettings, p: &mut Problems) -> RolloutSettings {
    let mut s = base.clone();
    if let Some(steps) = t.take("steps").and_then(|f| steps(f, p)) {
        s.steps = steps;
    }
    let step_interval =
        read(&mut t, "step_interval", p, &mut s.step_interval, |f, p| capped(f.positive_duration(p), f, p));
    read(&mut t, "interval", p, &mut s.interval, |f, p| capped(f.positive_duration(p), f, p));
    read(&mut t, "warmup", p, &mut s.warmup, |f, p| capped(f.duration(p), f, p));
    let max_step =
        read(&mut t, "max_step_duration", p, &mut s.max_step_duration, |f, p| capped(f.positive_duration(p), f, p));
    read(&mut t, "on_inconclusive", p, &mut s.on_inconclusive, on_inconclusive);
    read(&mut t, "failure_limit", p, &mut s.failure_limit, |f, p| f.count(p, 1));
    read(&mut t, "smoke", p, &mut s.smoke, smoke);
    if let Some(f) = t.take("analysis") {
        let name = if p.api() { "" } else { "[service.rollout.analysis]" };
        let prefix = if p.api() { "analysis." } else { "" };
        if let Some(at) = f.table(p, name) {
            s.analysis = analysis(at.with_prefix(prefix), &base.analysis, p);
        }
    }
    let judged = step_interval != Read::Refused && max_step != Read::Refused;
    if judged && s.max_step_duration < s.step_interval {
        p.at(
            max_step.at().or(step_interval.at()).unwrap_or(t.start()),
            format!(
                "`max_step_duration` ({}) must be at least `step_interval` ({})",
                format_duration(s.max_step_duration),
                format_duration(s.step_interval)
            ),
        );
    }
    t.finish(p);
    s
}

/// The longest a rollout duration may be: a rollout is watched by people, and
/// its clock must stay within what timestamps can say.
const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);

/// `d`, unless it is longer than [`MAX_DURATION`] (then reported).
fn capped(d: Option<Duration>, f: Field, p: &mut Problems) -> Option<Duration> {
    let d = d?;
    if d > MAX_DURATION {
        p.at(f.at(), format!("`{}` must be at most 30d, found {}", f.name(), format_duration(d)));
        return None;
    }
    Some(d)
}

/// What [`read`] found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The key is not there; the slot keeps the base's value.
    Absent,
    /// Set from the value at this offset.
    Set(usize),
    /// There, but refused (the problem is recorded).
    Refused,
}

impl Read {
    fn at(self) -> Option<usize> {
        match self {
            Read::Set(at) => Some(at),
            Read::Absent | Read::Refused => None,
        }
    }
}

/// Reads `key` into `slot` when present and valid.
fn read<'t, 'i, T>(
    t: &mut Table<'t, 'i>,
    key: &str,
    p: &mut Problems,
    slot: &mut T,
    get: impl FnOnce(Field<'t, 'i>, &mut Problems) -> Option<T>,
) -> Read {
    let Some(f) = t.take(key) else {
        return Read::Absent;
    };
    match get(f, p) {
        Some(v) => {
            *slot = v;
            Read::Set(f.at())
        }
        None => Read::Refused,
    }
}

/// Canary weights: not empty, each above 0 with at most two decimals, strictly
/// ascending, the last one 100.
fn steps(f: Field, p: &mut Problems) -> Option<Vec<Weight>> {
    let items = f.array(p)?;
    let name = f.name();
    let Some(last) = items.last() else {
        p.at(f.at(), format!("`{name}` must not be empty (the last step is 100)"));
        return None;
    };
    let mut out: Vec<Weight> = Vec::new();
    let mut ok = true;
    let mut last_weight = None;
    for item in &items {
        let text = match item.value() {
            DeValue::Integer(_) | DeValue::Float(_) => item.text(),
            other => {
                p.at(item.at(), format!("`{name}` must hold numbers, found {}", p.word(other.type_str())));
                ok = false;
                continue;
            }
        };
        let w = match Weight::parse(&text) {
            Ok(w) => w,
            Err(e) => {
                p.at(item.at(), format!("`{name}`: {e}"));
                ok = false;
                continue;
            }
        };
        last_weight = Some((w, item.at()));
        if w == Weight::ZERO {
            p.at(item.at(), format!("`{name}`: a step must be above 0"));
            ok = false;
        } else if let Some(prev) = out.last().filter(|prev| w <= **prev) {
            p.at(item.at(), format!("`{name}` must be strictly ascending, found {w} after {prev}"));
            ok = false;
        }
        out.push(w);
    }
    if let Some((w, at)) = last_weight.filter(|(w, at)| *w != Weight::FULL && *at == last.at()) {
        p.at(at, format!("`{name}` must end at 100, found {w}"));
        ok = false;
    }
    ok.then_some(out)
}

fn on_inconclusive(f: Field, p: &mut Problems) -> Option<OnInconclusive> {
    match f.str(p)? {
        "pause" => Some(OnInconclusive::Pause),
        "abort" => Some(OnInconclusive::Abort),
        "continue" => Some(OnInconclusive::Continue),
        other => {
            p.at(f.at(), format!("`{}` must be \"pause\", \"abort\" or \"continue\", found \"{other}\"", f.name()));
            None
        }
    }
}

/// Smoke requests: an array of `{ path, status }`. Given, it replaces the base's
/// list (an empty one turns smoke checks off).
fn smoke(f: Field, p: &mut Problems) -> Option<Vec<Smoke>> {
    let items = f.array(p)?;
    let (name, prefixes): (&str, Vec<String>) = if p.api() {
        ("", (0..items.len()).map(|i| format!("{}[{i}].", f.name())).collect())
    } else {
        ("a `smoke` entry", vec![String::new(); items.len()])
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (item, prefix) in items.iter().zip(&prefixes) {
        let Some(t) = item.table(p, name) else {
            ok = false;
            continue;
        };
        let mut t = t.with_prefix(prefix);
        let path = t.require("path", p).and_then(|f| smoke_path(f, p));
        let status = t.require("status", p).and_then(|f| status(f, p));
        t.finish(p);
        match (path, status) {
            (Some(path), Some(status)) => out.push(Smoke { path, status }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn smoke_path(f: Field, p: &mut Problems) -> Option<String> {
    let s = f.str(p)?;
    if s.starts_with('/') && http::uri::PathAndQuery::try_from(s).is_ok() {
        return Some(s.to_owned());
    }
    p.at(f.at(), format!("`{}` must be an absolute request path, found \"{s}\"", f.name()));
    None
}

fn status(f: Field, p: &mut Problems) -> Option<u16> {
    let v = f.int(p)?;
    match u16::try_from(v) {
        Ok(s) if (100..=599).contains(&s) => Some(s),
        _ => {
            p.at(f.at(), format!("`{}` must be between 100 and 599, found {v}", f.name()));
            None
        }
    }
}

fn analysis(mut t: Table, base: &Analysis, p: &mut Problems) -> Analysis {
    let mut a = base.clone();
    read(&mut t, "min_requests", p, &mut a.min_requests, |f, p| {
        let v = f.int(p)?;
        let n = u64::try_from(v).ok().filter(|n| *n >= 1);
        if n.is_none() {
            p.at(f.at(), format!("`{}` must be at least 1, found {v}", f.name()));
        }
        n
    });
    read(&mut t, "max_error_rate", p, &mut a.max_error_rate, fraction);
    read(&mut t, "max_p99", p, &mut a.max_p99, |f, p| capped(f.positive_duration(p), f, p).map(Some::<Duration>));
    read(&mut t, "max_error_increase", p, &mut a.max_error_increase, fraction);
    read(&mut t, "max_latency_ratio", p, &mut a.max_latency_ratio, |f, p| {
        let v = f.float(p)?;
        if v < 1.0 {
            p.at(f.at(), format!("`{}` must be at least 1, found {}", f.name(), f.text()));
            return None;
        }
        Some(v)
    });
    read(&mut t, "fast_fail_errors", p, &mut a.fast_fail_errors, |f, p| f.count(p, 0));
    t.finish(p);
    a
}

/// A share: a number from 0 to 1.
fn fraction(f: Field, p: &mut Problems) -> Option<f64> {
    let v = f.float(p)?;
    if !(0.0..=1.0).contains(&v) {
        p.at(f.at(), format!("`{}` must be between 0 and 1, found {}", f.name(), f.text()));
        return None;
    }
    Some(v)
}
