//! The held-answer sender the consumer calls: the customer-service deliverer.

use super::inbound::HeldAnswers;
use crate::delivery::{Deliverer, DeliveryError};
use platform::ids::{AccountId, OpenId};

impl HeldAnswers for Deliverer {
    type Error = DeliveryError;
    async fn flush(&self, account: &AccountId, openid: &OpenId) -> Result<usize, Self::Error> {
        self.flush_held(account, openid).await
    }
}
