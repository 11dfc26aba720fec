//! The WeChat Official Account protocol: callback signatures, message crypto,
//! inbound XML, passive-reply XML, and the outbound API client with its shared
//! access-token cache. No service logic lives here.
#![forbid(unsafe_code)]
pub mod api;
pub mod crypto;
pub mod message;
pub mod reply;
pub mod signature;
pub mod token;
pub mod xml;
