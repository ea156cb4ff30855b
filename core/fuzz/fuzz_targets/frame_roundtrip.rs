//! `frame_roundtrip`: see `anygrpc_core::fuzzing::frame_roundtrip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anygrpc_core::fuzzing::frame_roundtrip(data));
