-- Followers who unfollowed, by when: what the sweeper's retention pass looks for.
-- Plain CREATE INDEX, in a migration of its own, for the reasons 0014 gives: follower
-- writes wait for the build (seconds), reads go on.
CREATE INDEX followers_unfollowed ON followers (unsubscribed_at) WHERE NOT subscribed;
