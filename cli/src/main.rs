//! `hublink`: SignalR hubs on the command line. `hublink --help` lists the commands, options,
//! examples and exit codes.

mod args;
mod commands;
mod connection;
mod failure;
mod json;
mod load;
mod output;
mod run;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "hublink",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hublink: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli.command));
    // Handler tasks and the connection's own tasks end with the runtime; nothing of theirs is
    // awaited past this point.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("hublink: error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
