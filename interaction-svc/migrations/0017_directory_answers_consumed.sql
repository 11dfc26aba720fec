-- A directory answer a later message took over (it asked again and opened a ticket
-- carrying the question) is marked with that message's event id instead of being
-- deleted: the reply path may read it after the consumer applied the message, and
-- must still see it as pending for that message (the acknowledgement, not the same
-- card again). Any other message finds no pending answer. Nullable, no backfill.
ALTER TABLE directory_answers ADD COLUMN consumed_by text;
