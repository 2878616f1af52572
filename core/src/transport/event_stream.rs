//! A `text/event-stream` parser (the HTML standard's "Server-sent events" interpretation), in
//! linear time and bounded memory, for the Server-Sent Events transport.
//!
//! - Lines end with CR, LF or CRLF. An event ended by a bare CR is delivered at once; an LF
//!   at the start of the next chunk after a CR is the rest of that CRLF, not an empty line.
//! - Invalid UTF-8 is decoded as U+FFFD and parsing goes on (the standard decodes the whole
//!   stream that way; CR, LF and `:` are ASCII, so decoding each line alone is the same).
//! - One UTF-8 byte order mark at the very start of the stream is dropped, as the standard's
//!   UTF-8 decode does (the first field name would otherwise not match).
//! - Only what is needed is kept: the unfinished line and the current event's data. Both are
//!   bounded by `limit`: the event fails as soon as it grows past it, before it ends.
//! - Only `data` and `event` fields matter here (`id` and `retry` are for reconnecting
//!   `EventSource`s, which this transport is not).

use bytes::Bytes;

/// One dispatched event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// `message` unless an `event:` field named another type.
    pub kind: String,
    /// The data lines joined with LF, lossily decoded.
    pub data: Bytes,
}

/// An event (or a line) larger than the limit: `size` bytes so far.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge {
    pub size: usize,
}

/// Parses an event stream fed in chunks.
#[derive(Debug)]
pub(crate) struct EventStreamParser {
    /// The bytes of a line whose end has not arrived yet.
    line: Vec<u8>,
    /// The current event's data (its lines, each followed by LF).
    data: String,
    /// The current event's type, if an `event:` field set one.
    kind: Option<String>,
    /// The last chunk ended with CR: an LF first in the next one belongs to it.
    after_cr: bool,
    /// At the stream's start: how many bytes of a byte order mark arrived so far (they are
    /// the mark's, so nothing is held for them); `None` once the start is past.
    mark_seen: Option<usize>,
    limit: usize,
}

const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

