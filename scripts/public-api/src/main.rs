//! `hublink-public-api <rustdoc JSON file>`: prints the crate's public items, one per line,
//! sorted, without blanket impls (auto-trait and derived impls stay: dropping one breaks
//! users).

use std::error::Error;
use std::process::ExitCode;

/// The rustdoc JSON format that public-api 0.52.1 reads.
const FORMAT_VERSION: u64 = 57;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hublink-public-api: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: hublink-public-api <rustdoc JSON file>")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let version = json.get("format_version").and_then(|v| v.as_u64());
    if version != Some(FORMAT_VERSION) {
        return Err(format!(
            "{path} has rustdoc JSON format {:?}, this tool reads {FORMAT_VERSION}: use the \
             nightly pinned in scripts/public-api.sh, or move both pins together",
            version
        )
        .into());
    }
    let api = public_api::Builder::from_rustdoc_json(&path)
        .omit_blanket_impls(true)
        .build()?;
    let mut out = String::new();
    for item in api.items() {
        out.push_str(&item.to_string());
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}
