-- no-transaction
-- Waits for every transaction older than the build; blocks no reads or writes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS widgets_by_name ON widgets (name);
