//! Turning a caller's arguments into payloads, and received arguments into a caller's types.

use std::fmt;
use std::sync::Mutex;

use futures_util::stream::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::maybe_send::MaybeSend;
use crate::protocol::hub_protocol::CallWriter;
use crate::protocol::{HubProtocol, Payload, ProtocolError, Value};

/// One argument of an invocation: a value, or a client-to-server stream.
pub enum Argument {
    /// A value, serialized in the connection's protocol.
    Value(Payload),
    /// A stream of values the server reads as they come (an upload stream).
    Stream(UploadStream),
}

impl fmt::Debug for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Argument::Value(p) => f.debug_tuple("Value").field(p).finish(),
            Argument::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
type Items = futures_util::stream::BoxStream<'static, Result<Payload, String>>;
#[cfg(target_arch = "wasm32")]
type Items = futures_util::stream::LocalBoxStream<'static, Result<Payload, String>>;

#[cfg(not(target_arch = "wasm32"))]
type ItemEncoder = Box<dyn FnOnce(HubProtocol) -> Items + Send>;
#[cfg(target_arch = "wasm32")]
type ItemEncoder = Box<dyn FnOnce(HubProtocol) -> Items>;

#[cfg(not(target_arch = "wasm32"))]
fn boxed_items<S: Stream<Item = Result<Payload, String>> + Send + 'static>(items: S) -> Items {
    items.boxed()
}

#[cfg(target_arch = "wasm32")]
fn boxed_items<S: Stream<Item = Result<Payload, String>> + 'static>(items: S) -> Items {
    items.boxed_local()
}

/// A client-to-server stream: pass it as an argument and the server receives its items as
/// they are produced, then its end (or its error).
///
/// ```no_run
/// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
/// use futures_util::stream;
/// use hublink::UploadStream;
/// let numbers = UploadStream::new(stream::iter([1, 2, 3]));
/// let sum: i64 = connection.invoke("UploadSum", (numbers,)).await?;
/// # Ok(()) }
/// ```
pub struct UploadStream {
    encode: ItemEncoder,
}

impl fmt::Debug for UploadStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UploadStream(..)")
    }
}

impl UploadStream {
    /// A stream of values that always succeed.
    pub fn new<S, T>(items: S) -> Self
    where
        S: Stream<Item = T> + MaybeSend + 'static,
        T: Serialize + MaybeSend + 'static,
    {
        Self::fallible(items.map(Ok::<T, String>))
    }

    /// A stream that may fail: an `Err` ends the upload with that error text.
    pub fn fallible<S, T, E>(items: S) -> Self
    where
        S: Stream<Item = std::result::Result<T, E>> + MaybeSend + 'static,
        T: Serialize + MaybeSend + 'static,
        E: fmt::Display + MaybeSend + 'static,
    {
        UploadStream {
            encode: Box::new(move |protocol| {
                boxed_items(items.map(move |item| match item {
                    Ok(value) => protocol.payload(&value).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }))
            }),
        }
    }

    /// A stream of dynamic values, sent exactly as they are (binary, timestamps, 64-bit
    /// integers, extensions); an `Err` ends the upload with that error text.
    pub fn from_values<S>(items: S) -> Self
    where
        S: Stream<Item = std::result::Result<Value, String>> + MaybeSend + 'static,
    {
        UploadStream {
            encode: Box::new(move |_| boxed_items(items.map(|item| item.map(Payload::Value)))),
        }
    }

    /// An upload fed through a sender, for callers that push items (a binding's callback,
    /// another task): pass the stream as an argument, then send through the sender.
    ///
    /// ```no_run
    /// # async fn demo(connection: hublink::HubConnection) -> hublink::Result<()> {
    /// use hublink::{UploadStream, Value};
    /// let (numbers, sender) = UploadStream::channel();
    /// let sum = connection.invoke_value("UploadSum", vec![hublink::Argument::Stream(numbers)]);
    /// for n in 1..=3 {
    ///     sender.send(Value::Int(n)).await?;
    /// }
    /// sender.complete();
    /// assert_eq!(sum.await?, Value::Int(6));
    /// # Ok(()) }
    /// ```
    #[must_use = "the upload ends when its sender is dropped"]
    pub fn channel() -> (UploadStream, UploadSender) {
        let (items, receiver) = mpsc::channel(UPLOAD_CHANNEL_CAPACITY);
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        });
        (
            UploadStream::from_values(stream),
            UploadSender {
                items: Mutex::new(Some(items)),
            },
        )
    }

    pub(crate) fn into_payloads(self, protocol: HubProtocol) -> Items {
        (self.encode)(protocol)
    }
}

