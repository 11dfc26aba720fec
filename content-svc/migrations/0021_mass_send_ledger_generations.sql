-- A mass send's reservation belongs to one send generation of its article
-- (articles.send_generation, moved on only by WeChat's verdict that the job
-- failed). A row of an earlier generation is a send WeChat took and counted,
-- however its job ended: a new send of the article reserves anew, on its own day,
-- and that earlier send stays counted in `earlier_sends` (the row's article id stays
-- its key, as the previous release's ON CONFLICT (article_id) needs). Before this a
-- new send after a failed job found the old row, took it for a retry already
-- counted, and went out uncounted. Rows from before this migration are generation 0.
-- The previous release reads neither column: during a rollout it counts only
-- `sent_at`.
ALTER TABLE mass_send_ledger
    ADD COLUMN send_generation integer NOT NULL DEFAULT 0,
    ADD COLUMN earlier_sends timestamptz[] NOT NULL DEFAULT '{}';
