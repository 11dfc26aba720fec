-- The datacube's rows (`{msg_data_id}_{index}`) by account and message: what
-- `published_between` probes for a CONTENT row announced before its place in the
-- message was kept (message_index NULL, 0022), which gives way to any pulled row of
-- its message. A CONTENT row that knows its place probes the primary key with the
-- datacube's id instead. Both match by id, not by day: a CONTENT row recorded
-- published late is dated by when it was recorded, days after the send the datacube
-- dates its row by, and within a window of days the article counted in both periods.
-- Plain CREATE INDEX in a migration of its own, as 0025 (this release's polling
-- migrator builds without CONCURRENTLY, docs/operations.md, "Upgrades"): it holds
-- SHARE on article_figures while it builds, a table of a few rows per account and
-- day, written by the hourly pull and by hand, which wait for it; reads go on.
CREATE INDEX article_figures_message ON article_figures
    (account, regexp_replace(article_id, '_[0-9]+$', ''))
    WHERE article_id ~ '_[0-9]+$';
