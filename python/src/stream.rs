//! Server-to-client streams: a buffer the Python async iterator reads in batches.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::future::{AbortHandle, Abortable};
use futures_util::StreamExt;
use hublink::{Argument, Error, Value};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::{set_future, Bridge, BridgeInner};
use crate::connection::run_now;
use crate::convert::to_py;
use crate::errors::to_py_err;

type Start = (hublink::HubConnection, String, Vec<Argument>);

#[derive(Default)]
struct State {
    items: VecDeque<Value>,
    /// Set when the stream ended: cleanly, or with the error to raise.
    end: Option<Result<(), Error>>,
    /// The asyncio future of a reader waiting for items, and its loop's bridge.
    waiter: Option<(Py<PyAny>, Arc<BridgeInner>)>,
    /// What starting the stream needs, until the first read starts it.
    start: Option<Start>,
}

impl State {
    fn wake(&mut self) {
        if let Some((future, bridge)) = self.waiter.take() {
            bridge.resolve(future, |py| Ok(py.None()));
        }
    }
}

/// The items of one server stream, in order. Dropping it (leaving an `async for` early)
/// cancels the stream on the server.
#[pyclass(module = "hublink._native", frozen)]
pub struct StreamReader {
    state: Arc<Mutex<State>>,
    abort: Mutex<Option<AbortHandle>>,
}

impl StreamReader {
    pub(crate) fn new(
        core: hublink::HubConnection,
        method: String,
        arguments: Vec<Argument>,
    ) -> Self {
        StreamReader {
            state: Arc::new(Mutex::new(State {
                start: Some((core, method, arguments)),
                ..State::default()
            })),
            abort: Mutex::new(None),
        }
    }

    fn launch(&self, (core, method, arguments): Start) {
        let (handle, registration) = AbortHandle::new_pair();
        *self.abort.lock().expect("abort") = Some(handle);
        let state = self.state.clone();
        run_now(async move {
            let pump = async {
                let mut stream = core.stream::<hublink::Value>(&method, arguments).await?;
                while let Some(item) = stream.next().await {
                    let value = item?;
                    let mut state = state.lock().expect("stream state");
                    state.items.push_back(value);
                    state.wake();
                }
                Ok(())
            };
            let ended = match Abortable::new(pump, registration).await {
                Ok(result) => result,
                Err(_aborted) => Ok(()),
            };
            let mut state = state.lock().expect("stream state");
            state.end.get_or_insert(ended);
            state.wake();
        });
    }
}

#[pymethods]
impl StreamReader {
    /// The items received so far (possibly none), or `None` once the stream has ended;
    /// raises the stream's error.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let mut state = self.state.lock().expect("stream state");
        if !state.items.is_empty() {
            let items = state.items.drain(..).collect::<Vec<_>>();
            drop(state);
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            return Ok(Some(list));
        }
        match state.end.take() {
            None => Ok(Some(PyList::empty(py))),
            Some(result) => {
                state.end = Some(Ok(()));
                result.map_err(|e| to_py_err(py, e))?;
                Ok(None)
            }
        }
    }

    /// Resolves `future` (with `None`) once there is something to `take()`; the first call
    /// sends the stream invocation.
    fn wait(&self, py: Python<'_>, bridge: &Bound<'_, Bridge>, future: Py<PyAny>) {
        let mut state = self.state.lock().expect("stream state");
        if !state.items.is_empty() || state.end.is_some() {
            drop(state);
            set_future(py, future.bind(py), Ok(py.None()));
            return;
        }
        state.waiter = Some((future, bridge.get().inner()));
        if let Some(start) = state.start.take() {
            drop(state);
            self.launch(start);
        }
    }

    /// Cancels the stream: the server gets a CancelInvocation, reading ends.
    fn cancel(&self) {
        if let Some(handle) = self.abort.lock().expect("abort").take() {
            handle.abort();
        }
        let mut state = self.state.lock().expect("stream state");
        state.start = None;
        state.items.clear();
        state.end.get_or_insert(Ok(()));
        state.wake();
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        if let Some(handle) = self.abort.get_mut().expect("abort").take() {
            handle.abort();
        }
    }
}
