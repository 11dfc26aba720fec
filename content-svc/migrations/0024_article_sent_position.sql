-- Each article's place in the message as it was handed to WeChat (1: the headline,
-- a lone article 1), written just before the send call. WeChat's idx, a
-- MASSSENDJOBFINISH's or freepublish's URLs by place and the datacube's
-- {msg_data_id}_{index} all count from that message, not from the message as it
-- stands later: a member returned for revision after a send of unknown outcome moves
-- the others up. Read by the late verdict (is the message still what went out?) and
-- by every publication and retraction event (message_index). NULL: handed over
-- before this column (the current place is used, as before). The previous release
-- neither reads nor writes it; a nullable column is added without rewriting the table.
ALTER TABLE articles ADD COLUMN sent_position smallint;
