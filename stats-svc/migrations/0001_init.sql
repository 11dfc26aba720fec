-- Events this service has applied: a redelivered event finds its id here and changes nothing.
CREATE TABLE processed_events (
    event_id     text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Per-account counts of WECHAT_INBOUND, updated in the same transaction that
-- records the event in processed_events.
CREATE TABLE account_inbound (
    account         text PRIMARY KEY,
    messages        bigint NOT NULL DEFAULT 0 CHECK (messages >= 0),
    events          bigint NOT NULL DEFAULT 0 CHECK (events >= 0),
    subscribes      bigint NOT NULL DEFAULT 0 CHECK (subscribes >= 0),
    unsubscribes    bigint NOT NULL DEFAULT 0 CHECK (unsubscribes >= 0),
    last_inbound_at timestamptz
);
