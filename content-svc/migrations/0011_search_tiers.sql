-- Search by tiers read in order (title, then title and keywords, then body; services
-- first, then the newest), so a query stops after `limit` rows instead of fetching
-- and ranking every headline holding a common word: 通知 matches 33,000 headlines of
-- 104,000, and ranking them all took 50-80 ms (docs/benchmarks.md, "Search").

-- The title's words alone (weight A of the headline), with their own GIN index and
-- statistics: a word common in digests but rare in titles must not look common to
-- the planner when it chooses how to read the title tier. Generated, so the trigger
-- of 0009 (and the previous release's binary) fill it without knowing of it.
ALTER TABLE search_headlines
    ADD COLUMN title_vector tsvector GENERATED ALWAYS AS (ts_filter(headline, '{a}')) STORED;
CREATE INDEX search_headlines_title_vector ON search_headlines USING gin (title_vector);
-- A tier read in its order: services before articles, newest (UUIDv7) first.
CREATE INDEX search_headlines_order ON search_headlines (account, kind, ref_id);
-- Whether a part is read through the btree in order or through the GIN index is the
-- planner's choice by how common it thinks the words are. A word outside the most
-- common elements it keeps is guessed from the rarest of them; with the default 100
-- (1,000 elements over 100,000 documents) 停电通知, which no document holds, looked
-- common enough to walk every body newest first: 6 s. Ten times the elements.
ALTER TABLE search_headlines ALTER COLUMN title_vector SET STATISTICS 1000;
ALTER TABLE search_headlines ALTER COLUMN headline SET STATISTICS 1000;
ALTER TABLE search_documents ALTER COLUMN document SET STATISTICS 1000;
ALTER TABLE search_documents ALTER COLUMN headline SET STATISTICS 1000;
ANALYZE search_headlines;
ANALYZE search_documents;
