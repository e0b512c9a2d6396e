//! Query strings of the admin API's GET calls: percent-decoded, every parameter
//! known and given at most once, or a 400 message naming the call.

/// The values of the `known` parameters, in their order; `Err` is a 400 message.
pub(crate) fn params<const N: usize>(
    call: &str,
    query: Option<&str>,
    known: [&str; N],
) -> Result<[Option<String>; N], String> {
    let mut values: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut unknown = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let Some(i) = known.iter().position(|k| *k == key) else {
            unknown.push(format!("{key:?}"));
            continue;
        };
        if values[i].replace(value.into_owned()).is_some() {
            return Err(format!("{call}: {key} given more than once"));
        }
    }
    if !unknown.is_empty() {
        return Err(format!("{call}: unknown query parameter(s) {}; known: {}", unknown.join(", "), known.join(", ")));
    }
    Ok(values)
}
