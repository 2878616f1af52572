//! JSON in and out: arguments typed on the command line, values printed for people and `jq`.

use base64::Engine;
use hublink::Value;
use serde_json::Value as Json;

use crate::args::Output;
use crate::failure::Failure;

/// Reads the `position`-th (from 1) argument of `method` as a JSON value.
pub fn parse_argument(method: &str, position: usize, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| {
        let hint = if text.starts_with(['"', '{', '[']) || looks_like_a_literal(text) {
            String::new()
        } else {
            format!(" (a string needs JSON quotes: '\"{text}\"')")
        };
        Failure::Usage(format!(
            "argument {position} of {method} is not JSON: {error}{hint}"
        ))
    })
}

/// Reads every argument of `method`.
pub fn parse_arguments(method: &str, texts: &[String]) -> Result<Vec<Value>, Failure> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| parse_argument(method, i + 1, text))
        .collect()
}

fn looks_like_a_literal(text: &str) -> bool {
    matches!(text, "true" | "false" | "null")
        || text.starts_with(|c: char| c.is_ascii_digit() || c == '-')
}

/// `value` as JSON for display. Lossless where JSON can carry it; otherwise a readable stand-in:
/// binary and extension data as base64 (as SignalR's JSON protocol writes `byte[]`), non-finite
/// floats as the strings "NaN", "Infinity", "-Infinity", non-string map keys as their JSON text.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::UInt(n) => Json::from(*n),
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        Value::String(text) => Json::String(text.clone()),
        Value::Binary(bytes) => Json::String(base64(bytes)),
        Value::Timestamp(t) => {
            serde_json::to_value(t).unwrap_or_else(|e| Json::String(e.to_string()))
        }
        Value::Extension(kind, bytes) => {
            serde_json::json!({ "extension": kind, "data": base64(bytes) })
        }
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Value::String(text) => text.clone(),
                        other => to_json(other).to_string(),
                    };
                    (key, to_json(value))
                })
                .collect(),
        ),
    }
}

fn float(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or_else(
        || {
            Json::String(
                if f.is_nan() {
                    "NaN"
                } else if f > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .to_owned(),
            )
        },
        Json::Number,
    )
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A call the server made, as printed by `listen` and `repl`: `{"method": …, "arguments": […]}`
/// in that order, whatever map serde_json builds with (a struct keeps its field order).
pub fn render_call(method: &str, arguments: &[Value], output: Output) -> String {
    #[derive(serde::Serialize)]
    struct Call<'a> {
        method: &'a str,
        arguments: Vec<Json>,
    }
    let call = Call {
        method,
        arguments: arguments.iter().map(to_json).collect(),
    };
    match output {
        Output::Json => serde_json::to_string(&call),
        Output::Pretty => serde_json::to_string_pretty(&call),
    }
    .unwrap_or_default()
}

/// `json` as text in the chosen style (one line for `Output::Json`).
pub fn render(json: &Json, output: Output) -> String {
    match output {
        Output::Json => json.to_string(),
        Output::Pretty => serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_json_and_a_bare_word_gets_a_hint() {
        assert_eq!(parse_argument("M", 1, "42").unwrap(), Value::Int(42));
        assert_eq!(
            parse_argument("M", 1, "\"hi\"").unwrap(),
            Value::String("hi".into())
        );
        let Failure::Usage(text) = parse_argument("Echo", 2, "hello").unwrap_err() else {
            panic!("a usage error")
        };
        assert!(
            text.starts_with("argument 2 of Echo is not JSON: "),
            "{text}"
        );
        assert!(
            text.ends_with("(a string needs JSON quotes: '\"hello\"')"),
            "{text}"
        );
        let Failure::Usage(text) = parse_argument("M", 1, "{\"a\":").unwrap_err() else {
            panic!("a usage error")
        };
        assert!(!text.contains("quotes"), "{text}");
    }

    #[test]
    fn what_json_cannot_carry_is_shown_readably() {
        let value = Value::Map(vec![
            (Value::Int(1), Value::F64(f64::NAN)),
            (Value::from("bytes"), Value::Binary(vec![1, 2, 3])),
            (Value::from("inf"), Value::F32(f32::NEG_INFINITY)),
        ]);
        assert_eq!(
            to_json(&value).to_string(),
            r#"{"1":"NaN","bytes":"AQID","inf":"-Infinity"}"#
        );
    }
}
