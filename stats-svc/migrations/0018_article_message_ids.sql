-- WeChat's message id of an article announced on CONTENT (the PUBLISHED event's
-- msg_data_id): the datacube reports the same article as `{msg_data_id}_{index}`, a row
-- of its own that a retraction (which names content-svc's id) never marks, so the
-- article stayed the account's last update through it. A datacube row of a message
-- CONTENT announced is left to CONTENT's rows, which carry the same day and the
-- retractions. Nullable: rows announced before (and by the previous release, during a
-- rollout) have none, and their datacube rows count as before.
ALTER TABLE article_figures ADD COLUMN msg_data_id text;
