//! The hub driver over an in-memory transport, fed with arbitrary transport messages (valid hub
//! messages mixed with garbage) and caller commands: it never panics, and it ends within a
//! bound once the transport closes or `stop()` is called, answering every call it took.
#![no_main]

use hublink_fuzz::driver::{driver, DriverInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: DriverInput| driver(&input));
