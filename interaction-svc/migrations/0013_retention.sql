-- Retention (README, "What is kept, and for how long"): the sweeper anonymises
-- closed tickets past TICKET_RETENTION (the citizen's openid, texts and the callbacks'
-- ids go; the skeleton the department and the statistics count stays) and deletes
-- followers who unfollowed more than FOLLOWER_RETENTION ago and old rule_requests;
-- EraseCitizen does the same for one citizen on request. Additive only: the previous
-- release neither reads nor writes these, so it keeps running during a rollout. The
-- indexes on tickets and followers are built in 0014 and 0015, each in a transaction
-- of its own, so this ALTER's ACCESS EXCLUSIVE lock ends at once.

-- When the ticket's citizen data was removed (by age or on request); NULL: kept.
ALTER TABLE tickets ADD COLUMN erased_at timestamptz;

-- rule_requests holds one row per rule created with a request id: small.
CREATE INDEX rule_requests_age ON rule_requests (created_at);

-- Each erasure of a citizen's data on request: who asked, when, why, and how many rows
-- it changed. The citizen is named by a SHA-256 of `{account}:{openid}`, not the
-- openid: keeping the openid would keep what was erased, while the digest still
-- answers "was this citizen erased, and when" for whoever holds the openid.
CREATE TABLE citizen_erasures (
    id                uuid PRIMARY KEY,
    account           text NOT NULL,
    citizen_sha256    text NOT NULL,
    -- The caller's department and API key fingerprint (platform::grpc::Caller).
    requested_by      text NOT NULL,
    key_id            text NOT NULL,
    reason            text NOT NULL,
    at                timestamptz NOT NULL DEFAULT now(),
    followers         integer NOT NULL,
    follower_tags     integer NOT NULL,
    directory_answers integer NOT NULL,
    tickets           integer NOT NULL,
    messages          integer NOT NULL,
    transitions       integer NOT NULL
);
CREATE INDEX citizen_erasures_citizen ON citizen_erasures (account, citizen_sha256);
