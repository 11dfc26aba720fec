//! `wechat-sim` plays WeChat on loopback: a mock of WeChat's HTTP API that records
//! every call, and a citizen traffic generator that sends signed (and encrypted)
//! callbacks to a gateway.
#![forbid(unsafe_code)]

pub mod api_server;
pub mod traffic;
