-- The decided replies of one citizen: what EraseCitizen deletes inside its
-- transaction (store::retention), which read every row of a day of callbacks
-- otherwise. Each inbound callback writes a row, so the index costs one more entry per
-- callback, removed with the row by the daily prune. Plain CREATE INDEX, in a
-- migration of its own, for the reasons 0014 gives: the inbound consumer's writes of
-- decided replies wait for the build (seconds for a day of callbacks), reads go on.
CREATE INDEX decided_replies_citizen ON decided_replies (account, openid);
