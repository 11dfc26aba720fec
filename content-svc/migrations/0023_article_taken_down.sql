-- A publication WeChat took down after it went out: freepublish's publish_status 5
-- (deleted by the account) or 6 (banned by the platform), a mass send's DELETE. The
-- article is published (it reached followers: the ledger and the guard against a
-- second send need that), but is never offered to citizens' search, and a late
-- job-finish callback does not give it a URL. The previous release neither reads
-- nor writes it; a constant default adds it without rewriting the table.
ALTER TABLE articles ADD COLUMN taken_down boolean NOT NULL DEFAULT false;