/// How many items an [`UploadSender`] holds before `send` waits for the connection to take
/// them.
const UPLOAD_CHANNEL_CAPACITY: usize = 16;

/// The sending end of [`UploadStream::channel`]. The upload ends with
/// [`complete`](Self::complete), with [`fail`](Self::fail), or when the sender is dropped
/// (as a completion).
#[derive(Debug)]
pub struct UploadSender {
    items: Mutex<Option<mpsc::Sender<std::result::Result<Value, String>>>>,
}

/// The text when an upload can take no more items.
const UPLOAD_ENDED: &str =
    "The upload stream has ended: it was completed, failed, or its call is over.";

impl UploadSender {
    /// Sends one item; waits while the connection has not taken the ones before. Fails when
    /// the upload has ended (completed, failed, or its call is over: the connection closed,
    /// or the call was never submitted).
    pub async fn send(&self, item: Value) -> Result<()> {
        let sender = self.items.lock().expect("upload sender").clone();
        match sender {
            Some(sender) => sender
                .send(Ok(item))
                .await
                .map_err(|_| Error::invalid_state(UPLOAD_ENDED)),
            None => Err(Error::invalid_state(UPLOAD_ENDED)),
        }
    }

    /// Ends the upload: the server receives its completion once the items sent are written.
    pub fn complete(&self) {
        self.items.lock().expect("upload sender").take();
    }

    /// Ends the upload with an error, which the server receives as the stream's error.
    pub fn fail(&self, error: impl Into<String>) {
        if let Some(sender) = self.items.lock().expect("upload sender").take() {
            let error = error.into();
            crate::runtime::spawn(async move {
                let _ = sender.send(Err(error)).await;
            });
        }
    }
}

/// The frame-writing side of arguments, sealed: only hublink implements [`IntoArgument`] and
/// [`IntoArguments`] (any serde value, `Value`s, `Payload`s, upload streams and tuples of
/// them), so the fast path can change without breaking anyone.
pub mod sealed {
    use super::*;

    /// Writes one argument into an invocation's frame, or returns it if it is an upload
    /// stream.
    pub trait WriteArgument {
        /// Writes the argument (see the trait).
        fn write_argument(self, call: &mut CallWriter) -> Result<Option<UploadStream>>
        where
            Self: Sized;
    }

    /// Writes the arguments into an invocation's frame, and returns the upload streams
    /// among them, in order.
    pub trait WriteArguments {
        /// Writes the arguments (see the trait).
        fn write_arguments(self, call: &mut CallWriter) -> Result<Vec<UploadStream>>
        where
            Self: Sized;
    }
}

use sealed::{WriteArgument, WriteArguments};

/// One argument a caller can pass: any serde value, a [`Value`], a [`Payload`], or an
/// [`UploadStream`]. Sealed: use serde for types of your own.
pub trait IntoArgument: WriteArgument {
    /// Serializes the argument for `protocol`.
    fn into_argument(self, protocol: HubProtocol) -> Result<Argument>;
}

fn write_argument(call: &mut CallWriter, argument: Argument) -> Result<Option<UploadStream>> {
    match argument {
        Argument::Value(payload) => call.payload(&payload).map_err(invalid_argument)?,
        Argument::Stream(stream) => return Ok(Some(stream)),
    }
    Ok(None)
}

fn invalid_argument(e: ProtocolError) -> Error {
    Error::invalid_argument(e.to_string())
}

impl<T: Serialize> IntoArgument for T {
    fn into_argument(self, protocol: HubProtocol) -> Result<Argument> {
        protocol
            .payload(&self)
            .map(Argument::Value)
            .map_err(invalid_argument)
    }
}

