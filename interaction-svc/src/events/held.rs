//! The held-answer sender the consumer calls: the customer-service deliverer.

use super::inbound::HeldAnswers;
use crate::delivery::{Deliverer, DeliveryError};

impl HeldAnswers for Deliverer {
    type Error = DeliveryError;
    async fn flush(&self, account: &str, openid: &str) -> Result<usize, Self::Error> {
        self.flush_held(account, openid).await
    }
}
