-- The caller's id for an answer (ReplyToTicketRequest.request_id): a retry of a call
-- whose caller gave up (its deadline, a proxy's timeout) finds the answer the first
-- call recorded and reports how it left instead of sending it to the citizen again.
ALTER TABLE ticket_messages ADD COLUMN request_id text;
CREATE UNIQUE INDEX ticket_messages_request ON ticket_messages (ticket_id, request_id)
    WHERE request_id IS NOT NULL;
