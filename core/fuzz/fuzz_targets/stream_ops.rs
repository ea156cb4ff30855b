//! `stream_ops`: see `anygrpc_core::fuzzing::stream_ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anygrpc_core::fuzzing::stream_ops(data));
