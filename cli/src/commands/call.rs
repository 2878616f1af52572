//! `hublink call` and `hublink send`.

use super::Session;
use crate::args::CallArgs;
use crate::failure::Failure;
use crate::json::parse_arguments;
use crate::output::print_value;

/// Invokes the method and prints its result (`null` for a void method).
pub async fn call(args: CallArgs) -> Result<(), Failure> {
    let arguments = parse_arguments(&args.method, &args.arguments)?;
    let session = Session::start(&args.url, &args.connection).await?;
    let call = session.connection.invoke_value(&args.method, arguments);
    let result = session
        .deadline
        .call("waiting for the result", call)
        .await
        .map(|value| {
            // A closed stdout only means nobody reads the result.
            let _ = print_value(&value, args.connection.output);
        });
    session.finish(result).await
}

/// Sends the method and returns once the invocation is written.
pub async fn send(args: CallArgs) -> Result<(), Failure> {
    let arguments = parse_arguments(&args.method, &args.arguments)?;
    let session = Session::start(&args.url, &args.connection).await?;
    let sent = session.connection.send(&args.method, arguments);
    let result = session.deadline.call("sending", sent).await;
    session.finish(result).await
}
