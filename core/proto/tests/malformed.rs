//! Table-driven malformed input: every decoder must return an error — never panic, never
//! allocate in proportion to a length the peer claims, never recurse without bound, never hang.
//!
//! Each row names a decoder, the bytes, the maximum message size and what must come out. The
//! whole table runs on the test thread and again on a thread with a 256 KiB stack; every row is
//! also fed to the incremental decoder one byte at a time. A counting allocator measures the
//! peak heap use of every row.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::mem::discriminant;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use hublink_proto::handshake::{parse_handshake_response, EXPECTED_HANDSHAKE_RESPONSE};
use hublink_proto::negotiate::{parse_negotiate_response, LEGACY_SERVER_ERROR};
use hublink_proto::{
    CompletionOutcome, HubMessage, HubProtocol, Payload, ProtocolError, DEFAULT_MAX_MESSAGE_SIZE,
};

// ---------------------------------------------------------------------------------------------
// Per-thread allocation accounting.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(delta);
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak number of heap bytes it had live at once.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let out = f();
    let peak = PEAK.with(Cell::get);
    (out, (peak - start).max(0) as usize)
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, Debug)]
enum Decoder {
    Json,
    MessagePack,
    Handshake,
    Negotiate,
}

#[derive(Clone, Debug)]
enum Expect {
    /// An error whose text is exactly this.
    Text(&'static str),
    /// An error whose text starts with this.
    Prefix(&'static str),
    /// `ProtocolError::Incomplete`: "Message is incomplete." (a text buffer without its 0x1E).
    Incomplete,
    /// `ProtocolError::IncompleteFrame`: "Incomplete message." (a cut MessagePack body).
    IncompleteFrame,
    /// `ProtocolError::BadLengthPrefix`: "Cannot read message size."
    BadLengthPrefix,
    /// `ProtocolError::LengthPrefixTooLarge`: "Messages bigger than 2GB are not supported."
    LengthPrefixTooLarge,
    /// `ProtocolError::MessageTooLarge` with exactly this claimed size.
    TooLarge(usize),
    /// `ProtocolError::InvalidMessage` with any text.
    Invalid,
    /// Decoding may succeed (payloads are decoded lazily); then `to_value()` of at least one
    /// payload must fail. If decoding fails, it must fail with `InvalidMessage`.
    LazyValueError,
    /// `ProtocolError::InvalidHandshake`, with exactly this text when given.
    HandshakeErr(Option<&'static str>),
    /// `ProtocolError::InvalidNegotiate`: "Invalid negotiation response received: " and then,
    /// when given, this text.
    NegotiateErr(Option<&'static str>),
    /// The handshake parser wants more bytes (`Ok(None)`).
    NeedsMore,
}

#[derive(Clone, Debug)]
struct Row {
    name: String,
    decoder: Decoder,
    input: Vec<u8>,
    max: usize,
    expect: Expect,
}

/// Hex with optional spaces, e.g. `h("95 03 80")`.
fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("valid hex in a test row")
}

/// Frames a MessagePack body with its VarInt length prefix.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    hublink_proto::msgpack::write_length_prefix(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

struct Table(Vec<Row>);

impl Table {
    fn row(&mut self, name: impl Into<String>, decoder: Decoder, input: Vec<u8>, expect: Expect) {
        self.row_max(name, decoder, input, DEFAULT_MAX_MESSAGE_SIZE, expect);
    }
    fn row_max(
        &mut self,
        name: impl Into<String>,
        decoder: Decoder,
        input: Vec<u8>,
        max: usize,
        expect: Expect,
    ) {
        self.0.push(Row {
            name: name.into(),
            decoder,
            input,
            max,
            expect,
        });
    }
    /// A JSON record; the 0x1E separator is appended.
    fn json(&mut self, name: &str, record: impl AsRef<[u8]>, expect: Expect) {
        let mut input = record.as_ref().to_vec();
        input.push(0x1e);
        self.row(format!("json: {name}"), Decoder::Json, input, expect);
    }
    /// A handshake response; bytes are given as they arrive (separator included or not).
    fn hs(&mut self, name: &str, bytes: impl AsRef<[u8]>, expect: Expect) {
        self.row(
            format!("handshake: {name}"),
            Decoder::Handshake,
            bytes.as_ref().to_vec(),
            expect,
        );
    }
    /// A negotiate response body.
    fn neg(&mut self, name: &str, body: impl AsRef<[u8]>, expect: Expect) {
        self.row(
            format!("negotiate: {name}"),
            Decoder::Negotiate,
            body.as_ref().to_vec(),
            expect,
        );
    }
    /// A MessagePack body given in hex; the length prefix is added.
    fn mp(&mut self, name: &str, body_hex: &str, expect: Expect) {
        self.mp_body(name, h(body_hex), expect);
    }
    fn mp_body(&mut self, name: &str, body: Vec<u8>, expect: Expect) {
        self.row(
            format!("msgpack: {name}"),
            Decoder::MessagePack,
            framed(&body),
            expect,
        );
    }
    /// Raw MessagePack transport bytes (prefixes included) in hex.
    fn mp_raw(&mut self, name: &str, hex: &str, max: usize, expect: Expect) {
        self.row_max(
            format!("msgpack framing: {name}"),
            Decoder::MessagePack,
            h(hex),
            max,
            expect,
        );
    }
}

const INVOCATION: &str = "Invalid payload for Invocation message.";
const STREAM_INVOCATION: &str = "Invalid payload for StreamInvocation message.";
const STREAM_ITEM: &str = "Invalid payload for StreamItem message.";
const COMPLETION: &str = "Invalid payload for Completion message.";
const CANCEL: &str = "Invalid payload for CancelInvocation message.";
const CLOSE: &str = "Invalid payload for Close message.";
const INVALID_PAYLOAD: &str = "Invalid payload.";
const INVALID_HEADERS: &str = "Invalid headers.";
const TOO_BIG: &str = "Messages bigger than 2GB are not supported.";
const NEGOTIATE_PREFIX: &str = "Invalid negotiation response received: ";

fn nested_json_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

fn nested_json_objects(depth: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
}

/// A rich, valid message of every type, used for the truncation rows.
fn valid_messagepack_messages() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "invocation",
            // [1, {"k":"v"}, "42", "Target", [1, -1, 1.5, "str", bin[2], {"m":[nil,true]},
            //  timestamp, u64::MAX], ["s1","s2"]]
            h("96 01 81 a1 6b a1 76 a2 34 32 a6 54 61 72 67 65 74 \
               98 01 ff cb 3f f8 00 00 00 00 00 00 a3 73 74 72 c4 02 00 01 \
               81 a1 6d 92 c0 c3 d6 ff 5a 4a 1a 50 cf ff ff ff ff ff ff ff ff \
               92 a2 73 31 a2 73 32"),
        ),
        (
            "invocation-long",
            // The same with a 150-byte string argument, so the length prefix takes two bytes.
            [h("95 01 80 c0 a4 4c 6f 6e 67 91 d9 96"), vec![b'x'; 150]].concat(),
        ),
        (
            "stream-invocation",
            h("95 04 80 a1 37 a4 53 65 6e 64 92 2a a2 68 69"),
        ),
        (
            "stream-item",
            h("94 02 81 a1 74 a1 75 a3 61 62 63 92 08 09"),
        ),
        ("completion-result", h("95 03 80 a3 61 62 63 03 a2 4f 4b")),
        ("completion-error", h("95 03 80 a3 61 62 63 01 a3 45 72 72")),
        ("completion-void", h("94 03 80 a3 61 62 63 02")),
        ("cancel", h("93 05 80 a3 61 62 63")),
        ("close", h("93 07 a3 78 79 7a c3")),
        ("ack", h("92 08 cf 00 00 01 00 00 00 00 00")),
        ("sequence", h("92 09 cc 13")),
    ]
}

