//! The hostile-peer suite on the in-memory runtime: the server or channel under test runs on
//! `anygrpc::testing::MemoryRuntime`, the raw peer speaks through one end of a memory pipe.
//! Every case of the socket suites runs here too; `hostile/memory.rs` tells how the executor
//! and its virtual clock are driven, and why the pipes are smaller than the default.

mod hostile;

hostile::hostile_suite!(crate::hostile::memory::run);
