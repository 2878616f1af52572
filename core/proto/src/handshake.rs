//! The hub handshake: the client's request, the server's answer, and the incremental parsing of
//! both (PROTOCOL.md §3).
//!
//! Both messages are always JSON followed by the record separator `0x1E`, whatever the hub
//! protocol. Bytes that follow the answer's separator in the same frame belong to the hub
//! protocol: the parsers return how many bytes they consumed so the caller can hand the rest on.
//!
//! ```
//! use hublink_proto::handshake::{parse_handshake_response, HandshakeRequest, HandshakeResponse};
//!
//! let request = HandshakeRequest::new("json", 1);
//! assert_eq!(request.to_bytes(), b"{\"protocol\":\"json\",\"version\":1}\x1e");
//!
//! // The answer may arrive in pieces, and with hub messages right behind it.
//! assert_eq!(parse_handshake_response(b"{", 1024), Ok(None));
//! let frame = b"{}\x1e{\"type\":6}\x1e";
//! let (response, consumed) = parse_handshake_response(frame, 1024).unwrap().unwrap();
//! assert_eq!(response, HandshakeResponse::success());
//! assert_eq!(&frame[consumed..], b"{\"type\":6}\x1e");
//! ```

use serde_json::{Map, Value};

use super::error::ProtocolError;

/// The record separator that ends every handshake message (and every JSON hub message).
pub const RECORD_SEPARATOR: u8 = 0x1E;

/// The handshake version to send normally.
pub const HANDSHAKE_VERSION: u32 = 1;

/// The handshake version to send when stateful reconnect was negotiated: the .NET server turns
/// stateful reconnect off for handshakes below 2 (PROTOCOL.md §3 and §11).
pub const STATEFUL_RECONNECT_HANDSHAKE_VERSION: u32 = 2;

/// The TS (and .NET) error text when the first message from the server is a hub message
/// (it has a `type`) rather than a handshake response.
pub const EXPECTED_HANDSHAKE_RESPONSE: &str = "Expected a handshake response from the server.";

/// The client's first message: which hub protocol to speak, and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The hub protocol name, `"json"` or `"messagepack"`.
    pub protocol: String,
    /// The protocol version ([`HANDSHAKE_VERSION`], or [`STATEFUL_RECONNECT_HANDSHAKE_VERSION`]
    /// with stateful reconnect).
    pub version: u32,
}

impl HandshakeRequest {
    /// A request for this protocol and version.
    pub fn new(protocol: impl Into<String>, version: u32) -> Self {
        HandshakeRequest {
            protocol: protocol.into(),
            version,
        }
    }

    /// Appends the encoded request, `{"protocol":"<name>","version":<n>}` then `0x1E`, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"protocol\":");
        out.extend_from_slice(json_string(&self.protocol).as_bytes());
        out.extend_from_slice(b",\"version\":");
        out.extend_from_slice(self.version.to_string().as_bytes());
        out.push(b'}');
        out.push(RECORD_SEPARATOR);
    }

    /// The encoded request (see [`write`](Self::write)).
    ///
    /// ```
    /// use hublink_proto::handshake::HandshakeRequest;
    ///
    /// assert_eq!(
    ///     HandshakeRequest::new("messagepack", 1).to_bytes(),
    ///     b"{\"protocol\":\"messagepack\",\"version\":1}\x1e"
    /// );
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.protocol.len() + 32);
        self.write(&mut out);
        out
    }
}

/// The server's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    /// Why the server refused the handshake; `None` on success. An empty `error` from the wire
    /// counts as success, as in the TS and .NET clients.
    pub error: Option<String>,
}

impl HandshakeResponse {
    /// The success answer (`{}`).
    pub fn success() -> Self {
        HandshakeResponse { error: None }
    }

    /// A refusal with this text (`{"error":"<text>"}`).
    pub fn failure(error: impl Into<String>) -> Self {
        HandshakeResponse {
            error: Some(error.into()),
        }
    }

    /// Whether the server accepted the handshake.
    pub fn is_success(&self) -> bool {
        !matches!(self.error.as_deref(), Some(error) if !error.is_empty())
    }

    /// `Ok` on success, otherwise the TS start-failure text
    /// `Server returned handshake error: <error>` ([`handshake_error_text`]).
    ///
    /// ```
    /// use hublink_proto::handshake::HandshakeResponse;
    ///
    /// let refused = HandshakeResponse::failure("The protocol 'xml' is not supported.");
    /// assert_eq!(
    ///     refused.into_result(),
    ///     Err("Server returned handshake error: The protocol 'xml' is not supported.".to_owned())
    /// );
    /// ```
    pub fn into_result(self) -> Result<(), String> {
        match self.error {
            Some(error) if !error.is_empty() => Err(handshake_error_text(&error)),
            _ => Ok(()),
        }
    }

