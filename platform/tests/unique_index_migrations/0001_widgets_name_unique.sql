-- no-transaction
-- Fails while two widgets share a name, leaving an INVALID index behind.
CREATE UNIQUE INDEX CONCURRENTLY widgets_name_unique ON widgets (name);