fn table() -> Vec<Row> {
    use Decoder::*;
    use Expect::*;
    let mut t = Table(Vec::new());

    // ---- JSON: not an object -------------------------------------------------------------
    t.json("empty object", "{}", Text(INVALID_PAYLOAD));
    t.json("empty record", "", Prefix("Invalid payload"));
    t.json("array", "[]", Prefix("Invalid payload"));
    t.json("number", "42", Prefix("Invalid payload"));
    t.json("string", "\"x\"", Prefix("Invalid payload"));
    t.json("null", "null", Prefix("Invalid payload"));
    t.json("whitespace only", "  ", Prefix("Invalid payload"));
    t.json("truncated object", "{\"type\":6", Prefix("Invalid payload"));
    t.json("trailing comma", "{\"type\":6,}", Prefix("Invalid payload"));
    t.json("single quotes", "{'type':6}", Prefix("Invalid payload"));
    t.json(
        "garbage after object",
        "{\"type\":6} x",
        Prefix("Invalid payload"),
    );
    t.json(
        "two objects in one record",
        "{\"type\":6}{\"type\":6}",
        Prefix("Invalid payload"),
    );
    t.json(
        "duplicate type",
        "{\"type\":6,\"type\":6}",
        Prefix("Invalid payload"),
    );
    t.json(
        "NaN argument",
        "{\"type\":1,\"target\":\"a\",\"arguments\":[NaN]}",
        Prefix("Invalid payload"),
    );

    // ---- JSON: the type ------------------------------------------------------------------
    t.json("type missing", "{\"target\":\"x\"}", Text(INVALID_PAYLOAD));
    t.json("type string", "{\"type\":\"1\"}", Text(INVALID_PAYLOAD));
    t.json("type bool", "{\"type\":true}", Text(INVALID_PAYLOAD));
    t.json("type null", "{\"type\":null}", Text(INVALID_PAYLOAD));
    t.json("type object", "{\"type\":{}}", Text(INVALID_PAYLOAD));
    t.json("type array", "{\"type\":[1]}", Text(INVALID_PAYLOAD));

    // ---- JSON: Invocation (1) ------------------------------------------------------------
    let inv = |fields: &str| format!("{{\"type\":1,{fields}}}");
    t.json(
        "invocation: target missing",
        inv("\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: target empty",
        inv("\"target\":\"\",\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: target number",
        inv("\"target\":1,\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: target null",
        inv("\"target\":null,\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: target array",
        inv("\"target\":[\"a\"],\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: arguments missing",
        inv("\"target\":\"a\""),
        Text(INVOCATION),
    );
    t.json(
        "invocation: arguments object",
        inv("\"target\":\"a\",\"arguments\":{}"),
        Prefix("Invalid payload"),
    );
    t.json(
        "invocation: arguments string",
        inv("\"target\":\"a\",\"arguments\":\"x\""),
        Prefix("Invalid payload"),
    );
    t.json(
        "invocation: invocationId number",
        inv("\"invocationId\":1,\"target\":\"a\",\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: invocationId empty",
        inv("\"invocationId\":\"\",\"target\":\"a\",\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: invocationId object",
        inv("\"invocationId\":{},\"target\":\"a\",\"arguments\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: streamIds string",
        inv("\"target\":\"a\",\"arguments\":[],\"streamIds\":\"1\""),
        Text(INVOCATION),
    );
    t.json(
        "invocation: streamIds numbers",
        inv("\"target\":\"a\",\"arguments\":[],\"streamIds\":[1]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: headers array",
        inv("\"target\":\"a\",\"arguments\":[],\"headers\":[]"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: headers string",
        inv("\"target\":\"a\",\"arguments\":[],\"headers\":\"a\""),
        Text(INVOCATION),
    );
    t.json(
        "invocation: header value number",
        inv("\"target\":\"a\",\"arguments\":[],\"headers\":{\"a\":1}"),
        Text(INVOCATION),
    );
    t.json(
        "invocation: header value null",
        inv("\"target\":\"a\",\"arguments\":[],\"headers\":{\"a\":null}"),
        Text(INVOCATION),
    );

    // ---- JSON: StreamInvocation (4) --------------------------------------------------------
    t.json(
        "stream invocation: invocationId missing",
        "{\"type\":4,\"target\":\"a\",\"arguments\":[]}",
        Text(STREAM_INVOCATION),
    );
    t.json(
        "stream invocation: invocationId null",
        "{\"type\":4,\"invocationId\":null,\"target\":\"a\",\"arguments\":[]}",
        Text(STREAM_INVOCATION),
    );
    t.json(
        "stream invocation: target missing",
        "{\"type\":4,\"invocationId\":\"1\",\"arguments\":[]}",
        Text(STREAM_INVOCATION),
    );
    t.json(
        "stream invocation: arguments missing",
        "{\"type\":4,\"invocationId\":\"1\",\"target\":\"a\"}",
        Text(STREAM_INVOCATION),
    );

    // ---- JSON: StreamItem (2) --------------------------------------------------------------
    t.json(
        "stream item: invocationId missing",
        "{\"type\":2,\"item\":1}",
        Text(STREAM_ITEM),
    );
    t.json(
        "stream item: invocationId number",
        "{\"type\":2,\"invocationId\":1,\"item\":1}",
        Text(STREAM_ITEM),
    );
    t.json(
        "stream item: invocationId empty",
        "{\"type\":2,\"invocationId\":\"\",\"item\":1}",
        Text(STREAM_ITEM),
    );
    t.json(
        "stream item: item missing",
        "{\"type\":2,\"invocationId\":\"1\"}",
        Text(STREAM_ITEM),
    );
    t.json(
        "stream item: headers number",
        "{\"type\":2,\"invocationId\":\"1\",\"item\":1,\"headers\":5}",
        Text(STREAM_ITEM),
    );

    // ---- JSON: Completion (3) --------------------------------------------------------------
    t.json(
        "completion: invocationId missing",
        "{\"type\":3,\"result\":1}",
        Text(COMPLETION),
    );
    t.json(
        "completion: invocationId bool",
        "{\"type\":3,\"invocationId\":true}",
        Text(COMPLETION),
    );
    t.json(
        "completion: error number",
        "{\"type\":3,\"invocationId\":\"1\",\"error\":5}",
        Text(COMPLETION),
    );
    t.json(
        "completion: error object",
        "{\"type\":3,\"invocationId\":\"1\",\"error\":{}}",
        Text(COMPLETION),
    );
    for result in ["42", "\"OK\"", "true", "{}", "[]", "-1", "0.5"] {
        t.json(
            &format!("completion: result {result} and error"),
            format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":{result},\"error\":\"E\"}}"),
            Text(COMPLETION),
        );
    }
    t.json(
        "completion: headers array",
        "{\"type\":3,\"invocationId\":\"1\",\"headers\":[[\"a\",\"b\"]]}",
        Text(COMPLETION),
    );

    // ---- JSON: CancelInvocation (5), Close (7), Ack (8), Sequence (9) ------------------------
    t.json("cancel: invocationId missing", "{\"type\":5}", Text(CANCEL));
    t.json(
        "cancel: invocationId array",
        "{\"type\":5,\"invocationId\":[\"1\"]}",
        Text(CANCEL),
    );
    t.json(
        "close: error number",
        "{\"type\":7,\"error\":5}",
        Text(CLOSE),
    );
    t.json(
        "close: allowReconnect string",
        "{\"type\":7,\"allowReconnect\":\"yes\"}",
        Text(CLOSE),
    );
    t.json(
        "close: allowReconnect number",
        "{\"type\":7,\"allowReconnect\":1}",
        Text(CLOSE),
    );
    for (name, record) in [
        ("missing", "{\"type\":8}"),
        ("string", "{\"type\":8,\"sequenceId\":\"1\"}"),
        ("negative", "{\"type\":8,\"sequenceId\":-1}"),
        ("fraction", "{\"type\":8,\"sequenceId\":1.5}"),
        ("null", "{\"type\":8,\"sequenceId\":null}"),
        (
            "above u64",
            "{\"type\":8,\"sequenceId\":18446744073709551616}",
        ),
    ] {
        t.json(
            &format!("ack: sequenceId {name}"),
            record,
            Prefix("Invalid"),
        );
    }
    t.json(
        "sequence: sequenceId missing",
        "{\"type\":9}",
        Prefix("Invalid"),
    );
    t.json(
        "sequence: sequenceId object",
        "{\"type\":9,\"sequenceId\":{}}",
        Prefix("Invalid"),
    );

    // ---- JSON: invalid UTF-8 and bad escapes --------------------------------------------------
    t.json(
        "invalid UTF-8 in target",
        b"{\"type\":1,\"target\":\"a\xff\",\"arguments\":[]}",
        Invalid,
    );
    t.json(
        "invalid UTF-8 in invocationId",
        b"{\"type\":2,\"invocationId\":\"\xc3\x28\",\"item\":1}",
        Invalid,
    );
    t.json(
        "invalid UTF-8 in a header",
        b"{\"type\":6,\"headers\":{\"a\":\"\xed\xa0\x80\"}}",
        Invalid,
    );
    t.json(
        "invalid UTF-8 in a property name",
        b"{\"type\":6,\"\xff\":1}",
        Invalid,
    );
    t.json(
        "invalid UTF-8 in an argument string",
        b"{\"type\":1,\"target\":\"a\",\"arguments\":[\"\xf8\x88\x80\x80\x80\"]}",
        LazyValueError,
    );
    t.json(
        "invalid UTF-8 in the error",
        b"{\"type\":3,\"invocationId\":\"1\",\"error\":\"\xc0\xaf\"}",
        Invalid,
    );
    t.json(
        "lone surrogate escape in target",
        "{\"type\":1,\"target\":\"\\ud800\",\"arguments\":[]}",
        Invalid,
    );
    t.json(
        "lone surrogate escape in an argument",
        "{\"type\":1,\"target\":\"a\",\"arguments\":[\"\\udc00\"]}",
        LazyValueError,
    );
    t.json(
        "raw control character in a string",
        "{\"type\":1,\"target\":\"a\u{1}b\",\"arguments\":[]}",
        Invalid,
    );
    t.json(
        "bad escape in a string",
        "{\"type\":1,\"target\":\"\\q\",\"arguments\":[]}",
        Invalid,
    );
    t.json(
        "number out of range in an argument",
        "{\"type\":1,\"target\":\"a\",\"arguments\":[1e999999]}",
        LazyValueError,
    );

    // ---- JSON: deep nesting ----------------------------------------------------------------
    t.json(
        "10 000 nested arrays in arguments",
        format!(
            "{{\"type\":1,\"target\":\"a\",\"arguments\":[{}]}}",
            nested_json_arrays(10_000)
        ),
        LazyValueError,
    );
    t.json(
        "10 000 nested objects in arguments",
        format!(
            "{{\"type\":1,\"target\":\"a\",\"arguments\":[{}]}}",
            nested_json_objects(10_000)
        ),
        LazyValueError,
    );
    t.json(
        "10 000 nested arrays as a stream item",
        format!(
            "{{\"type\":2,\"invocationId\":\"1\",\"item\":{}}}",
            nested_json_arrays(10_000)
        ),
        LazyValueError,
    );
    t.json(
        "10 000 nested arrays as a result",
        format!(
            "{{\"type\":3,\"invocationId\":\"1\",\"result\":{}}}",
            nested_json_arrays(10_000)
        ),
        LazyValueError,
    );
    t.json(
        "10 000 nested arrays as the record",
        nested_json_arrays(10_000),
        Prefix("Invalid payload"),
    );
    t.json(
        "10 000 nested arrays in headers",
        format!(
            "{{\"type\":5,\"invocationId\":\"1\",\"headers\":{{\"a\":{}}}}}",
            nested_json_arrays(10_000)
        ),
        Invalid,
    );
    t.json(
        "10 000 unclosed arrays in arguments",
        format!(
            "{{\"type\":1,\"target\":\"a\",\"arguments\":[{}",
            "[".repeat(10_000)
        ),
        Prefix("Invalid payload"),
    );

    // ---- JSON: framing and size --------------------------------------------------------------
    t.row(
        "json framing: no separator",
        Json,
        b"{\"type\":6}".to_vec(),
        Incomplete,
    );
    t.row(
        "json framing: second record without separator",
        Json,
        b"{\"type\":6}\x1e{\"type\":6}".to_vec(),
        Incomplete,
    );
    t.row_max(
        "json framing: over the maximum without a separator",
        Json,
        [b"{\"type\":1,\"target\":\"", &[b'a'; 300][..]].concat(),
        256,
        TooLarge(20 + 300),
    );
    t.row_max(
        "json framing: one record over the maximum",
        Json,
        [b"{\"type\":6,\"x\":\"", &[b'a'; 300][..], b"\"}\x1e"].concat(),
        256,
        TooLarge(15 + 300 + 2),
    );
    t.row_max(
        "json framing: 4 MiB of spaces without a separator",
        Json,
        vec![b' '; 4 << 20],
        DEFAULT_MAX_MESSAGE_SIZE,
        TooLarge(4 << 20),
    );

    // ---- MessagePack: framing (PROTOCOL.md §6.1), with valid bodies -----------------------------
    t.mp_raw(
        "cut prefix alone",
        "80",
        DEFAULT_MAX_MESSAGE_SIZE,
        BadLengthPrefix,
    );
    t.mp_raw(
        "cut prefix after a message",
        "02 91 06 80 80",
        DEFAULT_MAX_MESSAGE_SIZE,
        BadLengthPrefix,
    );
    t.mp_raw(
        "cut body",
        "02 91",
        DEFAULT_MAX_MESSAGE_SIZE,
        IncompleteFrame,
    );
    t.mp_raw(
        "prefix without body",
        "02",
        DEFAULT_MAX_MESSAGE_SIZE,
        IncompleteFrame,
    );
    for prefix in [
        "ff ff ff ff ff",
        "80 80 80 80 08",
        "80 80 80 80 80",
        "ff ff ff ff 0f",
    ] {
        t.mp_raw(
            &format!("prefix {prefix} above 2 GB"),
            prefix,
            usize::MAX,
            Text(TOO_BIG),
        );
    }
    t.mp_raw(
        "VarInt above 2 GB after a valid message",
        "02 91 06 ff ff ff ff 7f 91 06",
        usize::MAX,
        LengthPrefixTooLarge,
    );
    t.mp_raw(
        "2 GB prefix in a 10-byte buffer, default maximum",
        "ff ff ff ff 07 91 06 91 06 06",
        DEFAULT_MAX_MESSAGE_SIZE,
        TooLarge(0x7fff_ffff),
    );
    t.mp_raw(
        "2 GB prefix in a 10-byte buffer, no maximum",
        "ff ff ff ff 07 91 06 91 06 06",
        usize::MAX,
        IncompleteFrame,
    );
    t.mp_raw(
        "body one byte over a small maximum",
        "05 95 03 80 a0 02",
        4,
        TooLarge(5),
    );

    // ---- MessagePack: the body (PROTOCOL.md §6.3 error vectors) -------------------------------
    t.mp("empty body", "", Text(INVALID_PAYLOAD));
    t.mp("empty array", "90", Text(INVALID_PAYLOAD));
    t.mp("body is a bool", "c2", Text(INVALID_PAYLOAD));
    t.mp("body is a map", "81 a1 61 01", Text(INVALID_PAYLOAD));
    t.mp("body is a string", "a1 61", Text(INVALID_PAYLOAD));
    t.mp(
        "body is the reserved byte 0xc1",
        "c1",
        Text(INVALID_PAYLOAD),
    );
    t.mp(
        "type is the reserved byte 0xc1",
        "91 c1",
        Text(INVALID_PAYLOAD),
    );
    t.mp(
        "type missing from a 1-element array",
        "91",
        Text(INVALID_PAYLOAD),
    );
    t.mp("type is nil", "91 c0", Text(INVALID_PAYLOAD));
    t.mp("headers not a map", "92 01 05", Text(INVALID_HEADERS));
    t.mp("headers missing", "91 01", Text(INVALID_HEADERS));
    t.mp(
        "headers are an array",
        "95 01 90 c0 a1 61 90",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "header value is an int",
        "95 01 81 a1 61 01 c0 a1 61 90",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "header key is nil",
        "95 01 81 c0 a1 61 c0 a1 61 90",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "headers are 0xc1",
        "95 01 c1 c0 a1 61 90",
        Text(INVALID_HEADERS),
    );
    t.mp("invocation too short", "92 01 80", Text(INVOCATION));
    t.mp("stream item too short", "92 02 80", Text(STREAM_ITEM));
    t.mp("completion too short", "93 03 80 a0", Text(COMPLETION));
    t.mp(
        "completion error without error",
        "94 03 80 a0 01",
        Text(COMPLETION),
    );
    t.mp(
        "completion result without result",
        "94 03 80 a0 03",
        Text(COMPLETION),
    );

    // ---- MessagePack: wrong types for every field ----------------------------------------------
    t.mp(
        "invocation: id is an int",
        "95 01 80 01 a1 61 90",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: id is 0xc1",
        "95 01 80 c1 a1 61 90",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: target nil",
        "95 01 80 c0 c0 90",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: target is an int",
        "95 01 80 c0 07 90",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: target is binary",
        "95 01 80 c0 c4 01 61 90",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: arguments are a map",
        "95 01 80 c0 a1 61 80",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: arguments nil",
        "95 01 80 c0 a1 61 c0",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: argument is 0xc1",
        "95 01 80 c0 a1 61 91 c1",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: streamIds a string",
        "96 01 80 c0 a1 61 90 a1 31",
        Text(INVOCATION),
    );
    t.mp(
        "invocation: streamIds ints",
        "96 01 80 c0 a1 61 90 91 01",
        Text(INVOCATION),
    );
    t.mp(
        "stream invocation: id nil",
        "95 04 80 c0 a1 61 90",
        Text(STREAM_INVOCATION),
    );
    t.mp(
        "stream invocation: target nil",
        "95 04 80 a1 31 c0 90",
        Text(STREAM_INVOCATION),
    );
    t.mp("stream item: id nil", "94 02 80 c0 01", Text(STREAM_ITEM));
    t.mp(
        "stream item: id an int",
        "94 02 80 01 01",
        Text(STREAM_ITEM),
    );
    t.mp(
        "stream item: item 0xc1",
        "94 02 80 a1 31 c1",
        Text(STREAM_ITEM),
    );
    t.mp("completion: id nil", "94 03 80 c0 02", Text(COMPLETION));
    t.mp("completion: kind 0", "94 03 80 a1 31 00", Text(COMPLETION));
    t.mp(
        "completion: kind 4",
        "95 03 80 a1 31 04 01",
        Text(COMPLETION),
    );
    t.mp(
        "completion: kind -1",
        "95 03 80 a1 31 ff 01",
        Text(COMPLETION),
    );
    t.mp(
        "completion: kind a string",
        "95 03 80 a1 31 a1 33 01",
        Text(COMPLETION),
    );
    t.mp(
        "completion: kind nil",
        "95 03 80 a1 31 c0 01",
        Text(COMPLETION),
    );
    t.mp(
        "completion: error an int",
        "95 03 80 a1 31 01 05",
        Text(COMPLETION),
    );
    t.mp(
        "completion: error nil",
        "95 03 80 a1 31 01 c0",
        Text(COMPLETION),
    );
    t.mp(
        "completion: result 0xc1",
        "95 03 80 a1 31 03 c1",
        Text(COMPLETION),
    );
    t.mp("cancel: too short", "92 05 80", Text(CANCEL));
    t.mp("cancel: id nil", "93 05 80 c0", Text(CANCEL));
    t.mp("close: too short", "91 07", Text(CLOSE));
    t.mp("close: error an int", "92 07 05", Text(CLOSE));
    t.mp("close: error a map", "92 07 80", Text(CLOSE));
    t.mp("close: allowReconnect an int", "93 07 c0 01", Text(CLOSE));
    t.mp(
        "close: allowReconnect a string",
        "93 07 c0 a1 74",
        Text(CLOSE),
    );
    t.mp("ack: too short", "91 08", Prefix("Invalid"));
    t.mp("ack: negative", "92 08 ff", Prefix("Invalid"));
    t.mp("ack: a string", "92 08 a1 31", Prefix("Invalid"));
    t.mp(
        "ack: a float",
        "92 08 cb 3f f0 00 00 00 00 00 00",
        Prefix("Invalid"),
    );
    t.mp("sequence: nil", "92 09 c0", Prefix("Invalid"));
    t.mp(
        "sequence: i64 min",
        "92 09 d3 80 00 00 00 00 00 00 00",
        Prefix("Invalid"),
    );

    // ---- MessagePack: invalid UTF-8 --------------------------------------------------------------
    t.mp(
        "invalid UTF-8 in target",
        "95 01 80 c0 a2 61 ff 90",
        Text(INVOCATION),
    );
    t.mp(
        "invalid UTF-8 in invocation id",
        "94 02 80 a2 c3 28 01",
        Text(STREAM_ITEM),
    );
    t.mp(
        "invalid UTF-8 in a header key",
        "94 02 81 a1 ff a1 61 a1 31 01",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "invalid UTF-8 (surrogate) in a header value",
        "94 02 81 a1 61 a3 ed a0 80 a1 31 01",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "invalid UTF-8 in the error",
        "95 03 80 a1 31 01 a2 c0 af",
        Text(COMPLETION),
    );
    t.mp("invalid UTF-8 in close error", "92 07 a1 80", Text(CLOSE));
    t.mp(
        "invalid UTF-8 in a stream id",
        "96 01 80 c0 a1 61 90 91 a1 fe",
        Text(INVOCATION),
    );
    t.mp(
        "invalid UTF-8 in an argument string",
        "95 01 80 c0 a1 61 91 a2 f8 88",
        LazyValueError,
    );
    t.mp(
        "invalid UTF-8 in a map key inside the result",
        "95 03 80 a1 31 03 81 a1 ff 01",
        LazyValueError,
    );

    // ---- MessagePack: absurd lengths inside a tiny body ---------------------------------------
    t.mp(
        "str32 target claiming 4 G",
        "95 01 80 c0 db ff ff ff ff 61 90",
        Text(INVOCATION),
    );
    t.mp(
        "str32 id claiming 4 G",
        "94 02 80 db ff ff ff ff 01",
        Text(STREAM_ITEM),
    );
    t.mp(
        "str8 target longer than the body",
        "95 01 80 c0 d9 20 61 90",
        Text(INVOCATION),
    );
    t.mp(
        "str32 header key claiming 4 G",
        "94 02 81 db ff ff ff ff a1 31 01",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "map32 headers claiming 4 G",
        "94 02 df ff ff ff ff a1 31 01",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "map16 headers claiming 65 535",
        "94 02 de ff ff a1 31 01",
        Text(INVALID_HEADERS),
    );
    t.mp(
        "array32 arguments claiming 4 G",
        "95 01 80 c0 a1 61 dd ff ff ff ff 01",
        Text(INVOCATION),
    );
    t.mp(
        "array32 stream ids claiming 4 G",
        "96 01 80 c0 a1 61 90 dd ff ff ff ff a1 31",
        Text(INVOCATION),
    );
    t.mp(
        "bin32 argument claiming 4 G",
        "95 01 80 c0 a1 61 91 c6 ff ff ff ff 00",
        Text(INVOCATION),
    );
    t.mp(
        "str32 argument claiming 4 G",
        "95 01 80 c0 a1 61 91 db ff ff ff ff 00",
        Text(INVOCATION),
    );
    t.mp(
        "array32 argument claiming 4 G",
        "95 01 80 c0 a1 61 91 dd ff ff ff ff 00",
        Text(INVOCATION),
    );
    t.mp(
        "bin32 item claiming 4 G",
        "94 02 80 a1 31 c6 ff ff ff ff",
        Text(STREAM_ITEM),
    );
    t.mp(
        "array32 result claiming 4 G",
        "95 03 80 a1 31 03 dd ff ff ff ff",
        Text(COMPLETION),
    );
    t.mp(
        "str32 close error claiming 4 G",
        "92 07 db ff ff ff ff 61",
        Text(CLOSE),
    );

    // ---- MessagePack: bad values inside payloads (decoded lazily) ------------------------------
    t.mp(
        "timestamp with 2 data bytes",
        "94 02 80 a1 31 d5 ff 00 00",
        LazyValueError,
    );
    t.mp(
        "timestamp64 with nanoseconds above 10^9",
        "94 02 80 a1 31 d7 ff ff ff ff ff 00 00 00 00",
        LazyValueError,
    );
    t.mp(
        "timestamp96 with nanoseconds above 10^9",
        "94 02 80 a1 31 c7 0c ff 3b 9a ca 00 00 00 00 00 00 00 00 00",
        LazyValueError,
    );

    // ---- MessagePack: deep nesting -----------------------------------------------------------
    let deep_arrays = [vec![0x91; 10_000], vec![0x90]].concat();
    t.mp_body(
        "10 000 nested arrays in arguments",
        [h("95 01 80 c0 a1 61 91"), deep_arrays.clone()].concat(),
        LazyValueError,
    );
    t.mp_body(
        "10 000 nested arrays as the result",
        [h("95 03 80 a1 31 03"), deep_arrays.clone()].concat(),
        LazyValueError,
    );
    t.mp_body(
        "10 000 nested maps as a stream item",
        [
            h("94 02 80 a1 31"),
            [0x81, 0xa1, 0x61].repeat(10_000),
            vec![0xc0],
        ]
        .concat(),
        LazyValueError,
    );
    t.mp_body(
        "10 000 nested arrays as a header value",
        [h("94 02 81 a1 61"), deep_arrays.clone(), h("a1 31 01")].concat(),
        Text(INVALID_HEADERS),
    );
    t.mp_body(
        "129 nested arrays in arguments (just past the limit)",
        [h("95 01 80 c0 a1 61 91"), vec![0x91; 128], vec![0x90]].concat(),
        LazyValueError,
    );

    // ---- Handshake response (PROTOCOL.md §3) ----------------------------------------------------
    const HS_MAX: usize = 1024;
    t.hs(
        "a hub message instead",
        "{\"type\":1}\x1e",
        HandshakeErr(Some(EXPECTED_HANDSHAKE_RESPONSE)),
    );
    t.hs(
        "a ping instead",
        "{\"type\":6}\x1e",
        HandshakeErr(Some(EXPECTED_HANDSHAKE_RESPONSE)),
    );
    t.hs(
        "type null",
        "{\"type\":null}\x1e",
        HandshakeErr(Some(EXPECTED_HANDSHAKE_RESPONSE)),
    );
    t.hs(
        "error a number",
        "{\"error\":5}\x1e",
        HandshakeErr(Some("Expected 'error' to be of type String.")),
    );
    t.hs(
        "error an object",
        "{\"error\":{}}\x1e",
        HandshakeErr(Some("Expected 'error' to be of type String.")),
    );
    t.hs(
        "error an array",
        "{\"error\":[\"x\"]}\x1e",
        HandshakeErr(Some("Expected 'error' to be of type String.")),
    );
    t.hs(
        "error a bool",
        "{\"error\":true}\x1e",
        HandshakeErr(Some("Expected 'error' to be of type String.")),
    );
    t.hs("an array", "[]\x1e", HandshakeErr(None));
    t.hs("a number", "42\x1e", HandshakeErr(None));
    t.hs("a string", "\"x\"\x1e", HandshakeErr(None));
    t.hs("null", "null\x1e", HandshakeErr(None));
    t.hs("empty", "\x1e", HandshakeErr(None));
    t.hs("cut JSON", "{\x1e", HandshakeErr(None));
    t.hs("JSON then garbage", "{} x\x1e", HandshakeErr(None));
    t.hs(
        "invalid UTF-8",
        b"{\"error\":\"\xff\"}\x1e",
        HandshakeErr(None),
    );
    t.hs(
        "invalid UTF-8 in an unknown property",
        b"{\"x\":\"\xc3\x28\"}\x1e",
        HandshakeErr(None),
    );
    t.hs(
        "lone surrogate escape",
        "{\"error\":\"\\ud800\"}\x1e",
        HandshakeErr(None),
    );
    t.hs(
        "10 000 nested arrays",
        format!("{{\"x\":{}}}\x1e", nested_json_arrays(10_000)),
        HandshakeErr(None),
    );
    t.hs(
        "10 000 nested objects",
        format!("{}\x1e", nested_json_objects(10_000)),
        HandshakeErr(None),
    );
    t.hs("no separator yet", "{}", NeedsMore);
    t.row_max(
        "handshake: no separator, over the maximum",
        Handshake,
        [b"{\"error\":\"", &[b'a'; HS_MAX][..]].concat(),
        HS_MAX,
        TooLarge(HS_MAX + 10),
    );
    t.row_max(
        "handshake: separator past the maximum",
        Handshake,
        [&b"{}"[..], &[b' '; HS_MAX][..], b"\x1e"].concat(),
        HS_MAX,
        TooLarge(HS_MAX + 3),
    );
    t.row_max(
        "handshake: 4 MiB without a separator",
        Handshake,
        vec![b'{'; 4 << 20],
        HS_MAX,
        TooLarge(4 << 20),
    );
    t.row_max(
        "handshake: MessagePack bytes (no 0x1E) over the maximum",
        Handshake,
        h("02 91 06").repeat(HS_MAX),
        HS_MAX,
        TooLarge(3 * HS_MAX),
    );

    // ---- Negotiate response (PROTOCOL.md §1.2) --------------------------------------------------
    let neg_ok = "\"connectionId\":\"c\",\"availableTransports\":[]";
    t.neg("empty body", "", NegotiateErr(None));
    t.neg("an array", "[]", NegotiateErr(None));
    t.neg("a number", "42", NegotiateErr(None));
    t.neg("a string", "\"x\"", NegotiateErr(None));
    t.neg("null", "null", NegotiateErr(None));
    t.neg("cut JSON", "{\"connectionId\":", NegotiateErr(None));
    t.neg("two objects", "{}{}", NegotiateErr(None));
    t.neg(
        "invalid UTF-8",
        b"{\"connectionId\":\"\xff\",\"availableTransports\":[]}",
        NegotiateErr(None),
    );
    t.neg(
        "invalid UTF-8 in an unknown property",
        b"{\"x\":\"\xed\xbf\xbf\"}",
        NegotiateErr(None),
    );
    t.neg(
        "10 000 nested arrays",
        format!("{{{neg_ok},\"x\":{}}}", nested_json_arrays(10_000)),
        NegotiateErr(None),
    );
    t.neg(
        "10 000 nested objects",
        format!("{{{neg_ok},\"x\":{}}}", nested_json_objects(10_000)),
        NegotiateErr(None),
    );
    t.neg(
        "number out of range",
        "{\"negotiateVersion\":1e999}",
        NegotiateErr(None),
    );
    t.neg(
        "empty object",
        "{}",
        NegotiateErr(Some("Missing required property 'connectionId'.")),
    );
    t.neg(
        "connectionId missing",
        "{\"availableTransports\":[]}",
        NegotiateErr(Some("Missing required property 'connectionId'.")),
    );
    t.neg(
        "connectionId a number",
        "{\"connectionId\":5,\"availableTransports\":[]}",
        NegotiateErr(Some("Expected 'connectionId' to be of type String.")),
    );
    t.neg(
        "availableTransports missing",
        "{\"connectionId\":\"c\"}",
        NegotiateErr(Some("Missing required property 'availableTransports'.")),
    );
    t.neg(
        "connectionToken missing for version 1",
        format!("{{{neg_ok},\"negotiateVersion\":1}}"),
        NegotiateErr(Some("Missing required property 'connectionToken'.")),
    );
    t.neg(
        "connectionToken a number",
        format!("{{{neg_ok},\"negotiateVersion\":1,\"connectionToken\":1}}"),
        NegotiateErr(Some("Expected 'connectionToken' to be of type String.")),
    );
    for version in ["\"1\"", "1.5", "true", "[1]", "4294967296"] {
        t.neg(
            &format!("negotiateVersion {version}"),
            format!("{{{neg_ok},\"negotiateVersion\":{version}}}"),
            NegotiateErr(Some("Expected 'negotiateVersion' to be an integer.")),
        );
    }
    t.neg(
        "availableTransports an object",
        "{\"connectionId\":\"c\",\"availableTransports\":{}}",
        NegotiateErr(Some("Expected 'availableTransports' to be of type Array.")),
    );
    t.neg(
        "availableTransports of numbers",
        "{\"connectionId\":\"c\",\"availableTransports\":[1]}",
        NegotiateErr(Some(
            "Expected each entry of 'availableTransports' to be an object.",
        )),
    );
    t.neg(
        "transport missing",
        "{\"connectionId\":\"c\",\"availableTransports\":[{\"transferFormats\":[\"Text\"]}]}",
        NegotiateErr(Some("Missing required property 'transport'.")),
    );
    t.neg(
        "transport a number",
        "{\"connectionId\":\"c\",\"availableTransports\":[{\"transport\":1,\"transferFormats\":[]}]}",
        NegotiateErr(Some("Expected 'transport' to be of type String.")),
    );
    t.neg(
        "transferFormats missing",
        "{\"connectionId\":\"c\",\"availableTransports\":[{\"transport\":\"WebSockets\"}]}",
        NegotiateErr(Some("Missing required property 'transferFormats'.")),
    );
    t.neg(
        "transferFormats a string",
        "{\"connectionId\":\"c\",\"availableTransports\":[{\"transport\":\"WebSockets\",\"transferFormats\":\"Text\"}]}",
        NegotiateErr(Some("Expected 'transferFormats' to be of type Array.")),
    );
    t.neg(
        "transferFormats of numbers",
        "{\"connectionId\":\"c\",\"availableTransports\":[{\"transport\":\"WebSockets\",\"transferFormats\":[1]}]}",
        NegotiateErr(Some("Expected each entry of 'transferFormats' to be of type String.")),
    );
    t.neg(
        "useStatefulReconnect a string",
        format!("{{{neg_ok},\"useStatefulReconnect\":\"true\"}}"),
        NegotiateErr(Some(
            "Expected 'useStatefulReconnect' to be of type Boolean.",
        )),
    );
    t.neg(
        "url a number",
        "{\"url\":5}",
        NegotiateErr(Some("Expected 'url' to be of type String.")),
    );
    t.neg(
        "accessToken an object",
        "{\"url\":\"http://x\",\"accessToken\":{}}",
        NegotiateErr(Some("Expected 'accessToken' to be of type String.")),
    );
    t.neg(
        "error a number",
        "{\"error\":404}",
        NegotiateErr(Some("Expected 'error' to be of type String.")),
    );
    t.neg(
        "legacy ASP.NET SignalR server",
        "{\"ProtocolVersion\":\"1.5\",\"ConnectionId\":\"x\"}",
        Text(LEGACY_SERVER_ERROR),
    );

    // ---- Regressions: once accepted, now refused ----------------------------------------------
    t.json(
        "an array posing as the message object",
        "[6,null,null,null,null,null,null,null,null,null,null]",
        Prefix("Invalid payload"),
    );
    t.mp(
        "message array claiming 4 G elements holding one (Ping)",
        "dd ff ff ff ff 06",
        Invalid,
    );
    t.mp(
        "message array claiming 4 G elements (StreamItem)",
        "dd ff ff ff ff 02 80 a1 31 01",
        Invalid,
    );
    t.mp(
        "message array claiming more elements than present (Completion)",
        "96 03 80 a1 31 02",
        Invalid,
    );
    t.mp(
        "trailing bytes after the message array",
        "91 06 c1",
        Invalid,
    );

    // ---- MessagePack: truncation at every cut point of valid messages --------------------------
    for (name, body) in valid_messagepack_messages() {
        let whole = framed(&body);
        // The frame cut short: the decoder has to wait, so a whole-buffer parse is incomplete.
        for cut in 1..whole.len() {
            let prefix_len = whole.len() - body.len();
            let expect = if cut < prefix_len {
                BadLengthPrefix
            } else {
                IncompleteFrame
            };
            t.row(
                format!(
                    "msgpack truncated frame: {name} cut at {cut}/{}",
                    whole.len()
                ),
                MessagePack,
                whole[..cut].to_vec(),
                expect,
            );
        }
        // The body cut short but framed as if it were whole: the body parser must notice.
        for cut in 0..body.len() {
            t.row(
                format!("msgpack truncated body: {name} cut at {cut}/{}", body.len()),
                MessagePack,
                framed(&body[..cut]),
                Invalid,
            );
        }
    }

    t.0
}

/// Rows that showed bugs in the protocol layer; they run in the regression test below.
fn bug_rows() -> Vec<Row> {
    let mut t = Table(Vec::new());
    t.json(
        "invalid UTF-8 in an unknown property",
        b"{\"type\":6,\"extra\":\"\xfe\xfe\"}",
        Expect::Invalid,
    );
    t.0
}

/// Lengths whose arithmetic overflows a 32-bit `usize` (wasm32, i686): `2 × entries` of a
/// map32 header and `length + 1` of an ext32 header, in `Reader::skip_value`/`skip_scalar`.
/// On 64-bit targets they are ordinary rows.
fn length_overflow_rows() -> Vec<Row> {
    let mut t = Table(Vec::new());
    t.mp(
        "map32 argument claiming 4 G",
        "95 01 80 c0 a1 61 91 df ff ff ff ff 00",
        Expect::Text(INVOCATION),
    );
    t.mp(
        "ext32 argument claiming 4 G",
        "95 01 80 c0 a1 61 91 c9 ff ff ff ff 01 00",
        Expect::Text(INVOCATION),
    );
    t.mp(
        "map32 item claiming 2^31 entries",
        "94 02 80 a1 31 df 80 00 00 00",
        Expect::Text(STREAM_ITEM),
    );
    t.mp(
        "map32 argument claiming 2^31 entries",
        "95 01 80 c0 a1 61 91 df 80 00 00 00",
        Expect::Text(INVOCATION),
    );
    t.mp(
        "ext32 item claiming 2^32 - 1 bytes",
        "94 02 80 a1 31 c9 ff ff ff ff 01",
        Expect::Text(STREAM_ITEM),
    );
    t.0
}

// ---------------------------------------------------------------------------------------------
// Running a row.

fn payloads(message: &HubMessage) -> Vec<&Payload> {
    match message {
        HubMessage::Invocation(m) => m.arguments.iter().collect(),
        HubMessage::StreamInvocation(m) => m.arguments.iter().collect(),
        HubMessage::StreamItem(m) => vec![&m.item],
        HubMessage::Completion(m) => match &m.outcome {
            CompletionOutcome::Result(p) => vec![p],
            _ => vec![],
        },
        _ => vec![],
    }
}

fn protocol(decoder: Decoder) -> HubProtocol {
    match decoder {
        Decoder::Json => HubProtocol::Json,
        Decoder::MessagePack => HubProtocol::MessagePack,
        Decoder::Handshake | Decoder::Negotiate => unreachable!("not a hub protocol"),
    }
}

/// What a decoder made of the input: an error, a handshake parser still waiting for its
/// separator, or messages and what `to_value` said about their payloads.
enum Outcome {
    Error(ProtocolError),
    NeedsMore,
    Decoded {
        messages: usize,
        value_errors: usize,
    },
}

fn decode_whole(row: &Row) -> Outcome {
    match row.decoder {
        Decoder::Handshake => match parse_handshake_response(&row.input, row.max) {
            Err(e) => Outcome::Error(e),
            Ok(None) => Outcome::NeedsMore,
            Ok(Some(_)) => Outcome::Decoded {
                messages: 1,
                value_errors: 0,
            },
        },
        Decoder::Negotiate => match parse_negotiate_response(&row.input) {
            Err(e) => Outcome::Error(e),
            Ok(_) => Outcome::Decoded {
                messages: 1,
                value_errors: 0,
            },
        },
        Decoder::Json | Decoder::MessagePack => {
            match protocol(row.decoder).parse_messages(&row.input, row.max) {
                Err(e) => Outcome::Error(e),
                Ok(messages) => Outcome::Decoded {
                    messages: messages.len(),
                    value_errors: messages
                        .iter()
                        .flat_map(payloads)
                        .filter(|p| p.to_value().is_err())
                        .count(),
                },
            }
        }
    }
}

/// The same bytes pushed one at a time into the incremental hub decoder; for the handshake,
/// every prefix before the first separator must leave the parser waiting (or over the limit).
fn decode_bytewise(row: &Row) -> Option<Outcome> {
    match row.decoder {
        Decoder::Negotiate => None,
        Decoder::Handshake => {
            let first_separator = row.input.iter().position(|&b| b == 0x1e);
            let end = first_separator.unwrap_or(row.input.len());
            // Every prefix of short inputs; 512 evenly spaced ones of long inputs.
            for cut in (0..end).step_by((end / 512).max(1)) {
                match parse_handshake_response(&row.input[..cut], row.max) {
                    Ok(None) => {}
                    Err(e @ ProtocolError::MessageTooLarge { .. }) => {
                        return Some(Outcome::Error(e))
                    }
                    Err(e) => {
                        return Some(Outcome::Error(ProtocolError::Encode(format!(
                            "a prefix of {cut} bytes without a separator failed: {e}"
                        ))))
                    }
                    Ok(Some(_)) => {
                        return Some(Outcome::Error(ProtocolError::Encode(format!(
                            "a prefix of {cut} bytes without a separator was a response"
                        ))))
                    }
                }
            }
            Some(decode_whole(row))
        }
        Decoder::Json | Decoder::MessagePack => {
            let mut decoder = protocol(row.decoder).decoder(row.max);
            let mut messages = 0;
            let mut value_errors = 0;
            for byte in &row.input {
                decoder.push(std::slice::from_ref(byte));
                loop {
                    match decoder.next_message() {
                        Err(e) => return Some(Outcome::Error(e)),
                        Ok(None) => break,
                        Ok(Some(m)) => {
                            messages += 1;
                            value_errors += payloads(&m)
                                .iter()
                                .filter(|p| p.to_value().is_err())
                                .count();
                        }
                    }
                }
            }
            Some(match decoder.finish() {
                Err(e) => Outcome::Error(e),
                Ok(()) => Outcome::Decoded {
                    messages,
                    value_errors,
                },
            })
        }
    }
}

/// Checks an outcome; `exact_size` is false for byte-wise decoding, which gives up as soon
/// as the buffered bytes pass the maximum rather than at the size the whole input has.
fn check(expect: &Expect, outcome: &Outcome, exact_size: bool) -> Result<(), String> {
    use ProtocolError as E;
    let err = match (outcome, expect) {
        (Outcome::NeedsMore, Expect::NeedsMore) => return Ok(()),
        (Outcome::NeedsMore, _) => return Err("the parser is still waiting for bytes".into()),
        (
            Outcome::Decoded {
                messages,
                value_errors,
            },
            Expect::LazyValueError,
        ) => {
            return if *value_errors > 0 {
                Ok(())
            } else {
                Err(format!(
                    "decoded {messages} message(s) and every payload converted to a value"
                ))
            }
        }
        (Outcome::Decoded { messages, .. }, _) => {
            return Err(format!("decoded {messages} message(s) instead of failing"))
        }
        (Outcome::Error(e), _) => e,
    };
    let text = err.to_string();
    let ok = match expect {
        Expect::Text(want) => text == *want,
        Expect::Prefix(want) => text.starts_with(want),
        Expect::Incomplete => *err == E::Incomplete && text == "Message is incomplete.",
        Expect::IncompleteFrame => *err == E::IncompleteFrame && text == "Incomplete message.",
        Expect::BadLengthPrefix => {
            *err == E::BadLengthPrefix && text == "Cannot read message size."
        }
        Expect::LengthPrefixTooLarge => *err == E::LengthPrefixTooLarge && text == TOO_BIG,
        Expect::TooLarge(size) => {
            matches!(err, E::MessageTooLarge { size: s, .. } if s == size || !exact_size)
        }
        Expect::Invalid | Expect::LazyValueError => matches!(err, E::InvalidMessage(_)),
        Expect::HandshakeErr(want) => {
            matches!(err, E::InvalidHandshake(_)) && want.is_none_or(|w| text == w)
        }
        Expect::NegotiateErr(want) => {
            matches!(err, E::InvalidNegotiate(_))
                && text.starts_with(NEGOTIATE_PREFIX)
                && want.is_none_or(|w| text.ends_with(w))
        }
        Expect::NeedsMore => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {expect:?}, got {err:?} ({text})"))
    }
}

/// Heap bytes a row may have live at once: a fixed allowance plus a small multiple of the
/// input, never anything in proportion to a length the input claims.
fn allocation_budget(row: &Row) -> usize {
    (256 << 10) + 64 * row.input.len()
}

fn run_row(row: &Row) -> Result<(), String> {
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let (whole, peak) = measure(|| decode_whole(row));
        check(&row.expect, &whole, true).map_err(|e| format!("whole buffer: {e}"))?;
        if peak > allocation_budget(row) {
            return Err(format!(
                "allocated {peak} bytes at once for {} input bytes",
                row.input.len()
            ));
        }
        // Byte-wise decoding of the large rows is slow in debug builds and adds nothing.
        if row.input.len() <= 64 << 10 {
            if let Some(bytewise) = decode_bytewise(row) {
                check(&row.expect, &bytewise, false).map_err(|e| format!("byte by byte: {e}"))?;
                let same = match (&whole, &bytewise) {
                    (Outcome::Error(a), Outcome::Error(b)) => discriminant(a) == discriminant(b),
                    (Outcome::Decoded { .. }, Outcome::Decoded { .. }) => true,
                    (Outcome::NeedsMore, Outcome::NeedsMore) => true,
                    _ => false,
                };
                if !same {
                    return Err("byte-by-byte decoding disagrees with whole-buffer decoding".into());
                }
            }
        }
        Ok(())
    }));
    let elapsed = started.elapsed();
    match result {
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("<non-string panic>")
        )),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) if elapsed > Duration::from_secs(60) => Err(format!("took {elapsed:?}")),
        Ok(Ok(())) => Ok(()),
    }
}

fn run_table(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| {
            {
                if std::env::var_os("MALFORMED_TRACE").is_some() {
                    eprintln!("ROW {}", row.name);
                }
                run_row(row)
            }
            .err()
            .map(|e| format!("{} [{}]: {e}", row.name, hex_preview(&row.input)))
        })
        .collect()
}

fn hex_preview(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(24)];
    let more = if bytes.len() > shown.len() {
        " …"
    } else {
        ""
    };
    format!("{}{more}", hex::encode(shown))
}

fn assert_all_pass(rows: &[Row]) {
    let failures = run_table(rows);
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Tests.

#[test]
fn the_table_has_at_least_forty_hand_written_rows() {
    let rows = table();
    let generated = rows
        .iter()
        .filter(|r| r.name.starts_with("msgpack truncated"))
        .count();
    assert!(
        rows.len() - generated >= 40,
        "{} rows",
        rows.len() - generated
    );
    assert!(generated > 100, "{generated} truncation rows");
    let per_decoder = |d: fn(&Decoder) -> bool| rows.iter().filter(|r| d(&r.decoder)).count();
    eprintln!(
        "{} rows: {} written by hand, {generated} generated truncations; JSON {}, MessagePack {}, \
         handshake {}, negotiate {}",
        rows.len(),
        rows.len() - generated,
        per_decoder(|d| matches!(d, Decoder::Json)),
        per_decoder(|d| matches!(d, Decoder::MessagePack)),
        per_decoder(|d| matches!(d, Decoder::Handshake)),
        per_decoder(|d| matches!(d, Decoder::Negotiate)),
    );
}

#[test]
fn every_malformed_input_is_an_error() {
    assert_all_pass(&table());
}

/// The stack of the small-stack run: 256 KiB in optimized builds. Unoptimized builds get
/// 512 KiB, because serde_json's bounded recursion (128 levels) over nested JSON objects costs
/// about 3 KiB of stack per level without optimization (about 0.4 KiB with it); unbounded
/// recursion over the 10 000-level rows would still need tens of MiB.
const SMALL_STACK: usize = if cfg!(debug_assertions) {
    512 << 10
} else {
    256 << 10
};

#[test]
fn every_malformed_input_is_an_error_on_a_small_stack() {
    let rows = table();
    let failures = std::thread::Builder::new()
        .name("small-stack".into())
        .stack_size(SMALL_STACK)
        .spawn(move || run_table(&rows))
        .expect("spawn a thread")
        .join()
        .expect("the small-stack thread must not die");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deep_nesting_in_an_ignored_property_does_not_overflow_the_stack() {
    // Valid JSON, so either outcome is fine; it must simply come back.
    let record = format!("{{\"type\":6,\"x\":{}}}\x1e", nested_json_arrays(100_000));
    let run = move || {
        let _ = HubProtocol::Json.parse_messages(record.as_bytes(), usize::MAX);
    };
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn absurd_claims_allocate_nothing_of_the_claimed_size() {
    // A 2 GB length prefix and 4 G-element containers in a tiny body, with no maximum at all.
    for input in [
        h("ff ff ff ff 07 91 06 91 06 06"),
        framed(&h("95 01 80 c0 a1 61 dd ff ff ff ff 01")),
        framed(&h("94 02 df ff ff ff ff a1 31 01")),
        framed(&h("94 02 80 a1 31 c6 ff ff ff ff")),
    ] {
        let (result, peak) =
            measure(|| HubProtocol::MessagePack.parse_messages(&input, usize::MAX));
        assert!(result.is_err());
        assert!(peak < 64 << 10, "{peak} bytes for {}", hex::encode(&input));
    }
}

/// serde_json skips unknown string values without validating them; the decoder checks the
/// whole record first (a regression test).
#[test]
fn invalid_utf8_in_an_ignored_json_property_is_refused() {
    assert_all_pass(&bug_rows());
}

/// On 32-bit targets (wasm32) lengths near 2^32 must not overflow `usize` arithmetic.
#[test]
fn length_arithmetic_does_not_overflow() {
    assert_all_pass(&length_overflow_rows());
}

#[test]
fn nested_container_claims_do_not_multiply_allocation() {
    // 127 nested array32 headers, each claiming as many elements as bytes remain, then nils.
    let input_len = 64 << 10;
    let depth = 127;
    let mut bytes = Vec::with_capacity(input_len);
    for level in 0..depth {
        let remaining = (input_len - 5 * (level + 1)) as u32;
        bytes.push(0xdd);
        bytes.extend_from_slice(&remaining.to_be_bytes());
    }
    bytes.resize(input_len, 0xc0);
    let (result, peak) = measure(|| hublink_proto::msgpack::read_value(&bytes));
    assert!(result.is_err());
    assert!(
        peak <= 64 * input_len,
        "read_value of {input_len} bytes had {peak} bytes live at once"
    );
}