    /// Appends the encoded answer to `out`: `{}` then `0x1E` on success, otherwise
    /// `{"error":"<text>"}` then `0x1E` (an empty error text is written as success, like the
    /// .NET server does).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self.error.as_deref() {
            Some(error) if !error.is_empty() => {
                out.extend_from_slice(b"{\"error\":");
                out.extend_from_slice(json_string(error).as_bytes());
                out.push(b'}');
            }
            _ => out.extend_from_slice(b"{}"),
        }
        out.push(RECORD_SEPARATOR);
    }

    /// The encoded answer (see [`write`](Self::write)).
    ///
    /// ```
    /// use hublink_proto::handshake::HandshakeResponse;
    ///
    /// assert_eq!(HandshakeResponse::success().to_bytes(), b"{}\x1e");
    /// assert_eq!(HandshakeResponse::failure("no").to_bytes(), b"{\"error\":\"no\"}\x1e");
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// The TS start-failure text for a refused handshake: `Server returned handshake error: <error>`.
pub fn handshake_error_text(error: &str) -> String {
    format!("Server returned handshake error: {error}")
}

/// The TS start-failure text for an unreadable handshake answer:
/// `Error parsing handshake response: Error: <error>`.
///
/// ```
/// use hublink_proto::handshake::{handshake_parse_failure_text, parse_handshake_response};
///
/// let err = parse_handshake_response(b"{\"type\":1}\x1e", 1024).unwrap_err();
/// assert_eq!(
///     handshake_parse_failure_text(&err),
///     "Error parsing handshake response: Error: Expected a handshake response from the server."
/// );
/// ```
pub fn handshake_parse_failure_text(error: &ProtocolError) -> String {
    format!("Error parsing handshake response: Error: {error}")
}

/// Parses the server's handshake answer from the start of `buf`, the bytes received so far.
///
/// * `Ok(None)`: no `0x1E` yet; call again with more bytes.
/// * `Ok(Some((response, consumed)))`: `consumed` counts the answer and its `0x1E`; whatever
///   follows is for the hub protocol.
/// * [`ProtocolError::MessageTooLarge`] when more than `max_size` bytes arrived without a
///   separator (or the answer before it is longer than `max_size`).
/// * [`ProtocolError::InvalidHandshake`] when the answer is not UTF-8, not JSON, not a JSON
///   object, has a non-string `error`, or has a `type` property
///   ([`EXPECTED_HANDSHAKE_RESPONSE`]). Unknown properties are ignored.
pub fn parse_handshake_response(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(HandshakeResponse, usize)>, ProtocolError> {
    let Some((object, consumed)) = split_message(buf, max_size, "response")? else {
        return Ok(None);
    };
    if object.contains_key("type") {
        return Err(ProtocolError::InvalidHandshake(
            EXPECTED_HANDSHAKE_RESPONSE.to_owned(),
        ));
    }
    let error = match object.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(error)) if error.is_empty() => None,
        Some(Value::String(error)) => Some(error.clone()),
        Some(_) => {
            return Err(ProtocolError::InvalidHandshake(
                "Expected 'error' to be of type String.".to_owned(),
            ))
        }
    };
    Ok(Some((HandshakeResponse { error }, consumed)))
}

