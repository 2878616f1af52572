//! `hublink repl`: an interactive session on one connection.
//!
//! The line editor (rustyline) blocks, so it runs on a thread of its own and hands each line
//! to the async side, which runs it and answers when the next prompt may be shown. Server calls
//! of methods subscribed with `on` are printed above the prompt as they arrive.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use hublink::{HubConnection, Value};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, ExternalPrinter, Helper};
use tokio::sync::{mpsc, oneshot};

use super::Session;
use crate::args::{Output, ReplArgs};
use crate::failure::Failure;
use crate::json::{render, render_call, to_json};
use crate::output::print_value;

const COMMANDS: [&str; 8] = [
    "invoke", "send", "stream", "on", "off", "help", "quit", "exit",
];

const HELP: &str = "\
  invoke METHOD [ARG…]   call a hub method and print its result (arguments are JSON values)
  send METHOD [ARG…]     send without waiting for a result
  stream METHOD [ARG…]   print a server stream's items until it ends (Ctrl-C cancels it)
  on METHOD              print the server's calls of a client method as they arrive
  off METHOD             stop printing them
  help                   this text
  quit                   close the connection and leave (also Ctrl-D)
Tab completes commands and the method names used so far.";

/// Runs the session until `quit`, Ctrl-D or the end of standard input.
pub async fn repl(args: ReplArgs) -> Result<(), Failure> {
    let session = Session::start(&args.url, &args.connection).await?;
    let methods = Arc::new(Mutex::new(BTreeSet::new()));
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<(String, oneshot::Sender<()>)>();
    let (printer_tx, printer_rx) = oneshot::channel();
    let editor_methods = methods.clone();
    std::thread::spawn(move || read_lines(editor_methods, lines_tx, printer_tx));
    let printer = Printer::new(printer_rx.await.ok().flatten());
    let output = args.connection.output;
    printer.line(&format!(
        "connected to {} ({}); 'help' lists the commands",
        args.url,
        session
            .connection
            .transport()
            .map_or_else(|| "?".to_owned(), |t| t.to_string())
    ));
    while let Some((line, done)) = lines.recv().await {
        let keep_going = run_line(&session.connection, &line, &methods, &printer, output).await;
        let _ = done.send(());
        if !keep_going {
            break;
        }
    }
    session.finish(Ok(())).await
}

/// Runs one line; `false` when it asks to leave.
async fn run_line(
    connection: &HubConnection,
    line: &str,
    methods: &Arc<Mutex<BTreeSet<String>>>,
    printer: &Printer,
    output: Output,
) -> bool {
    let line = line.trim();
    let (command, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let (method, rest) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .unwrap_or((rest.trim(), ""));
    let needs_method = matches!(command, "invoke" | "send" | "stream" | "on" | "off");
    if needs_method && method.is_empty() {
        printer.line(&format!("error: {command} needs a method name"));
        return true;
    }
    if needs_method {
        methods.lock().unwrap().insert(method.to_owned());
    }
    let arguments = || parse_values(rest);
    let outcome = match command {
        "" => Ok(()),
        "help" => {
            printer.line(HELP);
            Ok(())
        }
        "quit" | "exit" => return false,
        "invoke" => match arguments() {
            Ok(arguments) => {
                match interruptible(connection.invoke_value(method, arguments)).await {
                    Some(Ok(value)) => {
                        printer.line(&render(&to_json(&value), output));
                        Ok(())
                    }
                    Some(Err(error)) => Err(error.to_string()),
                    None => Err("interrupted (the result will not be shown)".to_owned()),
                }
            }
            Err(text) => Err(text),
        },
        "send" => match arguments() {
            Ok(arguments) => match interruptible(connection.send(method, arguments)).await {
                Some(result) => result.map_err(|e| e.to_string()),
                None => Err("interrupted".to_owned()),
            },
            Err(text) => Err(text),
        },
        "stream" => match arguments() {
            Ok(arguments) => stream(connection, method, arguments, output).await,
            Err(text) => Err(text),
        },
        "on" => {
            let (printer, method_name) = (printer.clone(), method.to_owned());
            connection.on(method, move |arguments: Vec<Value>| {
                printer.line(&render_call(&method_name, &arguments, output));
                async {}
            });
            Ok(())
        }
        "off" => {
            connection.off(method);
            Ok(())
        }
        other => Err(format!("unknown command '{other}'; 'help' lists them")),
    };
    if let Err(text) = outcome {
        printer.line(&format!("error: {text}"));
    }
    true
}

/// Prints a stream's items until it ends or Ctrl-C cancels it.
async fn stream(
    connection: &HubConnection,
    method: &str,
    arguments: Vec<Value>,
    output: Output,
) -> Result<(), String> {
    let mut items = connection
        .stream_value(method, arguments)
        .map_err(|e| e.to_string())?;
    let streamed = interruptible(async {
        loop {
            match items.next_batch(256).await {
                Ok(batch) if batch.is_empty() => return Ok(()),
                Ok(batch) => {
                    for item in &batch {
                        let _ = print_value(item, output);
                    }
                }
                Err(error) => return Err(error.to_string()),
            }
        }
    })
    .await;
    items.cancel();
    streamed.unwrap_or_else(|| Err("interrupted: the stream was cancelled".to_owned()))
}

/// Runs `step` unless Ctrl-C comes first (`None`).
async fn interruptible<T>(step: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        out = step => Some(out),
        _ = tokio::signal::ctrl_c() => None,
    }
}

