-- Every change of the search index numbered and announced, so each replica's
-- in-memory copy of it (content-svc README, "Search") follows the database. A row
-- trigger counts the change in `search_version` and notifies
-- `search_documents_changed` with `kind ref_id number`; the notification is delivered
-- when the change commits and never for one rolled back. The counter is one row, so
-- the writers of the index take their numbers one transaction at a time and commit
-- in their order: a query reads the number (the latest change committed) and waits
-- until its replica has applied the announcements up to it, and then finds every
-- change committed before it, on every replica. Writers of the index are rare (a
-- publication, a directory edit); they wait on each other only for that row.
CREATE TABLE search_version (
    number bigint NOT NULL,
    one boolean PRIMARY KEY DEFAULT true CHECK (one)
);
INSERT INTO search_version (number) VALUES (0);

CREATE FUNCTION search_documents_announce() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    doc search_documents%ROWTYPE;
    changed bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        doc := OLD;
    ELSE
        doc := NEW;
    END IF;
    UPDATE search_version SET number = number + 1 RETURNING number INTO changed;
    PERFORM pg_notify('search_documents_changed', doc.kind || ' ' || doc.ref_id || ' ' || changed);
    -- Writes upsert by the key, so an update never changes it; if one did, the old key
    -- is announced too, so no replica keeps the document under it.
    IF TG_OP = 'UPDATE' AND (OLD.kind, OLD.ref_id) IS DISTINCT FROM (NEW.kind, NEW.ref_id) THEN
        PERFORM pg_notify('search_documents_changed', OLD.kind || ' ' || OLD.ref_id || ' ' || changed);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER search_documents_announce
    AFTER INSERT OR UPDATE OR DELETE ON search_documents
    FOR EACH ROW EXECUTE FUNCTION search_documents_announce();