/// Parses a client's handshake request from the start of `buf` (for test servers), with the same
/// contract as [`parse_handshake_response`]: `Ok(None)` until the `0x1E` arrives, then the
/// request and the bytes consumed including the separator.
///
/// Errors ([`ProtocolError::InvalidHandshake`], texts as in the .NET server where it has one):
/// `Missing required property 'protocol'.`, `Missing required property 'version'.`,
/// `Expected 'protocol' to be of type String.`, `Expected 'version' to be a non-negative
/// integer.`, or the request is not UTF-8 / JSON / a JSON object;
/// [`ProtocolError::MessageTooLarge`] past `max_size` bytes without a separator.
///
/// ```
/// use hublink_proto::handshake::{parse_handshake_request, HandshakeRequest};
///
/// let bytes = b"{\"protocol\":\"messagepack\",\"version\":1}\x1e\x05\x94\x06";
/// let (request, consumed) = parse_handshake_request(bytes, 1024).unwrap().unwrap();
/// assert_eq!(request, HandshakeRequest::new("messagepack", 1));
/// assert_eq!(&bytes[consumed..], b"\x05\x94\x06");
/// ```
pub fn parse_handshake_request(
    buf: &[u8],
    max_size: usize,
) -> Result<Option<(HandshakeRequest, usize)>, ProtocolError> {
    let Some((object, consumed)) = split_message(buf, max_size, "request")? else {
        return Ok(None);
    };
    let invalid = |text: &str| ProtocolError::InvalidHandshake(text.to_owned());
    let protocol = match object.get("protocol") {
        None | Some(Value::Null) => return Err(invalid("Missing required property 'protocol'.")),
        Some(Value::String(protocol)) => protocol.clone(),
        Some(_) => return Err(invalid("Expected 'protocol' to be of type String.")),
    };
    let version = match object.get("version") {
        None | Some(Value::Null) => return Err(invalid("Missing required property 'version'.")),
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| invalid("Expected 'version' to be a non-negative integer."))?,
    };
    Ok(Some((HandshakeRequest { protocol, version }, consumed)))
}

type JsonObject = Map<String, Value>;

/// Finds the first message of `buf` and parses it as a JSON object; `what` names it in errors.
fn split_message(
    buf: &[u8],
    max_size: usize,
    what: &str,
) -> Result<Option<(JsonObject, usize)>, ProtocolError> {
    let searched = &buf[..buf.len().min(max_size.saturating_add(1))];
    let Some(end) = memchr::memchr(RECORD_SEPARATOR, searched) else {
        return if buf.len() > max_size {
            Err(ProtocolError::MessageTooLarge {
                size: buf.len(),
                max: max_size,
            })
        } else {
            Ok(None)
        };
    };
    if end > max_size {
        return Err(ProtocolError::MessageTooLarge {
            size: end,
            max: max_size,
        });
    }
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| {
        ProtocolError::InvalidHandshake(format!("The handshake {what} is not valid UTF-8."))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::InvalidHandshake(format!("The handshake {what} is not valid JSON ({e})."))
    })?;
    match value {
        Value::Object(object) => Ok(Some((object, end + 1))),
        _ => Err(ProtocolError::InvalidHandshake(format!(
            "The handshake {what} is not a JSON object."
        ))),
    }
}

