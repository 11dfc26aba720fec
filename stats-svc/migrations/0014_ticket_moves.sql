-- Who moved a ticket away (退单改派), and when: a department that passes on a ticket it
-- has not acknowledged is judged for that acknowledgement (it cannot reach 100% by
-- moving every ticket on), and the department that takes it over gets a grace after
-- the move before a deadline it could not meet counts against it. `moved_away_*` is the
-- earliest move with its department, `moved_in_at` the latest move (the one that gave
-- the ticket to its owner now); both order-independent, like 0010's columns. Nullable:
-- the previous release neither writes nor reads them.
ALTER TABLE ticket_times
    ADD COLUMN moved_away_by text,
    ADD COLUMN moved_away_at timestamptz,
    ADD COLUMN moved_in_at   timestamptz;
