-- Events this service has applied: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Events to announce on the INTERACTION stream, written in the same transaction as
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

-- Citizen tickets owned by a department, with their deadlines.
CREATE TABLE tickets (
    id                 uuid PRIMARY KEY,
    account            text NOT NULL,
    department         text NOT NULL,
    openid             text NOT NULL,
    state              text NOT NULL
        CHECK (state IN ('open', 'acknowledged', 'answered', 'closed', 'reopened')),
    category           text NOT NULL DEFAULT '',
    summary            text NOT NULL DEFAULT '',
    opened_at          timestamptz NOT NULL DEFAULT now(),
    acknowledge_due_at timestamptz NOT NULL,
    resolve_due_at     timestamptz NOT NULL,
    overdue            boolean NOT NULL DEFAULT false
);
CREATE INDEX tickets_department_queue ON tickets (department, opened_at DESC, id DESC);
CREATE INDEX tickets_queue ON tickets (opened_at DESC, id DESC);
