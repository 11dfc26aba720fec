-- An article's place in its WeChat message (ArticleChanged.message_index: 1-based,
-- WeChat's idx, 1 for a lone article), from content-svc's published and retracted
-- events. With msg_data_id it names the datacube's own row of the article,
-- `{msg_data_id}_{message_index}`, so a datacube row is matched to the one article it
-- reports (its retraction, its figures entered by hand) instead of to every article of
-- its message. NULL: not known (rows announced before this migration, by the previous
-- release during a rollout, or by an event from before the field, which carries 0);
-- such a row keeps speaking for its whole message, as before. ALTER alone: nullable,
-- no default, no rewrite.
ALTER TABLE article_figures ADD COLUMN message_index integer;
