-- processed_events takes the shape of platform::outbox::SCHEMA, and the outbox that
-- will carry this service's STATS events (inspection alarms) is added as it says.
ALTER TABLE processed_events ALTER COLUMN processed_at SET DEFAULT clock_timestamp();

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
