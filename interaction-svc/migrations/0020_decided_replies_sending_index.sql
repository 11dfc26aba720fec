-- The missed replies being sent, by when they were taken: what the sweeper looks for
-- every SWEEP_INTERVAL on every replica to give up one a stopped replica left
-- `sending` (a scan of a day of callbacks' replies otherwise). A reply is `sending`
-- for the length of one customer-service call, so the index holds next to nothing.
-- Plain CREATE INDEX, in a migration of its own, for the reasons 0014 gives: the
-- inbound consumer's writes of decided replies wait for the build (seconds for a
-- day of callbacks), reads go on.
CREATE INDEX decided_replies_sending ON decided_replies (sending_since)
    WHERE delivery = 'sending';