impl<T: Serialize> WriteArgument for T {
    fn write_argument(self, call: &mut CallWriter) -> Result<Option<UploadStream>> {
        call.value(&self).map_err(invalid_argument)?;
        Ok(None)
    }
}

impl IntoArgument for UploadStream {
    fn into_argument(self, _: HubProtocol) -> Result<Argument> {
        Ok(Argument::Stream(self))
    }
}

impl WriteArgument for UploadStream {
    fn write_argument(self, _: &mut CallWriter) -> Result<Option<UploadStream>> {
        Ok(Some(self))
    }
}

/// The arguments of an invocation: a tuple of [`IntoArgument`]s (`()` for none,
/// `("x",)` for one), or a `Vec<Value>` / `Vec<Payload>` / `Vec<Argument>` built at run time.
/// Sealed.
pub trait IntoArguments: WriteArguments {
    /// Serializes the arguments for `protocol`.
    fn into_arguments(self, protocol: HubProtocol) -> Result<Vec<Argument>>;
}

/// The general path: serialize each argument, then write its payload.
fn write_each(call: &mut CallWriter, arguments: impl IntoArguments) -> Result<Vec<UploadStream>> {
    let mut uploads = Vec::new();
    for argument in arguments.into_arguments(call.protocol())? {
        uploads.extend(write_argument(call, argument)?);
    }
    Ok(uploads)
}

macro_rules! write_each {
    ($($type:ty),*) => {$(
        impl WriteArguments for $type {
            fn write_arguments(self, call: &mut CallWriter) -> Result<Vec<UploadStream>> {
                write_each(call, self)
            }
        }
    )*};
}

write_each!(Vec<Value>, Vec<Payload>, Vec<Argument>);

impl IntoArguments for Vec<Value> {
    fn into_arguments(self, _: HubProtocol) -> Result<Vec<Argument>> {
        Ok(self
            .into_iter()
            .map(|v| Argument::Value(Payload::Value(v)))
            .collect())
    }
}

impl IntoArguments for Vec<Payload> {
    fn into_arguments(self, _: HubProtocol) -> Result<Vec<Argument>> {
        Ok(self.into_iter().map(Argument::Value).collect())
    }
}

impl IntoArguments for Vec<Argument> {
    fn into_arguments(self, _: HubProtocol) -> Result<Vec<Argument>> {
        Ok(self)
    }
}

macro_rules! tuple_arguments {
    ($($name:ident),*) => {
        impl<$($name: IntoArgument),*> IntoArguments for ($($name,)*) {
            #[allow(non_snake_case, unused_variables)]
            fn into_arguments(self, protocol: HubProtocol) -> Result<Vec<Argument>> {
                let ($($name,)*) = self;
                Ok(vec![$($name.into_argument(protocol)?),*])
            }
        }

        impl<$($name: IntoArgument),*> WriteArguments for ($($name,)*) {
            #[allow(non_snake_case, unused_variables, unused_mut)]
            fn write_arguments(self, call: &mut CallWriter) -> Result<Vec<UploadStream>> {
                let ($($name,)*) = self;
                let mut uploads = Vec::new();
                $(uploads.extend($name.write_argument(call)?);)*
                Ok(uploads)
            }
        }
    };
}

tuple_arguments!();
tuple_arguments!(A);
tuple_arguments!(A, B);
tuple_arguments!(A, B, C);
tuple_arguments!(A, B, C, D);
tuple_arguments!(A, B, C, D, E);
tuple_arguments!(A, B, C, D, E, F);
tuple_arguments!(A, B, C, D, E, F, G);
tuple_arguments!(A, B, C, D, E, F, G, H);

/// The arguments of a received invocation, to read in the handler's own types.
///
/// Handlers usually take a tuple instead (`|(user, text): (String, String)|`); take
/// `Arguments` to read them one by one or to accept any number.
#[derive(Debug, Clone)]
pub struct Arguments {
    payloads: Vec<Payload>,
    pub(crate) protocol: HubProtocol,
}

