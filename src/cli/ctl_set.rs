//! `ctl rollout start --set KEY=VALUE`: any rollout setting, nested as in the file
//! (`analysis.max_error_rate=0.02` → `{"analysis": {"max_error_rate": 0.02}}`).
//! Values: an integer or a finite float → number, `true`/`false` → bool, numbers
//! separated by commas → array (so `steps=5,25,100`), a JSON array or object
//! (`smoke=[{"path":"/ready","status":200}]`) → itself, anything else → string
//! (durations such as `30s` stay strings, as the API takes them).

use serde_json::{Map, Number, Value};

/// One `--set`: the key's path and its value.
pub type Setting = (Vec<String>, Value);

/// Keys the command line sets itself.
const RESERVED: [&str; 2] = ["pool", "reason"];

/// Parses `KEY=VALUE` (clap's value parser for `--set`).
pub fn parse(s: &str) -> Result<Setting, String> {
    let (key, value) = s.split_once('=').ok_or_else(|| format!("expected KEY=VALUE, got \"{s}\""))?;
    let path: Vec<String> = key.trim().split('.').map(str::to_owned).collect();
    if path.iter().any(|p| p.is_empty() || p.contains(char::is_whitespace)) {
        return Err(format!("\"{key}\" is not a setting name (e.g. step_interval, analysis.max_error_rate)"));
    }
    if path.len() == 1 && RESERVED.contains(&path[0].as_str()) {
        return Err(format!("set {} with the command's own argument, not --set", path[0]));
    }
    let mut value = to_json(value.trim());
    // `steps=100` is still a list of steps.
    if path.last().is_some_and(|k| k == "steps") && value.is_number() {
        value = Value::Array(vec![value]);
    }
    Ok((path, value))
}

/// The JSON value a `--set` text stands for.
pub fn to_json(text: &str) -> Value {
    match text {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = number(text) {
        return Value::Number(n);
    }
    if text.starts_with(['[', '{'])
        && let Ok(v @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str::<Value>(text)
    {
        return v;
    }
    if text.contains(',') {
        let items: Option<Vec<Value>> = text.split(',').map(|t| number(t.trim()).map(Value::Number)).collect();
        if let Some(items) = items {
            return Value::Array(items);
        }
    }
    Value::String(text.to_owned())
}

/// An integer, or a finite float written with digits (not `inf` or `NaN`).
fn number(text: &str) -> Option<Number> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64)
}

/// Puts `value` at `path` inside `body`; a path through a value that is not a
/// table (`--set analysis=1 --set analysis.min_requests=5`) is an error. A key
/// set twice takes the last value.
pub fn merge(body: &mut Map<String, Value>, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty setting name".into());
    };
    let mut table = body;
    for (i, key) in parents.iter().enumerate() {
        let entry = table.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        table = entry
            .as_object_mut()
            .ok_or_else(|| format!("{} is set to a value, so it has no {}", path[..=i].join("."), path.join(".")))?;
    }
    if table.get(last).is_some_and(Value::is_object) && !value.is_object() {
        return Err(format!("{} holds other settings and cannot be set to a value", path.join(".")));
    }
    table.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(sets: &[&str]) -> Result<Value, String> {
        let mut m = Map::new();
        for s in sets {
            let (path, value) = parse(s)?;
            merge(&mut m, &path, value)?;
        }
        Ok(Value::Object(m))
    }

    #[test]
    fn dotted_keys_nest_and_siblings_share_their_table() {
        assert_eq!(
            body(&["analysis.max_error_rate=0.02", "analysis.min_requests=100", "step_interval=30s"]),
            Ok(json!({"analysis": {"max_error_rate": 0.02, "min_requests": 100}, "step_interval": "30s"}))
        );
    }

    #[test]
    fn values_become_numbers_bools_arrays_or_strings() {
        assert_eq!(to_json("3"), json!(3));
        assert_eq!(to_json("-2"), json!(-2));
        assert_eq!(to_json("1.25"), json!(1.25));
        assert_eq!(to_json("1e-3"), json!(0.001));
        assert_eq!(to_json("true"), json!(true));
        assert_eq!(to_json("false"), json!(false));
        assert_eq!(to_json("5,25,50,100"), json!([5, 25, 50, 100]));
        assert_eq!(to_json("2.5, 50,100"), json!([2.5, 50, 100]));
        assert_eq!(to_json("800ms"), json!("800ms"));
        assert_eq!(to_json("pause"), json!("pause"));
        assert_eq!(to_json("inf"), json!("inf"));
        assert_eq!(to_json("NaN"), json!("NaN"));
        assert_eq!(to_json("5,x"), json!("5,x"));
        assert_eq!(to_json("5,,100"), json!("5,,100"));
        assert_eq!(to_json(""), json!(""));
        assert_eq!(to_json(r#"[{"path":"/ready","status":200}]"#), json!([{"path": "/ready", "status": 200}]));
        assert_eq!(to_json("[not json"), json!("[not json"));
    }

    #[test]
    fn steps_are_always_a_list() {
        assert_eq!(body(&["steps=100"]), Ok(json!({"steps": [100]})));
        assert_eq!(body(&["steps=10,100"]), Ok(json!({"steps": [10, 100]})));
    }

    #[test]
    fn the_last_of_a_repeated_key_wins() {
        assert_eq!(body(&["interval=2s", "interval=3s"]), Ok(json!({"interval": "3s"})));
    }

    #[test]
    fn malformed_or_conflicting_settings_are_refused() {
        for bad in ["no_equals", "=1", "analysis.=1", ".x=1", "a..b=1", "pool=green", "reason=x", "a b=1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let err = body(&["analysis=1", "analysis.min_requests=5"]).expect_err("scalar then table");
        assert_eq!(err, "analysis is set to a value, so it has no analysis.min_requests");
        let err = body(&["analysis.min_requests=5", "analysis=1"]).expect_err("table then scalar");
        assert_eq!(err, "analysis holds other settings and cannot be set to a value");
    }
}
