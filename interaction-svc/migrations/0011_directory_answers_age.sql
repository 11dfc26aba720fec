-- The sweeper prunes directory answers past their use (a follow-up within 30
-- minutes; kept a day for late deliveries) by age; few rows are old at a time.
CREATE INDEX directory_answers_answered_at ON directory_answers (answered_at);
