-- A ticket closed straight from open (a duplicate merged, spam, not this government's
-- remit) was seen by whoever closed it: that is its acknowledgement. Rows folded
-- before this rule had none, so once the deadline passed the ticket counted as a
-- late acknowledgement that no escalation ever announced.
UPDATE ticket_times
   SET acknowledged_at = closed_at,
       acknowledged_by = closed_by
 WHERE acknowledged_at IS NULL AND closed_at IS NOT NULL;
