//! `hublink stream`: items as JSON lines until the stream ends; Ctrl-C cancels it on the server.

use super::Session;
use crate::args::CallArgs;
use crate::failure::Failure;
use crate::json::parse_arguments;
use crate::output::print_value;

/// Items read from the connection per turn.
const BATCH: usize = 256;

/// Streams the method's items to standard output.
pub async fn stream(args: CallArgs) -> Result<(), Failure> {
    let arguments = parse_arguments(&args.method, &args.arguments)?;
    let session = Session::start(&args.url, &args.connection).await?;
    let output = args.connection.output;
    let mut items = match session.connection.stream_value(&args.method, arguments) {
        Ok(items) => items,
        Err(error) => return session.finish(Err(Failure::Call(error))).await,
    };
    let result = session
        .deadline
        .run("streaming", async {
            loop {
                let batch = items.next_batch(BATCH).await.map_err(Failure::Call)?;
                if batch.is_empty() {
                    return Ok(());
                }
                for item in &batch {
                    if print_value(item, output).is_err() {
                        // The reader went away (`| head`): the stream is cancelled below.
                        return Ok(());
                    }
                }
            }
        })
        .await
        .and_then(|streamed| streamed);
    // Cancels the stream on the server if it is still running (Ctrl-C, timeout, closed pipe):
    // the CancelInvocation goes out before stop()'s Close.
    items.cancel();
    session.finish(result).await
}
