//! A connection's transport messages (valid hub messages, messages cut short and raw bytes,
//! in pieces), in both protocols, through the decoder the driver uses: each transport message
//! decoded whole and in pieces agree, and so does the whole stream.
#![no_main]

use hublink_fuzz::message_stream::{message_stream, MessageStreamInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: MessageStreamInput| message_stream(&input));
