-- The passive reply each citizen's callback was decided to get, recorded when the
-- inbound consumer applies it, so a reply the gateway did not get in time
-- (events.v1.ReplyMissed) is sent through the customer-service API as decided then,
-- not decided again against a state the callback itself changed. `delivery` goes
-- decided -> sending -> sent | failed once, so a redelivered marker sends nothing
-- twice. The sweeper deletes rows after a day: a marker comes within seconds.
CREATE TABLE decided_replies (
    event_id      text PRIMARY KEY,
    account       text NOT NULL,
    openid        text NOT NULL,
    -- The encoded events.v1.PassiveReply.
    reply         bytea NOT NULL,
    decided_at    timestamptz NOT NULL DEFAULT now(),
    delivery      text NOT NULL DEFAULT 'decided'
                  CHECK (delivery IN ('decided', 'sending', 'sent', 'failed')),
    sending_since timestamptz
);
CREATE INDEX decided_replies_decided_at ON decided_replies (decided_at);
