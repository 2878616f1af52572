//! Arbitrary bytes as the server's handshake answer (and, for the test server, as a client's
//! handshake request); what follows the answer goes to both hub protocol decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hublink_fuzz::handshake(data));
