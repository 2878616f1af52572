//! Server-to-client streams: the core's stream handle, read in batches from asyncio.

use std::sync::Arc;

use hublink::{HubStream, SharedRuntime, Value};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::Bridge;
use crate::convert::to_py;
use crate::errors::to_py_err;

/// The most items one read hands to Python.
const BATCH: usize = 256;

/// The items of one server stream, in order. Dropping it (leaving an `async for` early)
/// cancels the stream on the server.
#[pyclass(module = "hublink._native", frozen)]
pub struct StreamReader {
    stream: Arc<tokio::sync::Mutex<HubStream<Value>>>,
    cancel: hublink::StreamCancel,
}

impl StreamReader {
    pub(crate) fn new(stream: HubStream<Value>) -> Self {
        StreamReader {
            cancel: stream.cancel_handle(),
            stream: Arc::new(tokio::sync::Mutex::new(stream)),
        }
    }
}

#[pymethods]
impl StreamReader {
    /// Completes `future` with the next items (a non-empty list), or `None` once the stream
    /// has ended; or raises the stream's error.
    fn next_batch(&self, bridge: &Bound<'_, Bridge>, future: Py<PyAny>) {
        let bridge = bridge.get().inner();
        let stream = self.stream.clone();
        SharedRuntime::handle().spawn(async move {
            let batch = stream.lock().await.next_batch(BATCH).await;
            bridge.resolve(future, move |py| match batch {
                Ok(items) if items.is_empty() => Ok(py.None()),
                Ok(items) => {
                    let list = PyList::empty(py);
                    for item in items {
                        list.append(to_py(py, item)?)?;
                    }
                    Ok(list.into_any().unbind())
                }
                Err(error) => Err(to_py_err(py, error)),
            });
        });
    }

    /// Cancels the stream: the server gets a CancelInvocation, reading ends.
    fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
