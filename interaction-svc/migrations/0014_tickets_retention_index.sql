-- The closed tickets whose citizen data is still kept, oldest closing first: what the
-- sweeper's retention pass looks for every SWEEP_INTERVAL on every replica (a scan of
-- every ticket otherwise). Plain CREATE INDEX, not CONCURRENTLY, for the reason
-- stats-svc's 0012 gives (replicas waiting in sqlx's advisory lock would deadlock a
-- concurrent build): it holds SHARE on tickets until this migration commits, so
-- reads go on and ticket writes wait for the build (seconds for a million tickets),
-- then the consumer resumes from its durable consumer; nothing is lost.
CREATE INDEX tickets_retention ON tickets (closed_at)
    WHERE state = 'closed' AND erased_at IS NULL;
