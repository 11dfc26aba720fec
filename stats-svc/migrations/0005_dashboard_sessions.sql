-- Dashboard sessions: a cookie after a viewer's API key was accepted once. Stored
-- here, not in memory, so any replica knows them.
CREATE TABLE dashboard_sessions (
    id          text PRIMARY KEY,
    department  text NOT NULL,
    -- The accounts the key reaches; NULL for every account.
    accounts    text[],
    expires_at  timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);