impl EventStreamParser {
    /// A parser failing events (or lines) above `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        EventStreamParser {
            line: Vec::new(),
            data: String::new(),
            kind: None,
            after_cr: false,
            mark_seen: Some(0),
            limit,
        }
    }

    /// Parses `chunk`, passing every event it completes to `on_event`.
    pub(crate) fn feed(
        &mut self,
        mut chunk: &[u8],
        mut on_event: impl FnMut(Event),
    ) -> Result<(), TooLarge> {
        if let Some(seen) = self.mark_seen {
            let matching = chunk
                .iter()
                .zip(&BYTE_ORDER_MARK[seen..])
                .take_while(|(got, want)| got == want)
                .count();
            if seen + matching == BYTE_ORDER_MARK.len() {
                self.mark_seen = None;
                chunk = &chunk[matching..];
            } else if matching == chunk.len() {
                self.mark_seen = Some(seen + matching);
                return Ok(());
            } else {
                // No mark: the bytes that looked like one begin the stream.
                self.mark_seen = None;
                self.feed_lines(&BYTE_ORDER_MARK[..seen], &mut on_event)?;
            }
        }
        self.feed_lines(chunk, &mut on_event)
    }

    fn feed_lines(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut impl FnMut(Event),
    ) -> Result<(), TooLarge> {
        if chunk.is_empty() {
            // An empty chunk between a CR and its LF must not end the wait for the LF.
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|b| matches!(b, b'\r' | b'\n')) {
            let ending = chunk[end];
            if self.line.is_empty() {
                self.check(end)?;
                self.process_line(&chunk[..end], on_event)?;
            } else {
                self.check(self.line.len() + end)?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&chunk[..end]);
                self.process_line(&line, on_event)?;
                line.clear();
                self.line = line;
            }
            chunk = &chunk[end + 1..];
            if ending == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.check(self.line.len() + chunk.len())?;
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    /// The bytes held: the unfinished line and the current event's data (for the fuzz
    /// target, which checks that they stay within the limit).
    #[cfg(fuzzing)]
    pub(crate) fn buffered(&self) -> usize {
        self.line.len() + self.data.len()
    }

    /// Whether a line of `line` bytes, added to the event so far, stays within the limit.
    fn check(&self, line: usize) -> Result<(), TooLarge> {
        let size = self.data.len() + line;
        if size > self.limit {
            return Err(TooLarge { size });
        }
        Ok(())
    }

    fn process_line(
        &mut self,
        line: &[u8],
        on_event: &mut impl FnMut(Event),
    ) -> Result<(), TooLarge> {
        if line.is_empty() {
            self.dispatch(on_event);
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &line[line.len()..]),
        };
        match field {
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.check(0)?;
            }
            b"event" => self.kind = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(Event)) {
        let kind = self.kind.take();
        if self.data.is_empty() {
            return;
        }
        self.data.pop();
        let data = std::mem::take(&mut self.data);
        on_event(Event {
            kind: kind
                .filter(|kind| !kind.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data: Bytes::from(data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]], limit: usize) -> Result<Vec<(String, String)>, TooLarge> {
        let mut parser = EventStreamParser::new(limit);
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |event| {
                events.push((event.kind, String::from_utf8(event.data.to_vec()).unwrap()))
            })?;
        }
        Ok(events)
    }

    fn message(data: &str) -> (String, String) {
        ("message".to_owned(), data.to_owned())
    }

    #[test]
    fn every_line_end_and_every_split_gives_the_same_events() {
        let stream = "data: a\n\n: comment\ndata:b\r\ndata:  c\r\n\r\nevent: other\ndata: x\n\ndata\n\ndata: d\r\r";
        let expected = vec![
            message("a"),
            message("b\n c"),
            ("other".to_owned(), "x".to_owned()),
            message(""),
            message("d"),
        ];
        assert_eq!(parse_chunks(&[stream.as_bytes()], 1024).unwrap(), expected);
        let bytes = stream.as_bytes();
        for cut in 0..=bytes.len() {
            let got = parse_chunks(&[&bytes[..cut], &bytes[cut..]], 1024).unwrap();
            assert_eq!(got, expected, "cut at {cut}");
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&one_by_one, 1024).unwrap(), expected);
    }

    #[test]
    fn an_event_ended_by_a_bare_cr_is_delivered_at_once() {
        let mut parser = EventStreamParser::new(1024);
        let mut events = Vec::new();
        parser
            .feed(b"data: now\r\r", |e| events.push(e.data))
            .unwrap();
        assert_eq!(events, vec![Bytes::from_static(b"now")]);
        // The LF of a CRLF split across chunks is not an empty line of its own.
        let mut events = Vec::new();
        parser.feed(b"data: a\r", |e| events.push(e.data)).unwrap();
        parser
            .feed(b"\ndata: b\r\n", |e| events.push(e.data))
            .unwrap();
        assert!(events.is_empty(), "{events:?}");
        parser.feed(b"\r\n", |e| events.push(e.data)).unwrap();
        assert_eq!(events, vec![Bytes::from_static(b"a\nb")]);
    }

    /// Found by the `sse_event_stream` fuzz target: an empty chunk between a CR and its LF
    /// made the LF an empty line of its own, dispatching the event in two halves.
    #[test]
    fn an_empty_chunk_between_cr_and_lf_keeps_them_one_line_end() {
        let split = parse_chunks(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"], 1024).unwrap();
        assert_eq!(split, vec![message("a\nb")]);
    }

    #[test]
    fn one_byte_order_mark_at_the_start_is_dropped_in_any_split() {
        let stream = b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n";
        let expected = vec![
            message("a"),
            // Only the first mark is one: later, it is part of a field name.
        ];
        for cut in 0..=stream.len() {
            let got = parse_chunks(&[&stream[..cut], &stream[cut..]], 1024).unwrap();
            assert_eq!(got, expected, "cut at {cut}");
        }
        let one_by_one: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_chunks(&one_by_one, 1024).unwrap(), expected);
        // A stream that starts like a mark but is not one loses nothing.
        assert_eq!(
            parse_chunks(&[b"\xEF", b"\xBBdata: c\n\ndata: d\n\n"], 1024).unwrap(),
            vec![message("d")],
        );
        assert_eq!(
            parse_chunks(&[b"d", b"ata: e\n\n"], 1024).unwrap(),
            vec![message("e")]
        );
        assert_eq!(
            parse_chunks(&[b"\n", b"data: f\n\n"], 1024).unwrap(),
            vec![message("f")]
        );
        // Found by the `sse_event_stream` fuzz target: a mark's first byte was held as line
        // bytes, past a limit of 0.
        let mut parser = EventStreamParser::new(0);
        parser.feed(b"\xEF", |_| {}).unwrap();
        assert!(parser.line.is_empty() && parser.data.is_empty());
    }

    #[test]
    fn invalid_utf8_becomes_u_fffd_and_later_events_still_arrive() {
        let events = parse_chunks(
            &[b"data: a\xff\xfeb\n\n", b"data: \xe4\xbd\n\ndata: ok\n\n"],
            1024,
        )
        .unwrap();
        assert_eq!(
            events,
            vec![
                message("a\u{fffd}\u{fffd}b"),
                message("\u{fffd}"),
                message("ok")
            ]
        );
    }

    #[test]
    fn the_limit_is_enforced_while_the_event_is_read() {
        // One line without an end, in chunks: fails once it passes the limit.
        let mut parser = EventStreamParser::new(100);
        let chunk = [b'x'; 30];
        parser.feed(b"data: ", |_| {}).unwrap();
        let mut fed = 6;
        let error = loop {
            match parser.feed(&chunk, |_| {}) {
                Ok(()) => fed += chunk.len(),
                Err(error) => break error,
            }
            assert!(fed <= 100);
        };
        assert!(error.size > 100 && error.size <= 130, "{error:?}");
        // Many data lines, each small: the event fails, not each line.
        let many = "data: 0123456789\n".repeat(10);
        assert!(parse_chunks(&[many.as_bytes()], 100).is_err());
        // Events within the limit pass, however many there are.
        let events = "data: 0123456789\n\n".repeat(1000);
        assert_eq!(parse_chunks(&[events.as_bytes()], 100).unwrap().len(), 1000);
    }

    #[test]
    fn memory_is_only_the_current_line_and_event() {
        let mut parser = EventStreamParser::new(1 << 20);
        for _ in 0..10_000 {
            parser
                .feed(b"data: 0123456789\n\n: ping\n", |_| {})
                .unwrap();
        }
        assert!(parser.line.capacity() < 1024 && parser.data.is_empty());
    }
}
