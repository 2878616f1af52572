//! The command line: subcommands and the connection options they share.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  hublink call http://localhost:5000/chat Add 1 2
  hublink call http://localhost:5000/chat Echo '\"hello\"' --output pretty
  hublink send http://localhost:5000/chat SendMessage '\"me\"' '\"hi\"'
  hublink stream http://localhost:5000/chat Counter 10 | jq .
  hublink listen http://localhost:5000/chat --on ReceiveMessage --on UserJoined
  hublink repl http://localhost:5000/chat --protocol messagepack
  hublink load http://localhost:5000/chat -n 1000 --workload broadcast --rate 1 --duration 30
  hublink call https://example.com/hub Whoami --token-command 'az account get-access-token --query accessToken -o tsv'
  hublink completions bash > /etc/bash_completion.d/hublink

Arguments are JSON: numbers, true/false/null, \"quoted strings\", [arrays] and {objects}.

Exit codes:
  0  success
  1  the hub method failed on the server (its error text is printed)
  2  bad command line: unknown option or transport, an argument that is not JSON
  3  could not connect: negotiation, transport or handshake failed, server unreachable
  4  unauthorized: the server answered 401 or 403
  5  the connection was lost or closed before the call completed
  6  timed out (--timeout, the server timeout, the handshake)
  7  the server broke the protocol
  130 interrupted (Ctrl-C) while a call or stream was running";

/// hublink on the command line: call, send, stream and listen to SignalR hubs.
#[derive(Debug, Parser)]
#[command(name = "hublink", version, about, after_help = EXAMPLES, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Invokes a hub method and prints its result as JSON.
    Call(CallArgs),
    /// Sends a hub method without waiting for a result (fire-and-forget).
    Send(CallArgs),
    /// Starts a server stream and prints its items as JSON lines; Ctrl-C cancels it on the
    /// server.
    Stream(CallArgs),
    /// Prints every call of the given client methods the server makes, as JSON lines.
    Listen(ListenArgs),
    /// An interactive session: invoke, send, stream, on, off.
    Repl(ReplArgs),
    /// Opens many connections and runs a workload on them: latency percentiles, throughput,
    /// errors, delivery completeness, memory per connection.
    Load(LoadArgs),
    /// Prints a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A hub method call.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The hub URL (http or https).
    pub url: String,
    /// The hub method.
    pub method: String,
    /// The method's arguments, each one JSON value (options may follow them).
    #[arg(allow_negative_numbers = true)]
    pub arguments: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `listen`.
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The hub URL (http or https).
    pub url: String,
    /// A client method to print the calls of (repeat for several).
    #[arg(long = "on", value_name = "METHOD", required = true)]
    pub methods: Vec<String>,
    /// Exits after this many calls were printed.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Invokes this hub method once connected (with --arg values), e.g. to join a group.
    #[arg(long, value_name = "METHOD")]
    pub then_invoke: Option<String>,
    /// A JSON argument of --then-invoke (repeat for several).
    #[arg(long = "arg", value_name = "JSON", allow_hyphen_values = true)]
    pub then_arguments: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `repl`.
#[derive(Debug, Args)]
pub struct ReplArgs {
    /// The hub URL (http or https).
    pub url: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What each connection of `load` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Nothing: connections stay open (keep-alive pings only).
    Idle,
    /// Each connection invokes Echo at --rate calls/s; latency from the intended send time.
    Echo,
    /// One connection calls SendToAll at --rate broadcasts/s; every connection listens to
    /// Message; fan-out latency and delivery completeness.
    Broadcast,
    /// Connections join groups of --group-size and each sends to its group at --rate
    /// messages/s (SendToGroup); latency and completeness.
    GroupChat,
}

/// `load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The hub URL (http or https).
    pub url: String,
    /// How many connections to open.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub connections: usize,
    /// Connections opened per second (0: all at once).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 500.0)]
    pub ramp: f64,
    /// How long the workload runs once every connection is up, in seconds.
    #[arg(short, long, value_name = "SECONDS", default_value_t = 10.0)]
    pub duration: f64,
    /// What each connection does.
    #[arg(short, long, value_enum, default_value_t = Workload::Echo)]
    pub workload: Workload,
    /// Calls (echo), broadcasts (broadcast) or messages (group-chat) per second, per
    /// connection (broadcast: in all).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Bytes of text in each message.
    #[arg(long, value_name = "BYTES", default_value_t = 16)]
    pub payload: usize,
    /// Members of each group (group-chat).
    #[arg(long, default_value_t = 10)]
    pub group_size: usize,
    /// Spreads the connections over this many processes (when one process's file
    /// descriptors are not enough); their reports are merged.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Writes the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<std::path::PathBuf>,
    /// No progress line on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Internal: run as one of the --processes (JSON lines on stdout, waits for 'go').
    #[arg(long, hide = true)]
    pub child: Option<usize>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One compact JSON value per line.
    Json,
    /// Indented JSON.
    Pretty,
}

/// The hub protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// JSON (text).
    Json,
    /// MessagePack (binary).
    #[value(alias = "msgpack")]
    Messagepack,
}

/// How to connect: the options of every subcommand that talks to a hub.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// A transport to allow (repeat or separate with commas): WebSockets, ServerSentEvents,
    /// LongPolling, in any case, or the official numeric flags. Default: all, in the server's
    /// order.
    #[arg(
        short,
        long = "transport",
        value_name = "TRANSPORT",
        value_delimiter = ','
    )]
    pub transports: Vec<String>,
    /// The hub protocol.
    #[arg(short, long, value_enum, default_value_t = Protocol::Json)]
    pub protocol: Protocol,
    /// A header for every request, as 'Name: value' (repeat for several).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// A cookie to send from the first request on, as name=value (repeat for several).
    #[arg(long = "cookie", value_name = "NAME=VALUE")]
    pub cookies: Vec<String>,
    /// A bearer token for every negotiate. Prefer --token-command or HUBLINK_TOKEN: a token on
    /// the command line is visible to other users of the machine.
    #[arg(
        long,
        env = "HUBLINK_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_command"
    )]
    pub token: Option<String>,
    /// A shell command whose output is the bearer token, run again whenever a token is needed
    /// (every negotiate, and once more after a 401).
    #[arg(long, value_name = "COMMAND")]
    pub token_command: Option<String>,
    /// Connects the WebSocket straight to the URL without negotiating (WebSockets only).
    #[arg(long)]
    pub skip_negotiation: bool,
    /// Reconnects automatically when the connection is lost (after 0, 2, 10 and 30 s).
    #[arg(long)]
    pub reconnect: bool,
    /// Asks the server for stateful reconnect (WebSockets only): a dropped transport is
    /// resumed without losing messages.
    #[arg(long)]
    pub stateful_reconnect: bool,
    /// Closes the connection when the server sends nothing for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub server_timeout: Option<f64>,
    /// Sends a ping when nothing was sent for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub keep_alive: Option<f64>,
    /// How long the server has to answer the handshake, in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub handshake_timeout: Option<f64>,
    /// Gives up on connecting and on the call after this many seconds (exit code 6).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// How results are printed.
    #[arg(short, long, value_enum, default_value_t = Output::Json)]
    pub output: Output,
    /// Logs to stderr: -v connection events, -vv details, -vvv every frame (RUST_LOG
    /// overrides).
    #[arg(short, long, action = ArgAction::Count)]
    pub verbose: u8,
}
