//! `hublink listen`: every call of the given client methods as a JSON line
//! `{"method": …, "arguments": […]}`.

use hublink::Value;
use tokio::sync::mpsc;

use super::Session;
use crate::args::ListenArgs;
use crate::failure::Failure;
use crate::json::{parse_arguments, render_call};
use crate::output::{print_line, print_value};

/// Prints the calls until Ctrl-C (a normal end: exit 0), `--count` calls, or the connection
/// closes.
pub async fn listen(args: ListenArgs) -> Result<(), Failure> {
    let then_invoke = match &args.then_invoke {
        Some(method) => Some((
            method.clone(),
            parse_arguments(method, &args.then_arguments)?,
        )),
        None => None,
    };
    let session = Session::start(&args.url, &args.connection).await?;
    let (calls_tx, mut calls) = mpsc::unbounded_channel();
    for method in &args.methods {
        let (calls_tx, method_name) = (calls_tx.clone(), method.clone());
        session.connection.on(method, move |arguments: Vec<Value>| {
            let _ = calls_tx.send((method_name.clone(), arguments));
            async {}
        });
    }
    let (closed_tx, mut closed) = mpsc::unbounded_channel();
    session.connection.on_close(move |error| {
        let _ = closed_tx.send(error);
    });
    let output = args.connection.output;
    if let Some((method, arguments)) = then_invoke {
        let invoked = session.connection.invoke_value(&method, arguments);
        match session.deadline.call("invoking", invoked).await {
            Ok(result) => {
                if print_value(&result, output).is_err() {
                    return session.finish(Ok(())).await;
                }
            }
            Err(failure) => return session.finish(Err(failure)).await,
        }
    }
    let mut printed = 0u64;
    let result = session
        .deadline
        .run("listening", async {
            loop {
                if args.count.is_some_and(|count| printed >= count) {
                    return Ok(());
                }
                tokio::select! {
                    Some((method, arguments)) = calls.recv() => {
                        if print_line(&render_call(&method, &arguments, output)).is_err() {
                            return Ok(());
                        }
                        printed += 1;
                    }
                    Some(error) = closed.recv() => {
                        return match error {
                            Some(error) => Err(Failure::Call(error)),
                            None => Ok(()),
                        };
                    }
                }
            }
        })
        .await;
    let result = match result {
        Err(Failure::Interrupted) => Ok(()),
        other => other.and_then(|listened| listened),
    };
    session.finish(result).await
}
