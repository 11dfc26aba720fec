-- no-transaction
-- Fails while two widgets share a name, leaving an INVALID index behind.
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS widgets_name_unique ON widgets (name);
