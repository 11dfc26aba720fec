-- The rows a send again under one clientmsgid locks and compares (0025's sent_key).
-- Its own migration: an index built in the migration that altered the table would
-- hold the previous release's reads of articles for the whole build
-- (platform/tests/migration_rules.rs).
CREATE INDEX articles_sent_key ON articles (sent_key) WHERE sent_key IS NOT NULL;
