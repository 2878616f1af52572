//! The subcommands that talk to a hub.

mod call;
mod listen;
mod repl;
mod stream;

use std::time::Duration;

use hublink::HubConnection;

use crate::args::{Command, ConnectionArgs};
use crate::connection;
use crate::failure::Failure;
use crate::run::Deadline;

/// How long a stop may take once the command is done (a Close is sent, the transport ends).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `command` (not `completions`, which needs no runtime).
pub async fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Call(args) => call::call(args).await,
        Command::Send(args) => call::send(args).await,
        Command::Stream(args) => stream::stream(args).await,
        Command::Listen(args) => listen::listen(args).await,
        Command::Repl(args) => repl::repl(args).await,
        Command::Load(args) => crate::load::load(args).await,
        Command::Completions { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// A started connection and the command's deadline.
struct Session {
    connection: HubConnection,
    deadline: Deadline,
}

impl Session {
    /// Builds the connection and starts it within the deadline.
    async fn start(url: &str, args: &ConnectionArgs) -> Result<Session, Failure> {
        init_logging(args.verbose);
        let connection = connection::build(url, args)?;
        let deadline = Deadline::after(connection::timeout(args)?);
        deadline
            .run("connecting", connection.start())
            .await?
            .map_err(Failure::Connect)?;
        Ok(Session {
            connection,
            deadline,
        })
    }

    /// Stops the connection (a Close for the server), bounded, and passes `result` on.
    async fn finish<T>(self, result: Result<T, Failure>) -> Result<T, Failure> {
        let _ = tokio::time::timeout(STOP_GRACE, self.connection.stop()).await;
        result
    }
}

/// Logs to stderr: warnings and errors by default, more with each -v; RUST_LOG overrides.
pub(crate) fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "off",
        1 => "hublink=info",
        2 => "hublink=debug",
        _ => "hublink=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
