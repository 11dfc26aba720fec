-- Daily counters per account in the office's time zone: `metric` names what is
-- counted (domain::rollup::Metric), `key` what it is broken down by (message type,
-- QR scene, menu key, department; '' for nothing).
CREATE TABLE daily_counts (
    account text   NOT NULL,
    day     date   NOT NULL,
    metric  text   NOT NULL,
    key     text   NOT NULL DEFAULT '',
    value   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account, day, metric, key)
);
CREATE INDEX daily_counts_by_day ON daily_counts (day, metric);

-- One row per ticket, the first time of each step: response times (median, p90) and
-- the share inside deadline are computed from these, whatever order events came in.
CREATE TABLE ticket_times (
    account            text NOT NULL,
    ticket_id          text NOT NULL,
    department         text NOT NULL DEFAULT '',
    -- The time of the change that set `department`, so an older event cannot undo a newer move.
    department_at      timestamptz,
    opened_at          timestamptz,
    acknowledged_at    timestamptz,
    answered_at        timestamptz,
    closed_at          timestamptz,
    acknowledge_due_at timestamptz,
    resolve_due_at     timestamptz,
    overdue_count      integer NOT NULL DEFAULT 0,
    rating             smallint,
    PRIMARY KEY (account, ticket_id)
);
CREATE INDEX ticket_times_opened ON ticket_times (account, opened_at);

-- Each article's figures as the monthly list counts them (the day-7 snapshot), from
-- the datacube or entered by hand (`entered_by` says who; likes and 在看 are not in
-- the API).
CREATE TABLE article_figures (
    account      text    NOT NULL,
    article_id   text    NOT NULL,
    title        text    NOT NULL DEFAULT '',
    published_on date    NOT NULL,
    headline     boolean NOT NULL DEFAULT false,
    reads        bigint  NOT NULL DEFAULT 0 CHECK (reads >= 0),
    zaikan       bigint  NOT NULL DEFAULT 0 CHECK (zaikan >= 0),
    likes        bigint  NOT NULL DEFAULT 0 CHECK (likes >= 0),
    shares       bigint  NOT NULL DEFAULT 0 CHECK (shares >= 0),
    entered_by   text    NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, article_id)
);
CREATE INDEX article_figures_published ON article_figures (published_on);

-- Inspection alarms raised (one per account, rule and subject per day at most); each
-- is announced on STATS through the outbox in the same transaction.
CREATE TABLE alarms (
    id        bigserial PRIMARY KEY,
    account   text NOT NULL,
    rule      text NOT NULL,
    subject   text NOT NULL DEFAULT '',
    day       date NOT NULL,
    detail    text NOT NULL,
    raised_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, rule, subject, day)
);
