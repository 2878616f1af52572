//! Lines to standard output; a closed pipe (`| head`) ends the command quietly instead of
//! panicking as `println!` would.

use std::io::Write;

use hublink::Value;

use crate::args::Output;
use crate::json::{render, to_json};

/// Standard output closed under us: the reader is done.
#[derive(Debug)]
pub struct Closed;

/// Prints `value` as one JSON value in the chosen style.
pub fn print_value(value: &Value, output: Output) -> Result<(), Closed> {
    print_json(&to_json(value), output)
}

/// Prints a line of text.
pub fn print_line(text: &str) -> Result<(), Closed> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|_| Closed)
}

/// Prints `json` in the chosen style.
pub fn print_json(json: &serde_json::Value, output: Output) -> Result<(), Closed> {
    print_line(&render(json, output))
}
