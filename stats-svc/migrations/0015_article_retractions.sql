-- The office day an article was retracted (deleted on WeChat, content-svc's
-- `content.{account}.article.retracted`): it is no longer on the account, so it does not
-- count as the account's last update from that day on. Nullable: the previous release,
-- during a rollout, writes rows without it, and they stay not retracted.
ALTER TABLE article_figures ADD COLUMN retracted_on date;
