//! Resource-option validation with the original's messages (§A6, §A10.9): required first,
//! then the request's key order; Python type names and value forms; inclusive bounds; a
//! bound of 0 never checked; unknown keys dropped; defaults never applied.

use serde_json::{Map, Value};

/// One entry of the config's `parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// `variable_name`.
    pub name: String,
    /// `validation.type`: `int`, `float`, `bool` or `str`.
    pub kind: String,
    /// `validation.min`.
    pub min: Option<f64>,
    /// `validation.max`.
    pub max: Option<f64>,
    /// `validation.required`.
    pub required: bool,
}

impl Parameter {
    /// The parameters of the config's `parameters` list (entries without a
    /// `variable_name` are skipped).
    pub fn from_config(parameters: &Value) -> Vec<Self> {
        let list = parameters.as_array().map(Vec::as_slice).unwrap_or_default();
        list.iter()
            .filter_map(|p| {
                let v = p.get("validation");
                let get = |k: &str| v.and_then(|v| v.get(k));
                Some(Self {
                    name: p.get("variable_name")?.as_str()?.to_owned(),
                    kind: get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("str")
                        .to_owned(),
                    min: get("min").and_then(Value::as_f64),
                    max: get("max").and_then(Value::as_f64),
                    required: get("required").and_then(Value::as_bool).unwrap_or(false),
                })
            })
            .collect()
    }
}

/// Python's type name of a JSON value.
pub fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn py_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python's `str()` of a JSON value (strings bare, `True`, `None`, `2.0`).
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON value.
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => py_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => py_str_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_str_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Python's `repr()` of a string: single quotes unless it holds a single quote and no
/// double quote.
pub fn py_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Checks `options` (`order` is the request's key order); returns the known options, or
/// the error list.
pub fn validate(
    parameters: &[Parameter],
    options: &Map<String, Value>,
    order: &[String],
) -> Result<Map<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    for p in parameters.iter().filter(|p| p.required) {
        if !options.contains_key(&p.name) {
            errors.push(format!("Missing required: {}", p.name));
        }
    }
    let mut keys: Vec<&String> = order.iter().filter(|k| options.contains_key(*k)).collect();
    keys.extend(options.keys().filter(|k| !order.contains(k)));
    let mut known = Map::new();
    for key in keys {
        let Some(p) = parameters.iter().find(|p| &p.name == key) else {
            continue;
        };
        let value = &options[key];
        known.insert(key.clone(), value.clone());
        let shown = py_str(value);
        let actual = py_type(value);
        if actual != p.kind {
            errors.push(format!(
                "{key}: Value '{shown}' of type {actual} does not match required type {}. \
                 Skipping further validation of parameter {key}.",
                p.kind
            ));
            continue;
        }
        let Some(number) = value.as_f64().filter(|_| value.is_number()) else {
            continue;
        };
        let bound = |b: f64| {
            py_repr(&serde_json::json!(b))
                .trim_end_matches(".0")
                .to_owned()
        };
        if let Some(min) = p.min.filter(|m| *m != 0.0)
            && number < min
        {
            errors.push(format!(
                "{key}: Value '{shown}' not above minimum of {}.",
                bound(min)
            ));
        }
        if let Some(max) = p.max.filter(|m| *m != 0.0)
            && number > max
        {
            errors.push(format!(
                "{key}: Value '{shown}' above maximum of {}.",
                bound(max)
            ));
        }
    }
    if errors.is_empty() {
        Ok(known)
    } else {
        Err(errors)
    }
}

/// The 422 message: `Invalid resource options found: ` and the Python list repr.
pub fn message(errors: &[String]) -> String {
    let items: Vec<String> = errors.iter().map(|e| py_str_repr(e)).collect();
    format!("Invalid resource options found: [{}]", items.join(", "))
}

/// `parameter_mapping`: options renamed; options without a mapping are dropped, as the
/// original's `translate_options`.
pub fn translate(options: &Map<String, Value>, mapping: Option<&Value>) -> Map<String, Value> {
    let Some(Value::Object(mapping)) = mapping else {
        return Map::new();
    };
    options
        .iter()
        .filter_map(|(k, v)| Some((mapping.get(k)?.as_str()?.to_owned(), v.clone())))
        .collect()
}

