-- The replies decided for the citizen's callbacks that an erasure deleted
-- (decided_replies, deleted since 8bf36b8 but counted only in its log line), beside
-- the other tables' counts. Nullable, no default: NULL for erasures recorded before
-- this release (not counted), and the previous release, which does not write it,
-- keeps running during a rollout.
ALTER TABLE citizen_erasures ADD COLUMN decided_replies integer;
