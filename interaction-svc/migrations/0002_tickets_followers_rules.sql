-- Followers of each account, and what the 48-hour customer-service window needs.
CREATE TABLE followers (
    account             text NOT NULL,
    openid              text NOT NULL,
    subscribed          boolean NOT NULL DEFAULT false,
    subscribed_at       timestamptz,
    unsubscribed_at     timestamptz,
    qr_scene            text NOT NULL DEFAULT '',
    -- The last message, click or follow: the customer-service window starts here.
    last_interaction_at timestamptz,
    latitude            double precision,
    longitude           double precision,
    location_precision  double precision,
    location_at         timestamptz,
    PRIMARY KEY (account, openid)
);

CREATE TABLE follower_tags (
    account text NOT NULL,
    openid  text NOT NULL,
    tag     text NOT NULL,
    PRIMARY KEY (account, openid, tag),
    FOREIGN KEY (account, openid) REFERENCES followers (account, openid) ON DELETE CASCADE
);
CREATE INDEX follower_tags_by_tag ON follower_tags (account, tag);

ALTER TABLE tickets
    ADD COLUMN assignee            text NOT NULL DEFAULT '',
    -- An answer is held until the citizen writes again (outside the 48-hour window).
    ADD COLUMN awaiting_citizen    boolean NOT NULL DEFAULT false,
    ADD COLUMN rating              smallint CHECK (rating BETWEEN 1 AND 5),
    ADD COLUMN acknowledged_at     timestamptz,
    ADD COLUMN first_answered_at   timestamptz,
    ADD COLUMN closed_at           timestamptz,
    -- Set once each by the sweeper, so a deadline is escalated exactly once.
    ADD COLUMN acknowledge_overdue_at timestamptz,
    ADD COLUMN resolve_overdue_at  timestamptz,
    -- Set when the citizen was asked to rate; their next digit reply is the rating.
    ADD COLUMN rating_requested_at timestamptz;

-- A citizen has at most one ticket that is not closed per account: new messages join it.
CREATE UNIQUE INDEX tickets_one_active_per_citizen ON tickets (account, openid)
    WHERE state <> 'closed';
CREATE INDEX tickets_acknowledge_due ON tickets (acknowledge_due_at)
    WHERE state IN ('open', 'reopened') AND acknowledge_overdue_at IS NULL;
CREATE INDEX tickets_resolve_due ON tickets (resolve_due_at)
    WHERE state <> 'closed' AND resolve_overdue_at IS NULL;

-- The conversation of a ticket, both directions.
CREATE TABLE ticket_messages (
    id        uuid PRIMARY KEY,
    ticket_id uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    direction text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author    text NOT NULL,
    msg_type  text NOT NULL,
    body      text NOT NULL,
    at        timestamptz NOT NULL DEFAULT now(),
    delivery  text NOT NULL CHECK (delivery IN ('received', 'sent', 'held', 'failed'))
);
CREATE INDEX ticket_messages_thread ON ticket_messages (ticket_id, at, id);
CREATE INDEX ticket_messages_held ON ticket_messages (ticket_id) WHERE delivery = 'held';

-- Every state change: who, when, what.
CREATE TABLE ticket_transitions (
    id         bigserial PRIMARY KEY,
    ticket_id  uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    from_state text,
    to_state   text NOT NULL,
    actor      text NOT NULL,
    action     text NOT NULL,
    note       text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ticket_transitions_history ON ticket_transitions (ticket_id, id);

-- Auto-reply rules; cached in memory by every replica and refreshed on change.
CREATE TABLE reply_rules (
    id         uuid PRIMARY KEY,
    account    text NOT NULL,
    match_kind text NOT NULL
        CHECK (match_kind IN ('exact', 'contains', 'regex', 'menu_click', 'subscribe')),
    patterns   text[] NOT NULL DEFAULT '{}',
    priority   integer NOT NULL DEFAULT 0,
    reply_text text NOT NULL DEFAULT '',
    -- [{"title", "description", "pic_url", "url"}] for a news reply.
    reply_news jsonb NOT NULL DEFAULT '[]',
    resolves   boolean NOT NULL DEFAULT false,
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reply_rules_account ON reply_rules (account);

-- Which department gets a ticket; empty keywords = the account's default department.
CREATE TABLE routing_rules (
    id         uuid PRIMARY KEY,
    account    text NOT NULL,
    keywords   text[] NOT NULL DEFAULT '{}',
    category   text NOT NULL DEFAULT '',
    department text NOT NULL,
    priority   integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX routing_rules_account ON routing_rules (account);
