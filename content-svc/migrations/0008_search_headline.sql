-- The title and keywords alone (weights A and B): a small tsvector, searched and
-- ranked first. Ranking every match of the whole document meant reading a ~3 KB
-- (toasted) tsvector per match, and a common word (通知) matches most of an archive:
-- 16 s p99 over 100,000 articles (docs/benchmarks.md, "Search").
ALTER TABLE search_documents ADD COLUMN headline tsvector;
UPDATE search_documents SET headline = ts_filter(document, '{a,b}');
ALTER TABLE search_documents ALTER COLUMN headline SET NOT NULL;
CREATE INDEX search_documents_headline ON search_documents USING gin (headline);
