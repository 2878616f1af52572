//! Python objects ↔ [`hublink::Value`].
//!
//! | Python | Value |
//! |---|---|
//! | `None`, `bool`, `float`, `str` | `Null`, `Bool`, `F64`, `String` |
//! | `int` | `Int` (i64) or `UInt` (up to 2⁶⁴−1); larger → `OverflowError` |
//! | `bytes`, `bytearray`, `memoryview` | `Binary` (MessagePack `bin`, base64 text in JSON) |
//! | `datetime.datetime` (aware, or naive = UTC) | `Timestamp` (MessagePack timestamp, ISO-8601 in JSON) |
//! | `list`, `tuple` | `Array` (received arrays are `list`s) |
//! | `dict` | `Map` (insertion order kept) |
//! | [`Extension`] | any other MessagePack extension type |
//!
//! Received timestamps become aware UTC `datetime`s (to the microsecond).

use hublink::{HubProtocol, Timestamp, Value};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    IntoPyDict, PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView,
    PyString, PyTuple, PyType,
};

/// How deeply Python containers may nest (as the core's decoders allow).
const MAX_DEPTH: usize = 128;

/// A MessagePack extension value other than a timestamp, kept as is.
#[pyclass(module = "hublink._native", frozen, eq, hash)]
#[derive(PartialEq, Hash)]
pub struct Extension {
    /// The extension type code (−128..127).
    #[pyo3(get)]
    code: i8,
    data: Vec<u8>,
}

#[pymethods]
impl Extension {
    #[new]
    fn new(code: i8, data: Vec<u8>) -> Self {
        Extension { code, data }
    }

    /// The extension's bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __repr__(&self) -> String {
        format!(
            "Extension(code={}, data={} bytes)",
            self.code,
            self.data.len()
        )
    }
}

struct DateTimeTypes {
    datetime: Py<PyType>,
    timedelta: Py<PyAny>,
    epoch_utc: Py<PyAny>,
    epoch_naive: Py<PyAny>,
}

static DATETIME: PyOnceLock<DateTimeTypes> = PyOnceLock::new();

fn datetime_types(py: Python<'_>) -> PyResult<&DateTimeTypes> {
    DATETIME.get_or_try_init(py, || {
        let module = py.import("datetime")?;
        let datetime = module.getattr("datetime")?;
        let utc = module.getattr("timezone")?.getattr("utc")?;
        let epoch_naive = datetime.call1((1970, 1, 1))?;
        let epoch_utc =
            epoch_naive.call_method("replace", (), Some(&[("tzinfo", utc)].into_py_dict(py)?))?;
        Ok(DateTimeTypes {
            datetime: datetime.cast_into::<PyType>()?.unbind(),
            timedelta: module.getattr("timedelta")?.unbind(),
            epoch_utc: epoch_utc.unbind(),
            epoch_naive: epoch_naive.unbind(),
        })
    })
}

/// Converts a Python object into a [`Value`]; `TypeError` for what has no hub form.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value_at(obj, 0)
}

fn to_value_at(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "the value nests more than {MAX_DEPTH} levels deep (is it recursive?)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            return Ok(Value::Int(n));
        }
        if let Ok(n) = i.extract::<u64>() {
            return Ok(Value::UInt(n));
        }
        return Err(PyOverflowError::new_err(format!(
            "int {} does not fit in 64 bits: hub values hold integers from -2**63 to 2**64-1",
            i.repr()?
        )));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::F64(f.value()));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return array_value(list.iter(), depth);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut entries = Vec::with_capacity(dict.len());
        for (k, v) in dict.iter() {
            entries.push((to_value_at(&k, depth + 1)?, to_value_at(&v, depth + 1)?));
        }
        return Ok(Value::Map(entries));
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return array_value(tuple.iter(), depth);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Binary(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::Binary(b.to_vec()));
    }
    if obj.cast::<PyMemoryView>().is_ok() {
        let bytes = obj.call_method0("tobytes")?;
        return Ok(Value::Binary(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
    }
    if let Ok(ext) = obj.cast::<Extension>() {
        let ext = ext.get();
        return Ok(Value::Extension(ext.code, ext.data.clone()));
    }
    let py = obj.py();
    let types = datetime_types(py)?;
    if obj.is_instance(types.datetime.bind(py))? {
        return datetime_to_value(obj, types);
    }
    Err(PyTypeError::new_err(format!(
        "cannot send a value of type '{}': hub values are None, bool, int, float, str, \
         bytes, datetime, list, tuple, dict or hublink.Extension",
        obj.get_type().qualname()?
    )))
}

/// The items of a list or tuple (at `depth`) as an `Array`.
fn array_value<'py>(
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> PyResult<Value> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(to_value_at(&item, depth + 1)?);
    }
    Ok(Value::Array(out))
}