/// The JSON values of a line, separated by whitespace.
fn parse_values(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
        .map(|(i, value)| value.map_err(|e| format!("argument {} is not JSON: {e}", i + 1)))
        .collect()
}

/// Prints above the prompt when the editor offers it (a terminal), else to standard output.
#[derive(Clone)]
struct Printer(Option<Arc<Mutex<Box<dyn ExternalPrinter + Send>>>>);

impl Printer {
    fn new(external: Option<Box<dyn ExternalPrinter + Send>>) -> Self {
        Printer(external.map(|p| Arc::new(Mutex::new(p))))
    }

    fn line(&self, text: &str) {
        match &self.0 {
            Some(printer) => {
                let _ = printer.lock().unwrap().print(format!("{text}\n"));
            }
            None => {
                use std::io::Write;
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            }
        }
    }
}

/// The editor's thread: reads lines (with history and completion) and waits for each to run.
fn read_lines(
    methods: Arc<Mutex<BTreeSet<String>>>,
    lines: mpsc::UnboundedSender<(String, oneshot::Sender<()>)>,
    printer: oneshot::Sender<Option<Box<dyn ExternalPrinter + Send>>>,
) {
    let Ok(mut editor) = rustyline::Editor::<Completion, _>::new() else {
        let _ = printer.send(None);
        return;
    };
    editor.set_helper(Some(Completion { methods }));
    let history = std::env::var_os("HOME")
        .map(|home| std::path::PathBuf::from(home).join(".hublink_history"));
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let external: Option<Box<dyn ExternalPrinter + Send>> = if terminal {
        editor
            .create_external_printer()
            .ok()
            .map(|p| Box::new(p) as Box<dyn ExternalPrinter + Send>)
    } else {
        None
    };
    let _ = printer.send(external);
    let prompt = if terminal { "hub> " } else { "" };
    loop {
        match editor.readline(prompt) {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                let (done_tx, done) = oneshot::channel();
                if lines.send((line, done_tx)).is_err() || done.blocking_recv().is_err() {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
}

/// Completes commands in first position and method names after them.
struct Completion {
    methods: Arc<Mutex<BTreeSet<String>>>,
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &before[start..];
        let candidates: Vec<String> = if start == 0 {
            COMMANDS.iter().map(|c| (*c).to_owned()).collect()
        } else if before[..start].split_whitespace().count() == 1 {
            self.methods.lock().unwrap().iter().cloned().collect()
        } else {
            Vec::new()
        };
        let pairs = candidates
            .into_iter()
            .filter(|c| c.starts_with(word))
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}
