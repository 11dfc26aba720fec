-- A held answer whose flush met a transient WeChat failure (busy, rate limit,
-- unreachable) while the citizen's window was open is retried by the sweeper
-- (`jobs::held_retry`) at `retry_at`, backing off with `retries`; NULL: it waits
-- for the citizen's next message (held outside the window, or refused). Nullable
-- and a constant default: the previous release keeps running during a rollout.
ALTER TABLE ticket_messages ADD COLUMN retry_at timestamptz;
ALTER TABLE ticket_messages ADD COLUMN retries integer NOT NULL DEFAULT 0;
CREATE INDEX ticket_messages_held_retry ON ticket_messages (retry_at)
    WHERE delivery = 'held' AND retry_at IS NOT NULL;
