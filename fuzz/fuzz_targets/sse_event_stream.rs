//! Arbitrary bytes as a `text/event-stream` body, in chunks the fuzzer picks: chunked and
//! whole parsing agree with each other and with a plain reading of the standard, and no event,
//! line or buffer passes the size limit.
#![no_main]

use hublink_fuzz::event_stream::{event_stream, EventStreamInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: EventStreamInput| event_stream(&input));
