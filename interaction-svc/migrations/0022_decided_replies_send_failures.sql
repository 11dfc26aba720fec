-- How many sends of a missed reply WeChat did not take (busy, over a quota,
-- unreachable), counted in the reply's row so that every replica's consumer decides
-- from the same count whether to try again or give up (events::missed): the consumer
-- runner counts a marker's failures only in the process that saw it wait, and on
-- another replica an old marker was dead-lettered after one failure. A constant
-- default: no rewrite, the lock is for a moment; the previous release does not write
-- it and keeps running during a rollout.
ALTER TABLE decided_replies ADD COLUMN send_failures integer NOT NULL DEFAULT 0;
