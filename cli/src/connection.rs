//! A hub connection made from the command line's options.

use std::sync::Arc;
use std::time::Duration;

use hublink::{
    parse_transports, AccessTokenFactory, ConnectionOptions, DefaultRetryPolicy, HubConnection,
    HubProtocol,
};

use crate::args::{ConnectionArgs, Protocol};
use crate::failure::Failure;

/// The connection `args` describe, for the hub at `url` (not started).
pub fn build(url: &str, args: &ConnectionArgs) -> Result<HubConnection, Failure> {
    let mut options = ConnectionOptions::new(url);
    options.transports = parse_transports(&args.transports).map_err(usage)?;
    options.protocol = match args.protocol {
        Protocol::Json => HubProtocol::Json,
        Protocol::Messagepack => HubProtocol::MessagePack,
    };
    options.skip_negotiation = args.skip_negotiation;
    options.headers = args
        .headers
        .iter()
        .map(|header| parse_header(header))
        .collect::<Result<_, _>>()?;
    options.cookies = args.cookies.clone();
    options.access_token_factory = match (&args.token, &args.token_command) {
        (Some(token), _) => Some(fixed_token(token.clone())),
        (None, Some(command)) => Some(token_from_command(command.clone())),
        (None, None) => None,
    };
    options.stateful_reconnect = args.stateful_reconnect;
    if args.reconnect {
        options.retry_policy = Some(Arc::new(DefaultRetryPolicy::default()));
    }
    if let Some(seconds) = args.server_timeout {
        options.server_timeout = seconds_option("--server-timeout", seconds)?;
    }
    if let Some(seconds) = args.keep_alive {
        options.keep_alive_interval = seconds_option("--keep-alive", seconds)?;
    }
    if let Some(seconds) = args.handshake_timeout {
        options.handshake_timeout = seconds_option("--handshake-timeout", seconds)?;
    }
    options.log_message_content = args.verbose >= 3;
    HubConnection::new(options).map_err(usage)
}

/// `--timeout`, if given.
pub fn timeout(args: &ConnectionArgs) -> Result<Option<Duration>, Failure> {
    args.timeout
        .map(|seconds| seconds_option("--timeout", seconds))
        .transpose()
}

fn usage(error: hublink::Error) -> Failure {
    Failure::Usage(error.to_string())
}

fn seconds_option(name: &str, seconds: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "{name} must be a positive number of seconds, not {seconds}"
            ))
        })
}

fn parse_header(header: &str) -> Result<(String, String), Failure> {
    match header.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(Failure::Usage(format!(
            "a header is 'Name: value', not '{header}'"
        ))),
    }
}

fn fixed_token(token: String) -> AccessTokenFactory {
    Arc::new(move || {
        let token = token.clone();
        Box::pin(async move { Ok(Some(token)) })
    })
}

/// Runs `command` with `sh -c` for every token asked for; its standard output, trimmed, is the
/// token (empty: none). Its failure fails the connection attempt, with its standard error
/// (never its output, which may hold a token).
fn token_from_command(command: String) -> AccessTokenFactory {
    Arc::new(move || {
        let command = command.clone();
        Box::pin(async move {
            let output = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(|e| format!("the token command could not run: {e}"))?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let reason = stderr.lines().next().unwrap_or("").trim();
                return Err(format!(
                    "the token command failed ({}){}{reason}",
                    output.status,
                    if reason.is_empty() { "" } else { ": " }
                ));
            }
            let token = String::from_utf8(output.stdout)
                .map_err(|_| "the token command's output is not UTF-8".to_owned())?;
            let token = token.trim();
            Ok((!token.is_empty()).then(|| token.to_owned()))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_name_colon_value() {
        assert_eq!(
            parse_header("X-Tenant:  a b ").unwrap(),
            ("X-Tenant".to_owned(), "a b".to_owned())
        );
        assert!(matches!(parse_header("X-Tenant"), Err(Failure::Usage(_))));
        assert!(matches!(parse_header(": v"), Err(Failure::Usage(_))));
    }

    #[tokio::test]
    async fn the_token_command_runs_each_time_and_its_failure_keeps_its_output_secret() {
        let factory = token_from_command("echo '  t0ken '".into());
        assert_eq!(factory().await.unwrap().as_deref(), Some("t0ken"));
        let failing = token_from_command("echo secret; echo 'no login' >&2; exit 3".into());
        let error = failing().await.unwrap_err();
        assert!(error.contains("no login"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }
}
