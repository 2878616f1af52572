//! Arbitrary bytes as MessagePack hub protocol input: whole-buffer and incremental decoding agree,
//! every payload converts (or fails) cleanly, every decoded message re-encodes.
#![no_main]

use hublink_proto::HubProtocol;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hublink_fuzz::hub_messages(HubProtocol::MessagePack, data));
