-- The mass send job (msg_id) a publisher last confirmed, sending the article again
-- with confirm_possible_duplicate, as one that did not reach followers. The send
-- again keeps its clientmsgid, so within WeChat's 24 hours it meets 45065 naming a
-- job: when that is this same job, already failed as outcome unknown, its verdict
-- has nothing more to say, and waiting for it again only fails it again a
-- reconciliation period later (and again, for a day). NULL: none confirmed. The
-- previous release neither reads nor writes it.
ALTER TABLE articles ADD COLUMN confirmed_job text;
