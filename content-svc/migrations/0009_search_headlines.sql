-- Title and keywords (the `headline` tsvector, weights A and B) in a narrow table of
-- their own, one row per account that shows an enabled document. Matching and ranking
-- the headline in search_documents meant a heap fetch of a ~3 KB row (the body
-- tsvector lives there) per match: 20,000 matches read ~8,600 pages for one query
-- (docs/benchmarks.md, "Search"). Here a row is the title and the headline only.
CREATE TABLE search_headlines (
    kind     text NOT NULL,
    ref_id   uuid NOT NULL,
    account  text NOT NULL,
    category text NOT NULL,
    -- Ties are ordered by title, so it is here rather than one more fetch away.
    title    text NOT NULL,
    headline tsvector NOT NULL,
    PRIMARY KEY (kind, ref_id, account)
);
CREATE INDEX search_headlines_headline ON search_headlines USING gin (headline);

-- Kept in step with search_documents by a trigger rather than by each write: every
-- path that indexes or unindexes a document (publication, retraction, edit, directory
-- change, bulk load) writes search_documents, and so does the previous release's
-- binary during a rollout or after a rollback, which knows nothing of this table.
CREATE FUNCTION search_headlines_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM search_headlines WHERE kind = OLD.kind AND ref_id = OLD.ref_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.enabled THEN
        INSERT INTO search_headlines (kind, ref_id, account, category, title, headline)
        SELECT NEW.kind, NEW.ref_id, account, NEW.category, NEW.title, NEW.headline
          FROM unnest(NEW.accounts) AS account
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER search_headlines_sync
    AFTER INSERT OR UPDATE OR DELETE ON search_documents
    FOR EACH ROW EXECUTE FUNCTION search_headlines_sync();

INSERT INTO search_headlines (kind, ref_id, account, category, title, headline)
SELECT d.kind, d.ref_id, a.account, d.category, d.title, d.headline
  FROM search_documents d, unnest(d.accounts) AS a(account)
 WHERE d.enabled
ON CONFLICT DO NOTHING;

-- The body tier's filters: services are 2 % of the documents, so "services only" or
-- "one category" must not recheck every article whose body holds a common word.
CREATE INDEX search_documents_category ON search_documents (category) WHERE category <> '';
