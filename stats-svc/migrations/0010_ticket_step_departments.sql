-- Which department each judged step belongs to: the one that acknowledged or closed
-- the ticket, and the one that owned it when a deadline passed unmet (each the
-- earliest, with its time, so the order changes arrive in does not matter). A
-- ticket moved to another department (退单改派) after missing a deadline is late for
-- the department that missed it, not for the one that took it over.
ALTER TABLE ticket_times
    ADD COLUMN acknowledged_by       text,
    ADD COLUMN closed_by             text,
    ADD COLUMN acknowledge_missed_at timestamptz,
    ADD COLUMN acknowledge_missed_by text,
    ADD COLUMN resolve_missed_at     timestamptz,
    ADD COLUMN resolve_missed_by     text;
