-- no-transaction
-- The closed tickets whose citizen data is still kept, oldest closing first: what the
-- sweeper's retention pass looks for every SWEEP_INTERVAL on every replica (a scan of
-- every ticket otherwise). CONCURRENTLY, alone in its migration (platform/README.md,
-- "Writing a migration"): tickets grow without end, and a plain build would hold every
-- ticket write until it finished.
CREATE INDEX CONCURRENTLY tickets_retention ON tickets (closed_at)
    WHERE state = 'closed' AND erased_at IS NULL;
