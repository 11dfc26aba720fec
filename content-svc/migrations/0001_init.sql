-- Events this service has applied: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Events to announce on the CONTENT stream, written in the same transaction as
-- the change they describe and published by the relay.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    subject      text NOT NULL,
    payload      bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- The convenience-service directory (社保, 医保, 交通, …) of each account.
CREATE TABLE directory_entries (
    id          uuid PRIMARY KEY,
    account     text NOT NULL,
    -- snake_case ASCII, checked by the domain's CategoryCode as well.
    category    text NOT NULL
        CHECK (char_length(category) <= 64 AND category ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'),
    name        text NOT NULL,
    url         text NOT NULL,
    description text NOT NULL DEFAULT '',
    department  text NOT NULL,
    position    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Serves ListServices: one account, optionally one category, in display order.
CREATE INDEX directory_entries_listing ON directory_entries (account, category, position, name);
