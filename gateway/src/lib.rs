//! The WeChat callback endpoint: verifies and decrypts callbacks, makes each one
//! durable on JetStream (`WECHAT_INBOUND`) before answering, and asks interaction-svc
//! for a passive reply within WeChat's 5-second deadline. Stateless; scale it out.
#![forbid(unsafe_code)]

pub mod batch;
pub mod config;
pub mod event;
pub mod http;
pub mod publish;
pub mod replay;
pub mod reply;
pub mod startup;

pub use config::{Config, DEMO_ACCOUNT};
pub use startup::Application;
