//! Integration tests: the `wechat` API client and token cache against the in-process mock.

mod client_calls;
mod faults;
mod helpers;
mod token_cache;
mod window;
