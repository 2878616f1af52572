//! Arbitrary bytes as the body of a negotiate answer, fed on through the redirect loop and the
//! transport selection.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hublink_fuzz::negotiate(data));
