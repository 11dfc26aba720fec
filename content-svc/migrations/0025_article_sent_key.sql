-- The mass send's clientmsgid (the headline's id and send generation) an article's
-- sent_position was recorded under. WeChat refuses a used clientmsgid (45065) and
-- names the job that took it, so a send again under the same key (a retry after a
-- lost answer, a send confirmed as no duplicate) learns of the line-up that key was
-- first handed over with, not the one sent now: the places of that first hand-over
-- are kept while the key may be taken, and a 45065 for a message changed since (an
-- article returned) is left to a publisher instead of announcing places WeChat did
-- not send. NULL: a free publication (no key), a send WeChat answered without
-- taking it, or one before this column. The previous release neither reads nor
-- writes it (it rewrites sent_position on every hand-over, as before).
ALTER TABLE articles ADD COLUMN sent_key text;
CREATE INDEX articles_sent_key ON articles (sent_key) WHERE sent_key IS NOT NULL;
