-- A mass send's `clientmsgid` is the headline's id and its send generation. WeChat
-- refuses a second send with a clientmsgid it holds (45065), which is what stops a
-- retry from pushing a message twice; but once WeChat's own verdict on the job was a
-- failure (MASSSENDJOBFINISH err(...)), nothing reached the followers and a new send
-- must not be refused as "already sent". The generation moves on only then, so only
-- a send WeChat said failed ever gets a new key. 0 keeps the bare id (the key sends
-- made before this column had).
ALTER TABLE articles ADD COLUMN send_generation integer NOT NULL DEFAULT 0;
