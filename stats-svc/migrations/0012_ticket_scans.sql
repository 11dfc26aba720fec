-- Statements that scanned all of ticket_times (3M rows after a few years: 0.7-8 s each,
-- hourly on every replica and on dashboard loads) get an index or a small table.
--
-- Plain CREATE INDEX, not CONCURRENTLY: sqlx supports `-- no-transaction` migrations, but
-- replicas starting together wait in `SELECT pg_advisory_lock(...)` for the migrating one,
-- and CREATE INDEX CONCURRENTLY waits for every transaction with an older snapshot,
-- theirs included, while they wait for its lock: a deadlock that leaves an INVALID index
-- behind. Here each CREATE INDEX holds a SHARE lock on ticket_times until this migration
-- commits (reads go on; the ticket consumer's writes wait, a few seconds for 3M rows, then
-- resume from its durable consumer; nothing is lost).

-- Every account with tickets, for the inspection job's account list (it scanned
-- ticket_times hourly on every replica). Kept by a trigger rather than by the writer so
-- the previous release, still writing during a rollout or after a rollback, keeps it too;
-- it fires only when a ticket's row is first inserted.
CREATE TABLE ticket_accounts (
    account text PRIMARY KEY
);

CREATE FUNCTION ticket_accounts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_accounts (account) VALUES (NEW.account) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER ticket_times_account AFTER INSERT ON ticket_times
    FOR EACH ROW EXECUTE FUNCTION ticket_accounts_add();

-- After the trigger, in the same transaction: no ticket written meanwhile is missed.
INSERT INTO ticket_accounts (account) SELECT DISTINCT account FROM ticket_times
    ON CONFLICT DO NOTHING;

-- The overview's ticket summaries of every account over a window of days.
CREATE INDEX ticket_times_opened_at ON ticket_times (opened_at);

-- Tickets escalated twice (a handful, checked hourly per account and on every account
-- page); the query's `overdue_count >= 2` implies this predicate.
CREATE INDEX ticket_times_escalated ON ticket_times (account) WHERE overdue_count >= 2;
