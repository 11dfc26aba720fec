-- The caller's id for a rule it creates (CreateReplyRuleRequest.request_id,
-- CreateRoutingRuleRequest.request_id): a retry of a create whose caller gave up (its
-- deadline, a proxy's timeout) finds the rule the first call created instead of
-- creating a second one. Written in the transaction that creates the rule, so of two
-- concurrent retries one creates and the other waits on the key and finds its rule.
-- Kept apart from the rules: a rule deleted or updated since still answers its retry
-- for what it is, and the key outlives it. A new table: the previous release never
-- reads it, and creates without an id as before.
CREATE TABLE rule_requests (
    account    text NOT NULL,
    request_id text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('reply', 'routing')),
    -- The request as received (protobuf, its request_id cleared): the same id with
    -- another request is refused rather than answered with a rule it did not ask for.
    body       bytea NOT NULL,
    rule_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, request_id)
);
