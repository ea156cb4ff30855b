//! `message_decode`: see `anygrpc_core::fuzzing::message_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anygrpc_core::fuzzing::message_decode(data));