fn datetime_to_value(obj: &Bound<'_, PyAny>, types: &DateTimeTypes) -> PyResult<Value> {
    let py = obj.py();
    let aware = !obj.call_method0("utcoffset")?.is_none();
    let epoch = if aware {
        types.epoch_utc.bind(py)
    } else {
        types.epoch_naive.bind(py)
    };
    let delta = obj.sub(epoch)?;
    let days: i64 = delta.getattr("days")?.extract()?;
    let seconds: i64 = delta.getattr("seconds")?.extract()?;
    let micros: u32 = delta.getattr("microseconds")?.extract()?;
    Timestamp::new(days * 86_400 + seconds, micros * 1_000)
        .map(Value::Timestamp)
        .ok_or_else(|| PyValueError::new_err("the datetime is out of range"))
}

/// Converts a [`Value`] into a Python object.
pub(crate) fn to_py(py: Python<'_>, value: Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        Value::Null => py.None(),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Value::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::UInt(n) => n.into_pyobject(py)?.into_any().unbind(),
        Value::F32(f) => PyFloat::new(py, f64::from(f)).into_any().unbind(),
        Value::F64(f) => PyFloat::new(py, f).into_any().unbind(),
        Value::String(s) => PyString::new(py, &s).into_any().unbind(),
        Value::Binary(b) => PyBytes::new(py, &b).into_any().unbind(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                dict.set_item(to_py_key(py, k)?, to_py(py, v)?)?;
            }
            dict.into_any().unbind()
        }
        Value::Timestamp(t) => {
            let types = datetime_types(py)?;
            let delta =
                types
                    .timedelta
                    .bind(py)
                    .call1((0, t.seconds(), t.nanoseconds() / 1_000))?;
            types.epoch_utc.bind(py).add(delta)?.unbind()
        }
        Value::Extension(code, data) => Bound::new(py, Extension { code, data })?
            .into_any()
            .unbind(),
    })
}

/// Map keys must be hashable: arrays become tuples, maps tuples of pairs.
fn to_py_key(py: Python<'_>, value: Value) -> PyResult<Py<PyAny>> {
    match value {
        Value::Array(items) => {
            let keys = items
                .into_iter()
                .map(|v| to_py_key(py, v))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, keys)?.into_any().unbind())
        }
        Value::Map(entries) => {
            let pairs = entries
                .into_iter()
                .map(|(k, v)| {
                    Ok(PyTuple::new(py, [to_py_key(py, k)?, to_py_key(py, v)?])?.into_any())
                })
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, pairs)?.into_any().unbind())
        }
        other => to_py(py, other),
    }
}

/// Converts `values` into a tuple of Python objects.
pub(crate) fn to_py_tuple<'py>(
    py: Python<'py>,
    values: Vec<Value>,
) -> PyResult<Bound<'py, PyTuple>> {
    let items = values
        .into_iter()
        .map(|v| to_py(py, v))
        .collect::<PyResult<Vec<_>>>()?;
    PyTuple::new(py, items)
}

/// Sends `value` through the hub protocol's payload encoding and back, as an argument would
/// travel (`"json"` or `"messagepack"`). For tests of the conversions.
#[pyfunction]
pub fn roundtrip(py: Python<'_>, value: &Bound<'_, PyAny>, protocol: &str) -> PyResult<Py<PyAny>> {
    let protocol = HubProtocol::from_name(protocol)
        .ok_or_else(|| PyValueError::new_err(format!("unknown protocol '{protocol}'")))?;
    let value = to_value(value)?;
    let payload = protocol.payload(&value).map_err(|e| {
        crate::errors::to_py_err(
            py,
            hublink::Error::new(hublink::ErrorKind::InvalidArgument, e.to_string()),
        )
    })?;
    let back: Value = payload
        .deserialize()
        .map_err(|e| crate::errors::to_py_err(py, hublink::Error::from(e)))?;
    to_py(py, back)
}
