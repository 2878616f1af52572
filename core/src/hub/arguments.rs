//! Turning a caller's arguments into payloads, and received arguments into a caller's types.

use std::fmt;

use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
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

type ItemEncoder =
    Box<dyn FnOnce(HubProtocol) -> BoxStream<'static, Result<Payload, String>> + Send>;

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

impl UploadStream {
    /// A stream of values that always succeed.
    pub fn new<S, T>(items: S) -> Self
    where
        S: Stream<Item = T> + Send + 'static,
        T: Serialize + Send + 'static,
    {
        Self::fallible(items.map(Ok::<T, String>))
    }

    /// A stream that may fail: an `Err` ends the upload with that error text.
    pub fn fallible<S, T, E>(items: S) -> Self
    where
        S: Stream<Item = std::result::Result<T, E>> + Send + 'static,
        T: Serialize + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        UploadStream {
            encode: Box::new(move |protocol| {
                items
                    .map(move |item| match item {
                        Ok(value) => protocol.payload(&value).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    })
                    .boxed()
            }),
        }
    }

    pub(crate) fn into_payloads(
        self,
        protocol: HubProtocol,
    ) -> BoxStream<'static, Result<Payload, String>> {
        (self.encode)(protocol)
    }
}

/// One argument a caller can pass: any serde value, a [`Value`], a [`Payload`], or an
/// [`UploadStream`].
pub trait IntoArgument {
    /// Serializes the argument for `protocol`.
    fn into_argument(self, protocol: HubProtocol) -> Result<Argument>;

    /// Writes the argument into an invocation's frame, or returns it if it is an upload
    /// stream.
    #[doc(hidden)]
    fn write_argument(self, call: &mut CallWriter) -> Result<Option<UploadStream>>
    where
        Self: Sized,
    {
        let argument = self.into_argument(call.protocol())?;
        write_argument(call, argument)
    }
}

fn write_argument(call: &mut CallWriter, argument: Argument) -> Result<Option<UploadStream>> {
    match argument {
        Argument::Value(payload) => call.payload(&payload).map_err(invalid_argument)?,
        Argument::Stream(stream) => return Ok(Some(stream)),
    }
    Ok(None)
}

fn invalid_argument(e: ProtocolError) -> Error {
    Error::InvalidArgument(e.to_string())
}

impl<T: Serialize> IntoArgument for T {
    fn into_argument(self, protocol: HubProtocol) -> Result<Argument> {
        protocol
            .payload(&self)
            .map(Argument::Value)
            .map_err(invalid_argument)
    }

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

/// The arguments of an invocation: a tuple of [`IntoArgument`]s (`()` for none,
/// `("x",)` for one), or a `Vec<Value>` / `Vec<Payload>` built at run time.
pub trait IntoArguments {
    /// Serializes the arguments for `protocol`.
    fn into_arguments(self, protocol: HubProtocol) -> Result<Vec<Argument>>;

    /// Writes the arguments into an invocation's frame, and returns the upload streams among
    /// them, in order.
    #[doc(hidden)]
    fn write_arguments(self, call: &mut CallWriter) -> Result<Vec<UploadStream>>
    where
        Self: Sized,
    {
        let mut uploads = Vec::new();
        for argument in self.into_arguments(call.protocol())? {
            uploads.extend(write_argument(call, argument)?);
        }
        Ok(uploads)
    }
}

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
pub struct Arguments(pub(crate) Vec<Payload>);

impl Arguments {
    /// How many arguments arrived.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no argument arrived.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Argument `index` as `T`.
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<T> {
        let payload = self.0.get(index).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "argument {index} missing: {} arrived",
                self.0.len()
            ))
        })?;
        payload
            .deserialize()
            .map_err(|e| Error::InvalidArgument(format!("argument {index}: {e}")))
    }

    /// Every argument as a dynamic [`Value`].
    pub fn values(&self) -> Result<Vec<Value>> {
        self.0
            .iter()
            .map(|p| p.to_value().map_err(Error::from))
            .collect()
    }

    /// The raw payloads.
    pub fn payloads(&self) -> &[Payload] {
        &self.0
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
                    return Err(Error::InvalidArgument(format!(
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
        let args = Arguments(vec![
            Payload::json(&"u").unwrap(),
            Payload::json(&3).unwrap(),
        ]);
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
