-- The callback that opened the ticket: the reply path, which may run after the
-- consumer applied that callback, tells "your message was received" from "your
-- message joined your open request" by it.
ALTER TABLE tickets ADD COLUMN opened_event_id text;
