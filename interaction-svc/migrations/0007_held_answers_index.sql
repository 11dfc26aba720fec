-- The inbound consumer asks, once per batch, which of the batch's citizens have
-- answers held for them; few tickets ever are, so this index stays small.
CREATE INDEX tickets_awaiting_citizen ON tickets (account, openid) WHERE awaiting_citizen;