/// The key order of the body's `resource_options` object, read from the raw body (the
/// parsed map is sorted).
pub fn option_order(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Outer {
        #[serde(default)]
        resource_options: Option<Keys>,
    }
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("any value")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(k);
                    }
                    Ok(Keys(keys))
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Keys, A::Error> {
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    Ok(Keys(Vec::new()))
                }
                fn visit_unit<E>(self) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_bool<E>(self, _: bool) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_i64<E>(self, _: i64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_u64<E>(self, _: u64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
                fn visit_str<E>(self, _: &str) -> Result<Keys, E> {
                    Ok(Keys(Vec::new()))
                }
            }
            d.deserialize_any(Visit)
        }
    }
    serde_json::from_slice::<Outer>(body)
        .ok()
        .and_then(|o| o.resource_options)
        .map(|k| k.0)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defaults() -> Vec<Parameter> {
        Parameter::from_config(&json!([
            {"variable_name": "num_cpus", "validation": {"type": "int", "min": 1, "max": 4}},
            {"variable_name": "memory_mb", "validation": {"type": "int", "min": 1024, "max": 8192}},
            {"variable_name": "time_limit_min", "validation": {"type": "int", "min": 1, "max": 480}},
            {"variable_name": "gpu_enabled", "validation": {"type": "bool"}},
            {"variable_name": "zero", "validation": {"type": "int", "min": 0, "max": 0}},
            {"variable_name": "test_param", "validation": {"type": "str", "required": true}},
        ]))
    }

    fn check(body: &str) -> Result<Map<String, Value>, String> {
        let value: Value = serde_json::from_str(body).unwrap();
        let options = value["resource_options"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        validate(&defaults(), &options, &option_order(body.as_bytes())).map_err(|e| message(&e))
    }

    #[test]
    fn the_originals_messages() {
        assert_eq!(
            check(r#"{"resource_options": {"test_param": "x", "num_cpus": "one"}}"#),
            Err(
                "Invalid resource options found: [\"num_cpus: Value 'one' of type str does not \
                 match required type int. Skipping further validation of parameter num_cpus.\"]"
                    .into()
            )
        );
        assert_eq!(
            check(r#"{"resource_options": {"test_param": "x", "memory_mb": 1}}"#),
            Err("Invalid resource options found: [\"memory_mb: Value '1' not above minimum of 1024.\"]".into())
        );
        assert_eq!(
            check(r#"{"resource_options": {}}"#),
            Err("Invalid resource options found: ['Missing required: test_param']".into())
        );
    }

    #[test]
    fn required_first_then_request_order_with_python_forms() {
        let got = check(
            r#"{"resource_options": {"time_limit_min": 481, "gpu_enabled": 1, "num_cpus": true, "memory_mb": 2.0}}"#,
        )
        .unwrap_err();
        assert_eq!(
            got,
            "Invalid resource options found: ['Missing required: test_param', \
             \"time_limit_min: Value '481' above maximum of 480.\", \
             \"gpu_enabled: Value '1' of type int does not match required type bool. Skipping further validation of parameter gpu_enabled.\", \
             \"num_cpus: Value 'True' of type bool does not match required type int. Skipping further validation of parameter num_cpus.\", \
             \"memory_mb: Value '2.0' of type float does not match required type int. Skipping further validation of parameter memory_mb.\"]"
        );
    }

    #[test]
    fn bounds_are_inclusive_zero_is_unchecked_unknown_dropped() {
        let ok = check(
            r#"{"resource_options": {"test_param": "x", "num_cpus": 4, "time_limit_min": 1, "zero": -5, "other": 1}}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 4);
        assert!(!ok.contains_key("other"));
    }

    #[test]
    fn mapping_renames_and_drops_unmapped() {
        let options = json!({"num_cpus": 2, "gpu_enabled": false});
        let mapped = translate(
            options.as_object().unwrap(),
            Some(&json!({"num_cpus": "cpus_per_task"})),
        );
        assert_eq!(Value::Object(mapped), json!({"cpus_per_task": 2}));
    }

    #[test]
    fn python_repr_of_strings() {
        assert_eq!(py_str_repr("a'b"), "\"a'b\"");
        assert_eq!(py_str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(py_str_repr("x\n"), "'x\\n'");
    }
}
