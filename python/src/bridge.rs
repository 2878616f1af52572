//! Getting work from tokio threads onto an asyncio event loop without the GIL.
//!
//! A [`Bridge`] belongs to one event loop. Rust threads [`BridgeInner::post`] closures into
//! its queue and, when the queue was idle, write one byte to a socket pair whose reading end
//! the loop watches (`loop.add_reader`). The loop then calls [`Bridge::drain`], which runs
//! every queued closure on the loop thread, holding the GIL. So:
//! - Rust threads never take the GIL (no contention with the loop, nothing to go wrong at
//!   interpreter shutdown),
//! - Python callbacks, futures and asyncio objects are touched only on their own loop,
//! - a burst of completions costs one wake-up of the loop.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hublink::Value;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use tokio::sync::oneshot;

use crate::convert;

/// Work to run on the loop thread.
pub(crate) type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// The half of a bridge that Rust threads hold.
pub(crate) struct BridgeInner {
    jobs: Mutex<Vec<Job>>,
    armed: AtomicBool,
    waker: UnixStream,
}

impl BridgeInner {
    /// Runs `job` on the bridge's event loop, soon.
    pub(crate) fn post(&self, job: Job) {
        self.jobs.lock().expect("bridge queue").push(job);
        if !self.armed.swap(true, Ordering::AcqRel) {
            // A full socket buffer means a wake-up is already pending: nothing to do.
            let _ = (&self.waker).write(&[1]);
        }
    }

    /// Completes the asyncio `future` with what `make` returns (a value or an exception),
    /// unless it was cancelled meanwhile.
    pub(crate) fn resolve<F>(&self, future: Py<PyAny>, make: F)
    where
        F: FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        self.post(Box::new(move |py| {
            set_future(py, future.bind(py), make(py))
        }));
    }
}

/// Sets the result or exception of an asyncio future that is not done yet.
pub(crate) fn set_future(py: Python<'_>, future: &Bound<'_, PyAny>, outcome: PyResult<Py<PyAny>>) {
    let done = future
        .call_method0(pyo3::intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true);
    if done {
        return;
    }
    let result = match outcome {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,)),
        Err(error) => future.call_method1(pyo3::intern!(py, "set_exception"), (error.value(py),)),
    };
    if let Err(error) = result {
        error.write_unraisable(py, Some(future));
    }
}

/// The bridge of one asyncio event loop (see the module documentation).
#[pyclass(module = "hublink._native", frozen)]
pub struct Bridge {
    inner: Arc<BridgeInner>,
    reader: UnixStream,
}

impl Bridge {
    pub(crate) fn inner(&self) -> Arc<BridgeInner> {
        self.inner.clone()
    }
}

#[pymethods]
impl Bridge {
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, waker) = UnixStream::pair()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot create a socket pair: {e}")))?;
        for socket in [&reader, &waker] {
            socket
                .set_nonblocking(true)
                .map_err(|e| PyRuntimeError::new_err(format!("cannot set O_NONBLOCK: {e}")))?;
        }
        Ok(Bridge {
            inner: Arc::new(BridgeInner {
                jobs: Mutex::new(Vec::new()),
                armed: AtomicBool::new(false),
                waker,
            }),
            reader,
        })
    }

    /// The file descriptor the event loop watches for readability.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Runs everything posted so far; called by the event loop when `fileno()` is readable.
    fn drain(&self, py: Python<'_>) {
        let mut buf = [0u8; 256];
        loop {
            match (&self.reader).read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                _ => break,
            }
        }
        self.inner.armed.store(false, Ordering::SeqCst);
        let jobs = std::mem::take(&mut *self.inner.jobs.lock().expect("bridge queue"));
        for job in jobs {
            job(py);
        }
    }
}

/// What a Python callback answered.
pub(crate) enum Answer {
    /// It returned (or its awaitable resolved to) this value.
    Value(Value),
    /// It raised: `TypeName: message`.
    Error(String),
    /// An async iterator ended.
    End,
}

/// The reply channel handed to a Python callback (`hublink._dispatch` calls it).
#[pyclass(module = "hublink._native", frozen)]
pub struct Reply {
    sender: Mutex<Option<oneshot::Sender<Answer>>>,
}

impl Reply {
    pub(crate) fn new() -> (Reply, oneshot::Receiver<Answer>) {
        let (tx, rx) = oneshot::channel();
        (
            Reply {
                sender: Mutex::new(Some(tx)),
            },
            rx,
        )
    }

    /// Answers with the error `error` (a conversion failed before the call).
    pub(crate) fn fail(&self, py: Python<'_>, error: PyErr) {
        self.answer(Answer::Error(describe_exception(error.value(py).as_any())));
    }

    fn answer(&self, answer: Answer) {
        if let Some(tx) = self.sender.lock().expect("reply").take() {
            let _ = tx.send(answer);
        }
    }
}

/// `TypeName: message`, as `${error}` reads in JavaScript ("Error: from callback").
pub(crate) fn describe_exception(error: &Bound<'_, PyAny>) -> String {
    let name = error
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    match error.str() {
        Ok(text) if !text.to_string().is_empty() => format!("{name}: {text}"),
        _ => name,
    }
}

#[pymethods]
impl Reply {
    /// The callback returned `value`.
    fn ok(&self, value: &Bound<'_, PyAny>) {
        match convert::to_value(value) {
            Ok(v) => self.answer(Answer::Value(v)),
            Err(e) => self.answer(Answer::Error(describe_exception(
                e.value(value.py()).as_any(),
            ))),
        }
    }

    /// The callback raised `error`.
    fn error(&self, error: &Bound<'_, PyAny>) {
        self.answer(Answer::Error(describe_exception(error)));
    }

    /// The async iterator is exhausted.
    fn end(&self) {
        self.answer(Answer::End);
    }
}

static DISPATCH_CALL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DISPATCH_PULL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn helper<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok(py.import("hublink._dispatch")?.getattr(name)?.unbind())
    })
    .map(|f| f.bind(py))
}

/// Calls the Python `callable` with `args` on the loop thread (plain or async); its answer
/// goes to `reply`, or, without one, its error to the loop's exception handler.
pub(crate) fn call_python(
    py: Python<'_>,
    callable: &Bound<'_, PyAny>,
    args: Bound<'_, PyTuple>,
    reply: Option<Reply>,
) {
    let result = helper(py, &DISPATCH_CALL, "call").and_then(|call| {
        let reply = match reply {
            Some(r) => Bound::new(py, r)?.into_any(),
            None => py.None().into_bound(py),
        };
        call.call1((callable, args, reply))
    });
    if let Err(e) = result {
        e.write_unraisable(py, Some(callable));
    }
}

/// Asks the Python async iterator `iterator` for its next item; the answer goes to `reply`.
pub(crate) fn pull_python(py: Python<'_>, iterator: &Bound<'_, PyAny>, reply: Reply) {
    let result = helper(py, &DISPATCH_PULL, "pull")
        .and_then(|pull| pull.call1((iterator, Bound::new(py, reply)?)));
    if let Err(e) = result {
        e.write_unraisable(py, Some(iterator));
    }
}