impl Arguments {
    /// Arguments as they arrived in `protocol`.
    pub fn new(payloads: Vec<Payload>, protocol: HubProtocol) -> Self {
        Arguments { payloads, protocol }
    }

    /// How many arguments arrived.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether no argument arrived.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// The hub protocol the arguments arrived in (results are answered in it).
    pub fn protocol(&self) -> HubProtocol {
        self.protocol
    }

    /// Argument `index` as `T`.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        let payload = self.payloads.get(index).ok_or_else(|| {
            Error::invalid_argument(format!(
                "argument {index} missing: {} arrived",
                self.payloads.len()
            ))
        })?;
        payload
            .deserialize()
            .map_err(|e| Error::invalid_argument(format!("argument {index}: {e}")))
    }

    /// Every argument as a dynamic [`Value`], exactly (binary, timestamps, 64-bit integers
    /// and MessagePack extensions included).
    pub fn values(&self) -> Result<Vec<Value>> {
        self.payloads
            .iter()
            .map(|p| p.to_value().map_err(Error::from))
            .collect()
    }

    /// The raw payloads.
    pub fn payloads(&self) -> &[Payload] {
        &self.payloads
    }
}

/// What a handler takes: a tuple of deserializable types, [`Arguments`], or `Vec<Value>`.
pub trait FromArguments: Sized {
    /// Reads the received arguments.
    fn from_arguments(arguments: Arguments) -> Result<Self>;
}

impl FromArguments for Arguments {
    fn from_arguments(arguments: Arguments) -> Result<Self> {
        Ok(arguments)
    }
}

impl FromArguments for Vec<Value> {
    fn from_arguments(arguments: Arguments) -> Result<Self> {
        arguments.values()
    }
}

macro_rules! tuple_from_arguments {
    ($count:expr; $($name:ident : $index:tt),*) => {
        impl<$($name: DeserializeOwned),*> FromArguments for ($($name,)*) {
            #[allow(unused_variables)]
            fn from_arguments(arguments: Arguments) -> Result<Self> {
                if arguments.len() != $count {
                    return Err(Error::invalid_argument(format!(
                        "the handler takes {} argument(s), {} arrived",
                        $count,
                        arguments.len()
                    )));
                }
                Ok(($(arguments.get::<$name>($index)?,)*))
            }
        }
    };
}

tuple_from_arguments!(0;);
tuple_from_arguments!(1; A: 0);
tuple_from_arguments!(2; A: 0, B: 1);
tuple_from_arguments!(3; A: 0, B: 1, C: 2);
tuple_from_arguments!(4; A: 0, B: 1, C: 2, D: 3);
tuple_from_arguments!(5; A: 0, B: 1, C: 2, D: 3, E: 4);
tuple_from_arguments!(6; A: 0, B: 1, C: 2, D: 3, E: 4, F: 5);
tuple_from_arguments!(7; A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6);
tuple_from_arguments!(8; A: 0, B: 1, C: 2, D: 3, E: 4, F: 5, G: 6, H: 7);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_become_payloads_in_the_protocol() {
        let args = ("a", 5, vec![1u8, 2])
            .into_arguments(HubProtocol::Json)
            .unwrap();
        assert_eq!(args.len(), 3);
        match &args[1] {
            Argument::Value(Payload::Json(text)) => assert_eq!(&text[..], b"5"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn handlers_read_tuples_and_refuse_wrong_arity() {
        let args = Arguments::new(
            vec![Payload::json(&"u").unwrap(), Payload::json(&3).unwrap()],
            HubProtocol::Json,
        );
        let (user, n): (String, i32) = FromArguments::from_arguments(args.clone()).unwrap();
        assert_eq!((user.as_str(), n), ("u", 3));
        let err = <(String,)>::from_arguments(args.clone()).unwrap_err();
        assert!(
            err.to_string().contains("takes 1 argument(s), 2 arrived"),
            "{err}"
        );
        let err = <(i32, i32)>::from_arguments(args).unwrap_err();
        assert!(err.to_string().contains("argument 0"), "{err}");
    }
}
