-- When an answer was (last) held: the held-answer retry also takes a held answer
-- whose citizen wrote after it was held (their window is open, but the flush that
-- message asked for was lost: a crash, a failed flush, a redelivered message), and a
-- flush that keeps it held again moves `held_at` on, so an answer WeChat refused is
-- not retried every pass. NULL (held before this release): the answer's own time.
-- Nullable, no default: the previous release keeps running during a rollout.
ALTER TABLE ticket_messages ADD COLUMN held_at timestamptz;
