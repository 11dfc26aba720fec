//! A failed mass send of unknown outcome whose job WeChat later says failed (`message/mass/get`
//! answering `SEND_FAIL`, `wechat-sim`'s `end_next_mass_send_with`).
