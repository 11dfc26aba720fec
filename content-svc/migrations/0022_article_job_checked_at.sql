-- When a replica last asked WeChat about the article's job (freepublish/get, or
-- message/mass/get) because its job-finish callback had not come: the
-- reconciliation's lease. A replica takes an article whose job has been with WeChat
-- longer than PUBLISH_RECONCILE_AFTER and was not asked about within that time,
-- stamps it here in the transaction that takes it (FOR UPDATE SKIP LOCKED), and asks
-- WeChat after the commit; another replica skips it until the stamp is that old.
-- NULL: never asked. The previous release neither reads nor writes it (nullable, no
-- default to rewrite the table).
ALTER TABLE articles ADD COLUMN job_checked_at timestamptz;
