-- The failed articles whose mass send job's verdict is awaited (`awaited_job`, 0030):
-- what the reconciliation's second claim (store::articles::claim_unsettled) reads every
-- tick on every replica. Without it that claim reads every article ever mass-sent
-- (articles_mass_msg_id: a number that only grows); with it, the few awaiting a
-- verdict. `state = 'failed'` in the predicate: a publisher's settling (RecordPublished,
-- a confirmed send again, a return) moves the article out of `failed` without clearing
-- `awaited_job`, and such rows must not stay in the index for good. The claim's
-- `state = 'failed' AND awaited_job = mass_msg_id` implies the predicate, so the planner
-- can use it (EXPLAIN on 200,000 articles: it does). Plain CREATE INDEX in a migration
-- of its own, as 0029 and 0031 (the polling migrator builds without CONCURRENTLY,
-- docs/operations.md, "Upgrades"): writes to articles wait for the build, one read of
-- the table (0031's took 64 ms for 100,000 articles), which finds next to nothing to
-- index.
CREATE INDEX articles_awaited_job ON articles (updated_at)
    WHERE awaited_job IS NOT NULL AND state = 'failed';
