//! The core's test harnesses: the two-peer [`Pair`] (from `anygrpc_core::testing`, feature
//! `testing`) and a raw peer that writes frames by hand.
#![allow(dead_code, unreachable_pub)]

pub mod raw;
pub mod wire;

pub use anygrpc_core::testing::*;
