//! `hpack_decode`: see `anygrpc_core::fuzzing::hpack_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anygrpc_core::fuzzing::hpack_decode(data));
