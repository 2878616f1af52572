//! The Server-Sent Events parser: arbitrary bytes in chunks the fuzzer picks.

use arbitrary::Arbitrary;
use bytes::Bytes;
use hublink::fuzzing::EventStreamParser;

/// A `text/event-stream` body, the event size limit, and where the chunks end.
#[derive(Arbitrary, Debug)]
pub struct EventStreamInput<'a> {
    /// The largest event (or line), in bytes.
    pub limit: u16,
    /// Chunk ends, taken modulo the stream's length.
    pub cuts: Vec<u16>,
    /// The bytes.
    pub stream: &'a [u8],
}

type Events = Vec<(String, Bytes)>;

/// Feeds `chunks` to a parser limited to `limit`, checking the limit after every chunk.
fn parse(chunks: &[&[u8]], limit: usize) -> (Events, Option<usize>) {
    let mut parser = EventStreamParser::new(limit);
    let mut events = Vec::new();
    for chunk in chunks {
        let fed = parser.feed(chunk, |kind, data| {
            assert!(data.len() <= limit, "an event of {} bytes", data.len());
            events.push((kind, data));
        });
        if let Err(size) = fed {
            assert!(
                size > limit,
                "failed at {size} bytes, within the limit {limit}"
            );
            return (events, Some(size));
        }
        assert!(
            parser.buffered() <= limit,
            "holds {} bytes, limit {limit}",
            parser.buffered()
        );
    }
    (events, None)
}

/// The HTML standard's event stream interpretation, written plainly: one leading byte order
/// mark is dropped; lines end with CRLF, LF or CR; an unfinished last line and an unfinished
/// last event are dropped.
fn reference(stream: &[u8]) -> Events {
    let mut events = Vec::new();
    let mut data = String::new();
    let mut kind = String::new();
    let mut rest = stream.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(stream);
    while let Some(end) = rest.iter().position(|b| matches!(b, b'\r' | b'\n')) {
        let line = &rest[..end];
        let skip = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        if line.is_empty() {
            let event_kind = std::mem::take(&mut kind);
            if !data.is_empty() {
                data.pop();
                let event_kind = if event_kind.is_empty() {
                    "message".to_owned()
                } else {
                    event_kind
                };
                events.push((event_kind, Bytes::from(std::mem::take(&mut data))));
            }
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => (&line[..colon], &line[colon + 1..]),
            None => (line, &b""[..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match field {
            b"data" => {
                data.push_str(&String::from_utf8_lossy(value));
                data.push('\n');
            }
            b"event" => kind = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
    }
    events
}

/// Chunked and whole parsing agree with each other and with [`reference`]; the limit holds.
pub fn event_stream(input: &EventStreamInput) {
    let stream = input.stream;
    let limit = usize::from(input.limit);
    let chunks = crate::pieces(stream, &input.cuts);

    let (chunked, chunked_error) = parse(&chunks, limit);
    let (whole, whole_error) = parse(&[stream], limit);
    assert_eq!(chunked, whole, "chunks {chunks:?}");
    assert_eq!(chunked_error.is_some(), whole_error.is_some());

    let expected = reference(stream);
    assert!(
        expected.starts_with(&chunked),
        "parsed {chunked:?}, expected {expected:?}"
    );
    if chunked_error.is_none() {
        assert_eq!(chunked, expected);
    }
}
