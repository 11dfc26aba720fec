-- A session keeps the SHA-256 digest of the key that opened it (never the key), so a
-- key removed from API_KEYS ends its sessions at their next request, and a key's
-- narrowed accounts apply at once. Sessions from before cannot be checked: they end
-- here, and their viewers log in again.
DELETE FROM dashboard_sessions;
ALTER TABLE dashboard_sessions ADD COLUMN key_digest bytea NOT NULL;
