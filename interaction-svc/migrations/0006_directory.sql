-- The convenience-service directory, replicated from content-svc's CONTENT events
-- (events.v1.DirectoryServiceChanged), so the reply path answers from memory; and the
-- last question the directory answered for each citizen, to recognise their asking again.

CREATE TABLE directory_services (
    id            uuid PRIMARY KEY,
    -- The owning account (the event's header.account).
    owner_account text NOT NULL,
    -- Every account that shows it, the owner first; empty once deleted.
    accounts      text[] NOT NULL DEFAULT '{}',
    category      text NOT NULL,
    name          text NOT NULL,
    department    text NOT NULL DEFAULT '',
    description   text NOT NULL DEFAULT '',
    url           text NOT NULL DEFAULT '',
    keywords      text[] NOT NULL DEFAULT '{}',
    synonyms      text[] NOT NULL DEFAULT '{}',
    enabled       boolean NOT NULL,
    -- A deletion is kept as a tombstone, so an older event delivered late cannot
    -- bring the service back.
    deleted       boolean NOT NULL DEFAULT false,
    -- The version: the change's occurred_at and event id (UUIDv7, time-ordered); a
    -- change is applied only over an older version.
    changed_at    timestamptz NOT NULL,
    event_id      text NOT NULL
);

CREATE INDEX directory_services_accounts ON directory_services USING gin (accounts)
    WHERE enabled AND NOT deleted;

CREATE TABLE directory_answers (
    account     text NOT NULL,
    openid      text NOT NULL,
    -- The callback the directory answered.
    event_id    text NOT NULL,
    service_id  uuid NOT NULL,
    service_name text NOT NULL,
    msg_type    text NOT NULL,
    body        text NOT NULL,
    answered_at timestamptz NOT NULL,
    PRIMARY KEY (account, openid)
);
