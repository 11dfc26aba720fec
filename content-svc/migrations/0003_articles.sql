-- Articles, their versions, the review trail, sensitive-word overrides, the
-- lexicon and the mass-send ledger (issue 10).

CREATE TABLE articles (
    id             uuid PRIMARY KEY,
    account        text NOT NULL,
    department     text NOT NULL,
    -- The person who wrote it (department:person); never one of its reviewers.
    author_id      text NOT NULL,
    state          text NOT NULL,
    version        integer NOT NULL DEFAULT 1,
    -- Each submission opens a new review round; a rejection ends it.
    round          integer NOT NULL DEFAULT 0,
    title          text NOT NULL,
    author_name    text NOT NULL DEFAULT '',
    digest         text NOT NULL DEFAULT '',
    body           text NOT NULL,
    cover_media_id text NOT NULL DEFAULT '',
    source_url     text NOT NULL DEFAULT '',
    column_name    text NOT NULL DEFAULT '',
    open_comment   boolean NOT NULL DEFAULT false,
    only_fans_can_comment boolean NOT NULL DEFAULT false,
    -- The article this one corrects (a correction notice).
    correction_of  uuid REFERENCES articles (id),
    -- How it goes out: 'freepublish' or 'mass_send' (with an optional tag).
    channel        text NOT NULL DEFAULT 'freepublish',
    mass_tag_id    bigint,
    send_ignore_reprint boolean NOT NULL DEFAULT false,
    scheduled_for  timestamptz,
    -- Scheduler retries of a send that failed transiently.
    attempts       integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    -- WeChat's ids and the outcome.
    media_id       text,
    publish_id     text,
    mass_msg_id    text,
    msg_data_id    text,
    url            text,
    failure        text,
    published_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX articles_listing ON articles (account, state, updated_at DESC);
-- The scheduler's claim: due articles only.
CREATE INDEX articles_due ON articles (scheduled_for) WHERE state = 'scheduled';
CREATE UNIQUE INDEX articles_publish_id ON articles (publish_id) WHERE publish_id IS NOT NULL;
CREATE UNIQUE INDEX articles_mass_msg_id ON articles (mass_msg_id) WHERE mass_msg_id IS NOT NULL;

-- Every edit keeps the previous version.
CREATE TABLE article_versions (
    article_id  uuid NOT NULL REFERENCES articles (id),
    version     integer NOT NULL,
    title       text NOT NULL,
    author_name text NOT NULL,
    digest      text NOT NULL,
    body        text NOT NULL,
    edited_by   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, version)
);

-- The passed review stages of each round: one person per stage and per round.
CREATE TABLE article_reviews (
    article_id uuid NOT NULL REFERENCES articles (id),
    round      integer NOT NULL,
    stage      text NOT NULL,
    reviewer   text NOT NULL,
    version    integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, round, stage),
    UNIQUE (article_id, round, reviewer)
);

-- Every transition: who, with which role, when, the comment, the version.
CREATE TABLE article_audit (
    id          bigserial PRIMARY KEY,
    article_id  uuid NOT NULL REFERENCES articles (id),
    action      text NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    version     integer NOT NULL,
    stage       text,
    comment     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX article_audit_article ON article_audit (article_id, id);

-- A reviewer's override of one sensitive-word hit of one version, with the reason.
CREATE TABLE hit_overrides (
    article_id uuid NOT NULL REFERENCES articles (id),
    version    integer NOT NULL,
    hit_key    text NOT NULL,
    reviewer   text NOT NULL,
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, version, hit_key)
);

-- The install's lexicon (seeded from a file when empty) and the trail of its changes;
-- the trail's last id is the revision every replica compares to reload.
CREATE TABLE lexicon_entries (
    word       text PRIMARY KEY,
    category   text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE lexicon_audit (
    id         bigserial PRIMARY KEY,
    action     text NOT NULL,
    word       text NOT NULL,
    category   text NOT NULL,
    actor      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Mass sends made (or being made) per account, for the quota check before calling.
CREATE TABLE mass_send_ledger (
    article_id uuid PRIMARY KEY REFERENCES articles (id),
    account    text NOT NULL,
    sent_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mass_send_ledger_account ON mass_send_ledger (account, sent_at);
