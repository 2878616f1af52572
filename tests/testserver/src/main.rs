//! `hublink-testserver`: prints its base URL on stdout once listening, logs to stderr, and
//! serves until SIGTERM or SIGINT (exit code 0).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use hublink_testserver::{TestServer, TestServerOptions};

const USAGE: &str = "usage: hublink-testserver [--port N] [--keep-alive-ms N] [--client-timeout-ms N] \
[--handshake-timeout-ms N] [--long-poll-timeout-ms N] [--max-message-size BYTES] \
[--no-stateful-reconnect] [--stateful-grace-ms N] [--stateful-buffer-size BYTES] [--ack-delay-ms N] \
[--redis redis://HOST:PORT] [--instance-name NAME]";

fn parse_args() -> Result<TestServerOptions, String> {
    let mut o = TestServerOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-stateful-reconnect" {
            o.stateful_reconnect = false;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--redis" => {
                o.redis_url = Some(value);
                continue;
            }
            "--instance-name" => {
                o.instance_name = Some(value);
                continue;
            }
            _ => {}
        }
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: '{value}' is not a number\n{USAGE}"))?;
        let ms = Duration::from_millis(n);
        match flag.as_str() {
            "--port" => o.port = u16::try_from(n).map_err(|_| "--port: out of range")?,
            "--keep-alive-ms" => o.keep_alive_interval = ms,
            "--client-timeout-ms" => o.client_timeout = ms,
            "--handshake-timeout-ms" => o.handshake_timeout = ms,
            "--long-poll-timeout-ms" => o.long_poll_timeout = ms,
            "--max-message-size" => o.max_message_size = n as usize,
            "--stateful-grace-ms" => o.stateful_reconnect_grace = ms,
            "--stateful-buffer-size" => o.stateful_reconnect_buffer_size = n as usize,
            "--ack-delay-ms" => o.ack_delay = ms,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let with_redis = options.redis_url.is_some();
    let server = match TestServer::start(options).await {
        Ok(s) => s,
        Err(e) if with_redis => {
            eprintln!("hublink-testserver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("hublink-testserver: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", server.base_url());
        let _ = out.flush();
    }
    eprintln!("hublink-testserver: listening on {}", server.base_url());
    hublink_testserver::wait_for_shutdown_signal().await;
    eprintln!("hublink-testserver: shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}
