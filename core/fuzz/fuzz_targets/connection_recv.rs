//! `connection_recv`: see `anygrpc_core::fuzzing::connection_recv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anygrpc_core::fuzzing::connection_recv(data));
