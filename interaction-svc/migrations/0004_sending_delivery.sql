-- An outbound message is recorded as `sending` (and committed) before WeChat is
-- called, so no transaction or row lock is held across the call; a second
-- transaction records the outcome. `sending_since` lets the sweeper find a message
-- whose sender stopped between the two (see `jobs::sweeper`).
ALTER TABLE ticket_messages DROP CONSTRAINT ticket_messages_delivery_check;
ALTER TABLE ticket_messages ADD CONSTRAINT ticket_messages_delivery_check
    CHECK (delivery IN ('received', 'sending', 'sent', 'held', 'failed'));
ALTER TABLE ticket_messages ADD COLUMN sending_since timestamptz;
CREATE INDEX ticket_messages_sending ON ticket_messages (sending_since)
    WHERE delivery = 'sending';
