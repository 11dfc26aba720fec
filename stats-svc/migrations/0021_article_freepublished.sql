-- Whether content-svc sent the article by freepublish (draft/add + freepublish/submit)
-- rather than mass send, from ArticleChanged.channel: WeChat's datacube article APIs
-- report mass sends only, so a freepublished article's figures are entered by hand
-- under content-svc's id even on an account the datacube pulls. NULL: not known (an
-- article announced before this migration, or by an event without a channel), taken
-- as a mass send as before.
ALTER TABLE article_figures ADD COLUMN freepublished boolean;
