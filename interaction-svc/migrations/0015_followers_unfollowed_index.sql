-- no-transaction
-- Followers who unfollowed, by when: what the sweeper's retention pass looks for.
-- CONCURRENTLY, alone in its migration, for the reason 0014 gives.
CREATE INDEX CONCURRENTLY followers_unfollowed ON followers (unsubscribed_at) WHERE NOT subscribed;
