-- The outbox and processed_events of 0001 take the shape of platform::outbox::SCHEMA:
-- processed_at is when the event was applied (clock_timestamp(), also inside a batch
-- transaction), and published rows can be purged by age.
ALTER TABLE processed_events ALTER COLUMN processed_at SET DEFAULT clock_timestamp();
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
