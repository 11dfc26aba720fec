-- Which send of an article is under way (`send_token`): bumped by the claim of a
-- scheduled send and by PublishArticle, the two ways into `publishing`. A send
-- keeps its draft and hands it to WeChat only while the article still carries the
-- token it was started with (store::articles::keep_sent_draft, still_publishing):
-- the version and the state alone were restored by a publish again, so a send the
-- stuck-send sweep had given up, waking after the publisher published again,
-- submitted the article a second time.
-- `swept_token`: the send whose stuck-send sweep alone set `send_outcome_unknown`
-- (it was clear before): if that send then finds it never handed anything to
-- WeChat, it clears the mark (store::articles::clear_swept_mark). NULL otherwise;
-- any other writer of the mark clears it.
-- The previous release neither reads nor writes them: its sends start no token and
-- are checked as before (version and state), and a sweep of its marks nothing.
ALTER TABLE articles
    ADD COLUMN send_token bigint NOT NULL DEFAULT 0,
    ADD COLUMN swept_token bigint;
