//! `hublink-chaos-proxy --upstream HOST:PORT [--interval-ms N] [--seed S]`: a TCP proxy on
//! 127.0.0.1 (ephemeral port) that cuts the connections through it (see
//! `hublink_testserver::chaos_proxy`). Prints its base URL on stdout once listening; on SIGTERM
//! or SIGINT prints one JSON line of counts on stderr (`{"accepted":…,"cuts":{"Reset":…}}`)
//! and exits 0.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use hublink_testserver::chaos_proxy::{ChaosPlan, ChaosProxy};

const USAGE: &str = "usage: hublink-chaos-proxy --upstream HOST:PORT [--interval-ms N] [--seed S]";

fn parse_args() -> Result<(SocketAddr, ChaosPlan), String> {
    let mut upstream = None;
    let mut plan = ChaosPlan::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: '{value}' is not a number\n{USAGE}"))
        };
        match flag.as_str() {
            "--upstream" => {
                upstream = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--upstream: '{value}' is not HOST:PORT"))?,
                )
            }
            "--interval-ms" => plan.interval = Duration::from_millis(number()?),
            "--seed" => plan.seed = number()?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok((upstream.ok_or(USAGE)?, plan))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (upstream, plan) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let proxy = match ChaosProxy::start(upstream, plan).await {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("hublink-chaos-proxy: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "http://{}", proxy.addr());
        let _ = out.flush();
    }
    hublink_testserver::wait_for_shutdown_signal().await;
    let cuts: Vec<String> = proxy
        .cuts()
        .iter()
        .map(|(kind, n)| format!("\"{kind:?}\":{n}"))
        .collect();
    eprintln!(
        "{{\"accepted\":{},\"cuts\":{{{}}}}}",
        proxy.accepted(),
        cuts.join(",")
    );
    ExitCode::SUCCESS
}
