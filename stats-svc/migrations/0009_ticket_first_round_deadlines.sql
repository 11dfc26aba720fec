-- When the stored deadlines were set: the earliest change carrying deadlines wins, so
-- a ticket keeps its first round's deadlines, the round its first acknowledgement and
-- close belong to, whatever order the changes arrive in. A reopen's new deadlines no
-- longer make a late first round look on time. Rows before this migration keep the
-- deadlines they had (NULL here: the next change may replace them).
ALTER TABLE ticket_times ADD COLUMN deadlines_at timestamptz;
