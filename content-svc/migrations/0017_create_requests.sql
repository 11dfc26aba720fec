-- The caller's id of a create call (request_id of CreateService, CreateArticle and
-- UploadImage): a retry of a call whose caller gave up (its deadline, a proxy's
-- timeout) finds what the first call created instead of creating it again. One row
-- per account and id, written in the transaction of the create, so the id is taken
-- if and only if the create committed; a concurrent retry waits on the key. The
-- digest is of the request as sent without its id, so the same id with other fields
-- is told from a retry. A new table: the previous release never reads it.
CREATE TABLE create_requests (
    account text NOT NULL,
    request_id text NOT NULL,
    -- service, article or image.
    kind text NOT NULL,
    -- The department of the key that made it.
    department text NOT NULL,
    body_sha256 bytea NOT NULL,
    -- The service's, article's or image's id.
    result_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, request_id)
);
