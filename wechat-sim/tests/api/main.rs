//! Integration tests: the `wechat` API client and token cache against the in-process
//! mock, and the citizen traffic side (signer, reply check, retries, load, gateway).

mod client_calls;
mod faults;
mod gateway_e2e;
mod helpers;
mod media;
mod standin;
mod token_cache;
mod traffic_check;
mod traffic_delivery;
mod traffic_signer;
mod window;
