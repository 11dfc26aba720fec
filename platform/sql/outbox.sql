-- The shared outbox and the processed-events guard (platform::outbox, platform::db::claim_event).
-- A service's migration includes this text verbatim; platform's tests apply it as is.

-- Events this service has applied: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    -- clock_timestamp(), not now(): the moment the event was applied, even inside a
    -- long batch transaction (the consumer benchmark reads it).
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Events to announce, written in the same transaction as the change they describe
-- and published by the relay with Nats-Msg-Id = event_id.
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
