-- A reopened ticket is open again although `closed_at` keeps its first close (the
-- resolution time counts from that). The newest close and the newest reopen, each kept
-- whatever order events come in, tell whether a ticket is open now.
ALTER TABLE ticket_times
    ADD COLUMN last_closed_at   timestamptz,
    ADD COLUMN last_reopened_at timestamptz;
UPDATE ticket_times SET last_closed_at = closed_at;
