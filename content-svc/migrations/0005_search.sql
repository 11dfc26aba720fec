-- Chinese search over directory services and published articles. Text is segmented
-- by jieba in the service at write time and stored space-separated, so PostgreSQL's
-- `simple` configuration indexes each word as is; weights: A title, B keywords and
-- synonyms, D body (ts_rank puts title and keyword hits above body hits).
CREATE TABLE search_documents (
    kind      text NOT NULL CHECK (kind IN ('service', 'article')),
    ref_id    uuid NOT NULL,
    -- Every account that shows the document.
    accounts  text[] NOT NULL,
    category  text NOT NULL DEFAULT '',
    title     text NOT NULL,
    -- The plain text snippets are cut from.
    summary   text NOT NULL,
    url       text NOT NULL,
    enabled   boolean NOT NULL DEFAULT true,
    document  tsvector NOT NULL,
    PRIMARY KEY (kind, ref_id)
);
CREATE INDEX search_documents_document ON search_documents USING gin (document);
CREATE INDEX search_documents_accounts ON search_documents USING gin (accounts);
