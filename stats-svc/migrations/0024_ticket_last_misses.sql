-- The latest miss of each deadline, beside 0014's first (`*_missed_at`): a reopened
-- ticket gets new deadlines and interaction-svc clears its overdue marks, but
-- `overdue_count` runs on across rounds, so a ticket that missed both deadlines in an
-- earlier round raised "工单 T 两次超期督办" every day after its reopen. The alarm now
-- asks for both deadlines missed after the last reopen. Nullable, no backfill (nothing
-- slow after an ALTER): a row folded before it reads its first miss instead (the
-- same for a ticket never reopened), and the previous release leaves them unset.
ALTER TABLE ticket_times
    ADD COLUMN last_acknowledge_missed_at timestamptz,
    ADD COLUMN last_resolve_missed_at timestamptz;
