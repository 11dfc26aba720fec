-- The inbound event whose digit became the rating. The reply path answers in
-- parallel with the consumer; if the consumer recorded the rating a moment
-- before the reply path looked, this tells the reply path it was this very
-- message, so the citizen is still thanked.
ALTER TABLE tickets ADD COLUMN rated_event_id text;

-- A citizen's tickets, newest first: the active one to join, the last one to rate.
CREATE INDEX tickets_by_citizen ON tickets (account, openid, opened_at DESC);
