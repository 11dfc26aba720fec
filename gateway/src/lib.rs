//! The WeChat callback endpoint: verifies and decrypts callbacks, makes each one
//! durable on JetStream (`WECHAT_INBOUND`) before answering, and answers with a
//! passive reply within WeChat's 5-second deadline: from a copy of the reply rules
//! when no citizen's state can change the answer (`edge`), else asked of
//! interaction-svc. Stateless apart from caches; scale it out.
#![forbid(unsafe_code)]

pub mod batch;
pub mod config;
pub mod edge;
pub mod event;
pub mod http;
pub mod log_limit;
pub mod missed;
pub mod publish;
pub mod replay;
pub mod reply;
pub mod startup;

pub use config::{Config, DEMO_ACCOUNT};
pub use startup::Application;