/// The JSON encoding of a string, quotes included.
fn json_string(s: &str) -> String {
    Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    /// What the parsers return.
    type Parsed<T> = Result<Option<(T, usize)>, ProtocolError>;

    #[test]
    fn request_bytes() {
        let cases: [(HandshakeRequest, &[u8]); 4] = [
            (
                HandshakeRequest::new("json", 1),
                &[
                    0x7b, 0x22, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x63, 0x6f, 0x6c, 0x22, 0x3a, 0x22,
                    0x6a, 0x73, 0x6f, 0x6e, 0x22, 0x2c, 0x22, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f,
                    0x6e, 0x22, 0x3a, 0x31, 0x7d, 0x1e,
                ],
            ),
            (
                HandshakeRequest::new("messagepack", 1),
                b"{\"protocol\":\"messagepack\",\"version\":1}\x1e",
            ),
            (
                HandshakeRequest::new("json", STATEFUL_RECONNECT_HANDSHAKE_VERSION),
                b"{\"protocol\":\"json\",\"version\":2}\x1e",
            ),
            (
                HandshakeRequest::new("we\"ird\u{1e}", 4_294_967_295),
                b"{\"protocol\":\"we\\\"ird\\u001e\",\"version\":4294967295}\x1e",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(request.to_bytes(), expected, "{request:?}");
            let mut out = b"prefix".to_vec();
            request.write(&mut out);
            assert_eq!(&out[6..], expected);
            // The request parser reads back what the writer wrote.
            assert_eq!(
                parse_handshake_request(expected, MAX),
                Ok(Some((request.clone(), expected.len())))
            );
        }
        assert_eq!(
            HandshakeRequest::new("json", HANDSHAKE_VERSION)
                .to_bytes()
                .len(),
            32
        );
    }

    #[test]
    fn response_bytes() {
        let cases: [(HandshakeResponse, &[u8]); 4] = [
            (HandshakeResponse::success(), &[0x7b, 0x7d, 0x1e]),
            (HandshakeResponse::failure(""), b"{}\x1e"),
            (
                HandshakeResponse::failure("The protocol 'xml' is not supported."),
                b"{\"error\":\"The protocol 'xml' is not supported.\"}\x1e",
            ),
            (
                HandshakeResponse::failure("line\nquote\"é"),
                b"{\"error\":\"line\\nquote\\\"\xc3\xa9\"}\x1e",
            ),
        ];
        for (response, expected) in cases {
            assert_eq!(response.to_bytes(), expected, "{response:?}");
        }
    }

    #[test]
    fn response_parsing() {
        let ok = |error: Option<&str>, consumed: usize| {
            Ok(Some((
                HandshakeResponse {
                    error: error.map(str::to_owned),
                },
                consumed,
            )))
        };
        let cases: Vec<(&str, &[u8], Parsed<HandshakeResponse>)> = vec![
            ("empty buffer", b"", Ok(None)),
            ("partial", b"{", Ok(None)),
            ("no separator yet", b"{}", Ok(None)),
            ("success", b"{}\x1e", ok(None, 3)),
            ("text leftover", b"{}\x1e{\"type\":6}\x1e", ok(None, 3)),
            (
                "binary leftover",
                b"{}\x1e\x05\x94\x06\x80\xc0",
                ok(None, 3),
            ),
            ("error", b"{\"error\":\"nope\"}\x1e", ok(Some("nope"), 17)),
            (
                "empty error is success",
                b"{\"error\":\"\"}\x1e",
                ok(None, 13),
            ),
            (
                "null error is success",
                b"{\"error\":null}\x1e",
                ok(None, 15),
            ),
            (
                "unknown fields ignored",
                b"{\"minorVersion\":1,\"x\":[{}]}\x1e",
                ok(None, 28),
            ),
            ("whitespace", b" { } \x1e", ok(None, 6)),
            (
                "hub message instead",
                b"{\"type\":1,\"target\":\"x\",\"arguments\":[]}\x1e",
                Err(ProtocolError::InvalidHandshake(
                    "Expected a handshake response from the server.".to_owned(),
                )),
            ),
            (
                "type 0 is still a type",
                b"{\"type\":0}\x1e",
                Err(ProtocolError::InvalidHandshake(
                    "Expected a handshake response from the server.".to_owned(),
                )),
            ),
            (
                "error of the wrong type",
                b"{\"error\":42}\x1e",
                Err(ProtocolError::InvalidHandshake(
                    "Expected 'error' to be of type String.".to_owned(),
                )),
            ),
            (
                "not an object",
                b"[]\x1e",
                Err(ProtocolError::InvalidHandshake(
                    "The handshake response is not a JSON object.".to_owned(),
                )),
            ),
            (
                "invalid UTF-8",
                b"{\"error\":\"\xff\"}\x1e",
                Err(ProtocolError::InvalidHandshake(
                    "The handshake response is not valid UTF-8.".to_owned(),
                )),
            ),
        ];
        for (name, buf, expected) in cases {
            assert_eq!(parse_handshake_response(buf, MAX), expected, "{name}");
        }
    }

    #[test]
    fn response_not_json() {
        let deep = format!("{}\x1e", "[".repeat(1000));
        let cases: [&[u8]; 5] = [
            b"\x1e",
            b"nope\x1e",
            b"{\"a\":}\x1e",
            b"{}{}\x1e",
            deep.as_bytes(),
        ];
        for buf in cases {
            let err = parse_handshake_response(buf, 4096).unwrap_err();
            let ProtocolError::InvalidHandshake(text) = &err else {
                panic!("{err:?}")
            };
            assert!(
                text.starts_with("The handshake response is not valid JSON ("),
                "{text}"
            );
        }
    }

    #[test]
    fn byte_by_byte() {
        let stream = b"{\"error\":\"The server does not support version 2 of the 'json' protocol.\"}\x1e{\"type\":7}\x1e";
        let end = stream.iter().position(|&b| b == RECORD_SEPARATOR).unwrap() + 1;
        for len in 0..stream.len() {
            let result = parse_handshake_response(&stream[..len], MAX);
            if len < end {
                assert_eq!(result, Ok(None), "{len}");
            } else {
                let (response, consumed) = result.unwrap().unwrap();
                assert_eq!(consumed, end);
                assert_eq!(
                    response.into_result(),
                    Err("Server returned handshake error: The server does not support version 2 of the 'json' protocol.".to_owned())
                );
            }
        }
    }

    #[test]
    fn size_limit() {
        type Case = (
            &'static str,
            &'static [u8],
            usize,
            Result<bool, ProtocolError>,
        );
        let cases: Vec<Case> = vec![
            // (name, buffer, max, Ok(complete?) or the error)
            ("exactly max without separator", b"{}  ", 4, Ok(false)),
            (
                "over max without separator",
                b"{}   ",
                4,
                Err(ProtocolError::MessageTooLarge { size: 5, max: 4 }),
            ),
            ("answer of max bytes", b"{}  \x1e", 4, Ok(true)),
            (
                "answer over max",
                b"{}   \x1e",
                4,
                Err(ProtocolError::MessageTooLarge { size: 6, max: 4 }),
            ),
            (
                "separator far behind",
                b"{}      \x1e",
                4,
                Err(ProtocolError::MessageTooLarge { size: 9, max: 4 }),
            ),
            ("leftover does not count", b"{}\x1e0123456789", 4, Ok(true)),
            ("huge max", b"{}", usize::MAX, Ok(false)),
        ];
        for (name, buf, max, expected) in cases {
            let result = parse_handshake_response(buf, max).map(|parsed| parsed.is_some());
            assert_eq!(result, expected, "{name}");
        }
    }

    #[test]
    fn request_parsing() {
        let invalid = |text: &str| Err(ProtocolError::InvalidHandshake(text.to_owned()));
        let cases: Vec<(&str, &[u8], Parsed<HandshakeRequest>)> = vec![
            ("partial", b"{\"protocol\":\"json\"", Ok(None)),
            (
                "json",
                b"{\"protocol\":\"json\",\"version\":1}\x1e",
                Ok(Some((HandshakeRequest::new("json", 1), 32))),
            ),
            (
                "field order and extras",
                b"{\"version\":2,\"extra\":true,\"protocol\":\"messagepack\"}\x1e{\"type\":6}\x1e",
                Ok(Some((HandshakeRequest::new("messagepack", 2), 52))),
            ),
            (
                "no protocol",
                b"{\"version\":1}\x1e",
                invalid("Missing required property 'protocol'."),
            ),
            (
                "null protocol",
                b"{\"protocol\":null,\"version\":1}\x1e",
                invalid("Missing required property 'protocol'."),
            ),
            (
                "no version",
                b"{\"protocol\":\"json\"}\x1e",
                invalid("Missing required property 'version'."),
            ),
            (
                "protocol number",
                b"{\"protocol\":1,\"version\":1}\x1e",
                invalid("Expected 'protocol' to be of type String."),
            ),
            (
                "version string",
                b"{\"protocol\":\"json\",\"version\":\"1\"}\x1e",
                invalid("Expected 'version' to be a non-negative integer."),
            ),
            (
                "version negative",
                b"{\"protocol\":\"json\",\"version\":-1}\x1e",
                invalid("Expected 'version' to be a non-negative integer."),
            ),
            (
                "version float",
                b"{\"protocol\":\"json\",\"version\":1.5}\x1e",
                invalid("Expected 'version' to be a non-negative integer."),
            ),
            (
                "not an object",
                b"\"json\"\x1e",
                invalid("The handshake request is not a JSON object."),
            ),
            (
                "invalid UTF-8",
                b"{\"protocol\":\"\xc3\"}\x1e",
                invalid("The handshake request is not valid UTF-8."),
            ),
        ];
        for (name, buf, expected) in cases {
            assert_eq!(parse_handshake_request(buf, MAX), expected, "{name}");
        }
        assert_eq!(
            parse_handshake_request(&[b' '; 11], 10),
            Err(ProtocolError::MessageTooLarge { size: 11, max: 10 })
        );
    }

    #[test]
    fn texts() {
        let cases = [
            (handshake_error_text("invalid"), "Server returned handshake error: invalid"),
            (
                handshake_parse_failure_text(&ProtocolError::InvalidHandshake(EXPECTED_HANDSHAKE_RESPONSE.to_owned())),
                "Error parsing handshake response: Error: Expected a handshake response from the server.",
            ),
        ];
        for (actual, expected) in cases {
            assert_eq!(actual, expected);
        }
        let states = [
            (HandshakeResponse::success(), true, Ok(())),
            (HandshakeResponse::failure(""), true, Ok(())),
            (
                HandshakeResponse::failure("x"),
                false,
                Err("Server returned handshake error: x".to_owned()),
            ),
        ];
        for (response, success, result) in states {
            assert_eq!(response.is_success(), success);
            assert_eq!(response.into_result(), result);
        }
    }
}
