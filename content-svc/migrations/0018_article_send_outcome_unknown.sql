-- Whether the article's last send may have reached followers without this service
-- knowing: a mass send's answer was lost, a free publication's submission answer was
-- lost, or a send cut off mid-way was failed by the stuck-send sweep. A send again
-- (PublishArticle, ScheduleArticle) then needs the publisher's explicit confirmation
-- (WeChat forgets a mass send's clientmsgid after 24 hours, and freepublish has
-- none). Cleared by that confirmed send, and by WeChat's verdict on a job. The
-- previous release neither reads nor writes it (a default, no NOT NULL without one).
ALTER TABLE articles ADD COLUMN send_outcome_unknown boolean NOT NULL DEFAULT false;

-- Articles failed so before this column: by the reasons those paths wrote, or a mass
-- send one of whose attempts lost its answer (the ledger kept its reservation).
UPDATE articles SET send_outcome_unknown = true
 WHERE state = 'failed'
   AND (failure LIKE 'the send''s outcome is unknown%'
        OR failure LIKE 'WeChat''s answer to the submission was lost%'
        OR id IN (SELECT article_id FROM mass_send_ledger WHERE answer_lost));
